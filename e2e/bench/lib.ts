// What the TLS benchmarks share: QubeSec's real controller in standalone mode (a child process reading a folder of
// manifests, rendering and running the rootfs NGINX) in front of a rootfs NGINX backend; h2load and openssl from the
// rootfs as clients; CPU time of each process taken from /proc, so figures come with what each side spent.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { stringify } from 'yaml';
import type { SignatureAlgorithm } from '../../controller/pki/algorithms.js';
import { selfSignedPair } from '../../controller/pki/selfsigned.js';
import { eventually, freePort, rootfs } from '../lib/env.js';

export const SECONDS = Number(process.env.QUBESEC_BENCH_SECONDS ?? 5);

/** The certificate each benchmark host serves: one key type per host, so the host picks what the handshake signs with. */
export type CertKind = Extract<SignatureAlgorithm, 'ecdsa-p256' | 'ml-dsa-65' | 'ml-dsa-44'>;
export const CERT_LABEL: Record<CertKind, string> = { 'ecdsa-p256': 'ECDSA P-256', 'ml-dsa-65': 'ML-DSA-65', 'ml-dsa-44': 'ML-DSA-44' };
/** "Signature type" as `openssl s_client -brief` (3.5) reports a handshake signed with each. */
const SIGNATURE_TYPE: Record<CertKind, string> = { 'ecdsa-p256': 'ecdsa_secp256r1_sha256', 'ml-dsa-65': 'mldsa65', 'ml-dsa-44': 'mldsa44' };
export type Group = 'X25519MLKEM768' | 'X25519';

const hostOf = (kind: CertKind) => `${kind}.bench.qubesec.test`;
const PLAIN_HOST = 'plain.bench.qubesec.test';

/** An Ingress sending every path of `host` to the backend, over TLS with `secret` when one is named. */
function ingress(name: string, host: string, secret?: string): object {
  return {
    apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name, namespace: 'default' },
    spec: {
      ingressClassName: 'qubesec',
      tls: secret ? [{ hosts: [host], secretName: secret }] : [],
      rules: [{ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'backend', port: { name: 'http' } } } }] } }],
    },
  };
}

/** chroot into the rootfs and run a command there. */
export function inRootfs(args: string[], options: { timeout?: number } = {}) {
  return execa('chroot', [rootfs(), ...args], { reject: false, input: '', timeout: options.timeout ?? 120_000 });
}

/** One line describing the machine and the versions of everything measured. */
export async function machine(): Promise<string> {
  const nginx = (await inRootfs(['nginx', '-v'])).stderr.replace('nginx version: ', '').trim();
  const openssl = (await inRootfs(['openssl', 'version'])).stdout.split(' ').slice(0, 2).join(' ');
  const h2load = (await inRootfs(['h2load', '--version'])).stdout.trim();
  const debian = (await readFile(join(rootfs(), 'etc', 'debian_version'), 'utf8')).trim();
  return `machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, Linux ${release()}; Node ${process.version}; rootfs Debian ${debian}: ${nginx}, ${openssl}, ${h2load}; ${SECONDS} s per figure`;
}

/** CPU seconds (user + system) used so far by each party. */
export interface CpuSample {
  /** QubeSec's NGINX: master, workers, and workers already reaped (a reload). */
  ingress: number;
  /** The controller's Node.js process (it receives one syslog line per connection from NGINX). */
  controller: number;
  backend: number;
}

export interface AccessLine {
  host: string;
  status: number;
  upstream: string;
  tls_group: string;
  tls_session_reused: string;
}

export interface Handshake {
  group: string;
  signatureType: string;
  verification: string;
  output: string;
}

