// The PKI's key material and the session ticket keys from the QRNG service (--entropy-source), on a real API server:
// the leader's ticket key is 80 bytes the service served; the controller (in this process) issues a Certificate whose ML-DSA key was made from a seed the service (a real `qubesec qrng serve`
// process, its source the test double) served, and its serial too; with the service's only quantum source faulted the
// PKI issues nothing and the Certificate's status says EntropyUnavailable; once the source is back it is issued.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { startCluster, type TestCluster } from './cluster/cluster.js';
import { nodeHttps } from './lib/clients.js';
import { eventually, metricValue } from './lib/env.js';
import { startTestController, type TestController } from './lib/harness.js';
import { Kube } from './lib/kube.js';
import { startTestQrngService, type TestQrngService } from './lib/qrng-service.js';

const TOKEN = 'pki-token-0123456789';
const G = { group: 'qubesec.io', version: 'v1alpha1' };
type Condition = { type: string; status: string; reason: string; message: string };

let cluster: TestCluster;
let kube: Kube;
let custom: CustomObjectsApi;
let service: TestQrngService;
let controller: TestController;

const ready = async (name: string) =>
  ((await custom.getNamespacedCustomObject({ ...G, namespace: 'default', plural: 'certificates', name })) as { status?: { conditions?: Condition[] } }).status?.conditions?.find((c) => c.type === 'Ready');
const until = (name: string, reason: string) =>
  eventually(async () => {
    const condition = await ready(name);
    if (condition?.reason === reason) return condition;
    throw new Error(`Certificate ${name}: ${JSON.stringify(condition)}`);
  }, 30_000, `Certificate ${name} ${reason}`);
const certificate = (name: string) => ({
  apiVersion: 'qubesec.io/v1alpha1', kind: 'Certificate', metadata: { name, namespace: 'default' },
  spec: { secretName: name, commonName: `${name}.example`, dnsNames: [`${name}.example`], algorithm: 'ml-dsa-65', issuerRef: { kind: 'ClusterIssuer', name: 'selfsigned' } },
});
const servedToPki = async () => metricValue(await service.metrics(), 'qubesec_qrng_served_bytes_total{client="pki"}');

beforeAll(async () => {
  cluster = await startCluster();
  kube = new Kube(cluster.kc);
  custom = cluster.kc.makeApiClient(CustomObjectsApi);
  await kube.installQubesecCrds();
  // As the chart runs it: Events about its sources on its Pod (the Pod need not exist for an Event to name it).
  service = await startTestQrngService(['--event-pod', 'default/qrng-0', '--kubeconfig', cluster.kubeconfigPath], { pki: TOKEN });
  await writeFile(join(service.dir, 'pki-token'), `${TOKEN}\n`);
  controller = await startTestController({ kubeconfig: cluster.kubeconfigPath }, [
    '--entropy-source', `https://127.0.0.1:${service.port}`, '--entropy-source-ca', join(service.dir, 'ca.pem'), '--entropy-source-token-file', join(service.dir, 'pki-token'),
  ]);
  await kube.apply({ apiVersion: 'qubesec.io/v1alpha1', kind: 'ClusterIssuer', metadata: { name: 'selfsigned' }, spec: { selfSigned: {} } });
}, 300_000);

afterAll(async () => {
  await controller?.stop();
  await service?.stop();
  await cluster?.stop();
});

describe('the PKI with --entropy-source', () => {
  it('makes the session ticket key from the service, then issues with a key seed and serial drawn from it', async () => {
    // The leader's first session ticket key: 80 bytes from the service.
    await eventually(() => kube.core.readNamespacedSecret({ namespace: 'default', name: 'qubesec-session-tickets' }), 30_000, 'the session ticket Secret');
    // (The client asks in 64-byte blocks: a draw may take more than it uses, and drops the rest.)
    const afterTicketKey = await servedToPki();
    expect(afterTicketKey).toBeGreaterThanOrEqual(80);
    await kube.apply(certificate('drawn'));
    await until('drawn', 'Issued');
    // 32 bytes of ML-DSA seed and 20 of serial, each its own request.
    expect((await servedToPki()) - afterTicketKey).toBeGreaterThanOrEqual(52);
  });

  it('issues nothing while the service has no healthy quantum source, says EntropyUnavailable in the status, and issues once it is back', async () => {
    service.source.fault = 'unavailable';
    // Blocks the pool gathered before the fault may still be served; once it has seen the fault it refuses.
    await eventually(async () => {
      const reply = await nodeHttps(`https://127.0.0.1:${service.port}/v1/entropy`, { method: 'POST', ca: service.caPem, headers: { Authorization: `Bearer ${TOKEN}` } }, '{"block_size": 32}');
      return reply.status === 503 ? true : undefined;
    }, 30_000, 'the service refusing');
    await kube.apply(certificate('refused'));
    const refused = await until('refused', 'EntropyUnavailable');
    expect(refused.status).toBe('False');
    expect(refused.message).toMatch(/^Certificate default\/refused: not issued: no randomness from https:\/\/127\.0\.0\.1:\d+: .*503.*no healthy quantum entropy source/);
    // The PKI tries again every 5 s; over two tries the service serves it nothing and no Secret appears.
    const before = await servedToPki();
    await new Promise((r) => setTimeout(r, 11_000));
    expect(await servedToPki()).toBe(before);
    expect((await ready('refused'))?.reason).toBe('EntropyUnavailable');
    expect(await kube.core.readNamespacedSecret({ namespace: 'default', name: 'refused' }).catch(() => undefined)).toBeUndefined();
    expect(metricValue(await service.metrics(), 'qubesec_qrng_requests_total{path="/v1/entropy",code="503"}')).toBeGreaterThanOrEqual(2);

    service.source.fault = 'none';
    await until('refused', 'Issued');
    expect(await servedToPki()).toBeGreaterThan(before);

    // The outage and the recovery, once each, as Events on the service's Pod.
    const events = await eventually(async () => {
      const list = (await kube.core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.kind=Pod,involvedObject.name=qrng-0' })).items;
      return list.some((e) => e.reason === 'EntropySourceHealthy') ? list : undefined;
    }, 20_000, 'the EntropySourceHealthy Event');
    // Listed by name (random suffixes): in the order they were written, their resourceVersions' (etcd revisions).
    events.sort((a, b) => Number(a.metadata!.resourceVersion) - Number(b.metadata!.resourceVersion));
    expect(events.map((e) => [e.type, e.reason])).toEqual([['Warning', 'EntropySourceOut'], ['Normal', 'EntropySourceHealthy']]);
    expect(events[0]!.message).toMatch(/^entropy source "vendor" \(quantum\) taken out \(unavailable\): .*503.*; retried with backoff/);
  });
});
