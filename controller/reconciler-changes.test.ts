// A reconciler told each change by key (as the Kubernetes source tells it) keeps translations, offers, Secret checks,
// EndpointSlice groups and the builder's pieces from sync to sync; after any sequence of changes it must apply what a
// new reconciler makes of the same cluster from scratch. Random changes from a seeded generator, without the ones
// whose outcome rightly depends on history (a rejected version or a Secret gone bad: the last good one serves; those
// are reconciler.test.ts's and translations.test.ts's).
import type { KubernetesObject, V1ConfigMap, V1HTTPIngressPath, V1Ingress, V1IngressClass } from '@kubernetes/client-node';
import type { ApplyResult } from './dataplane/applier.js';
import { INGRESS_NGINX_PREFIX as N } from './model/proxy-annotations.js';
import { BUILTIN_TLS_DEFAULTS } from './model/pq.js';
import { CAPABILITIES, endpointSlice, seededRandom as random, service, tlsSecret } from './model/testing.js';
import type { Model } from './model/types.js';
import { createLogger } from './observability/log.js';
import { createMetrics } from './observability/metrics.js';
import { Reconciler } from './reconciler.js';
import { emptySnapshot, keyOf, type Change, type Snapshot } from './sources/source.js';

const STEPS = 150;
const HOSTS = ['a.example.com', 'b.example.com', 'pq.example.com', ''];
const SERVICES = ['web', 'api', 'gone'];
const SECRETS: Record<string, string> = { mldsa: 'mldsa65', ecdsa: 'ecdsa', old: 'expired' };

type Kind = keyof Snapshot;

/** A cluster as lists keyed by namespace/name; each change gets a new resourceVersion and is told by key. */
class Cluster {
  private readonly objects = new Map<Kind, Map<string, KubernetesObject>>();
  private version = 0;
  changes: (Change<Snapshot> | undefined)[] = [];

  constructor(private readonly next: () => number) {
    for (const kind of Object.keys(emptySnapshot()) as Kind[]) this.objects.set(kind, new Map());
    this.put('ingressClasses', { metadata: { name: 'qubesec' }, spec: { controller: 'qubesec.io/ingress-controller' } } as V1IngressClass);
    for (let i = 0; i < 6; i++) this.putIngress(`ing-${i}`);
    for (const name of SERVICES.slice(0, 2)) this.putService(name);
    for (const name of Object.keys(SECRETS)) this.put('secrets', tlsSecret(name, SECRETS[name]!));
  }

  snapshot(): Snapshot {
    const list = (kind: Kind) => [...this.objects.get(kind)!.values()] as never[];
    return Object.fromEntries(Object.keys(emptySnapshot()).map((kind) => [kind, list(kind as Kind)])) as unknown as Snapshot;
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  private put(kind: Kind, object: KubernetesObject): void {
    object.metadata = { ...object.metadata, uid: `uid-${kind}-${object.metadata?.name}`, resourceVersion: String(++this.version) };
    this.objects.get(kind)!.set(keyOf(object), object);
    this.changes.push({ kind, key: keyOf(object), object });
  }

  private remove(kind: Kind, key: string): void {
    if (this.objects.get(kind)!.delete(key)) this.changes.push({ kind, key });
  }

  private putIngress(name: string): void {
    const paths = (): V1HTTPIngressPath[] => [{ path: this.pick(['/', '/api']), pathType: this.pick(['Prefix', 'Exact']), backend: { service: { name: this.pick(SERVICES), port: { number: 80 } } } }];
    const hosts = [...new Set([this.pick(HOSTS), this.pick(HOSTS)])];
    // A host for spec.tls, so that no version is rejected: a rejected Ingress's last accepted version keeps serving,
    // which a new reconciler has no memory of.
    const tlsHosts = [...new Set([...hosts.filter((h) => h !== ''), 'a.example.com'])];
    const annotations = this.pick<Record<string, string>>([{}, { [`${N}limit-rps`]: '5' }, { 'qubesec.io/pq-mode': 'strict' }, { [`${N}auth-tls-secret`]: 'default/mldsa' }, { [`${N}use-regex`]: 'true' }]);
    const ingress: V1Ingress = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name, namespace: 'default', annotations, creationTimestamp: new Date(Date.UTC(2026, 0, 1 + Math.floor(this.next() * 3))) },
      spec: {
        ingressClassName: this.pick(['qubesec', 'qubesec', 'qubesec', 'other']),
        rules: hosts.map((host) => (host === '' ? { http: { paths: paths() } } : { host, http: { paths: paths() } })),
        // Client certificate checks need spec.tls: without it translation rejects the Ingress.
        tls: (this.next() < 0.7 || `${N}auth-tls-secret` in annotations) ? [{ hosts: tlsHosts, secretName: this.pick([...Object.keys(SECRETS), 'missing']) }] : undefined,
      },
    };
    this.put('ingresses', ingress);
  }

  private putService(name: string): void {
    this.put('services', service(name, [{ port: 80 }]));
    this.putEndpoints(name);
  }

  private putEndpoints(service: string): void {
    this.put('endpointSlices', endpointSlice(service, { port: 8080 }, [{ ip: `10.0.0.${1 + Math.floor(this.next() * 5)}`, ready: this.next() < 0.8 }]));
  }

  /** One to three random changes, told by key; now and then a relist that tells nothing. */
  change(): void {
    for (let n = 1 + Math.floor(this.next() * 3); n > 0; n--) {
      const what = this.pick(['ingress', 'ingress', 'ingress', 'delete', 'service', 'service-gone', 'endpoints', 'endpoints-gone', 'secret', 'secret-gone', 'class', 'defaults', 'relist']);
      if (what === 'ingress') this.putIngress(`ing-${Math.floor(this.next() * 8)}`);
      else if (what === 'delete') this.remove('ingresses', `default/ing-${Math.floor(this.next() * 8)}`);
      else if (what === 'service') this.putService(this.pick(SERVICES));
      else if (what === 'endpoints') this.putEndpoints(this.pick(SERVICES));
      else if (what === 'endpoints-gone') this.remove('endpointSlices', `default/${this.pick(SERVICES)}-abc`);
      else if (what === 'service-gone') {
        const name = this.pick(SERVICES);
        this.remove('services', `default/${name}`);
        this.remove('endpointSlices', `default/${name}-abc`);
      } else if (what === 'secret') {
        // Another good pair, or the same content again; never good turning bad (its last good content would serve).
        const name = this.pick(['mldsa', 'ecdsa']);
        this.put('secrets', tlsSecret(name, this.pick(['mldsa65', 'ecdsa'])));
      } else if (what === 'secret-gone') this.remove('secrets', `default/${this.pick(Object.keys(SECRETS))}`);
      else if (what === 'class') {
        if (this.objects.get('ingressClasses')!.size > 0 && this.next() < 0.5) this.remove('ingressClasses', '/qubesec');
        else this.put('ingressClasses', { metadata: { name: 'qubesec' }, spec: { controller: 'qubesec.io/ingress-controller' } } as V1IngressClass);
      } else if (what === 'defaults') {
        this.put('configMaps', { metadata: { name: 'defaults', namespace: 'qubesec' }, data: { 'tls-min-version': this.pick(['1.2', '1.3']) } } as V1ConfigMap);
      } else this.changes.push(undefined);
    }
  }
}