export interface Stage {
  httpsPort: number;
  backendPort: number;
  /** h2load arguments (the URL last) that reach the host without TLS (startStage's `plainHost`) over HTTP. */
  plainTarget: string[];
  host(kind: CertKind): string;
  /** h2load arguments (the URL last) that reach `kind`'s host through the ingress over HTTPS, offering only `group`. */
  target(kind: CertKind, group: Group): string[];
  /** A file path inside the benchmark's folder, as chrooted tools see it. */
  inside(name: string): string;
  /** The same file as this process sees it. */
  outside(name: string): string;
  cpu(): Promise<CpuSample>;
  /** Empties QubeSec's access log (NGINX appends, so it keeps writing at the new end). */
  truncateAccessLog(): Promise<void>;
  /** Lines NGINX wrote to QubeSec's access log since the last truncateAccessLog(). */
  accessLog(): Promise<AccessLine[]>;
  /**
   * One handshake by `openssl s_client` offering only `group`, verified against the host's certificate: throws unless
   * it negotiated `group` and was signed with `kind`'s key, so no figure is taken on a wrong setup.
   */
  verify(kind: CertKind, group: Group): Promise<Handshake>;
  stop(): Promise<void>;
}

/**
 * QubeSec's controller (`qubesec controller --manifests`, a child process) with one Ingress per certificate kind, each
 * host with only that certificate, all in front of one rootfs NGINX backend answering 200 "ok". NGINX runs with the
 * controller's defaults (worker_processes auto). Resolves once every host answers over TLS.
 */
