// Benchmark: the reconciler's sync at 1,000 and 10,000 Ingresses, and the memory of a controller holding them.
// Drives the real Reconciler on an in-memory source; the data plane hashes and renders as Applier.apply does and
// stops before writing files and NGINX. Each size runs in its own process, so sizes do not share heap or JIT state.
// Prints figures and ratios; asserts nothing.
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { V1EndpointSlice, V1Ingress, V1Secret, V1Service } from '@kubernetes/client-node';
import { execa } from 'execa';
import { configurationHash, type ApplyResult } from '../../controller/dataplane/applier.js';
import { BUILTIN_TLS_DEFAULTS } from '../../controller/model/pq.js';
import { CAPABILITIES } from '../../controller/model/testing.js';
import type { Model } from '../../controller/model/types.js';
import { createLogger } from '../../controller/observability/log.js';
import { createMetrics } from '../../controller/observability/metrics.js';
import { defaultCertificatePairs, selfSignedPair } from '../../controller/pki/selfsigned.js';
import { Reconciler, type DataPlane } from '../../controller/reconciler.js';
import { endpointLines, render, ServerBlocks } from '../../controller/render/render.js';
import { RENDER_SETTINGS } from '../../controller/render/testing.js';
import { emptySnapshot, keyOf, stripperOf, type Change, type Snapshot, type Source } from '../../controller/sources/source.js';

const SIZES = [1_000, 10_000];
const INGRESSES_PER_NAMESPACE = 50;
const REPEATS = 5;
const CONFIG_MAP = 'qubesec/qubesec-defaults';
/** An Opaque Secret no Ingress names: "no change" syncs change it. */
const UNRELATED_SECRET = 'unrelated-token';

interface Figures {
  ingresses: number;
  objects: number;
  firstSyncMs: number;
  fullSyncMs: number;
  oneChangedMs: number;
  endpointsChangedMs: number;
  noChangeMs: number;
  /** Of each figure above, the part spent in the data plane's hash and render, and the rest: the controller's. */
  dataPlane: Record<'first' | 'full' | 'oneChanged' | 'endpointsChanged' | 'noChange', { hashMs: number; diffMs: number; renderMs: number; controllerMs: number }>;
  configBytes: number;
  serverFileBytes: number;
  /** listed: objects as the API server sends them; objects: as the reflectors keep them (stripperOf). */
  memory: Record<'empty' | 'listed' | 'objects' | 'synced', { rssMb: number; heapUsedMb: number }>;
  peakRssMb: number;
}

// --- the cluster -------------------------------------------------------------------------------------------------

/** A snapshot whose lists the benchmark may change. */
type ClusterObjects = { [K in keyof Snapshot]: Snapshot[K][number][] };

/** A wildcard ML-DSA-65 and ECDSA P-256 pair per namespace, as kubernetes.io/tls Secrets its Ingresses share. */
async function namespaceSecrets(namespace: string, domain: string): Promise<V1Secret[]> {
  const secrets: V1Secret[] = [];
  for (const algorithm of ['ml-dsa-65', 'ecdsa-p256'] as const) {
    const pair = await selfSignedPair(algorithm, `*.${domain}`, [`*.${domain}`]);
    secrets.push({
      apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls',
      metadata: { name: `wildcard-${algorithm}`, namespace, uid: `uid-${namespace}-${algorithm}`, resourceVersion: '1' },
      data: { 'tls.crt': Buffer.from(pair.certificatePem).toString('base64'), 'tls.key': Buffer.from(pair.keyPem).toString('base64') },
    });
  }
  return secrets;
}

