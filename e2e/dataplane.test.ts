// The apply loop against real NGINX: skip identical configurations, refuse one the master refuses at its reload (no
// separate `nginx -t`) while the last good one keeps serving, also after a restart, and recover on the next change; TLS
// sessions resume across reloads and restarts.
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import fc from 'fast-check';
import { startEchoBackend, type EchoBackend } from '../controller/cli/echo-backend.js';
import { Applier } from '../controller/dataplane/applier.js';
import { defaultModules } from '../controller/dataplane/runtime.js';
import { buildModel } from '../controller/model/build.js';
import { checkTlsSecret } from '../controller/model/certificates.js';
import { translateIngress } from '../controller/model/ingress.js';
import { BUILTIN_TLS_DEFAULTS, defaultPolicy } from '../controller/model/pq.js';
import { ANNOTATION_CASES, annotatedModel } from '../controller/model/proxy-annotations.cases.js';
import { CAPABILITIES, proxyLocation, tlsSecret } from '../controller/model/testing.js';
import type { CertificatePair, Endpoint, Model } from '../controller/model/types.js';
import { createLogger } from '../controller/observability/log.js';
import { createMetrics } from '../controller/observability/metrics.js';
import { hostileClusterState, hostileIngress } from '../controller/render/hostile-ingress.js';
import { pqCurl, tlsSession } from './lib/clients.js';
import { eventually, freePort, rootfs } from './lib/env.js';

let applier: Applier;
let backend: EchoBackend;
let backendPort: number;
let httpPort: number;
let statusPort: number;
let httpsPort: number;
/** Saved TLS sessions, inside the rootfs for its openssl. */
let sessionDir: string;
const metrics = createMetrics();
const confDir = `/run/qubesec-dataplane-${randomBytes(4).toString('hex')}`;

function pair(fixture: 'ecdsa' | 'mldsa65' = 'ecdsa'): CertificatePair {
  const checked = checkTlsSecret(tlsSecret('default', fixture), new Date());
  if ('error' in checked) throw new Error(checked.error);
  return checked.pair;
}

function model(paths: string[], endpoints: Endpoint[] = [{ address: '127.0.0.1', port: backendPort }]): Model {
  const ingress = { kind: 'Ingress', namespace: 'default', name: 'web' };
  return {
    servers: [{ host: 'web.example.com', locations: paths.map((path) => proxyLocation('exact', path, 'default_web_80', ingress)) }],
    upstreams: [{ name: 'default_web_80', service: { namespace: 'default', name: 'web', port: '80' }, endpoints }],
    defaultPolicy: defaultPolicy(BUILTIN_TLS_DEFAULTS, CAPABILITIES),
    defaultCertificates: [pair()],
  };
}

const counter = async (name: string) => (await metrics.registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0;
const get = (path: string) => pqCurl({ host: 'web.example.com', port: httpPort, path, scheme: 'http' });
/** The backends (or statuses) that answer n requests for /a. */
const backendsSeen = async (n: number) => {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const res = await get('/a');
    seen.add(res.status === 200 ? (JSON.parse(res.body) as { backend: string }).backend : String(res.status));
  }
  return [...seen].sort();
};

beforeAll(async () => {
  backendPort = await freePort();
  backend = await startEchoBackend('web', backendPort);
  httpPort = await freePort();
  httpsPort = await freePort();
  sessionDir = await mkdtemp(join(rootfs(), 'tmp', 'qubesec-sessions-'));
  const runtime = { root: rootfs(), nginxBinary: 'nginx', opensslBinary: 'openssl' };
  applier = new Applier({
    runtime,
    confDir,
    accessLog: `${confDir}/access.log`,
    // Reloads are what these tests check: new hosts take the reload path (e2e/new-hosts.test.ts has the other).
    newHostReloadMs: 0,
    render: { bindAddress: '127.0.0.1', httpPort, httpsPort, httpsRedirectPort: httpsPort, statusPort: (statusPort = await freePort()), handshakeLogPort: await freePort(), workerProcesses: 1, workerConnections: 256, modules: defaultModules(runtime) },
  }, metrics, createLogger('error'));
});

afterAll(async () => {
  await applier?.stop();
  backend?.close();
  await rm(join(rootfs(), confDir), { recursive: true, force: true });
  if (sessionDir) await rm(sessionDir, { recursive: true, force: true });
});