export async function startStage(kinds: CertKind[], options: { plainHost?: boolean } = {}): Promise<Stage> {
  const root = rootfs();
  const id = randomBytes(4).toString('hex');
  const dirInside = `/tmp/qubesec-bench-${id}`;
  const dir = join(root, dirInside);
  const manifests = join(tmpdir(), `qubesec-bench-manifests-${id}`);
  const confDir = `/run/qubesec-bench-${id}`;
  const accessLogPath = join(root, confDir, 'access.log');
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch((err: Error) => console.error(`bench cleanup: ${err.message}`));
    stops.length = 0;
  };
  try {
    await mkdir(dir, { recursive: true });
    await mkdir(manifests, { recursive: true });
    stops.push(() => rm(manifests, { recursive: true, force: true }));
    stops.push(() => rm(dir, { recursive: true, force: true }));

    // The backend: the fastest real server at hand, so the ingress is what is measured.
    const backendPort = await freePort();
    await writeFile(join(dir, 'backend.conf'), [
      'worker_processes 1;',
      `pid ${dirInside}/backend.pid;`,
      'error_log stderr warn;',
      'events { worker_connections 4096; }',
      'http {',
      '    access_log off;',
      '    keepalive_requests 1000000;',
      `    server { listen 127.0.0.1:${backendPort}; location / { return 200 "ok\\n"; } }`,
      '}',
      '',
    ].join('\n'));
    const backend = startGroup('chroot', [root, 'nginx', '-c', `${dirInside}/backend.conf`, '-g', 'daemon off;']);
    stops.push(() => stopGroup(backend, 'SIGQUIT'));
    await eventually(() => fetch(`http://127.0.0.1:${backendPort}/`).then((r) => r.ok || undefined), 10_000, 'the backend NGINX answering');

    // Certificates (the project's PKI code), Secrets, Ingresses, the backend's Service and EndpointSlice.
    const objects: object[] = [
      { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'qubesec' }, spec: { controller: 'qubesec.io/ingress-controller' } },
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'backend', namespace: 'default' }, spec: { ports: [{ name: 'http', port: 80, targetPort: backendPort }] } },
      {
        apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
        metadata: { name: 'backend-local', namespace: 'default', labels: { 'kubernetes.io/service-name': 'backend' } },
        ports: [{ name: 'http', port: backendPort }],
        endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
      },
    ];
    for (const kind of kinds) {
      const pair = await selfSignedPair(kind, hostOf(kind), [hostOf(kind)], 2);
      await writeFile(join(dir, `${kind}.crt`), pair.certificatePem);
      objects.push(
        {
          apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name: `${kind}-tls`, namespace: 'default' },
          data: { 'tls.crt': Buffer.from(pair.certificatePem).toString('base64'), 'tls.key': Buffer.from(pair.keyPem).toString('base64') },
        },
        ingress(kind, hostOf(kind), `${kind}-tls`),
      );
    }
    if (options.plainHost) objects.push(ingress('plain', PLAIN_HOST));
    await writeFile(join(manifests, 'bench.yaml'), objects.map((o) => stringify(o)).join('---\n'));

    const [httpsPort, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    const main = fileURLToPath(new URL('../../controller/cli/main.js', import.meta.url));
    const controller = startGroup(process.execPath, ['--disable-warning=ExperimentalWarning', main, 'controller',
      '--manifests', manifests, '--nginx-root', root, '--conf-dir', confDir, '--bind-address', '127.0.0.1',
      '--https-port', String(httpsPort), '--http-port', String(httpPort), '--status-port', '0',
      '--metrics-address', '127.0.0.1', '--metrics-port', String(metricsPort), '--log-level', 'warn']);
    const nginxPid = async () => Number((await readFile(join(root, confDir, 'nginx.pid'), 'utf8').catch(() => '')).trim()) || undefined;
    stops.push(async () => {
      const master = await nginxPid();
      await stopGroup(controller, 'SIGTERM');
      // The controller stops NGINX (its own process group); should it not have, its group goes now.
      if (master !== undefined) killGroup(master);
      await rm(join(root, confDir), { recursive: true, force: true });
    });

    const ticks = await clockTicks();
    const stage: Stage = {
      httpsPort,
      backendPort,
      host: hostOf,
      plainTarget: ['--connect-to', `127.0.0.1:${httpPort}`, `http://${PLAIN_HOST}/`],
      target: (kind, group) => ['--groups', group, '--sni', hostOf(kind), '--connect-to', `127.0.0.1:${httpsPort}`, `https://${hostOf(kind)}/`],
      inside: (name) => `${dirInside}/${name}`,
      outside: (name) => join(dir, name),
      async cpu() {
        const table = await processTable();
        const backendMaster = Number((await readFile(join(dir, 'backend.pid'), 'utf8').catch(() => '')).trim()) || undefined;
        return { ingress: groupCpu(table, ticks, await nginxPid()), controller: (table.get(controller.pid ?? -1)?.cpu ?? 0) / ticks, backend: groupCpu(table, ticks, backendMaster) };
      },
      truncateAccessLog: () => truncate(accessLogPath, 0),
      async accessLog() {
        const text = await readFile(accessLogPath, 'utf8');
        return text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as AccessLine);
      },
      async verify(kind, group) {
        const r = await inRootfs(['openssl', 's_client', '-brief', '-connect', `127.0.0.1:${httpsPort}`, '-servername', hostOf(kind),
          '-groups', group, '-CAfile', `${dirInside}/${kind}.crt`, '-verify_return_error'], { timeout: 20_000 });
        const out = `${r.stdout}\n${r.stderr}`;
        const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(out)?.[1]?.trim() ?? '';
        const handshake = {
          group: field('Negotiated TLS1.3 group') || field('Peer Temp Key').split(',')[0]!,
          signatureType: field('Signature type'),
          verification: field('Verification'),
          output: out,
        };
        if (r.exitCode !== 0 || handshake.group !== group || handshake.signatureType !== SIGNATURE_TYPE[kind] || handshake.verification !== 'OK') {
          throw new Error(`${hostOf(kind)} offering ${group}: expected ${group} signed with ${SIGNATURE_TYPE[kind]} and verified, got ` +
            `group "${handshake.group}", signature "${handshake.signatureType}", verification "${handshake.verification}" (exit ${r.exitCode}):\n${out}`);
        }
        return handshake;
      },
      stop,
    };

    const exited = controller.then((r) => Promise.reject(new Error(`the controller exited (${r.exitCode ?? r.signal}):\n${r.all}`)));
    exited.catch(() => undefined);
    await Promise.race([exited, Promise.all(kinds.map((kind) => eventually(() => stage.verify(kind, 'X25519MLKEM768'), 60_000, `${hostOf(kind)} served`)))]);
    return stage;
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A long-running process in its own process group, so stopping it takes its children (NGINX workers) too. */
export function startGroup(file: string, args: string[]): ResultPromise {
  return execa(file, args, { reject: false, stdin: 'ignore', all: true, detached: true, cleanup: true });
}