/** Annotations as teams write them: a few per Ingress, some on every few, and kubectl's last-applied copy. */
function annotationsOf(i: number, host: string, spec: V1Ingress['spec']): Record<string, string> {
  const a: Record<string, string> = { 'nginx.ingress.kubernetes.io/proxy-body-size': '8m' };
  if (i % 3 === 0) a['nginx.ingress.kubernetes.io/limit-rps'] = '20';
  if (i % 5 === 0) Object.assign(a, { 'nginx.ingress.kubernetes.io/enable-cors': 'true', 'nginx.ingress.kubernetes.io/cors-allow-origin': `https://${host}` });
  if (i % 10 === 0) a['nginx.ingress.kubernetes.io/proxy-read-timeout'] = '120';
  if (i % 20 === 0) a['qubesec.io/pq-mode'] = 'strict';
  if (i % 25 === 0) a['nginx.ingress.kubernetes.io/allowlist-source-range'] = '198.18.0.0/16,198.19.0.0/16';
  if (i % 50 === 7) Object.assign(a, { 'nginx.ingress.kubernetes.io/affinity': 'cookie', 'nginx.ingress.kubernetes.io/session-cookie-name': 'route' });
  a['kubectl.kubernetes.io/last-applied-configuration'] = JSON.stringify({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', spec });
  return a;
}

function path(path: string, pathType: string, service: string, port: { name: string } | { number: number }) {
  return { path, pathType, backend: { service: { name: service, port } } };
}

function endpointSlice(namespace: string, service: string, port: { name: string; port: number }, addresses: string[]): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: { name: `${service}-x7k2p`, namespace, uid: `uid-${namespace}-${service}-slice`, resourceVersion: '1', labels: { 'kubernetes.io/service-name': service, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' } },
    ports: [{ ...port, protocol: 'TCP' }],
    endpoints: addresses.map((address, e) => ({
      addresses: [address],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: `node-${e}`,
      zone: `zone-${e % 3}`,
      targetRef: { kind: 'Pod', namespace, name: `${service}-5d9f8-${e}`, uid: `uid-${namespace}-${service}-pod-${e}` },
    })),
  };
}

/** The k-th address of 198.18.0.0/16 (k below 65,536: up to 13,107 Ingresses of five pods). */
function podAddress(k: number): string {
  return `198.18.${(k >> 8) & 255}.${k & 255}`;
}

/**
 * `count` Ingresses in namespaces of INGRESSES_PER_NAMESPACE: one or two hosts, four paths to two Services (three
 * and two ready endpoints), both wildcard Secrets of the namespace in spec.tls, a few annotations.
 */
async function cluster(count: number): Promise<ClusterObjects> {
  const ingresses: V1Ingress[] = [];
  const services: V1Service[] = [];
  const endpointSlices: V1EndpointSlice[] = [];
  const secrets: V1Secret[] = [];
  for (let i = 0; i < count; i++) {
    const n = Math.floor(i / INGRESSES_PER_NAMESPACE);
    const namespace = `team-${n}`;
    const domain = `${namespace}.bench.example`;
    if (i % INGRESSES_PER_NAMESPACE === 0) secrets.push(...(await namespaceSecrets(namespace, domain)));
    const app = `app-${i % INGRESSES_PER_NAMESPACE}`;
    const hosts = i % 4 === 0 ? [`${app}.${domain}`, `www-${app}.${domain}`] : [`${app}.${domain}`];
    const paths = [
      path('/', 'Prefix', app, { name: 'http' }),
      path('/api', 'Prefix', `${app}-api`, { number: 8080 }),
      path('/static', 'ImplementationSpecific', app, { name: 'http' }),
      path('/healthz', 'Exact', app, { name: 'http' }),
    ];
    const spec: V1Ingress['spec'] = {
      ingressClassName: 'qubesec',
      tls: [{ hosts, secretName: 'wildcard-ml-dsa-65' }, { hosts, secretName: 'wildcard-ecdsa-p256' }],
      rules: hosts.map((host) => ({ host, http: { paths } })),
    };
    ingresses.push({
      apiVersion: 'networking.k8s.io/v1', kind: 'Ingress',
      metadata: { name: app, namespace, uid: `uid-${namespace}-${app}`, resourceVersion: '1', generation: 1, creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, i)), annotations: annotationsOf(i, hosts[0]!, spec) },
      spec,
    });
    for (const [service, port, target, pods] of [[app, 'http', 8080, 3], [`${app}-api`, 'api', 9090, 2]] as const) {
      services.push({
        apiVersion: 'v1', kind: 'Service',
        metadata: { name: service, namespace, uid: `uid-${namespace}-${service}`, resourceVersion: '1' },
        spec: { type: 'ClusterIP', clusterIP: `198.19.${n % 256}.${i % 250}`, selector: { app: service }, ports: [{ name: port, port: port === 'http' ? 80 : 8080, targetPort: target, protocol: 'TCP' }] },
      });
      // Five pods per Ingress, numbered through 198.18.0.0/16 (the Services' cluster IPs are in 198.19).
      const first = i * 5 + (port === 'http' ? 0 : 3);
      endpointSlices.push(endpointSlice(namespace, service, { name: port, port: target }, Array.from({ length: pods }, (_, e) => podAddress(first + e))));
    }
  }
  secrets.push({ apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name: UNRELATED_SECRET, namespace: 'team-0', uid: 'uid-unrelated', resourceVersion: '1' }, data: { token: 'MQ==' } });
  const objects: ClusterObjects = {
    ...(emptySnapshot() as ClusterObjects),
    ingressClasses: [{ apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'qubesec' }, spec: { controller: 'qubesec.io/ingress-controller' } }],
    ingresses, services, endpointSlices, secrets,
    configMaps: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'qubesec-defaults', namespace: 'qubesec', resourceVersion: '1' }, data: { 'tls-min-version': '1.3' } }],
  };
  // As a list from the API server arrives: parsed from JSON (one flat string per value, not the template literals'
  // concatenations, which take more memory), creationTimestamp a Date as client-node's deserializer makes it.
  return JSON.parse(JSON.stringify(objects), (key, value: unknown) => (key === 'creationTimestamp' ? new Date(value as string) : value)) as ClusterObjects;
}

