// Two replicas on a real API server, each with its own NGINX, running as a ServiceAccount bound to the ClusterRoles in
// charts/qubesec/files/rbac (not as admin). One holds the Lease: it alone writes Ingress status and runs the PKI
// controller; both serve traffic; when it stops, the other takes over.
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoordinationV1Api, NetworkingV1Api, V1MicroTime } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { PROJECT_ROOT } from '../controller/project.js';
import { startCluster, writeKubeconfig, type TestCluster } from './cluster/cluster.js';
import { pqCurl } from './lib/clients.js';
import { eventually, rootfs } from './lib/env.js';
import { startTestController, type TestController } from './lib/harness.js';
import { Kube } from './lib/kube.js';
import { accessReviews, controllerAccess } from './lib/rbac.js';
import { startEcho } from './lib/backends.js';
import { createTestHost, type TestHost } from './lib/netns.js';
import { QUBESEC_CLASS, pqIngress } from './lib/objects.js';

const NAMESPACE = 'qubesec-system';
const LEASE = 'qubesec-leader';
// Each replica publishes its own address (in production they share one), so the status tells which replica wrote it.
const ADDRESSES = ['192.0.2.11', '192.0.2.12'];
const HOST = 'app.leader.example.com';

let cluster: TestCluster;
let kube: Kube;
let testHost: TestHost;
let workDir: string;
let anchorDir: string;
const replicas: TestController[] = [];
const stopped = new Set<TestController>();

const lease = () => cluster.kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: NAMESPACE, name: LEASE });
const ingressStatus = async (name: string) =>
  (await cluster.kc.makeApiClient(NetworkingV1Api).readNamespacedIngress({ namespace: 'default', name })).status?.loadBalancer?.ingress ?? [];
const appIngress = (hosts: string[], annotations: Record<string, string> = {}) => {
  const ingress = pqIngress('app', HOST, 'app', { secrets: ['app-tls'], annotations: { 'qubesec.io/cluster-issuer': 'selfsigned', ...annotations } });
  ingress.spec!.tls = [{ hosts, secretName: 'app-tls' }];
  ingress.spec!.rules = hosts.map((host) => ({ ...ingress.spec!.rules![0]!, host }));
  return ingress;
};
/** The replica holding the Lease, once exactly one replica says it leads and the Lease names it. */
const leader = () =>
  eventually(async () => {
    const holder = (await lease()).spec?.holderIdentity;
    const leading = replicas.filter((r) => !stopped.has(r) && r.elector!.isLeader);
    if (leading.length === 1 && leading[0]!.elector!.identity === holder) return leading[0]!;
    throw new Error(`holder ${holder}, leading: ${leading.map((r) => r.elector!.identity).join(', ') || 'none'}`);
  }, 30_000, 'one leader');
const addressOf = (replica: TestController) => ADDRESSES[replicas.indexOf(replica)]!;
/** Events that say the Certificate was issued, by name; their reporting instance says which replica ran the PKI. */
const issuedEvents = async () => {
  const events = await kube.core.listNamespacedEvent({ namespace: 'default' });
  const issued = events.items.filter((e) => e.involvedObject.kind === 'Certificate' && e.involvedObject.name === 'app-tls' && e.reason === 'Issued');
  return new Map(issued.map((e) => [e.metadata!.name!, e.reportingInstance]));
};
/** The Secret's certificate as curl's trust anchor (it is self-signed), at a path inside the rootfs. */
async function trustAnchor(): Promise<string> {
  const secret = await kube.core.readNamespacedSecret({ namespace: 'default', name: 'app-tls' });
  const path = join(anchorDir, `app-tls-${secret.metadata!.resourceVersion}.pem`);
  await writeFile(path, Buffer.from(secret.data!['ca.crt']!, 'base64'));
  return path.slice(rootfs().length);
}
/** Polls until this replica's NGINX serves `host` over X25519MLKEM768 with the issued ML-DSA certificate. */
const servedBy = (replica: TestController, host: string) =>
  eventually(async () => {
    const r = await pqCurl({ host, port: replica.httpsPort }, { cacert: await trustAnchor() });
    if (r.status === 200 && r.group === 'X25519MLKEM768' && r.signature === 'id-ml-dsa-65') return r;
    throw new Error(`curl exit ${r.exitCode}, status ${r.status}, handshake ${JSON.stringify(r.handshake)}`);
  }, 30_000, `${host} served on port ${replica.httpsPort}`);

