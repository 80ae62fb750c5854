// What a browser gets from a host with an ML-DSA and an ECDSA certificate: headless Chromium 156 (which offers
// ML-DSA-65) trusting only an ECDSA root, as browsers do today, against the real controller and NGINX.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startEchoBackend, type EchoBackend } from '../controller/cli/echo-backend.js';
import { generateKeyPair, type SignatureAlgorithm } from '../controller/pki/algorithms.js';
import { issueCertificate, privateKeyPem } from '../controller/pki/x509.js';
import { startBrowser, type Browser } from './lib/browser.js';
import { pqCurl, tlsSession } from './lib/clients.js';
import { freePort, rootfs } from './lib/env.js';
import { startTestController, type TestController } from './lib/harness.js';
import { QUBESEC_CLASS, pqIngress, serviceFor } from './lib/objects.js';

// TLS SignatureScheme code points (RFC 8446, draft-ietf-tls-mldsa) as Chromium's DevTools report them.
const ECDSA_SECP256R1_SHA256 = 0x0403;
const MLDSA65 = 0x0905;

const HOSTS = { classical: 'classical.pq.example.com', client: 'client.pq.example.com', postQuantum: 'pq-first.pq.example.com' };

let dir: string;
let anchorsDir: string;
let controller: TestController;
let browser: Browser;
let backend: EchoBackend;
const roots: Partial<Record<'ecdsa' | 'mldsa', { hostPath: string; rootfsPath: string }>> = {};