// --- the controller around the reconciler ---------------------------------------------------------------------

/** What informers hold: objects replaced whole on each change with a new resourceVersion; list() copies the array. */
class MemorySource implements Source {
  private onChange: (change?: Change<Snapshot>) => void = () => undefined;
  private version = 1;

  constructor(private readonly state: ClusterObjects) {}

  /** Tells each change as the Kubernetes source does: the kind, the key and the object now. */
  async start(onChange: (change?: Change<Snapshot>) => void): Promise<void> {
    this.onChange = onChange;
  }

  snapshot(): Snapshot {
    const s = this.state;
    return Object.fromEntries(Object.entries(s).map(([kind, list]) => [kind, [...list]])) as unknown as Snapshot;
  }

  async stop(): Promise<void> {}

  /** Toggles proxy-body-size on the Ingress at `index`: one changed location in the configuration. */
  changeIngress(index: number): void {
    const old = this.state.ingresses[index]!;
    const annotations = { ...old.metadata!.annotations };
    annotations['nginx.ingress.kubernetes.io/proxy-body-size'] = annotations['nginx.ingress.kubernetes.io/proxy-body-size'] === '8m' ? '16m' : '8m';
    this.replace('ingresses', index, { ...old, metadata: { ...old.metadata, annotations, resourceVersion: String(++this.version) } });
  }

  /** A pod of the Service behind the EndpointSlice at `index` replaced: one endpoint with a new address. */
  changeEndpoints(index: number): void {
    const old = this.state.endpointSlices[index]!;
    const [first, ...rest] = old.endpoints ?? [];
    const address = first!.addresses[0]!.replace(/\d+$/, (n: string) => String((Number(n) + 100) % 250));
    this.replace('endpointSlices', index, { ...old, metadata: { ...old.metadata, resourceVersion: String(++this.version) }, endpoints: [{ ...first!, addresses: [address] }, ...rest] });
  }

  /** Toggles the defaults ConfigMap's tls-min-version: every Ingress's TLS policy changes. */
  changeDefaults(): void {
    const old = this.state.configMaps[0]!;
    const data = { 'tls-min-version': old.data!['tls-min-version'] === '1.3' ? '1.2' : '1.3' };
    this.replace('configMaps', 0, { ...old, metadata: { ...old.metadata, resourceVersion: String(++this.version) }, data });
  }

  /** A Secret that no Ingress names changes: a sync with nothing to do. */
  touch(): void {
    const index = this.state.secrets.findIndex((s) => s.metadata?.name === UNRELATED_SECRET);
    const old = this.state.secrets[index]!;
    this.replace('secrets', index, { ...old, metadata: { ...old.metadata, resourceVersion: String(++this.version) }, data: { token: Buffer.from(String(this.version)).toString('base64') } });
  }

  private replace<K extends keyof ClusterObjects>(kind: K, index: number, object: ClusterObjects[K][number]): void {
    this.state[kind][index] = object;
    this.onChange({ kind, key: keyOf(object), object });
  }
}

/**
 * Applier.apply up to the point where it writes files or posts endpoints: the change check (hash of the model without
 * endpoints, then the endpoint lines), then render, with the last render's server blocks kept as the applier keeps them.
 */
class RenderingDataPlane implements DataPlane {
  last = { hashMs: 0, diffMs: 0, renderMs: 0 };
  configBytes = 0;
  /** Of the render that wrote the most server block files (the first): their bytes. */
  serverFileBytes = 0;
  private readonly blocks = new ServerBlocks();
  private runningHash = '';
  private servedEndpoints = new Map<string, string>();

