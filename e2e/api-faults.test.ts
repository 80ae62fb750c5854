// API server faults between the controller and a real kube-apiserver (e2e/lib/fault-proxy.ts): lists answered 500,
// watches cut or expired with 410 Gone, lists held. Nothing may act on a partial view: no configuration, no readiness, no Ingress
// status and no Issuer condition before every kind's first list is in; through later faults NGINX keeps serving what
// the last full view made, and the controller converges, reloading only for what really changed.
import { CustomObjectsApi, KubeConfig, Watch, type V1Ingress } from '@kubernetes/client-node';
import { createLogger } from '../controller/observability/log.js';
import { createMetrics } from '../controller/observability/metrics.js';
import { KubernetesSource } from '../controller/sources/kubernetes.js';
import { MAX_BACKOFF_MS } from '../controller/sources/reflector.js';
import { generateKeyPair } from '../controller/pki/algorithms.js';
import { issueCertificate, privateKeyPem } from '../controller/pki/x509.js';
import { startEcho } from './lib/backends.js';
import { pqCurl } from './lib/clients.js';
import { eventually, freePort, metricValue } from './lib/env.js';
import { startFaultProxy, type FaultProxy } from './lib/fault-proxy.js';
import { startTestController, type TestController } from './lib/harness.js';
import { pqIngress } from './lib/objects.js';
import { startClusterSetup, stopClusterSetup, type ClusterSetup } from './lib/setup.js';

const ADDRESS = '198.18.0.10';
const PUBLISH = ['--publish-status-address', ADDRESS];
/** Collections the ingress side lists and watches. */
const WATCHED = /\/(ingressclasses|ingresses|services|endpointslices|secrets|configmaps)$/;

let setup: ClusterSetup;
let proxy: FaultProxy;
let controller: TestController | undefined;
/** Every status.loadBalancer the Ingresses had, as the API server stored them, from a watch of the test's own. */
const statusHistory: { name: string; ips: string[] }[] = [];
let statusWatch: AbortController | undefined;
let watchingStatus = true;
/** statusHistory from here on is what the replicas under test did. */
let publishedAt = 0;

/** Follows the Ingresses from resourceVersion on, again after every end (client-node ends a watch quiet for 30 s). */
async function watchStatus(resourceVersion?: string): Promise<void> {
  let last = resourceVersion;
  statusWatch = await new Watch(setup.cluster.kc).watch('/apis/networking.k8s.io/v1/namespaces/default/ingresses', last ? { resourceVersion: last } : {}, (type, ingress: V1Ingress) => {
    if (type === 'ERROR' || type === 'BOOKMARK') return;
    last = ingress.metadata?.resourceVersion;
    if (type !== 'DELETED') statusHistory.push({ name: ingress.metadata!.name!, ips: ingress.status?.loadBalancer?.ingress?.map((a) => a.ip!) ?? [] });
  }, () => {
    if (watchingStatus) void watchStatus(last);
  });
}

const https = (host: string) => ({ host, port: controller!.httpsPort, path: '/' });
const statusOf = async (name: string) =>
  ((await setup.kube.objects.read({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { namespace: 'default', name } })) as V1Ingress).status?.loadBalancer?.ingress?.map((a) => a.ip) ?? [];
const servesRealCertificate = async (host: string) => {
  const r = await pqCurl(https(host), { cacert: setup.anchors.mldsa });
  return [r.status, r.signature];
};

beforeAll(async () => {
  setup = await startClusterSetup();
  await setup.kube.installQubesecCrds();
  const port = await startEcho(setup.testHost, 'steady');
  await setup.kube.publishService('steady', port, setup.testHost.address);
  await setup.kube.apply(pqIngress('steady', 'steady.pq.example.com', 'steady', { secrets: ['pq-mldsa'] }));
  proxy = await startFaultProxy(setup.cluster);
  await watchStatus();
  // The replica the tests start replaces one that published the Ingress's status, as in a rolling update.
  const previous = await startTestController({ kubeconfig: setup.cluster.kubeconfigPath }, PUBLISH);
  try {
    await eventually(async () => statusHistory.some((h) => h.name === 'steady' && h.ips.join() === ADDRESS) || undefined, 20_000, 'status published by the previous replica');
    publishedAt = statusHistory.length;
  } finally {
    await previous.stop();
  }
}, 300_000);

afterAll(async () => {
  watchingStatus = false;
  statusWatch?.abort();
  await controller?.stop();
  await proxy?.stop();
  await stopClusterSetup(setup);
});