describe('Applier with real NGINX', () => {
  it('applies, skips an identical model, keeps the last good configuration when the reload is refused, also after a restart, and recovers', async () => {
    expect((await applier.apply(model(['/a']))).status).toBe('applied');
    expect((await get('/a')).status).toBe(200);
    expect((await applier.apply(model(['/a']))).status).toBe('unchanged');

    const good = await readFile(join(rootfs(), confDir, 'nginx.conf'), 'utf8');
    // Two identical exact locations: the model builder never makes this, so it stands for any configuration NGINX refuses.
    const refused = await applier.apply(model(['/b', '/b']));
    expect(refused.status).toBe('failed');
    expect(refused).toEqual({ status: 'failed', hash: expect.any(String), error: expect.stringMatching(/^NGINX refused the configuration: duplicate location "\/b" in \S+\/servers\/[0-9a-f]{32}\.conf:\d+$/), refused: true });
    expect(await readFile(join(rootfs(), confDir, 'nginx.conf'), 'utf8')).toBe(good);
    expect((await get('/a')).status).toBe(200);
    expect((await get('/b')).status).toBe(404);
    // NGINX dies: its restart reads the last good file, not the refused one.
    const restarts = await counter('qubesec_nginx_restarts_total');
    const master = applier.nginx.pid!;
    process.kill(master, 'SIGKILL');
    await eventually(async () => (applier.nginx.pid !== undefined && applier.nginx.pid !== master && (await get('/a')).status === 200) || undefined, 15_000, 'the restarted master serving');
    expect(await counter('qubesec_nginx_restarts_total')).toBe(restarts + 1);
    expect((await get('/b')).status).toBe(404);
    // A try (the reconciler's, to find the Ingress to blame) gets NGINX's verdict and leaves what runs alone.
    expect(await applier.test(model(['/b', '/b']))).toMatch(/nginx -t refused the configuration: .*duplicate location "\/b"/);
    expect(await applier.test(model(['/c']))).toBeUndefined();
    expect(await readFile(join(rootfs(), confDir, 'nginx.conf'), 'utf8')).toBe(good);
    expect((await get('/a')).status).toBe(200);
    expect((await get('/c')).status).toBe(404);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/qubesec_config_reload_failures_total 1\b/);
    expect(text).toMatch(/qubesec_config_last_reload_successful 0\b/);
    // A value the model builder never lets through: the renderer's own check refuses it, reported like a refused reload.
    const unrenderable = await applier.apply(model(['/b', '/x"y']));
    expect(unrenderable.status === 'failed' && unrenderable.error).toMatch(/^rendering refused the configuration: refusing to render .*path.*\/x.*y/);
    expect((await get('/a')).status).toBe(200);

    expect((await applier.apply(model(['/b']))).status).toBe('applied');
    expect((await get('/b')).status).toBe(200);
    expect((await get('/a')).status).toBe(404);
    expect(await metrics.registry.metrics()).toMatch(/qubesec_config_last_reload_successful 1\b/);
  });

  it('includes each server block from a file named by its content: a change writes only its block, the reload removes files no longer included, a refused one removes none', async () => {
    const ingress = { kind: 'Ingress', namespace: 'default', name: 'other' };
    const base = model(['/a']);
    const web = base.servers[0]!;
    const withOther = (...paths: string[]): Model => ({ ...base, servers: [web, { host: 'other.example.com', locations: paths.map((path) => proxyLocation('exact', path, 'default_web_80', ingress)) }] });
    const serversDir = join(rootfs(), confDir, 'servers');
    const included = async () => [...(await readFile(join(rootfs(), confDir, 'nginx.conf'), 'utf8')).matchAll(/^ {4}include \S+\/servers\/(\S+);$/gm)].map((m) => m[1]!).sort();
    const fileOf = async (host: string) => {
      for (const name of await readdir(serversDir)) if ((await readFile(join(serversDir, name), 'utf8')).includes(`server_name ${host};`)) return name;
      throw new Error(`no server block file for ${host}`);
    };
    const other = (path: string) => pqCurl({ host: 'other.example.com', port: httpPort, path, scheme: 'http' });

    expect((await applier.apply(withOther('/x'))).status).toBe('applied');
    expect((await other('/x')).status).toBe(200);
    // The two hosts' blocks (this model has no catch-all server), each named by the SHA-256 of its content, and nothing else.
    const first = await included();
    expect(first).toHaveLength(2);
    expect((await readdir(serversDir)).sort()).toEqual(first);
    for (const name of first) expect(`${createHash('sha256').update(await readFile(join(serversDir, name))).digest('hex').slice(0, 32)}.conf`).toBe(name);
    const webFile = await fileOf('web.example.com');
    const webInode = (await stat(join(serversDir, webFile))).ino;
    const otherX = await fileOf('other.example.com');

    // Only other.example.com changed: web.example.com's file is the same file, other's old one is gone after the reload.
    expect((await applier.apply(withOther('/y'))).status).toBe('applied');
    expect((await other('/y')).status).toBe(200);
    expect((await other('/x')).status).toBe(404);
    const second = await included();
    expect(second).toContain(webFile);
    expect(second).not.toContain(otherX);
    expect((await stat(join(serversDir, webFile))).ino).toBe(webInode);
    expect((await readdir(serversDir)).sort()).toEqual(second);

    // Refused: the running configuration's files all stay (a restart must find them), the refused block's file too until a good reload.
    expect((await applier.apply(withOther('/z', '/z'))).status).toBe('failed');
    expect(await included()).toEqual(second);
    expect(await readdir(serversDir)).toEqual(expect.arrayContaining(second));
    expect((await other('/y')).status).toBe(200);
    expect((await applier.apply(withOther('/y', '/w'))).status).toBe('applied');
    expect((await readdir(serversDir)).sort()).toEqual(await included());
    expect((await other('/w')).status).toBe(200);
  });

  it('changes endpoints in shared memory without a reload: new Pods serve at once, none gives 503, a reload keeps them', async () => {
    const others = await Promise.all(['web-b', 'web-c'].map(async (name) => {
      const port = await freePort();
      return { name, port, server: await startEchoBackend(name, port) };
    }));
    const reloads = () => counter('qubesec_config_reloads_total');
    const workers = () => execa('pgrep', ['-P', String(applier.nginx.pid)]).then((r) => r.stdout.split('\n').sort());
    try {
      expect((await applier.apply(model(['/a']))).status).toMatch(/applied|unchanged/);
      expect(await backendsSeen(3)).toEqual(['web']);
      const [reloadsBefore, workersBefore] = [await reloads(), await workers()];

      const b = { address: '127.0.0.1', port: others[0]!.port };
      const c = { address: '127.0.0.1', port: others[1]!.port };
      expect((await applier.apply(model(['/a'], [b]))).status).toBe('endpoints');
      expect(await backendsSeen(3)).toEqual(['web-b']);
      expect((await applier.apply(model(['/a'], [b, c]))).status).toBe('endpoints');
      expect(await backendsSeen(8)).toEqual(['web-b', 'web-c']);
      expect((await applier.apply(model(['/a'], [b, c]))).status).toBe('unchanged');
      expect((await applier.apply(model(['/a'], []))).status).toBe('endpoints');
      expect(await backendsSeen(3)).toEqual(['503']);
      // An endpoint whose Pod is gone: the balancer moves on to the next one instead of failing the request.
      const gone = { address: '127.0.0.1', port: await freePort() };
      expect((await applier.apply(model(['/a'], [gone, c]))).status).toBe('endpoints');
      expect(await backendsSeen(8)).toEqual(['web-c']);
      // What the workers balance over, as troubleshooting reads it.
      const listed = await fetch(`http://127.0.0.1:${statusPort}/qubesec/endpoints`).then((r) => r.text());
      expect(listed).toBe(`default_web_80 127.0.0.1 ${gone.port}\ndefault_web_80 127.0.0.1 ${c.port}\n`);

      expect(await reloads()).toBe(reloadsBefore);
      expect(await workers()).toEqual(workersBefore);
      expect(await metrics.registry.metrics()).toMatch(/qubesec_endpoint_updates_total 4\b/);

      // A reload (structure changed) loads the endpoints from the file: the newest, not those of the last reload.
      expect((await applier.apply(model(['/a', '/z'], [c]))).status).toBe('applied');
      expect(await backendsSeen(3)).toEqual(['web-c']);
      expect(await reloads()).toBe(reloadsBefore + 1);
    } finally {
      for (const o of others) o.server.close();
    }
  });

  // The one test of the contract between endpointLines (the controller's lines) and nginx/lua/qubesec.lua (its parser).
  it('stores and parses every endpoint line the controller writes: IPv4, IPv6, none, and 100,000 of them', async () => {
    const many: Endpoint[] = Array.from({ length: 1000 }, (_, i) =>
      i % 2 ? { address: `198.18.${i >> 8}.${i & 255}`, port: 1024 + i } : { address: `::ffff:198.19.${i >> 8}.${i & 255}`, port: 65535 - i });
    const base = model(['/a']);
    const upstream = (name: string, endpoints: Endpoint[]) => ({ ...base.upstreams[0]!, name, endpoints });
    const upstreams = [
      base.upstreams[0]!,
      upstream('default_ipv6_80', [{ address: '::1', port: 8080 }, { address: '::ffff:198.18.0.1', port: 1 }]),
      upstream('default_none_80', []),
      // About 2.4 MB in the dictionary. (The next test shows the size following the model: a small one gets 2m.)
      ...Array.from({ length: 100 }, (_, i) => upstream(`default_many${String(i).padStart(4, '0')}_80`, many)),
    ];
    const failuresBefore = await counter('qubesec_endpoint_update_failures_total');
    expect((await applier.apply({ ...base, upstreams })).status).toBe('applied');

    const listed = await fetch(`http://127.0.0.1:${statusPort}/qubesec/endpoints`).then((r) => r.text());
    const expected = [...upstreams]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .flatMap((u) => (u.endpoints.length === 0 ? [u.name] : u.endpoints.map((e) => `${u.name} ${e.address} ${e.port}`)));
    // Compared line by line for a readable failure; equal in full.
    const lines = listed.split('\n').slice(0, -1);
    expect(lines.length).toBe(expected.length);
    expect(lines.filter((line, i) => line !== expected[i]).slice(0, 3)).toEqual([]);
    expect(await counter('qubesec_endpoint_update_failures_total')).toBe(failuresBefore);
    expect((await get('/a')).status).toBe(200);
  });

  it('reloads when an update does not fit, and the reload deletes upstreams no longer listed before it stores', async () => {
    const others = await Promise.all(['web-b', 'web-c', 'web-d'].map(async (name) => {
      const port = await freePort();
      return { port, server: await startEchoBackend(name, port) };
    }));
    const postEndpoints = (body: string) => fetch(`http://127.0.0.1:${statusPort}/qubesec/endpoints`, { method: 'POST', body });
    try {
      expect((await applier.apply(model(['/a']))).status).toBe('applied');
      // Entries the controller does not list (as an upstream's that is gone), each about as big as default_web_80's,
      // until the dictionary is full.
      let stale = 0;
      for (let full = false; !full; ) {
        const lines = Array.from({ length: 4000 }, () => `stale_${String(stale++).padStart(8, '0')} 198.18.0.1:80`);
        full = (await postEndpoints(`${lines.join('\n')}\n`)).status === 507;
      }
      const [reloadsBefore, failuresBefore] = [await counter('qubesec_config_reloads_total'), await counter('qubesec_endpoint_update_failures_total')];

      // Four endpoints make a bigger entry than one did: no room for it.
      const endpoints = [{ address: '127.0.0.1', port: backendPort }, ...others.map((o) => ({ address: '127.0.0.1', port: o.port }))];
      expect((await applier.apply(model(['/a'], endpoints))).status).toBe('applied');
      expect(await counter('qubesec_endpoint_update_failures_total')).toBe(failuresBefore + 1);
      expect(await counter('qubesec_config_reloads_total')).toBe(reloadsBefore + 1);
      const listed = await fetch(`http://127.0.0.1:${statusPort}/qubesec/endpoints`).then((r) => r.text());
      expect(listed).toBe(endpoints.map((e) => `default_web_80 127.0.0.1 ${e.port}\n`).join(''));
      expect(await backendsSeen(8)).toEqual(['web', 'web-b', 'web-c', 'web-d']);
    } finally {
      for (const o of others) o.server.close();
    }
  });

  it.each(Object.keys(ANNOTATION_CASES))('runs what annotation %s renders (real nginx -t and reload)', async (name) => {
    const result = await applier.apply(annotatedModel(ANNOTATION_CASES[name]!.annotations, [pair()]));
    expect(result).toEqual({ status: 'applied', hash: expect.any(String) });
  });

  it('runs the rendering of hundreds of generated hostile Ingresses in one configuration (real nginx -t and reload)', async () => {
    const ingresses = fc.sample(hostileIngress, { numRuns: 600, seed: 4 }).map((ingress, i) => ({ ...ingress, metadata: { ...ingress.metadata, name: `hostile-${i}` } }));
    const intents = ingresses.map((i) => translateIngress(i, BUILTIN_TLS_DEFAULTS, CAPABILITIES).intent).filter((i) => i !== undefined);
    const { model: hostile } = buildModel({ ...hostileClusterState(new Date()), intents });
    console.log(`nginx -t on ${intents.length} accepted of ${ingresses.length} generated Ingresses: ${hostile.servers.length} servers, ${hostile.servers.reduce((n, s) => n + s.locations.length, 0)} locations`);
    expect(intents.length).toBeGreaterThan(50);
    expect(await applier.apply(hostile)).toEqual({ status: 'applied', hash: expect.any(String) });
  });
});