  async apply(model: Model, force = false): Promise<ApplyResult> {
    const started = performance.now();
    const hash = configurationHash(model);
    const endpoints = endpointLines(model);
    const hashed = performance.now();
    this.last = { hashMs: hashed - started, diffMs: 0, renderMs: 0 };
    if (!force && hash === this.runningHash) {
      // As Applier.apply: every line compared with the one NGINX has.
      const changed = [...endpoints].filter(([name, line]) => this.servedEndpoints.get(name) !== line);
      this.servedEndpoints = endpoints;
      this.last.diffMs = performance.now() - hashed;
      return { status: changed.length > 0 ? 'endpoints' : 'unchanged', hash };
    }
    const rendered = render(model, { ...RENDER_SETTINGS, generation: hash.slice(0, 12) }, this.blocks);
    this.last.renderMs = performance.now() - hashed;
    this.configBytes = rendered.config.length;
    let bytes = 0;
    for (const text of rendered.serverFiles.values()) bytes += text.length;
    this.serverFileBytes = Math.max(this.serverFileBytes, bytes);
    this.runningHash = hash;
    this.servedEndpoints = endpoints;
    return { status: 'applied', hash };
  }

  /** The bench applies only configurations NGINX would accept: a try is a render, as an apply is. */
  async test(model: Model): Promise<string | undefined> {
    render(model, { ...RENDER_SETTINGS, generation: 'test' }, this.blocks);
    return undefined;
  }
}

/**
 * What the process holds. After a burst of allocation V8 keeps the freed pages resident for reuse until its memory
 * reducer runs (seconds of idle later); a last-resort collection releases them now. Peak RSS is reported apart.
 */
