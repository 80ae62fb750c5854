// The controller against a real kube-apiserver + etcd, real NGINX on OpenSSL 3.5, real curl and OpenSSL clients.
import type { V1Ingress } from '@kubernetes/client-node';
import { execa } from 'execa';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestCluster } from './cluster/cluster.js';
import { startEcho } from './lib/backends.js';
import { legacyHandshake, pqCurl } from './lib/clients.js';
import { eventually, rootfs } from './lib/env.js';
import { startTestController, type TestController } from './lib/harness.js';
import type { Kube } from './lib/kube.js';
import type { TestHost } from './lib/netns.js';
import { pqIngress, serviceFor, tlsSecret } from './lib/objects.js';
import { startClusterSetup, stopClusterSetup, type ClusterSetup } from './lib/setup.js';

let setup: ClusterSetup;
let cluster: TestCluster;
let kube: Kube;
let controller: TestController;
let anchors: ClusterSetup['anchors'];
let testHost: TestHost;
const backendPorts = new Map<string, number>();

async function backend(name: string): Promise<void> {
  const port = await startEcho(testHost, name);
  backendPorts.set(name, port);
  await kube.publishService(name, port, testHost.address);
}

const https = (host: string, path = '/') => ({ host, port: controller.httpsPort, path });
/** Polls until curl (PQ client, ML-DSA anchor) gets a response for which `accept` holds. */
const served = (host: string, accept: (r: Awaited<ReturnType<typeof pqCurl>>) => boolean, path = '/', what = `${host}${path}`) =>
  eventually(async () => {
    const r = await pqCurl(https(host, path), { cacert: anchors.mldsa });
    if (accept(r)) return r;
    throw new Error(`last answer: curl exit ${r.exitCode}, status ${r.status}, handshake ${JSON.stringify(r.handshake)}, body ${r.body.slice(0, 200)}, ${r.stderr.split('\n').filter((l) => /rror|fail/.test(l)).join(' | ')}`);
  }, 15_000, what);

beforeAll(async () => {
  setup = await startClusterSetup();
  ({ cluster, kube, anchors, testHost } = setup);
  await kube.apply(tlsSecret('pq-ecdsa', 'ecdsa'));
  for (const name of ['alpha', 'beta']) await backend(name);
  controller = await startTestController({ kubeconfig: cluster.kubeconfigPath }, ['--configmap', 'default/qubesec']);
}, 300_000);

afterAll(() => stopClusterSetup(setup, controller));