describe('Applier when NGINX cannot run: the failure says why', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qubesec-no-nginx-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs `use` on an Applier of NGINX run directly (no rootfs) from `nginxBinary`, then stops it. */
  const withApplier = async <T>(nginxBinary: string, use: (applier: Applier) => Promise<T>) => {
    const runtime = { root: '', nginxBinary, opensslBinary: 'openssl' };
    const render = { bindAddress: '127.0.0.1', httpPort, httpsPort, httpsRedirectPort: httpsPort, statusPort: await freePort(), handshakeLogPort: await freePort(), workerProcesses: 1, workerConnections: 256, modules: [] };
    const confDir = await mkdtemp(join(dir, 'conf-'));
    const noNginx = new Applier({ runtime, confDir, accessLog: `${confDir}/access.log`, newHostReloadMs: 0, render }, createMetrics(), createLogger('error'));
    try {
      return await use(noNginx);
    } finally {
      await noNginx.stop();
    }
  };
  const applyWith = (nginxBinary: string) => withApplier(nginxBinary, async (a) => {
    const result = await a.apply(model(['/a']));
    expect(a.nginx.running).toBe(false); // not restarted: nothing it ran was ever confirmed
    return result;
  });
  const testWith = (nginxBinary: string) => withApplier(nginxBinary, (a) => a.test(model(['/a'])));
  const script = async (name: string, body: string, mode = 0o755) => {
    const file = join(dir, name);
    await writeFile(file, `#!/bin/sh\n${body}\n`);
    await chmod(file, mode);
    return file;
  };

  it('nginx -t (the tries that isolate a refused Ingress) gives the kernel\'s reason when the binary does not exist or is not executable', async () => {
    const missing = join(dir, 'missing');
    expect(await testWith(missing)).toBe(`nginx -t could not be executed: ${missing}: no such file or directory (ENOENT)`);
    const notExecutable = await script('not-executable', 'exit 0', 0o644);
    expect(await testWith(notExecutable)).toBe(`nginx -t could not be executed: ${notExecutable}: permission denied (EACCES)`);
  });

  it('a master that cannot be executed or exits at once fails the apply with the reason, and is not restarted', async () => {
    const notExecutable = await script('master-not-executable', 'exit 0', 0o644);
    expect(await applyWith(notExecutable)).toEqual({ status: 'failed', hash: expect.any(String), error: `NGINX did not take the new configuration: the NGINX master could not be executed: ${notExecutable}: permission denied (EACCES)`, refused: false });
    const exits = await script('exits', 'exit 3');
    expect(await applyWith(exits)).toEqual({ status: 'failed', hash: expect.any(String), error: 'NGINX did not take the new configuration: the NGINX master exited with code 3 (NGINX\'s error log, on stderr, says why)', refused: false });
  });
});

