// New hosts served before their reload (docs/architecture.md#new-hosts-without-a-reload): the controller against a real
// kube-apiserver + etcd, real NGINX on OpenSSL 3.5, real curl and OpenSSL clients.
import type { TestCluster } from './cluster/cluster.js';
import { startEcho } from './lib/backends.js';
import { legacyHandshake, pqCurl, type CurlResult } from './lib/clients.js';
import { eventually } from './lib/env.js';
import { startTestController, type TestController } from './lib/harness.js';
import type { Kube } from './lib/kube.js';
import { pqIngress, tlsSecret } from './lib/objects.js';
import { startClusterSetup, stopClusterSetup, type ClusterSetup } from './lib/setup.js';

/** Long enough that a test sees a new host served well before its reload, short enough to wait for that reload. */
const RELOAD_MS = 8_000;

let setup: ClusterSetup;
let cluster: TestCluster;
let kube: Kube;
let controller: TestController;
let anchors: ClusterSetup['anchors'];

const https = (host: string, path = '/') => ({ host, port: controller.httpsPort, path });

/** Until NGINX has no new host waiting: the reload that brought their server blocks is done. */
const reloaded = () => eventually(async () => ((await controller.metric('qubesec_new_hosts')) === 0 || undefined), RELOAD_MS + 15_000, 'the new hosts\' reload');

type Answer = CurlResult & { startedAt: number };

/** Curl's answers for `host` every few milliseconds while `during` runs, then for `after` ms more. */
async function watch(host: string, during: () => Promise<unknown>, after: number, options: Parameters<typeof pqCurl>[1] = { cacert: anchors.mldsa }): Promise<Answer[]> {
  const answers: Answer[] = [];
  let stopAt = Infinity;
  const polling = (async () => {
    while (Date.now() < stopAt) {
      const startedAt = Date.now();
      answers.push({ ...(await pqCurl(https(host), options)), startedAt });
    }
  })();
  await during();
  stopAt = Date.now() + after;
  await polling;
  return answers;
}

beforeAll(async () => {
  setup = await startClusterSetup();
  ({ cluster, kube, anchors } = setup);
  await kube.apply(tlsSecret('pq-ecdsa', 'ecdsa'));
  const port = await startEcho(setup.testHost, 'alpha');
  await kube.publishService('alpha', port, setup.testHost.address);
  controller = await startTestController({ kubeconfig: cluster.kubeconfigPath }, ['--new-host-reload-ms', String(RELOAD_MS)]);
  // Something served, so that the next hosts are new to a running configuration.
  await kube.apply(pqIngress('first', 'first.pq.example.com', 'alpha', { secrets: ['pq-mldsa'] }));
  await eventually(async () => ((await pqCurl(https('first.pq.example.com'), { cacert: anchors.mldsa })).status === 200 || undefined), 20_000, 'first host');
  await reloaded();
}, 300_000);

afterAll(() => stopClusterSetup(setup, controller));