async function startReplica(kubeconfig: string, index: number): Promise<TestController> {
  return startTestController({ kubeconfig }, ['--election-ttl', '5s', '--publish-status-address', ADDRESSES[index]!, '--cluster-resource-namespace', NAMESPACE]);
}

beforeAll(async () => {
  cluster = await startCluster();
  kube = new Kube(cluster.kc);
  workDir = await mkdtemp(join(tmpdir(), 'qubesec-leader-'));
  anchorDir = await mkdtemp(join(rootfs(), 'tmp', 'qubesec-leader-anchors-'));
  await kube.installQubesecCrds();

  // The controller's identity: a ServiceAccount bound to the chart's ClusterRoles, and a token for it.
  await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } });
  await kube.apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'qubesec', namespace: NAMESPACE } });
  const rbacDir = join(PROJECT_ROOT, 'charts', 'qubesec', 'files', 'rbac');
  for (const file of await readdir(rbacDir)) {
    for (const doc of parseAllDocuments(await readFile(join(rbacDir, file), 'utf8'))) await kube.apply(doc.toJS());
  }
  const subjects = [{ kind: 'ServiceAccount', name: 'qubesec', namespace: NAMESPACE }];
  for (const role of ['qubesec', 'qubesec-pki']) {
    await kube.apply({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: role }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role }, subjects });
  }
  await kube.apply({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'qubesec', namespace: NAMESPACE }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'qubesec-namespace' }, subjects });
  const token = await kube.core.createNamespacedServiceAccountToken({ namespace: NAMESPACE, name: 'qubesec', body: { spec: { audiences: [], expirationSeconds: 3600 } } });
  // The context's namespace stands in for a pod's own: the Lease goes there without --controller-namespace.
  const kubeconfig = join(workDir, 'qubesec-sa.kubeconfig');
  await writeKubeconfig(kubeconfig, cluster.server, token.status!.token!, NAMESPACE);

  testHost = await createTestHost();
  const port = await startEcho(testHost, 'app');
  await kube.publishService('app', port, testHost.address);
  await kube.apply(QUBESEC_CLASS);
  await kube.apply({ apiVersion: 'qubesec.io/v1alpha1', kind: 'ClusterIssuer', metadata: { name: 'selfsigned' }, spec: { selfSigned: {} } });
  await kube.apply(appIngress([HOST]));

  // A leader that died without handing the Lease back: the replicas must wait for it to run out, then take over.
  const now = new V1MicroTime();
  await cluster.kc.makeApiClient(CoordinationV1Api).createNamespacedLease({ namespace: NAMESPACE, body: { metadata: { name: LEASE, namespace: NAMESPACE }, spec: { holderIdentity: 'crashed-replica', leaseDurationSeconds: 3, acquireTime: now, renewTime: now, leaseTransitions: 0 } } });

  for (const index of [0, 1]) replicas.push(await startReplica(kubeconfig, index));
}, 300_000);

afterAll(async () => {
  for (const replica of replicas) if (!stopped.has(replica)) await replica.stop();
  await testHost?.stop();
  await cluster?.stop();
  await rm(workDir, { recursive: true, force: true });
  await rm(anchorDir, { recursive: true, force: true });
});