describe('QubeSec on a real API server', () => {
  it('serves a new Ingress over X25519MLKEM768 with the ML-DSA certificate, and legacy clients with ECDSA over X25519', async () => {
    await kube.apply(pqIngress('hybrid', 'hybrid.pq.example.com', 'alpha', { secrets: ['pq-mldsa', 'pq-ecdsa'] }));
    const r = await served('hybrid.pq.example.com', (x) => x.status === 200);
    expect(r.group).toBe('X25519MLKEM768');
    expect(r.signature).toBe('id-ml-dsa-65');
    expect(JSON.parse(r.body)).toEqual(expect.objectContaining({ backend: 'alpha', tlsGroup: 'X25519MLKEM768', host: 'hybrid.pq.example.com' }));

    const legacy = await legacyHandshake('hybrid.pq.example.com', controller.httpsPort, anchors.hostEcdsa);
    expect(legacy).toEqual(expect.objectContaining({ ok: true, signatureType: 'ECDSA', verification: 'OK' }));
    expect(legacy.serverTempKey).toMatch(/^X25519/);
    // The host's curl (OpenSSL 3.0) trusts only the ECDSA certificate here, and gets it.
    const hostCurl = await execa('curl', ['-sS', '--cacert', anchors.hostEcdsa, '--resolve', `hybrid.pq.example.com:${controller.httpsPort}:127.0.0.1`, `https://hybrid.pq.example.com:${controller.httpsPort}/`], { reject: false });
    expect(hostCurl.exitCode).toBe(0);
    expect(JSON.parse(hostCurl.stdout).tlsGroup.toLowerCase()).toBe('x25519');

    // Plain HTTP to a TLS host is redirected, as ingress-nginx does.
    const plain = await pqCurl({ host: 'hybrid.pq.example.com', port: controller.httpPort, scheme: 'http' });
    expect(plain.status).toBe(308);
  });

  it('refuses classical-only clients in pq-mode strict, and tls-groups changes what is negotiated', async () => {
    await kube.apply(pqIngress('strict', 'strict.pq.example.com', 'alpha', { secrets: ['pq-mldsa'], annotations: { 'qubesec.io/pq-mode': 'strict' } }));
    await served('strict.pq.example.com', (x) => x.status === 200);
    const classical = await pqCurl(https('strict.pq.example.com'), { cacert: anchors.mldsa, curves: 'X25519:secp256r1' });
    expect(classical.exitCode).not.toBe(0);
    expect(classical.handshake).toBe('');
    const pq = await pqCurl(https('strict.pq.example.com'), { cacert: anchors.mldsa, curves: 'X25519:X25519MLKEM768' });
    expect(pq.group).toBe('X25519MLKEM768');
    // The hybrid host on the same port still takes classical clients.
    const hybrid = await pqCurl(https('hybrid.pq.example.com'), { cacert: anchors.mldsa, curves: 'X25519' });
    expect(hybrid.status).toBe(200);
    expect(hybrid.group.toLowerCase()).toBe('x25519');

    await kube.apply(pqIngress('groups', 'groups.pq.example.com', 'alpha', { secrets: ['pq-mldsa'], annotations: { 'qubesec.io/tls-groups': 'SecP384r1MLKEM1024:X25519MLKEM768' } }));
    await served('groups.pq.example.com', (x) => x.status === 200);
    // The same client (key share for X25519MLKEM768, SecP384r1MLKEM1024 also supported) gets the client's first choice
    // from the default hybrid tier, and the annotation's first group where tls-groups sets a strict order.
    const bothOffered = { cacert: anchors.mldsa, curves: 'X25519MLKEM768:SecP384r1MLKEM1024' };
    expect((await pqCurl(https('hybrid.pq.example.com'), bothOffered)).group).toBe('X25519MLKEM768');
    expect((await pqCurl(https('groups.pq.example.com'), bothOffered)).group).toBe('SecP384r1MLKEM1024');
    const notOffered = await pqCurl(https('groups.pq.example.com'), { cacert: anchors.mldsa, curves: 'X25519' });
    expect(notOffered.exitCode).not.toBe(0);
  });

  it('follows updates of a path, a backend and a certificate, and a deletion', async () => {
    const host = 'update.pq.example.com';
    await kube.apply(pqIngress('update', host, 'alpha', { secrets: ['pq-mldsa'], path: '/v1' }));
    await served(host, (x) => x.status === 200, '/v1');

    await kube.apply(pqIngress('update', host, 'alpha', { secrets: ['pq-mldsa'], path: '/v2' }));
    await served(host, (x) => x.status === 200, '/v2');
    await served(host, (x) => x.status === 404, '/v1');

    await kube.apply(pqIngress('update', host, 'beta', { secrets: ['pq-mldsa'], path: '/v2' }));
    await served(host, (x) => x.status === 200 && JSON.parse(x.body).backend === 'beta', '/v2');

    await kube.apply(tlsSecret('update-cert', 'mldsa65'));
    await kube.apply(pqIngress('update', host, 'beta', { secrets: ['update-cert'], path: '/v2' }));
    await served(host, (x) => x.status === 200, '/v2');
    // The Secret now holds the ECDSA pair: PQ clients are served ECDSA (still over the hybrid group).
    await kube.apply(tlsSecret('update-cert', 'ecdsa'));
    const swapped = await eventually(async () => {
      const r = await pqCurl(https(host, '/v2'), { cacert: anchors.ecdsa });
      return r.status === 200 ? r : undefined;
    }, 15_000, 'certificate swap');
    expect(swapped.signature).toBe('id-ecPublicKey');
    expect(swapped.group).toBe('X25519MLKEM768');

    // Deleted: the host falls to the catch-all server, its default certificate and a 404.
    await kube.delete(pqIngress('update', host, 'beta'));
    await eventually(async () => ((await pqCurl(https(host, '/v2'), { args: ['-k'] })).status === 404 || undefined), 15_000, 'deletion');
  });

  it('moves traffic to new Pods without a reload, and coalesces a burst of certificate renewals into one reload', async () => {
    const host = 'churn.pq.example.com';
    await backend('gamma');
    await kube.apply(pqIngress('churn', host, 'gamma', { secrets: ['pq-mldsa'] }));
    const backendOf = (r: Awaited<ReturnType<typeof pqCurl>>) => (r.status === 200 ? (JSON.parse(r.body) as { backend: string }).backend : String(r.status));
    await served(host, (r) => backendOf(r) === 'gamma');
    const reloads = await controller.metric('qubesec_config_reloads_total');
    const updates = await controller.metric('qubesec_endpoint_updates_total');

    // The Pods behind gamma are replaced: the EndpointSlice now names another port (another Pod).
    const deltaPort = await startEcho(testHost, 'delta');
    const { slice } = serviceFor('gamma', deltaPort, testHost.address);
    await kube.apply(slice);
    await served(host, (r) => backendOf(r) === 'delta');
    await kube.apply({ ...slice, endpoints: [{ addresses: [testHost.address], conditions: { ready: false } }] });
    await served(host, (r) => r.status === 503);
    await kube.apply(slice);
    await served(host, (r) => backendOf(r) === 'delta');
    expect(await controller.metric('qubesec_config_reloads_total')).toBe(reloads);
    expect(await controller.metric('qubesec_endpoint_updates_total')).toBeGreaterThanOrEqual(updates + 3);

    // Six hosts' certificates are renewed at once (as a PKI pass does): one reload, perhaps two if the burst straddles a sync.
    const hosts = [0, 1, 2, 3, 4, 5].map((i) => ({ secret: `renew-${i}`, host: `renew-${i}.pq.example.com` }));
    await Promise.all(hosts.map((h) => kube.apply(tlsSecret(h.secret, 'mldsa65'))));
    await Promise.all(hosts.map((h, i) => kube.apply(pqIngress(`renew-${i}`, h.host, 'alpha', { secrets: [h.secret] }))));
    for (const h of hosts) await served(h.host, (r) => r.status === 200 && r.signature === 'id-ml-dsa-65');
    // New hosts serve before their reload (e2e/new-hosts.test.ts); the renewals here are of hosts NGINX has blocks for.
    await eventually(async () => ((await controller.metric('qubesec_new_hosts')) === 0 || undefined), 30_000, 'the new hosts\' reload');
    const beforeRenewal = await controller.metric('qubesec_config_reloads_total');
    await Promise.all(hosts.map((h) => kube.apply(tlsSecret(h.secret, 'ecdsa'))));
    for (const h of hosts) {
      await eventually(async () => ((await pqCurl(https(h.host), { cacert: anchors.ecdsa })).signature === 'id-ecPublicKey' || undefined), 15_000, `${h.host} renewed`);
    }
    const renewalReloads = (await controller.metric('qubesec_config_reloads_total')) - beforeRenewal;
    expect(renewalReloads).toBeGreaterThanOrEqual(1);
    expect(renewalReloads).toBeLessThanOrEqual(2);
  });

  it('ignores Ingresses of another class, and a missing Secret or Service leaves other hosts serving', async () => {
    await kube.apply(pqIngress('foreign', 'foreign.pq.example.com', 'alpha', { className: 'nginx' }));
    await kube.apply(pqIngress('no-service', 'noservice.pq.example.com', 'ghost', { secrets: ['pq-mldsa'] }));
    await kube.apply(pqIngress('no-secret', 'nosecret.pq.example.com', 'alpha', { secrets: ['does-not-exist'] }));

    await served('noservice.pq.example.com', (x) => x.status === 503);
    // Without its Secret the host is served with the default (self-signed) certificate: curl refuses to trust it.
    await eventually(async () => ((await pqCurl(https('nosecret.pq.example.com'), { args: ['-k'] })).status === 200 || undefined), 15_000, 'nosecret served');
    const noSecret = await pqCurl(https('nosecret.pq.example.com'), { cacert: anchors.mldsa });
    expect(noSecret.exitCode).toBe(60);
    // The foreign Ingress's host falls to the catch-all server.
    const foreign = await pqCurl(https('foreign.pq.example.com'), { args: ['-k'] });
    expect(foreign.status).toBe(404);
    expect((await served('hybrid.pq.example.com', (x) => x.status === 200)).group).toBe('X25519MLKEM768');

    expect(await eventually(async () => {
      const notes = await kube.eventNotes('default', 'Ingress', 'no-service');
      return notes.find((n) => n.startsWith('ServiceNotFound'));
    })).toBe('ServiceNotFound: Ingress default/no-service: Service default/ghost not found; its paths answer 503');
    expect(await eventually(async () => (await kube.eventNotes('default', 'Ingress', 'no-secret')).find((n) => n.startsWith('SecretNotUsable'))))
      .toContain('Secret default/does-not-exist for host nosecret.pq.example.com is missing');
    expect(await kube.eventNotes('default', 'Ingress', 'foreign')).toEqual([]);
  });

  it('rejects a bad annotation value with an Event naming the Ingress and the annotation, and keeps serving the previous version', async () => {
    const host = 'keep.pq.example.com';
    await kube.apply(pqIngress('keep', host, 'alpha', { secrets: ['pq-mldsa'] }));
    await served(host, (x) => x.status === 200);
    await kube.apply(pqIngress('keep', host, 'beta', { secrets: ['pq-mldsa'], annotations: { 'qubesec.io/pq-mode': 'quantum-ish' } }));
    const note = await eventually(async () => (await kube.eventNotes('default', 'Ingress', 'keep')).find((n) => n.startsWith('Rejected')));
    expect(note).toBe('Rejected: Ingress default/keep: annotation qubesec.io/pq-mode: "quantum-ish" is not one of hybrid, strict, classical');
    const still = await pqCurl(https(host), { cacert: anchors.mldsa });
    expect(JSON.parse(still.body).backend).toBe('alpha');
    expect(await controller.metricsText()).toMatch(/qubesec_ingresses\{state="rejected"\} 1/);

    // A Secret that turns bad: Event, and the host keeps its last good certificate.
    await kube.apply(tlsSecret('keep-cert', 'mldsa65'));
    await kube.apply(pqIngress('keep', host, 'alpha', { secrets: ['keep-cert'] }));
    await eventually(async () => (await controller.metricsText()).includes('qubesec_ingresses{state="rejected"} 0') || undefined);
    await kube.apply(tlsSecret('keep-cert', 'mldsa65', 'default', 'ecdsa'));
    const secretNote = await eventually(async () => (await kube.eventNotes('default', 'Secret', 'keep-cert')).find((n) => n.startsWith('InvalidCertificate')));
    expect(secretNote).toBe('InvalidCertificate: Secret default/keep-cert: data.tls.key does not match the certificate in data.tls.crt; the last good certificate keeps serving');
    const kept = await pqCurl(https(host), { cacert: anchors.mldsa });
    expect(kept.status).toBe(200);
    expect(kept.signature).toBe('id-ml-dsa-65');
  });

  it('counts TLS handshakes by negotiated group and exposes reload and certificate metrics', async () => {
    for (const curves of ['X25519MLKEM768', 'X25519MLKEM768', 'X25519']) {
      expect((await pqCurl(https('hybrid.pq.example.com'), { cacert: anchors.mldsa, curves })).status).toBe(200);
    }
    const metrics = await eventually(async () => {
      const text = await controller.metricsText();
      return /qubesec_tls_handshakes_total\{group="X25519MLKEM768",group_class="hybrid",resumed="false"\} ([2-9]|\d\d)/.test(text) ? text : undefined;
    });
    expect(metrics).toMatch(/qubesec_tls_handshakes_total\{group="X25519",group_class="classical",resumed="false"\} [1-9]/);
    expect(metrics).toMatch(/qubesec_config_last_reload_successful 1/);
    expect(metrics).toMatch(/qubesec_certificate_expiry_timestamp_seconds\{host="hybrid.pq.example.com",secret="default\/pq-mldsa",key_algorithm="ml-dsa-65"\} 4922899200$/m);
    const access = await readFile(join(rootfs(), controller.confDir, 'access.log'), 'utf8');
    expect(access).toContain('"tls_group":"X25519MLKEM768"');
  });

  it('lets TLS 1.2 in only on hosts that ask for it', async () => {
    await kube.apply(pqIngress('tls12', 'tls12.pq.example.com', 'alpha', { secrets: ['pq-ecdsa'], annotations: { 'qubesec.io/tls-min-version': '1.2' } }));
    const tls12 = await eventually(async () => {
      const r = await pqCurl(https('tls12.pq.example.com'), { cacert: anchors.ecdsa, args: ['--tls-max', '1.2'] });
      return r.status === 200 ? r : undefined;
    }, 15_000, 'TLS 1.2 host');
    expect(tls12.handshake).toMatch(/^TLSv1\.2 /);
    expect((await pqCurl(https('tls12.pq.example.com'), { cacert: anchors.ecdsa })).handshake).toMatch(/^TLSv1\.3 .* X25519MLKEM768 /);
    const refused = await pqCurl(https('hybrid.pq.example.com'), { cacert: anchors.ecdsa, args: ['--tls-max', '1.2'] });
    expect(refused.exitCode).not.toBe(0);
  });

  it('takes global defaults from the ConfigMap, and reports a bad value on it', async () => {
    const configMap = (data: Record<string, string>) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'qubesec', namespace: 'default' }, data });
    await kube.apply(configMap({ 'pq-mode': 'strict' }));
    await eventually(async () => ((await pqCurl(https('hybrid.pq.example.com'), { cacert: anchors.mldsa, curves: 'X25519' })).exitCode !== 0 || undefined), 15_000, 'strict by default');
    // A classical client may also fail while old workers still route to the listener of the previous policy: wait for
    // the new one to answer PQ clients.
    await served('hybrid.pq.example.com', (x) => x.status === 200 && x.group === 'X25519MLKEM768');
    expect((await pqCurl(https('hybrid.pq.example.com'), { cacert: anchors.mldsa, curves: 'X25519' })).exitCode).not.toBe(0);

    await kube.apply(configMap({ 'pq-mode': 'maybe' }));
    const note = await eventually(async () => (await kube.eventNotes('default', 'ConfigMap', 'qubesec')).find((n) => n.startsWith('InvalidDefault')));
    expect(note).toBe('InvalidDefault: ConfigMap default/qubesec: key pq-mode: "maybe" is not one of hybrid, strict, classical; the flag\'s value applies');
    await eventually(async () => ((await pqCurl(https('hybrid.pq.example.com'), { cacert: anchors.mldsa, curves: 'X25519' })).status === 200 || undefined), 15_000, 'hybrid again');
    await kube.delete(configMap({}));
  });

  it('watches one namespace only with --watch-namespace, and publishes a Service from another in Ingress status', async () => {
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-b' } });
    await kube.publishService('alpha', backendPorts.get('alpha')!, testHost.address, 'team-b');
    await kube.apply(tlsSecret('pq-mldsa', 'mldsa65', 'team-b'));
    await kube.apply(pqIngress('team-b', 'teamb.pq.example.com', 'alpha', { secrets: ['pq-mldsa'], namespace: 'team-b' }));
    const scoped = await startTestController({ kubeconfig: cluster.kubeconfigPath }, ['--watch-namespace', 'team-b', '--election-id', 'team-b', '--publish-service', 'default/alpha']);
    try {
      const teamB = await eventually(async () => {
        const r = await pqCurl({ host: 'teamb.pq.example.com', port: scoped.httpsPort }, { cacert: anchors.mldsa });
        return r.status === 200 ? r : undefined;
      }, 15_000, 'team-b host');
      expect(teamB.group).toBe('X25519MLKEM768');
      expect((await pqCurl({ host: 'hybrid.pq.example.com', port: scoped.httpsPort }, { args: ['-k'] })).status).toBe(404);

      // The publish Service lies outside the watched namespace; its ClusterIP goes into the watched Ingresses' status only.
      const clusterIP = (await kube.core.readNamespacedService({ namespace: 'default', name: 'alpha' })).spec!.clusterIP;
      const status = (namespace: string, name: string) =>
        kube.objects.read({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { namespace, name } }).then((i) => (i as V1Ingress).status?.loadBalancer?.ingress ?? []);
      await eventually(async () => ((await status('team-b', 'team-b'))[0]?.ip === clusterIP || undefined), 15_000, 'team-b status');
      expect(await status('team-b', 'team-b')).toEqual([{ ip: clusterIP }]);
      expect(await status('default', 'hybrid')).toEqual([]);
    } finally {
      await scoped.stop();
    }
  });

  it('restarts NGINX when its master dies, and restores a managed file changed on disk', async () => {
    const pid = controller.applier.nginx.pid!;
    process.kill(pid, 'SIGKILL');
    await eventually(async () => (controller.applier.nginx.pid && controller.applier.nginx.pid !== pid ? true : undefined));
    await served('hybrid.pq.example.com', (x) => x.status === 200);
    expect(await controller.metricsText()).toMatch(/qubesec_nginx_restarts_total [1-9]/);

    const conf = join(rootfs(), controller.confDir, 'nginx.conf');
    await writeFile(conf, 'events {}\nhttp { }\n');
    await eventually(async () => ((await readFile(conf, 'utf8')).includes('hybrid.pq.example.com') || undefined), 15_000, 'nginx.conf restored');
    await served('hybrid.pq.example.com', (x) => x.status === 200);

    // A server block's file, which nginx.conf includes, is restored too.
    const servers = join(rootfs(), controller.confDir, 'servers');
    const names = await readdir(servers);
    const contents = await Promise.all(names.map((name) => readFile(join(servers, name), 'utf8')));
    const block = join(servers, names[contents.findIndex((c) => c.includes('server_name hybrid.pq.example.com;'))]!);
    await writeFile(block, '# emptied\n');
    await eventually(async () => ((await readFile(block, 'utf8').catch(() => '')).includes('server_name hybrid.pq.example.com;') || undefined), 15_000, 'the server block restored');
    await served('hybrid.pq.example.com', (x) => x.status === 200);
  });

  it('serves an Ingress created after one NGINX refuses, gives that one a single Event with NGINX message, and retries it with backoff', async () => {
    // JavaScript compiles this regex (translation passes it); PCRE2 does not know the property.
    const regex = (path: string) => pqIngress('pcre', 'pcre.pq.example.com', 'alpha', { secrets: ['pq-mldsa'], path, pathType: 'ImplementationSpecific', annotations: { 'nginx.ingress.kubernetes.io/use-regex': 'true' } });
    await kube.apply(regex('/x\\p{Nope}'));
    const refusals = async () => (await kube.eventNotes('default', 'Ingress', 'pcre')).filter((n) => n.startsWith('RefusedByNginx'));
    const [note] = await eventually(async () => ((await refusals()).length > 0 ? refusals() : undefined), 15_000, 'RefusedByNginx Event');
    expect(note).toMatch(/^RefusedByNginx: Ingress default\/pcre: NGINX refused this version \(it is not served\): NGINX refused the configuration: .*pcre2_compile\(\) failed: unknown property after \\P or \\p in "\^\/x\\p\{Nope\}"/);

    await kube.apply(pqIngress('after-pcre', 'afterpcre.pq.example.com', 'beta', { secrets: ['pq-mldsa'] }));
    await served('afterpcre.pq.example.com', (x) => x.status === 200 && JSON.parse(x.body).backend === 'beta');
    // Tried again though nothing changed, and still refused: no second Event, none for anyone else.
    const retries = await controller.metric('qubesec_config_apply_retries_total');
    await eventually(async () => ((await controller.metric('qubesec_config_apply_retries_total')) > retries || undefined), 15_000, 'a retry');
    await served('afterpcre.pq.example.com', (x) => x.status === 200);
    expect(await refusals()).toHaveLength(1);
    expect(await kube.eventNotes('default', 'Ingress', 'after-pcre')).toEqual([]);
    expect((await kube.eventNotes('default', 'Ingress', 'hybrid')).filter((n) => n.startsWith('ReloadFailed'))).toEqual([]);

    // Fixed, it serves (and nothing is left to retry for the tests after this one).
    await kube.apply(regex('/x\\d+'));
    await served('pcre.pq.example.com', (x) => x.status === 200, '/x12');
  });
});