describe('Applier starting NGINX on a configuration it refuses', () => {
  it('reports NGINX\'s [emerg] as a refusal, leaves no nginx.conf behind and starts nothing until a good apply', async () => {
    const runtime = { root: rootfs(), nginxBinary: 'nginx', opensslBinary: 'openssl' };
    const dir = `/run/qubesec-dataplane-${randomBytes(4).toString('hex')}`;
    const port = await freePort();
    const render = { bindAddress: '127.0.0.1', httpPort: port, httpsPort: await freePort(), httpsRedirectPort: 443, statusPort: await freePort(), handshakeLogPort: await freePort(), workerProcesses: 1, workerConnections: 256, modules: defaultModules(runtime) };
    const fresh = new Applier({ runtime, confDir: dir, accessLog: `${dir}/access.log`, newHostReloadMs: 0, render }, createMetrics(), createLogger('error'));
    try {
      expect(await fresh.apply(model(['/b', '/b']))).toEqual({ status: 'failed', hash: expect.any(String), error: expect.stringMatching(/^NGINX refused the configuration: duplicate location "\/b" in \S+\/servers\/[0-9a-f]{32}\.conf:\d+$/), refused: true });
      expect(fresh.nginx.running).toBe(false);
      await expect(readFile(join(rootfs(), dir, 'nginx.conf'))).rejects.toThrow(/ENOENT/);
      expect((await fresh.apply(model(['/b']))).status).toBe('applied');
      expect((await pqCurl({ host: 'web.example.com', port, path: '/b', scheme: 'http' })).status).toBe(200);
    } finally {
      await fresh.stop();
      await rm(join(rootfs(), dir), { recursive: true, force: true });
    }
  });
});