describe('API server faults', () => {
  it('applies nothing, stays not ready and leaves Ingress status alone until every first list is in; then serves the real certificate', async () => {
    proxy.fail({ lists: /\/(ingressclasses|secrets)$/ });
    // A list the API server never answers is no list either.
    proxy.stall({ lists: /\/services$/ });
    const metricsPort = await freePort();
    const observe = (path: string) => fetch(`http://127.0.0.1:${metricsPort}${path}`);
    const starting = startTestController({ kubeconfig: proxy.kubeconfigPath }, [...PUBLISH, '--metrics-port', String(metricsPort)]);
    try {
      await eventually(async () => proxy.count('list', /\/ingressclasses$/, 'failed') >= 3 || undefined, 30_000, 'the first list of IngressClasses retried');
      expect((await observe('/readyz')).status).toBe(503);
      const metrics = await (await observe('/metrics')).text();
      expect(metricValue(metrics, 'qubesec_config_reloads_total')).toBe(0);
      expect(metricValue(metrics, 'qubesec_source_synced{resource="secrets"}')).toBe(0);
      expect(metricValue(metrics, 'qubesec_source_synced{resource="services"}')).toBe(0);
      expect(metricValue(metrics, 'qubesec_source_synced{resource="ingresses"}')).toBe(1);
      expect(metricValue(metrics, 'qubesec_source_list_failures_total{resource="ingressclasses"}')).toBeGreaterThanOrEqual(3);
      expect(await statusOf('steady')).toEqual([ADDRESS]);
    } finally {
      proxy.heal();
      controller = await starting;
    }
    expect((await observe('/readyz')).status).toBe(200);
    expect(await servesRealCertificate('steady.pq.example.com')).toEqual([200, 'id-ml-dsa-65']);
    expect(await controller.metric('qubesec_config_reloads_total')).toBe(1);
    expect(controller.logs.some((l) => l.includes('initial list failed'))).toBe(true);
  });

  it('keeps serving and ready through expired and cut watches, a restarted API server and failing lists, then converges, reloading only for the change made meanwhile', async () => {
    const c = controller!;
    const reloads = await c.metric('qubesec_config_reloads_total');
    const failures = async () => metricValue(await c.metricsText(), 'qubesec_source_list_failures_total{resource="ingresses"}');
    const failuresBefore = await failures();

    // 410 Gone: every kind relists, finds what it had, and nothing syncs or reloads.
    const relists = proxy.count('list', WATCHED, 'ok');
    proxy.expireWatches();
    await eventually(async () => proxy.count('list', WATCHED, 'ok') >= relists + 5 || undefined, 20_000, 'every kind relisted');
    // Cut watches resume from their resourceVersion.
    proxy.cutWatches();
    await eventually(async () => proxy.openWatches(WATCHED) >= 5 || undefined, 20_000, 'watches open again');
    // A restarted kube-apiserver: watches end, requests are refused for a while, then everything resumes.
    await setup.cluster.restartApiServer();
    await eventually(async () => proxy.openWatches(WATCHED) >= 5 || undefined, 30_000, 'watches open on the restarted API server');
    expect(await servesRealCertificate('steady.pq.example.com')).toEqual([200, 'id-ml-dsa-65']);

    // The API server fails every list and answers every watch 410 Gone: every kind needs a list it cannot get.
    proxy.fail({ lists: WATCHED, expiredWatches: WATCHED });
    proxy.cutWatches();
    // After the restart's failures a reflector may be backing off at the cap before each of the two lists.
    await eventually(async () => (await failures()) >= failuresBefore + 2 || undefined, 2 * MAX_BACKOFF_MS + 10_000, 'relists failing');
    await setup.kube.apply(pqIngress('later', 'later.pq.example.com', 'steady', { secrets: ['pq-mldsa'] }));
    expect(await servesRealCertificate('steady.pq.example.com')).toEqual([200, 'id-ml-dsa-65']);
    expect((await fetch(`http://127.0.0.1:${c.metricsPort}/readyz`)).status).toBe(200);
    expect(await c.metric('qubesec_config_reloads_total')).toBe(reloads);

    proxy.heal();
    await eventually(async () => {
      const [status] = await servesRealCertificate('later.pq.example.com');
      return status === 200 || undefined;
    }, 30_000, 'the Ingress made during the outage served');
    // A new host serves before its reload (e2e/new-hosts.test.ts): that one reload follows, and no other.
    await eventually(async () => ((await c.metric('qubesec_new_hosts')) === 0 || undefined), 30_000, 'the new host\'s reload');
    expect(await c.metric('qubesec_config_reloads_total')).toBe(reloads + 1);
    await eventually(async () => (await statusOf('later'))[0] === ADDRESS || undefined, 20_000, 'status of the new Ingress');
    expect(await servesRealCertificate('steady.pq.example.com')).toEqual([200, 'id-ml-dsa-65']);
    // Throughout, the served Ingress never lost its published address.
    expect(statusHistory.slice(publishedAt).filter((h) => h.name === 'steady' && h.ips.join() !== ADDRESS)).toEqual([]);
  }, 240_000);

  it('keeps the PKI on through a failing CRD probe, and judges no Issuer before it has listed the Secrets', async () => {
    await controller?.stop();
    controller = undefined;
    const custom = setup.cluster.kc.makeApiClient(CustomObjectsApi);
    const keys = generateKeyPair('ecdsa-p256');
    const caPem = await issueCertificate({ subject: 'CN=QubeSec fault CA', profile: 'ca', notAfter: new Date(Date.now() + 86_400_000), publicKey: keys.publicKey }, { selfKey: keys.privateKey });
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    await setup.kube.apply({ apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name: 'fault-ca', namespace: 'default' }, data: { 'tls.crt': b64(caPem), 'tls.key': b64(privateKeyPem(keys.privateKey)) } });
    await setup.kube.apply({ apiVersion: 'qubesec.io/v1alpha1', kind: 'ClusterIssuer', metadata: { name: 'fault-ca' }, spec: { ca: { secretName: 'fault-ca' } } });
    type Conditions = { status?: { conditions?: { type: string; status: string; reason: string }[] } };
    const ready = async () => ((await custom.getClusterCustomObject({ group: 'qubesec.io', version: 'v1alpha1', plural: 'clusterissuers', name: 'fault-ca' })) as Conditions).status?.conditions?.find((x) => x.type === 'Ready');

    // The ingress side watches one namespace, so only the PKI lists Secrets in all of them.
    const pkiSecrets = /^\/api\/v1\/secrets$/;
    const certificates = /^\/apis\/qubesec\.io\/v1alpha1\/certificates$/;
    const [failedBefore, probesBefore] = [proxy.count('list', pkiSecrets, 'failed'), proxy.count('list', certificates, 'failed')];
    // First the start-up probe for the CRDs fails too: an error is not "not installed".
    proxy.fail({ lists: new RegExp(`${pkiSecrets.source}|${certificates.source}`) });
    const starting = startTestController({ kubeconfig: proxy.kubeconfigPath }, [...PUBLISH, '--watch-namespace', 'default', '--cluster-resource-namespace', 'default']);
    try {
      await eventually(async () => proxy.count('list', certificates, 'failed') >= probesBefore + 2 || undefined, 30_000, 'the probe for the qubesec.io CRDs retried');
    } finally {
      // The CRDs answer again; the Secrets still do not.
      proxy.fail({ lists: pkiSecrets });
      controller = await starting;
    }
    await eventually(async () => proxy.count('list', pkiSecrets, 'failed') >= failedBefore + 3 || undefined, 30_000, 'the PKI\'s first list of Secrets retried');
    expect(await ready()).toBeUndefined();
    expect(await controller.metric('qubesec_leader')).toBe(1);
    proxy.heal();
    await eventually(async () => ((await ready())?.status === 'True' ? true : undefined), 20_000, 'ClusterIssuer fault-ca ready');
  });

  it('abandons a list the API server never answers and lists again: a hung connection does not hold a source forever', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(proxy.kubeconfigPath);
    const metrics = createMetrics();
    const source = new KubernetesSource(kc, { watchNamespace: 'default', configMap: '', publishService: '', ticketSecretNamespace: '', listTimeoutMs: 1_000 }, metrics, createLogger('error', {}, () => undefined));
    const services = /^\/api\/v1\/namespaces\/default\/services$/;
    const before = proxy.count('list', services);
    proxy.stall({ lists: services });
    let started = false;
    const starting = source.start(() => undefined).then(() => { started = true; });
    try {
      const failures = async () => metricValue(await metrics.registry.metrics(), 'qubesec_source_list_failures_total{resource="services"}');
      await eventually(async () => (await failures()) >= 2 || undefined, 20_000, 'two stalled lists of Services abandoned');
      expect(started).toBe(false);
    } finally {
      proxy.heal();
    }
    await starting;
    // The held lists went through when healed, and so did the one that made the source synced.
    expect(proxy.count('list', services)).toBeGreaterThanOrEqual(before + 3);
    expect(source.snapshot().services.map((s) => s.metadata?.name)).toContain('steady');
    await source.stop();
  });
});