/** A root CA and a server certificate under it for every test host, as a kubernetes.io/tls Secret. */
async function hierarchy(kind: 'ecdsa' | 'mldsa', algorithm: SignatureAlgorithm): Promise<object> {
  const rootKey = generateKeyPair(algorithm);
  const notAfter = new Date(Date.now() + 29 * 86_400_000);
  const rootPem = await issueCertificate({ subject: `CN=QubeSec browser test ${kind} root`, profile: 'ca', notAfter: new Date(Date.now() + 30 * 86_400_000), publicKey: rootKey.publicKey }, { selfKey: rootKey.privateKey });
  const leafKey = generateKeyPair(algorithm);
  const leafPem = await issueCertificate({ subject: `CN=${HOSTS.classical}`, dnsNames: Object.values(HOSTS), profile: 'server', notAfter, publicKey: leafKey.publicKey }, { certificatePem: rootPem, privateKey: rootKey.privateKey });
  const hostPath = join(anchorsDir, `${kind}-root.crt`);
  await writeFile(hostPath, rootPem);
  roots[kind] = { hostPath, rootfsPath: hostPath.slice(rootfs().length) };
  const data = { 'tls.crt': Buffer.from(leafPem).toString('base64'), 'tls.key': Buffer.from(privateKeyPem(leafKey.privateKey)).toString('base64') };
  return { apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name: `browser-${kind}`, namespace: 'default' }, data };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qubesec-browser-'));
  anchorsDir = await mkdtemp(join(rootfs(), 'tmp', 'qubesec-browser-ca-'));
  const port = await freePort();
  backend = await startEchoBackend('web', port);
  const { service, slice } = serviceFor('web', port, '127.0.0.1');
  const secrets = [await hierarchy('ecdsa', 'ecdsa-p256'), await hierarchy('mldsa', 'ml-dsa-65')];
  const both = { secrets: ['browser-mldsa', 'browser-ecdsa'] };
  const ingresses = [
    pqIngress('classical', HOSTS.classical, 'web', { ...both, annotations: { 'qubesec.io/certificate-preference': 'classical' } }),
    pqIngress('client', HOSTS.client, 'web', both),
    pqIngress('post-quantum', HOSTS.postQuantum, 'web', { ...both, annotations: { 'qubesec.io/certificate-preference': 'post-quantum' } }),
  ];
  const objects = [{ ...QUBESEC_CLASS, metadata: { name: 'qubesec', annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' } } }, service, slice, ...secrets, ...ingresses];
  await writeFile(join(dir, 'all.yaml'), objects.map((o) => stringify(o)).join('---\n'));
  controller = await startTestController({ manifests: dir });
  browser = await startBrowser([roots.ecdsa!.hostPath]);
}, 120_000);

afterAll(async () => {
  await browser?.stop();
  await controller?.stop();
  backend?.close();
  await rm(dir, { recursive: true, force: true });
  if (anchorsDir) await rm(anchorsDir, { recursive: true, force: true });
});

const url = (host: string) => `https://${host}:${controller.httpsPort}/page`;

describe('certificates browsers get', () => {
  it('classical preference: Chromium gets the ECDSA certificate, verifies it against its trusted ECDSA root, over X25519MLKEM768', async () => {
    const visit = await browser.visit(url(HOSTS.classical));
    expect(visit.error).toBeUndefined();
    expect(visit.status).toBe(200);
    expect(JSON.parse(visit.body!)).toEqual(expect.objectContaining({ backend: 'web', path: '/page' }));
    expect(visit.tls).toEqual(expect.objectContaining({
      protocol: 'TLS 1.3',
      keyExchangeGroup: 'X25519MLKEM768',
      serverSignatureAlgorithm: ECDSA_SECP256R1_SHA256,
      issuer: 'QubeSec browser test ecdsa root',
    }));
  });

  it("the client's preference (the default): Chromium takes the ML-DSA certificate, which its trust store cannot verify", async () => {
    const visit = await browser.visit(url(HOSTS.client));
    expect(visit).toEqual({ error: 'net::ERR_CERT_AUTHORITY_INVALID' });
    // Which certificate that was: loaded despite the error, the handshake was signed with ML-DSA-65.
    const anyway = await browser.visit(url(HOSTS.client), { ignoreCertificateErrors: true });
    expect(anyway.tls).toEqual(expect.objectContaining({ keyExchangeGroup: 'X25519MLKEM768', serverSignatureAlgorithm: MLDSA65, issuer: 'QubeSec browser test mldsa root' }));
  });

  it('PQ clients: the server order decides where a host prefers one kind, the client order where it does not', async () => {
    const cacert = roots.mldsa!.rootfsPath;
    // curl (OpenSSL 3.5) lists ML-DSA first.
    const signature = async (host: string, ca: string) => (await pqCurl({ host, port: controller.httpsPort }, { cacert: ca })).signature;
    expect(await signature(HOSTS.client, cacert)).toBe('id-ml-dsa-65');
    expect(await signature(HOSTS.postQuantum, cacert)).toBe('id-ml-dsa-65');
    const classical = await pqCurl({ host: HOSTS.classical, port: controller.httpsPort }, { cacert: roots.ecdsa!.rootfsPath });
    expect([classical.status, classical.group, classical.signature]).toEqual([200, 'X25519MLKEM768', 'id-ecPublicKey']);
    // A client that lists ECDSA first gets ECDSA from the default host and ML-DSA from the post-quantum one.
    const ecdsaFirst = ['-sigalgs', 'ecdsa_secp256r1_sha256:mldsa65'];
    expect((await tlsSession(HOSTS.client, controller.httpsPort, { args: ecdsaFirst })).peerSignature).toMatch(/ecdsa/i);
    expect((await tlsSession(HOSTS.postQuantum, controller.httpsPort, { args: ecdsaFirst })).peerSignature).toMatch(/mldsa65|ML-DSA-65/i);
  });

  it('post-quantum preference: Chromium gets the ML-DSA certificate too', async () => {
    expect(await browser.visit(url(HOSTS.postQuantum))).toEqual({ error: 'net::ERR_CERT_AUTHORITY_INVALID' });
    const anyway = await browser.visit(url(HOSTS.postQuantum), { ignoreCertificateErrors: true });
    expect(anyway.tls?.serverSignatureAlgorithm).toBe(MLDSA65);
  });
});