describe('two replicas under least-privilege RBAC', () => {
  it('takes the Lease over from a holder that stopped renewing, and exactly one replica leads', async () => {
    const first = await leader();
    const held = (await lease()).spec!;
    // At least one transition: from the crashed holder (more only if a busy machine delayed a renewal past its deadline).
    expect(held.leaseTransitions).toBeGreaterThanOrEqual(1);
    expect(held.leaseDurationSeconds).toBe(5);
    expect(replicas.filter((r) => r.elector!.isLeader).map((r) => r.elector!.identity)).toEqual([first.elector!.identity]);
    // The gauge turns 1 once the leader-only work has started, a moment after the Lease is taken.
    const expected = JSON.stringify(replicas.map((r) => (r === first ? '1' : '0')));
    await eventually(async () => {
      const gauges = await Promise.all(replicas.map(async (r) => /^qubesec_leader (\d)$/m.exec(await r.metricsText())?.[1]));
      if (JSON.stringify(gauges) === expected) return gauges;
      throw new Error(`qubesec_leader per replica: ${JSON.stringify(gauges)}`);
    }, 15_000, 'qubesec_leader 1 on the leader only');
  });

  it('the leader publishes its address and its PKI issues the certificate that both replicas serve', async () => {
    const first = await leader();
    await eventually(async () => {
      const status = await ingressStatus('app');
      if (JSON.stringify(status) === JSON.stringify([{ ip: addressOf(first) }])) return status;
      throw new Error(JSON.stringify(status));
    }, 30_000, 'status published by the leader');
    for (const replica of replicas) await servedBy(replica, HOST);

    const issuedBy = [...(await issuedEvents()).values()];
    expect(issuedBy.length).toBeGreaterThan(0);
    expect(new Set(issuedBy)).toEqual(new Set([first.elector!.identity]));
    const follower = replicas.find((r) => r !== first)!;
    expect(follower.logs.filter((line) => JSON.parse(line).component === 'pki')).toEqual([]);
    // Both replicas see the same Ingress change; the status still names the leader only.
    expect(await ingressStatus('app')).toEqual([{ ip: addressOf(first) }]);
  });

  it('publishes no address for a rejected Ingress with no good version, keeps it for one kept on its last good version, and clears it when the class moves', async () => {
    const first = await leader();
    const ours = [{ ip: addressOf(first) }];
    await kube.apply(pqIngress('broken', 'broken.leader.example.com', 'app', { annotations: { 'qubesec.io/pq-mode': 'quantum-ish' } }));
    await kube.apply(appIngress([HOST], { 'qubesec.io/pq-mode': 'quantum-ish' }));
    // The watch delivers changes in order: once the later Ingress has its status, the writer has seen the two above.
    await kube.apply(pqIngress('probe', 'probe.leader.example.com', 'app'));
    await eventually(async () => (JSON.stringify(await ingressStatus('probe')) === JSON.stringify(ours) || undefined), 30_000, 'probe published');
    expect(await ingressStatus('broken')).toEqual([]);
    expect(await ingressStatus('app')).toEqual(ours);
    expect((await kube.eventNotes('default', 'Ingress', 'app')).some((n) => n.startsWith('Rejected'))).toBe(true);
    await kube.apply(appIngress([HOST]));

    await kube.apply(pqIngress('probe', 'probe.leader.example.com', 'app', { className: 'another-controller' }));
    await eventually(async () => ((await ingressStatus('probe')).length === 0 || undefined), 30_000, 'status cleared after the class moved');
  });

  it('when the leader stops, the other replica takes the Lease, publishes its own address, and its PKI re-issues for a changed Ingress', async () => {
    const first = await leader();
    const transitions = (await lease()).spec!.leaseTransitions!;
    await first.stop();
    stopped.add(first);
    const second = await leader();
    expect(second).not.toBe(first);
    // A clean stop hands the Lease back, so the other replica need not wait for it to run out.
    expect((await lease()).spec!.leaseTransitions).toBeGreaterThan(transitions);
    expect(first.logs.some((line) => JSON.parse(line).msg === 'released the lease')).toBe(true);
    await eventually(async () => (JSON.stringify(await ingressStatus('app')) === JSON.stringify([{ ip: addressOf(second) }]) || undefined), 30_000, 'status published by the new leader');

    // The new leader's ingress-shim updates the Certificate and its PKI replaces the Secret with one for both hosts.
    const before = await issuedEvents();
    await kube.apply(appIngress([HOST, 'www.leader.example.com']));
    await servedBy(second, 'www.leader.example.com');
    const after = [...(await issuedEvents())].filter(([name]) => !before.has(name)).map(([, instance]) => instance);
    expect(after.length).toBeGreaterThan(0);
    expect(new Set(after)).toEqual(new Set([second.elector!.identity]));
    expect(await ingressStatus('app')).toEqual([{ ip: addressOf(second) }]);
  });

  it('ran without a single 403, and the ServiceAccount can do no more than the controller needs', async () => {
    for (const replica of replicas) expect(replica.logs.filter((line) => /forbidden|\b403\b/i.test(line))).toEqual([]);

    const { allowed, denied } = controllerAccess(NAMESPACE, LEASE);
    const kubeconfig = join(workDir, 'qubesec-sa.kubeconfig');
    expect(await accessReviews(kubeconfig, allowed)).toEqual(allowed.map((attributes) => [attributes, true]));
    expect(await accessReviews(kubeconfig, denied)).toEqual(denied.map((attributes) => [attributes, false]));
  });
});
