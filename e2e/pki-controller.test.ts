// The PKI controller on a real API server: CRDs, issuers, Certificates -> Secrets -> served by the ingress,
// renewal without failed requests, the ingress-shim annotation, and clear conditions for bad input.
import { rm, writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { CustomObjectsApi, type V1Secret } from '@kubernetes/client-node';
import { execa } from 'execa';
import { generateKeyPair } from '../controller/pki/algorithms.js';
import { issueCertificate, privateKeyPem } from '../controller/pki/x509.js';
import { startCluster, type TestCluster } from './cluster/cluster.js';
import { startEcho } from './lib/backends.js';
import { legacyHandshake, pqCurl } from './lib/clients.js';
import { eventually, rootfs } from './lib/env.js';
import { startTestController, type TestController } from './lib/harness.js';
import { Kube } from './lib/kube.js';
import { createTestHost, type TestHost } from './lib/netns.js';
import { QUBESEC_CLASS, pqIngress } from './lib/objects.js';

let cluster: TestCluster;
let kube: Kube;
let custom: CustomObjectsApi;
let controller: TestController;
let testHost: TestHost;
const anchors: string[] = [];

const G = { group: 'qubesec.io', version: 'v1alpha1' };
type Status = { conditions?: { type: string; status: string; reason: string; message: string }[]; revision?: number; algorithm?: string; notAfter?: string; renewalTime?: string };
const ready = (status: Status | undefined) => status?.conditions?.find((c) => c.type === 'Ready');
const certificateStatus = async (name: string) => ((await custom.getNamespacedCustomObject({ ...G, namespace: 'default', plural: 'certificates', name })) as { status?: Status }).status;
const clusterIssuerStatus = async (name: string) => ((await custom.getClusterCustomObject({ ...G, plural: 'clusterissuers', name })) as { status?: Status }).status;
const secret = (name: string) => kube.core.readNamespacedSecret({ namespace: 'default', name }).catch(() => undefined);
const secretCert = (s: V1Secret | undefined, key = 'tls.crt') => Buffer.from(s?.data?.[key] ?? '', 'base64').toString();

function certificate(name: string, spec: Record<string, unknown>) {
  return { apiVersion: 'qubesec.io/v1alpha1', kind: 'Certificate', metadata: { name, namespace: 'default' }, spec: { secretName: name, ...spec } };
}
function clusterIssuer(name: string, spec: Record<string, unknown>) {
  return { apiVersion: 'qubesec.io/v1alpha1', kind: 'ClusterIssuer', metadata: { name }, spec };
}
async function untilReady(get: () => Promise<Status | undefined>, what: string, status = 'True'): Promise<Status> {
  return eventually(async () => {
    const s = await get();
    if (ready(s)?.status === status) return s;
    throw new Error(`${what}: ${JSON.stringify(ready(s))}`);
  }, 20_000, what);
}
/** Writes a Secret's ca.crt into the rootfs, for curl --cacert; returns the rootfs path. */
async function anchor(secretName: string): Promise<string> {
  const path = `/tmp/qubesec-anchor-${secretName}-${process.pid}.pem`;
  await writeFile(join(rootfs(), path), secretCert(await secret(secretName), 'ca.crt'));
  anchors.push(join(rootfs(), path));
  return path;
}

beforeAll(async () => {
  cluster = await startCluster();
  kube = new Kube(cluster.kc);
  custom = cluster.kc.makeApiClient(CustomObjectsApi);
  await kube.installQubesecCrds();
  testHost = await createTestHost();
  const port = await startEcho(testHost, 'pki');
  await kube.publishService('pki', port, testHost.address);
  await kube.apply(QUBESEC_CLASS);
  controller = await startTestController({ kubeconfig: cluster.kubeconfigPath }, ['--cluster-resource-namespace', 'default', '--default-certificate-algorithm', 'ml-dsa-87']);

  // Bootstrap, as a user would: a self-signed issuer makes an ML-DSA and an ECDSA root, a CA issuer uses them.
  await kube.apply(clusterIssuer('selfsigned', { selfSigned: {} }));
  await kube.apply(certificate('root-ca', { isCA: true, commonName: 'QubeSec E2E Root', algorithm: 'ml-dsa-65', duration: '87600h', issuerRef: { kind: 'ClusterIssuer', name: 'selfsigned' } }));
  await kube.apply(certificate('root-ca-ecdsa', { isCA: true, commonName: 'QubeSec E2E ECDSA Root', algorithm: 'ecdsa-p256', duration: '87600h', issuerRef: { kind: 'ClusterIssuer', name: 'selfsigned' } }));
  await kube.apply(clusterIssuer('pq-ca', { ca: { secretName: 'root-ca', classicalSecretName: 'root-ca-ecdsa' } }));
  await untilReady(() => clusterIssuerStatus('pq-ca'), 'ClusterIssuer pq-ca');
}, 300_000);

afterAll(async () => {
  await controller?.stop();
  await testHost?.stop();
  await cluster?.stop();
  for (const a of anchors) await rm(a, { force: true });
});

const https = (host: string) => ({ host, port: controller.httpsPort });

describe('PKI controller on a real API server', () => {
  it('issues an ML-DSA certificate and its ECDSA twin that the ingress serves to PQ and legacy clients', async () => {
    await kube.apply(certificate('web', { dnsNames: ['web.pki.example.com'], classicalTwin: true, issuerRef: { kind: 'ClusterIssuer', name: 'pq-ca' } }));
    const status = await untilReady(() => certificateStatus('web'), 'Certificate web');
    expect(status.algorithm).toBe('ml-dsa-65');
    const [web, twin] = [await secret('web'), await secret('web-classical')];
    expect(web!.type).toBe('kubernetes.io/tls');
    expect(Object.keys(web!.data!).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
    const leaf = new X509Certificate(secretCert(web));
    expect(leaf.publicKey.asymmetricKeyType).toBe('ml-dsa-65');
    expect(leaf.verify(new X509Certificate(secretCert(web, 'ca.crt')).publicKey)).toBe(true);
    expect(new X509Certificate(secretCert(twin)).publicKey.asymmetricKeyType).toBe('ec');
    // Default renewal at two thirds of the lifetime.
    const lifetime = new Date(leaf.validTo).getTime() - new Date(leaf.validFrom).getTime();
    expect(Math.abs(new Date(status.renewalTime!).getTime() - (new Date(leaf.validFrom).getTime() + (lifetime * 2) / 3))).toBeLessThan(2000);

    await kube.apply(pqIngress('web', 'web.pki.example.com', 'pki', { secrets: ['web', 'web-classical'] }));
    const pqRoot = await anchor('web');
    const r = await eventually(async () => {
      const x = await pqCurl(https('web.pki.example.com'), { cacert: pqRoot, curves: 'X25519MLKEM768' });
      return x.status === 200 ? x : undefined;
    }, 15_000, 'served with the issued certificate');
    expect(r.signature).toBe('id-ml-dsa-65');
    const ecdsaRoot = join(rootfs(), await anchor('web-classical'));
    // The twin's Secret may reach the controller's informer a sync after the ML-DSA one.
    const legacy = await eventually(async () => {
      const x = await legacyHandshake('web.pki.example.com', controller.httpsPort, ecdsaRoot);
      return x.ok ? x : undefined;
    }, 15_000, 'served with the ECDSA twin');
    expect([legacy.ok, legacy.signatureType, legacy.verification]).toEqual([true, 'ECDSA', 'OK']);

    // A spec change re-issues at once.
    await kube.apply(certificate('web', { dnsNames: ['web.pki.example.com', 'www.pki.example.com'], classicalTwin: true, issuerRef: { kind: 'ClusterIssuer', name: 'pq-ca' } }));
    await eventually(async () => (new X509Certificate(secretCert(await secret('web'))).subjectAltName ?? '').includes('DNS:www.pki.example.com') || undefined, 15_000, 're-issued on spec change');
    expect((await certificateStatus('web'))!.revision).toBeGreaterThan(status.revision!);
  });

  it('gives an annotated Ingress that names no algorithm the --default-certificate-algorithm', async () => {
    await kube.apply(pqIngress('shim-default', 'shim-default.pki.example.com', 'pki', { secrets: ['shim-default-tls'], annotations: { 'qubesec.io/cluster-issuer': 'pq-ca' } }));
    const status = await untilReady(() => certificateStatus('shim-default-tls').catch(() => undefined), 'Certificate shim-default-tls');
    expect(status.algorithm).toBe('ml-dsa-87');
    expect(new X509Certificate(secretCert(await secret('shim-default-tls'))).publicKey.asymmetricKeyType).toBe('ml-dsa-87');
  });

  it('creates a Certificate for an Ingress annotated with qubesec.io/cluster-issuer', async () => {
    const ingress = pqIngress('shim', 'shim.pki.example.com', 'pki', { secrets: ['shim-tls'], annotations: { 'qubesec.io/cluster-issuer': 'pq-ca', 'qubesec.io/certificate-algorithm': 'ml-dsa-44' } });
    await kube.apply(ingress);
    const status = await untilReady(() => certificateStatus('shim-tls').catch(() => undefined), 'Certificate shim-tls');
    expect(status.algorithm).toBe('ml-dsa-44');
    const created = (await custom.getNamespacedCustomObject({ ...G, namespace: 'default', plural: 'certificates', name: 'shim-tls' })) as { metadata: { ownerReferences: { kind: string; name: string }[] }; spec: { dnsNames: string[] } };
    expect(created.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'Ingress', name: 'shim' })]);
    expect(created.spec.dnsNames).toEqual(['shim.pki.example.com']);
    const root = await anchor('shim-tls');
    const r = await eventually(async () => {
      const x = await pqCurl(https('shim.pki.example.com'), { cacert: root });
      return x.status === 200 ? x : undefined;
    }, 15_000, 'shim host served');
    expect(r.signature).toBe('id-ml-dsa-44');
  });

  it('renews before expiry and NGINX picks the new certificate up without failed requests', async () => {
    await kube.apply(certificate('short', { dnsNames: ['short.pki.example.com'], duration: '30s', renewBefore: '22s', issuerRef: { kind: 'ClusterIssuer', name: 'pq-ca' } }));
    await untilReady(() => certificateStatus('short'), 'Certificate short');
    await kube.apply(pqIngress('short', 'short.pki.example.com', 'pki', { secrets: ['short'] }));
    const root = await anchor('short');
    await eventually(async () => ((await pqCurl(https('short.pki.example.com'), { cacert: root })).status === 200 || undefined), 15_000, 'short served');
    const servedSerial = async () => {
      const r = await execa('sh', ['-c', `chroot ${rootfs()} openssl s_client -connect 127.0.0.1:${controller.httpsPort} -servername short.pki.example.com </dev/null 2>/dev/null | chroot ${rootfs()} openssl x509 -noout -serial`], { reject: false });
      return r.stdout.replace('serial=', '').trim();
    };
    const first = await servedSerial();
    const firstRevision = (await certificateStatus('short'))!.revision!;

    let requests = 0;
    let failures = 0;
    let serial = first;
    const deadline = Date.now() + 25_000;
    while (Date.now() < deadline && (serial === first || requests < 10)) {
      const r = await pqCurl(https('short.pki.example.com'), { cacert: root });
      requests++;
      if (r.status !== 200) failures++;
      serial = await servedSerial();
    }
    expect(serial).not.toBe(first);
    // The Certificate's status is written after the Secret, which NGINX may already serve.
    await eventually(async () => ((await certificateStatus('short'))!.revision! > firstRevision || undefined), 15_000, 'revision after renewal');
    console.log(`renewal: ${requests} requests during renewal, ${failures} failed; served serial ${first.slice(0, 8)}... -> ${serial.slice(0, 8)}...`);
    expect(failures).toBe(0);
  });

  it('gives a clear condition and Event for a mismatched CA key, an expired CA, a Secret it does not own, and an unsupported algorithm', async () => {
    const root = await secret('root-ca');
    const b64 = (t: string) => Buffer.from(t).toString('base64');
    await kube.apply({ apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name: 'mismatched-ca', namespace: 'default' }, data: { 'tls.crt': root!.data!['tls.crt']!, 'tls.key': b64(privateKeyPem(generateKeyPair('ml-dsa-65').privateKey)) } });
    await kube.apply(clusterIssuer('mismatched', { ca: { secretName: 'mismatched-ca' } }));
    const mismatched = await untilReady(() => clusterIssuerStatus('mismatched'), 'mismatched issuer', 'False');
    expect(ready(mismatched)).toEqual(expect.objectContaining({ reason: 'KeyMismatch', message: 'spec.ca.secretName: in Secret mismatched-ca, tls.key does not match tls.crt' }));

    const keys = generateKeyPair('ml-dsa-65');
    const expiredPem = await issueCertificate({ subject: 'CN=Expired CA', profile: 'ca', notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000), publicKey: keys.publicKey }, { selfKey: keys.privateKey });
    await kube.apply({ apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name: 'expired-ca', namespace: 'default' }, data: { 'tls.crt': b64(expiredPem), 'tls.key': b64(privateKeyPem(keys.privateKey)) } });
    await kube.apply(clusterIssuer('expired', { ca: { secretName: 'expired-ca' } }));
    expect(ready(await untilReady(() => clusterIssuerStatus('expired'), 'expired issuer', 'False'))!.reason).toBe('Expired');

    await kube.apply(certificate('from-broken', { dnsNames: ['broken.pki.example.com'], issuerRef: { kind: 'ClusterIssuer', name: 'mismatched' } }));
    const broken = await untilReady(() => certificateStatus('from-broken'), 'from-broken', 'False');
    expect(ready(broken)!.reason).toBe('IssuerNotReady');
    expect(ready(broken)!.message).toContain('KeyMismatch');
    expect(await secret('from-broken')).toBeUndefined();
    expect(await eventually(async () => (await kube.eventNotes('default', 'Certificate', 'from-broken')).find((n) => n.startsWith('IssuerNotReady')))).toContain('ClusterIssuer mismatched is not ready');

    await kube.apply({ apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name: 'taken', namespace: 'default' }, data: { note: b64('not yours') } });
    await kube.apply(certificate('taken', { dnsNames: ['taken.pki.example.com'], issuerRef: { kind: 'ClusterIssuer', name: 'pq-ca' } }));
    expect(ready(await untilReady(() => certificateStatus('taken'), 'taken', 'False'))!.reason).toBe('SecretNotOwned');
    expect((await secret('taken'))!.data).toEqual({ note: b64('not yours') });

    await expect(kube.apply(certificate('falcon', { dnsNames: ['f.pki.example.com'], algorithm: 'falcon-512', issuerRef: { kind: 'ClusterIssuer', name: 'pq-ca' } })))
      .rejects.toThrow(/spec\.algorithm: Unsupported value/);
  });
});