describe('new hosts without a reload', () => {
  it('serves a new Ingress before any reload, with its own ML-DSA certificate and ECDSA to legacy clients; its reload comes once, later', async () => {
    const host = 'fast.pq.example.com';
    const reloads = await controller.metric('qubesec_config_reloads_total');
    await kube.apply(pqIngress('fast', host, 'alpha', { secrets: ['pq-mldsa', 'pq-ecdsa'] }));
    const first = await eventually(async () => {
      const r = await pqCurl(https(host), { cacert: anchors.mldsa });
      return r.status === 200 ? r : undefined;
    }, 10_000, 'the new host');
    // Served: no reload yet, and the host is in NGINX's table of new hosts.
    expect(await controller.metric('qubesec_config_reloads_total')).toBe(reloads);
    expect(await controller.metric('qubesec_new_hosts')).toBe(1);
    // The host's own certificate (curl checked it against the ML-DSA CA and the host name), over the hybrid group.
    expect(first.signature).toBe('id-ml-dsa-65');
    expect(first.group).toBe('X25519MLKEM768');
    expect(JSON.parse(first.body)).toEqual(expect.objectContaining({ backend: 'alpha', host }));
    const legacy = await legacyHandshake(host, controller.httpsPort, anchors.hostEcdsa);
    expect(legacy).toEqual(expect.objectContaining({ ok: true, signatureType: 'ECDSA', verification: 'OK' }));
    // ssl-redirect, as the server block will do it; the Prefix / covers every path.
    expect((await pqCurl({ host, port: controller.httpPort, scheme: 'http' })).status).toBe(308);
    expect((await pqCurl(https(host, '/any/path'), { cacert: anchors.mldsa })).status).toBe(200);
    expect(await controller.metric('qubesec_config_reloads_total')).toBe(reloads);

    // Its server block comes with one reload, and it serves the same throughout.
    const answers = await watch(host, reloaded, 500);
    expect(await controller.metric('qubesec_config_reloads_total')).toBe(reloads + 1);
    const odd = answers.filter((a) => `${a.status} ${a.signature}` !== '200 id-ml-dsa-65');
    expect(odd.map((a) => ({ exit: a.exitCode, status: a.status, handshake: a.handshake, errors: a.stderr.split('\n').filter((l) => /rror|fail|alert/i.test(l)) }))).toEqual([]);
  });

  it('gathers hosts created one after another into one reload', async () => {
    const reloads = await controller.metric('qubesec_config_reloads_total');
    const hosts = ['one', 'two', 'three', 'four'].map((n) => `${n}.pq.example.com`);
    for (const [i, host] of hosts.entries()) {
      await kube.apply(pqIngress(`burst-${i}`, host, 'alpha', { secrets: ['pq-mldsa'] }));
      await eventually(async () => ((await pqCurl(https(host), { cacert: anchors.mldsa })).status === 200 || undefined), 10_000, host);
    }
    expect(await controller.metric('qubesec_config_reloads_total')).toBe(reloads);
    expect(await controller.metric('qubesec_new_hosts')).toBe(hosts.length);
    await reloaded();
    expect(await controller.metric('qubesec_config_reloads_total')).toBe(reloads + 1);
  });

  it('reloads at once when a new host gains a feature the catch-all path does not serve, and it applies from then on', async () => {
    const host = 'vhost.pq.example.com';
    const reloads = await controller.metric('qubesec_config_reloads_total');
    await kube.apply(pqIngress('vhost', host, 'alpha', { secrets: ['pq-mldsa'] }));
    await eventually(async () => ((await pqCurl(https(host), { cacert: anchors.mldsa })).status === 200 || undefined), 10_000, host);
    expect(await controller.metric('qubesec_config_reloads_total')).toBe(reloads);
    const hostSeen = (a: CurlResult) => (a.status === 200 ? (JSON.parse(a.body) as { host: string }).host : `status ${a.status}`);
    const answers = await watch(host, async () => {
      await kube.apply(pqIngress('vhost', host, 'alpha', { secrets: ['pq-mldsa'], annotations: { 'nginx.ingress.kubernetes.io/upstream-vhost': 'backend.internal' } }));
      await eventually(async () => (hostSeen(await pqCurl(https(host), { cacert: anchors.mldsa })) === 'backend.internal' || undefined), 10_000, 'upstream-vhost applied');
    }, 2_000);
    // Not after --new-host-reload-ms: the change itself reloads (and brings every new host's block).
    expect(await controller.metric('qubesec_config_reloads_total')).toBe(reloads + 1);
    expect(await controller.metric('qubesec_new_hosts')).toBe(0);
    // Served throughout: as before the change, then with it. Old workers keep accepting for ~100 ms after the new ones
    // start (until the master sends them QUIT), so an answer may still come from before the change just after the
    // first one with it; a second later, every answer has it.
    const seen = answers.map(hostSeen);
    expect(new Set(seen)).toEqual(new Set([host, 'backend.internal']));
    const applied = answers[seen.indexOf('backend.internal')]!.startedAt;
    const settled = answers.filter((a) => a.startedAt > applied + 1_000).map(hostSeen);
    expect(settled.length).toBeGreaterThan(0);
    expect(settled).toEqual(settled.map(() => 'backend.internal'));
  });

  it('never serves an Ingress with an allowlist without it: it waits for its reload', async () => {
    const host = 'allow.pq.example.com';
    const reloads = await controller.metric('qubesec_config_reloads_total');
    // 127.0.0.1, where curl runs, is outside the allowlist: 403 once the Ingress serves.
    const ingress = pqIngress('allow', host, 'alpha', { secrets: ['pq-mldsa'], annotations: { 'nginx.ingress.kubernetes.io/whitelist-source-range': '198.18.0.0/15' } });
    const answers = await watch(host, async () => {
      await kube.apply(ingress);
      await eventually(async () => ((await controller.metric('qubesec_config_reloads_total')) > reloads || undefined), 10_000, 'the reload');
    }, 1_000, { args: ['-k'] });
    const statuses = new Set(answers.map((a) => a.status));
    expect(statuses.has(200)).toBe(false);
    expect(answers.at(-1)!.status).toBe(403);
    // Before the reload: the catch-all's 404 and the default certificate, never the host's.
    expect([...statuses].every((s) => s === 404 || s === 403)).toBe(true);
    expect(await controller.metric('qubesec_new_hosts')).toBe(0);
  });

  it('never serves a new host\'s certificate whose key does not match: the default one serves, with an Event', async () => {
    const host = 'badpair.pq.example.com';
    await kube.apply(tlsSecret('bad-pair', 'mldsa65', 'default', 'ecdsa'));
    const answers = await watch(host, async () => {
      await kube.apply(pqIngress('badpair', host, 'alpha', { secrets: ['bad-pair'] }));
      await eventually(async () => ((await kube.eventNotes('default', 'Ingress', 'badpair')).some((n) => n.startsWith('InvalidCertificate:')) || undefined), 10_000, 'the Event');
      await eventually(async () => ((await pqCurl(https(host), { args: ['-k'] })).status === 200 || undefined), 10_000, 'served with the default certificate');
    }, 500);
    // Checked against the ML-DSA CA that signed the Secret's certificate: never presented (a verification failure,
    // exit 60), never a handshake with the wrong key.
    expect(answers.length).toBeGreaterThan(0);
    expect(new Set(answers.map((a) => a.exitCode))).toEqual(new Set([60]));
    await reloaded();
  });

  it('stops serving a new host deleted before its reload, and serves one whose Ingress changed meanwhile as changed', async () => {
    const gone = 'gone.pq.example.com';
    const moved = 'moved.pq.example.com';
    const reloads = await controller.metric('qubesec_config_reloads_total');
    await kube.apply(pqIngress('gone', gone, 'alpha', { secrets: ['pq-mldsa'] }));
    await kube.apply(pqIngress('moved', moved, 'alpha', { secrets: ['pq-mldsa'], path: '/v1' }));
    await eventually(async () => ((await pqCurl(https(gone), { cacert: anchors.mldsa })).status === 200 || undefined), 10_000, gone);
    await eventually(async () => ((await pqCurl(https(moved, '/v1'), { cacert: anchors.mldsa })).status === 200 || undefined), 10_000, moved);
    await kube.delete(pqIngress('gone', gone, 'alpha'));
    await kube.apply(pqIngress('moved', moved, 'alpha', { secrets: ['pq-mldsa'], path: '/v2', pathType: 'Exact' }));
    // Gone: the catch-all's 404 with the default certificate (which the ML-DSA CA did not sign: curl exits 60).
    await eventually(async () => ((await pqCurl(https(gone), { cacert: anchors.mldsa })).exitCode === 60 || undefined), 10_000, 'deleted host');
    expect((await pqCurl(https(gone), { args: ['-k'] })).status).toBe(404);
    await eventually(async () => ((await pqCurl(https(moved, '/v2'), { cacert: anchors.mldsa })).status === 200 || undefined), 10_000, 'changed host');
    expect((await pqCurl(https(moved, '/v1'), { cacert: anchors.mldsa })).status).toBe(404);
    expect((await pqCurl(https(moved, '/v2/more'), { cacert: anchors.mldsa })).status).toBe(404);
    expect(await controller.metric('qubesec_config_reloads_total')).toBe(reloads);
    await reloaded();
    expect((await pqCurl(https(moved, '/v2'), { cacert: anchors.mldsa })).status).toBe(200);
  });
});