describe('TLS session resumption with real NGINX and openssl s_client', () => {
  const [k1, k2] = [randomBytes(80), randomBytes(80)];
  /** The catch-all server with a default certificate (ML-DSA-65), and session tickets with these keys (none: NGINX's own). */
  const resumptionModel = (ticketKeys: Buffer[], defaultCertificate: 'mldsa65' | 'ecdsa' = 'mldsa65'): Model => ({
    servers: [{ host: '', locations: [] }],
    upstreams: [],
    defaultPolicy: defaultPolicy(BUILTIN_TLS_DEFAULTS, CAPABILITIES),
    defaultCertificates: [pair(defaultCertificate)],
    sessionResumption: { timeoutSeconds: 600, tickets: true, ticketKeys },
  });
  const session = (name: string) => `${sessionDir.slice(rootfs().length)}/${name}`;
  const connect = (files: Parameters<typeof tlsSession>[2]) => tlsSession('any.example.com', httpsPort, files);
  const restart = async (model: Model) => {
    await applier.stop();
    expect((await applier.apply(model, true)).status).toBe('applied');
  };

  it('resumes a session after a reload and after a restart with the given keys; the resumed handshake has no ML-DSA signature but the hybrid group', async () => {
    const model = resumptionModel([k1]);
    expect((await applier.apply(model)).status).toBe('applied');
    expect(await connect({ save: session('k1') })).toMatchObject({ reused: false, group: 'X25519MLKEM768', peerSignature: 'mldsa65' });
    expect((await applier.apply(model, true)).status).toBe('applied');
    expect(await connect({ offer: session('k1') })).toMatchObject({ reused: true, group: 'X25519MLKEM768', peerSignature: '' });
    // A client that would accept a resumption without key exchange (psk_ke) still gets the hybrid one (psk_dhe_ke).
    expect(await connect({ offer: session('k1'), args: ['-allow_no_dhe_kex'] })).toMatchObject({ reused: true, group: 'X25519MLKEM768' });
    await restart(model);
    expect(await connect({ offer: session('k1') })).toMatchObject({ reused: true, group: 'X25519MLKEM768' });
  });

  it('decrypts with every key listed, encrypts with the first, and resumes nothing once a key is gone', async () => {
    expect((await applier.apply(resumptionModel([k2, k1]))).status).toBe('applied');
    expect(await connect({ offer: session('k1'), save: session('k2') })).toMatchObject({ reused: true });
    expect((await applier.apply(resumptionModel([k2]))).status).toBe('applied');
    expect(await connect({ offer: session('k1') })).toMatchObject({ reused: false, peerSignature: 'mldsa65' });
    // The ticket re-issued on resumption above came from the first key.
    expect(await connect({ offer: session('k2') })).toMatchObject({ reused: true });
  });

  // Certificates named by variables are not in the context NGINX binds sessions to (it derives it from the
  // certificates a server loads with the configuration): a session outlives a change of certificate, not of keys.
  it('resumes a session under another default certificate with the same ticket keys, and none once the keys changed', async () => {
    expect((await applier.apply(resumptionModel([k1]))).status).toBe('applied');
    expect(await connect({ save: session('mldsa-default') })).toMatchObject({ reused: false });
    expect((await applier.apply(resumptionModel([k1], 'ecdsa'))).status).toBe('applied');
    expect(await connect({ offer: session('mldsa-default') })).toMatchObject({ reused: true });
    expect((await applier.apply(resumptionModel([k2], 'ecdsa'))).status).toBe('applied');
    expect(await connect({ offer: session('mldsa-default') })).toMatchObject({ reused: false });
  });

  it('with NGINX\'s own keys (no key files) sessions survive a reload (NGINX keeps them in the shared session cache) but not a restart', async () => {
    const model = resumptionModel([]);
    expect((await applier.apply(model)).status).toBe('applied');
    expect(await connect({ save: session('own') })).toMatchObject({ reused: false });
    expect((await applier.apply(model, true)).status).toBe('applied');
    expect(await connect({ offer: session('own') })).toMatchObject({ reused: true });
    await restart(model);
    expect(await connect({ offer: session('own') })).toMatchObject({ reused: false });
  });
});