/**
 * A reconciler on `cluster` whose data plane keeps the models it applied; `throws` makes an apply throw (a bug, not a
 * refusal), after which `failed` resolves instead of onSynced.
 */
async function reconcilerOn(cluster: Cluster, throws = () => false) {
  const applied: Model[] = [];
  let tell: (change?: Change<Snapshot>) => void = () => {};
  let failed = () => {};
  const reconciler = new Reconciler(
    { start: async (onChange) => void (tell = onChange), snapshot: () => cluster.snapshot(), stop: async () => {} },
    {
      apply: async (model): Promise<ApplyResult> => {
        if (throws()) throw new Error('the data plane broke');
        applied.push(model);
        return { status: 'applied', hash: String(applied.length) };
      },
      test: async () => undefined,
    },
    { record: async () => {} },
    { controllerName: 'qubesec.io/ingress-controller', ingressClass: 'qubesec', tlsDefaults: BUILTIN_TLS_DEFAULTS, configMap: 'qubesec/defaults', capabilities: CAPABILITIES, defaultCertificates: [], debounceMs: 0 },
    createMetrics(),
    createLogger('error', {}, (line) => void (line.includes('sync failed') && failed())),
  );
  const synced = new Promise<void>((resolve) => (reconciler.onSynced = resolve));
  await reconciler.start();
  await synced;
  /** Tells the changes and waits for the sync: whether it went through. */
  const sync = async (changes: (Change<Snapshot> | undefined)[]) => {
    const done = new Promise<boolean>((resolve) => {
      reconciler.onSynced = () => resolve(true);
      failed = () => resolve(false);
    });
    for (const change of changes) tell(change);
    reconciler.schedule(); // a step whose changes changed nothing syncs too
    return done;
  };
  return { applied, reconciler, sync };
}

describe('Reconciler told each change by key', () => {
  /** Random steps on a kept reconciler, each compared with a new one on the same cluster when it went through. */
  async function compare(seed: number, throws: (next: () => number) => () => boolean) {
    const next = random(seed);
    const cluster = new Cluster(next);
    const breaks = throws(next);
    let broken = false;
    const kept = await reconcilerOn(cluster, () => broken);
    let reused = 0;
    let compared = 0;
    try {
      for (let step = 0; step < STEPS; step++) {
        cluster.change();
        const changes = cluster.changes;
        cluster.changes = [];
        broken = breaks();
        if (!(await kept.sync(changes))) continue;
        const fresh = await reconcilerOn(cluster);
        await fresh.reconciler.stop();
        const [before, now] = kept.applied.slice(-2);
        reused += now!.servers.filter((server) => before?.servers.includes(server)).length;
        compared++;
        try {
          expect(now).toEqual(fresh.applied.at(-1));
          expect([...kept.reconciler.served].sort()).toEqual([...fresh.reconciler.served].sort());
        } catch (err) {
          throw new Error(`seed ${seed}, step ${step}: ${(err as Error).message}`, { cause: err });
        }
      }
    } finally {
      await kept.reconciler.stop();
    }
    // Pieces were kept from sync to sync, so the comparison tested the kept state.
    expect(reused).toBeGreaterThan(compared);
    return compared;
  }

  it.each([1, 2, 3])('applies what a new reconciler makes of the same cluster, after every random change (seed %i)', async (seed) => {
    expect(await compare(seed, () => () => false)).toBe(STEPS);
  });

  it.each([4, 5])('keeps applying what a new reconciler makes after syncs that threw (seed %i)', async (seed) => {
    // One sync in five throws in the data plane, after the changes were taken in.
    const compared = await compare(seed, (next) => () => next() < 0.2);
    expect(compared).toBeLessThan(STEPS);
    expect(compared).toBeGreaterThan(STEPS / 2);
  });
});