async function stopGroup(child: ResultPromise, signal: NodeJS.Signals): Promise<void> {
  if (child.pid === undefined) return;
  child.kill(signal);
  const timer = setTimeout(() => killGroup(child.pid!), 15_000);
  await child;
  clearTimeout(timer);
  killGroup(child.pid);
}

export function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: nothing of the group is left.
  }
}

const clockTicks = async () => Number((await execa('getconf', ['CLK_TCK'])).stdout) || 100;

/** CPU seconds of an NGINX master (`pid`; undefined: 0): its own, its workers' and the workers it reaped. */
function groupCpu(table: Awaited<ReturnType<typeof processTable>>, ticks: number, pid: number | undefined): number {
  if (pid === undefined) return 0;
  const self = table.get(pid);
  let sum = self ? self.cpu + self.reaped : 0;
  for (const p of table.values()) if (p.ppid === pid) sum += p.cpu;
  return sum / ticks;
}

/** CPU seconds so far of the NGINX master `pid` and its workers, reaped ones included. */
export async function groupCpuSeconds(pid: number): Promise<number> {
  return groupCpu(await processTable(), await clockTicks(), pid);
}

/** Every process's parent, CPU ticks (user + system) and the ticks of children it reaped. */
async function processTable(): Promise<Map<number, { ppid: number; cpu: number; reaped: number }>> {
  const table = new Map<number, { ppid: number; cpu: number; reaped: number }>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // Fields after the command (which may hold spaces): state ppid ... utime(14) stime(15) cutime(16) cstime(17).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields.length < 15) continue;
    table.set(Number(name), { ppid: Number(fields[1]), cpu: Number(fields[11]) + Number(fields[12]), reaped: Number(fields[13]) + Number(fields[14]) });
  }
  return table;
}

export interface LoadResult {
  /** Requests completed (h2load's "done"), and of them those answered 2xx. */
  done: number;
  ok2xx: number;
  /** Seconds h2load measured over (its own start-up excluded; with -D, the main duration). */
  seconds: number;
  /** CPU seconds (user + system) h2load used, start-up included. */
  clientCpu: number;
  /** Microseconds to the end of each response, when `latencies` was asked for. */
  latenciesUs: number[];
}

/**
 * Runs h2load from the rootfs (or `options.root`, with `options.env`); throws unless every request it started
 * succeeded with a 2xx. `files` places the latency log.
 */
export async function h2load(files: Pick<Stage, 'inside' | 'outside'>, args: string[], latencies = false, options: { root?: string; env?: Record<string, string> } = {}): Promise<LoadResult> {
  const log = `h2load-${randomBytes(3).toString('hex')}.log`;
  const r = await execa('chroot', [options.root ?? rootfs(), 'bash', '-c', 'TIMEFORMAT="qubesec-cpu %3U %3S"; time h2load "$@"', 'h2load',
    ...(latencies ? ['--log-file', files.inside(log)] : []), ...args], { reject: false, input: '', env: options.env, timeout: (SECONDS + 60) * 1000 });
  const out = r.stdout;
  const finished = /finished in ([\d.]+)(ms|s), ([\d.]+) req\/s/.exec(out);
  const requests = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  const status = /status codes: (\d+) 2xx/.exec(out);
  const cpu = /qubesec-cpu ([\d.]+) ([\d.]+)/.exec(r.stderr);
  // With -D, requests still in flight when the duration ends are started but not done: not a failure.
  const done = Number(requests?.[3] ?? 0);
  const ok2xx = Number(status?.[1] ?? 0);
  if (r.exitCode !== 0 || !finished || !requests || !cpu || done === 0 || ok2xx !== done || Number(requests[4]) !== done) {
    throw new Error(`h2load ${args.join(' ')}: not every request succeeded with 2xx (exit ${r.exitCode}):\n${out.split('\n').filter((l) => !l.startsWith('progress')).join('\n')}\n${r.stderr}`);
  }
  const rate = Number(finished[3]);
  let latenciesUs: number[] = [];
  if (latencies) {
    latenciesUs = (await readFile(files.outside(log), 'utf8')).split('\n').filter(Boolean).map((l) => Number(l.split('\t')[2]));
    await rm(files.outside(log), { force: true });
  }
  return { done, ok2xx, seconds: done / rate, clientCpu: Number(cpu[1]) + Number(cpu[2]), latenciesUs };
}