function memory(): { rssMb: number; heapUsedMb: number } {
  globalThis.gc?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  const { rss, heapUsed } = process.memoryUsage();
  return { rssMb: rss / 2 ** 20, heapUsedMb: heapUsed / 2 ** 20 };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function measureSize(count: number): Promise<Figures> {
  const empty = memory();
  const state = await cluster(count);
  const objects = Object.values(state).reduce((sum, list) => sum + list.length, 0);
  const listed = memory();
  for (const [kind, list] of Object.entries(state)) list.forEach(stripperOf(kind as keyof Snapshot));
  const source = new MemorySource(state);
  const dataPlane = new RenderingDataPlane();
  const reconciler = new Reconciler(
    source,
    dataPlane,
    { record: async () => undefined },
    { controllerName: 'qubesec.io/ingress-controller', ingressClass: 'qubesec', tlsDefaults: BUILTIN_TLS_DEFAULTS, configMap: CONFIG_MAP, capabilities: CAPABILITIES, defaultCertificates: await defaultCertificatePairs(), debounceMs: 0 },
    createMetrics(),
    createLogger('error', {}, () => undefined),
  );
  const withObjects = memory();

  const timed = async (change: () => void) => {
    const synced = new Promise<void>((resolve) => (reconciler.onSynced = resolve));
    const started = performance.now();
    change();
    await synced;
    return { ms: performance.now() - started, ...dataPlane.last };
  };
  const repeated = async (times: number, change: () => void) => {
    const runs = [];
    for (let r = 0; r < times; r++) runs.push(await timed(change));
    return {
      ms: median(runs.map((r) => r.ms)),
      hashMs: median(runs.map((r) => r.hashMs)),
      diffMs: median(runs.map((r) => r.diffMs)),
      renderMs: median(runs.map((r) => r.renderMs)),
      controllerMs: median(runs.map((r) => r.ms - r.hashMs - r.diffMs - r.renderMs)),
    };
  };

  const first = await timed(() => void reconciler.start());
  const full = await repeated(3, () => source.changeDefaults());
  const profiler = await Profiler.start(count);
  const oneChanged = await repeated(REPEATS, () => source.changeIngress(Math.floor(count / 2)));
  await profiler?.stop('one-changed');
  const endpointsChanged = await repeated(REPEATS, () => source.changeEndpoints(count));
  const noChange = await repeated(REPEATS, () => source.touch());
  const synced = memory();
  await profiler?.heapSnapshot();
  await reconciler.stop();
  const dataPlaneOf = (r: { ms: number; hashMs: number; diffMs: number; renderMs: number; controllerMs?: number }) =>
    ({ hashMs: r.hashMs, diffMs: r.diffMs, renderMs: r.renderMs, controllerMs: r.controllerMs ?? r.ms - r.hashMs - r.diffMs - r.renderMs });
  return {
    ingresses: count,
    objects,
    firstSyncMs: first.ms,
    fullSyncMs: full.ms,
    oneChangedMs: oneChanged.ms,
    endpointsChangedMs: endpointsChanged.ms,
    noChangeMs: noChange.ms,
    dataPlane: { first: dataPlaneOf(first), full: dataPlaneOf(full), oneChanged: dataPlaneOf(oneChanged), endpointsChanged: dataPlaneOf(endpointsChanged), noChange: dataPlaneOf(noChange) },
    configBytes: dataPlane.configBytes,
    serverFileBytes: dataPlane.serverFileBytes,
    memory: { empty, listed, objects: withObjects, synced },
    peakRssMb: process.resourceUsage().maxRSS / 1024,
  };
}

/**
 * With QUBESEC_BENCH_PROFILE=<folder>, the largest size writes a CPU profile of its one-Ingress changes and a heap
 * snapshot after the syncs there (open them in Chrome DevTools); without it, no inspector session is opened.
 */
class Profiler {
  private constructor(private readonly session: Session, private readonly folder: string) {}

  static async start(count: number): Promise<Profiler | undefined> {
    const folder = process.env.QUBESEC_BENCH_PROFILE;
    if (!folder || count !== SIZES.at(-1)) return undefined;
    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    return new Profiler(session, folder);
  }

  async stop(name: string): Promise<void> {
    const { profile } = await this.session.post('Profiler.stop');
    await writeFile(join(this.folder, `scale-${name}.cpuprofile`), JSON.stringify(profile));
  }

  async heapSnapshot(): Promise<void> {
    const out = createWriteStream(join(this.folder, 'scale-synced.heapsnapshot'));
    this.session.on('HeapProfiler.addHeapSnapshotChunk', (m) => out.write(m.params.chunk));
    await this.session.post('HeapProfiler.takeHeapSnapshot');
    await new Promise((resolve) => out.end(resolve));
    this.session.disconnect();
  }
}

// --- report --------------------------------------------------------------------------------------------------------

const ms = (v: number) => `${v.toFixed(1)} ms`;
const mb = (v: number) => `${v.toFixed(0)} MB`;

/**
 * Earlier figures of this benchmark at 10,000 Ingresses, quoted from docs/benchmarks.md ("Scale"), not measured in
 * this run (their code paths are gone): main before the incremental sync (2371d32, 2026-12-01 21:36 UTC), and
 * issue16-integration before syncs took changes by key (2026-12-01 22:44 UTC). Same machine, shared both times.
 * Their "no change" sync was told nothing (a whole snapshot read); this one's changes a Secret no Ingress names.
 */
const EARLIER_10K: Record<string, [main: string, integration: string]> = {
  'objects in the snapshot': ['50,402', '50,402'],
  'first sync (cold: every Secret checked, JIT warm-up)': ['3905.1 ms', '4482.7 ms'],
  'full sync (defaults ConfigMap changed), median': ['3156.6 ms', '2556.2 ms'],
  '  of which model hash / render (full)': ['480 / 1284 ms', '487 / 980 ms'],
  'one Ingress changed, median': ['1438.8 ms', '448.3 ms'],
  '  of which model hash / render (one)': ['369 / 568 ms', '30 / 202 ms'],
  'one EndpointSlice changed (no render), median': ['719.3 ms', '232.4 ms'],
  '  of which model hash (endpoints)': ['349 ms', '27 ms'],
  'no change, median': ['921.8 ms', '239.0 ms'],
  '  of which model hash (none)': ['452 ms', '29 ms'],
  'RSS / heapUsed with the modules loaded, no objects': ['83 / 15 MB', '78 / 14 MB'],
  'RSS / heapUsed holding the objects as listed': ['172 / 86 MB', '165 / 85 MB'],
  'RSS / heapUsed holding them as reflectors keep them': ['-', '159 / 79 MB'],
  'RSS / heapUsed after the syncs (objects, caches)': ['338 / 184 MB', '353 / 234 MB'],
  'peak RSS (during the syncs)': ['1477 MB', '977 MB'],
};

function report(all: Figures[]): void {
  const row = (label: string, cell: (f: Figures) => string, key = label) =>
    console.log(`${label.padEnd(56)}${all.map((f) => cell(f).padStart(20)).join('')}${(EARLIER_10K[key] ?? ['', '']).map((v) => v.padStart(20)).join('')}`);
  row('Ingresses', (f) => f.ingresses.toLocaleString('en'), 'Ingresses');
  console.log(`${''.padEnd(56)}${all.map(() => 'this run'.padStart(20)).join('')}${'10,000 main (quoted)'.padStart(20)}${'10,000 integ. (quoted)'.padStart(20)}`);
  row('objects in the snapshot', (f) => f.objects.toLocaleString('en'));
  row('nginx.conf size', (f) => `${(f.configBytes / 2 ** 20).toFixed(1)} MiB`);
  row('server block files it includes', (f) => `${(f.serverFileBytes / 2 ** 20).toFixed(1)} MiB`);
  row('first sync (cold: every Secret checked, JIT warm-up)', (f) => ms(f.firstSyncMs));
  row('full sync (defaults ConfigMap changed), median', (f) => ms(f.fullSyncMs));
  row('  of which model hash / render', (f) => `${f.dataPlane.full.hashMs.toFixed(0)} / ${f.dataPlane.full.renderMs.toFixed(0)} ms`, '  of which model hash / render (full)');
  row('one Ingress changed, median', (f) => ms(f.oneChangedMs));
  row('  of which the controller (change -> model), median', (f) => ms(f.dataPlane.oneChanged.controllerMs));
  row('  of which model hash / render', (f) => `${f.dataPlane.oneChanged.hashMs.toFixed(0)} / ${f.dataPlane.oneChanged.renderMs.toFixed(0)} ms`, '  of which model hash / render (one)');
  row('one EndpointSlice changed (no render), median', (f) => ms(f.endpointsChangedMs));
  row('  of which the controller (change -> model), median', (f) => ms(f.dataPlane.endpointsChanged.controllerMs));
  row('  of which model hash', (f) => `${f.dataPlane.endpointsChanged.hashMs.toFixed(0)} ms`, '  of which model hash (endpoints)');
  row('  of which the endpoint lines compared', (f) => ms(f.dataPlane.endpointsChanged.diffMs));
  row('no change (a Secret no Ingress names), median', (f) => ms(f.noChangeMs), 'no change, median');
  row('  of which model hash', (f) => `${f.dataPlane.noChange.hashMs.toFixed(0)} ms`, '  of which model hash (none)');
  row('  of which the endpoint lines compared', (f) => ms(f.dataPlane.noChange.diffMs));
  row('  of which the controller, median', (f) => ms(f.dataPlane.noChange.controllerMs));
  row('ratio one changed / full', (f) => (f.oneChangedMs / f.fullSyncMs).toFixed(2));
  row('ratio no change / full', (f) => (f.noChangeMs / f.fullSyncMs).toFixed(2));
  row('RSS / heapUsed with the modules loaded, no objects', (f) => `${mb(f.memory.empty.rssMb)} / ${mb(f.memory.empty.heapUsedMb)}`);
  row('RSS / heapUsed holding the objects as listed', (f) => `${mb(f.memory.listed.rssMb)} / ${mb(f.memory.listed.heapUsedMb)}`);
  row('RSS / heapUsed holding them as reflectors keep them', (f) => `${mb(f.memory.objects.rssMb)} / ${mb(f.memory.objects.heapUsedMb)}`);
  row('RSS / heapUsed after the syncs (objects, caches)', (f) => `${mb(f.memory.synced.rssMb)} / ${mb(f.memory.synced.heapUsedMb)}`);
  row('peak RSS (during the syncs)', (f) => mb(f.peakRssMb));
  const [small, large] = all;
  if (small && large) {
    const scale = large.ingresses / small.ingresses;
    console.log(`growth ${small.ingresses} -> ${large.ingresses} Ingresses (x${scale}): full sync x${(large.fullSyncMs / small.fullSyncMs).toFixed(1)}, ` +
      `one changed x${(large.oneChangedMs / small.oneChangedMs).toFixed(1)}, heapUsed x${(large.memory.synced.heapUsedMb / small.memory.synced.heapUsedMb).toFixed(1)}`);
  }
}

async function main(): Promise<void> {
  const size = process.argv[2];
  if (size !== undefined) {
    console.log(JSON.stringify(await measureSize(Number(size))));
    return;
  }
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}; Node ${process.version}; ${REPEATS} runs per median`);
  const all: Figures[] = [];
  for (const count of SIZES) {
    const child = await execa(process.execPath, ['--expose-gc', '--disable-warning=ExperimentalWarning', fileURLToPath(import.meta.url), String(count)]);
    all.push(JSON.parse(child.stdout.trim().split('\n').at(-1)!) as Figures);
  }
  report(all);
}

await main();