/** The q-quantile (0..1) of unsorted values. */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
}

/** Operations per CPU-second of one core for each algorithm `openssl speed` measured (keygen, sign, verify, encaps, decaps). */
export type SpeedTable = Record<string, Record<string, number>>;

/**
 * `openssl speed` from the rootfs on `algorithms` (names as speed takes them: ML-DSA-65, ecdsap256, X25519MLKEM768...),
 * `seconds` per operation. Rates are per CPU-second of one core (speed divides by its user time), yet other load on a
 * shared machine still slows them by tens of percent: each algorithm runs `repeats` times, in turn with the others, and
 * the best rate of each operation is kept: the least disturbed one, a bound.
 */
export async function opensslSpeed(algorithms: string[], seconds: number, repeats: number): Promise<SpeedTable> {
  const table: SpeedTable = {};
  for (let i = 0; i < repeats; i++) {
    for (const algorithm of algorithms) {
      const r = await inRootfs(['openssl', 'speed', '-mr', '-seconds', String(seconds), algorithm], { timeout: (seconds * 3 + 60) * 1000 });
      if (r.exitCode !== 0) throw new Error(`openssl speed ${algorithm} failed:\n${r.stderr}`);
      // -mr writes "+DTP:<name>:<operation>[:<kind>]:<seconds>" then "+R<n>:<count>:<name>[:<kind>]:<cpu seconds>" on
      // stderr (EdDSA names its curve in both).
      let operation: string | undefined;
      for (const line of r.stderr.split('\n')) {
        const dtp = /^\+DTP:[^:]+:([^:]+)(?::[^:]+)?:\d+$/.exec(line);
        if (dtp) operation = dtp[1]!.replace(/^signs$/, 'sign');
        const result = /^\+R\d+:(\d+):[^:]+(?::[^:]+)?:([\d.]+)$/.exec(line);
        if (result && operation) {
          const ops = (table[algorithm] ??= {});
          ops[operation] = Math.max(ops[operation] ?? 0, Number(result[1]) / Number(result[2]));
        }
      }
      if (!table[algorithm]) throw new Error(`openssl speed printed no figure for ${algorithm}:\n${r.stderr}`);
    }
  }
  return table;
}

/**
 * Calls of `once` per CPU-second of this process (user + system) over SECONDS, after one warm-up call: the unit of
 * `openssl speed`, so a machine shared with other work still gives comparable ratios.
 */
export async function callsPerCpuSecond(once: () => unknown): Promise<{ perCpuSecond: number; calls: number; cpuSeconds: number }> {
  await once();
  let calls = 0;
  const start = performance.now();
  const cpu = process.cpuUsage();
  while (performance.now() - start < SECONDS * 1000) {
    await once();
    calls++;
  }
  const used = process.cpuUsage(cpu);
  const cpuSeconds = (used.user + used.system) / 1e6;
  return { perCpuSecond: calls / cpuSeconds, calls, cpuSeconds };
}

/** Writes a fixed-width row: a label and cells. */
export function row(label: string, ...cells: string[]): void {
  console.log(`${label.padEnd(34)}${cells.map((c) => ` ${c.padStart(12)}`).join('')}`);
}

export const fixed = (value: number, digits = 0) => (Number.isFinite(value) ? value.toFixed(digits) : '-');

/** Stops the stage on Ctrl-C too, so no NGINX is left behind. */
export async function withStage<T>(kinds: CertKind[], options: { plainHost?: boolean }, run: (stage: Stage) => Promise<T>): Promise<T> {
  const stage = await startStage(kinds, options);
  const onSignal = () => void stage.stop().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await run(stage);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stage.stop();
  }
}

