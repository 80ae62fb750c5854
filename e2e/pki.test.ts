// The PKI against real OpenSSL 3.5 and NGINX: `qubesec cert` output verifies with `openssl verify`, shows the expected
// algorithms and extensions, and an ML-DSA root -> intermediate -> leaf chain carries a real hybrid handshake.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { startEchoBackend, type EchoBackend } from '../controller/cli/echo-backend.js';
import { PROJECT_ROOT } from '../controller/project.js';
import { pqCurl } from './lib/clients.js';
import { eventually, freePort, rootfs } from './lib/env.js';
import { startTestController, type TestController } from './lib/harness.js';
import { QUBESEC_CLASS, pqIngress, serviceFor } from './lib/objects.js';

let dir: string;
let inside: string;
const cert = (...args: string[]) =>
  execa(process.execPath, ['--disable-warning=ExperimentalWarning', join(PROJECT_ROOT, 'dist', 'controller', 'cli', 'main.js'), 'cert', ...args], { cwd: dir, reject: false, all: true });
const openssl = (...args: string[]) => execa('chroot', [rootfs(), 'openssl', ...args], { reject: false, all: true });

beforeAll(async () => {
  dir = await mkdtemp(join(rootfs(), 'tmp', 'qubesec-pki-'));
  inside = dir.slice(rootfs().length);
  for (const args of [
    ['root', '--out-cert', 'root.pem', '--out-key', 'root.key', '--subject', 'CN=E2E Root,O=QubeSec'],
    ['root', '--out-cert', 'other-root.pem', '--out-key', 'other-root.key'],
    ['root', '--algorithm', 'slh-dsa-sha2-128s', '--out-cert', 'slh-root.pem', '--out-key', 'slh-root.key'],
    ['intermediate', '--ca-cert', 'slh-root.pem', '--ca-key', 'slh-root.key', '--out-cert', 'slh-int.pem', '--out-key', 'slh-int.key'],
    ['intermediate', '--ca-cert', 'root.pem', '--ca-key', 'root.key', '--out-cert', 'int.pem', '--out-key', 'int.key'],
    ['leaf', '--ca-cert', 'int.pem', '--ca-key', 'int.key', '--algorithm', 'ml-dsa-44', '--dns', 'chain.pq.example.com', '--ip', '127.0.0.1', '--out-cert', 'leaf.pem', '--out-key', 'leaf.key'],
    ['leaf', '--ca-cert', 'int.pem', '--ca-key', 'int.key', '--algorithm', 'ml-kem-768', '--profile', 'key-establishment', '--dns', 'kem.qubesec.local', '--out-cert', 'kem.pem', '--out-key', 'kem.key'],
  ]) {
    const r = await cert(...args);
    if (r.exitCode !== 0) throw new Error(`qubesec cert ${args[0]} failed: ${r.all}`);
  }
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('qubesec cert output, checked by OpenSSL 3.5', () => {
  it('verifies leaf and ML-KEM certificates through the intermediate to the root', async () => {
    const r = await openssl('verify', '-CAfile', `${inside}/root.pem`, '-untrusted', `${inside}/int.pem`, `${inside}/leaf.pem`, `${inside}/kem.pem`);
    expect(r.all).toBe(`${inside}/leaf.pem: OK\n${inside}/kem.pem: OK`);
    const slh = await openssl('verify', '-CAfile', `${inside}/slh-root.pem`, `${inside}/slh-int.pem`);
    expect(slh.all).toBe(`${inside}/slh-int.pem: OK`);
    expect((await openssl('x509', '-in', `${inside}/slh-int.pem`, '-noout', '-text')).stdout).toMatch(/Signature Algorithm: SLH-DSA-SHA2-128s/);
    // Without the intermediate the chain is incomplete: the verification above is not vacuous.
    expect((await openssl('verify', '-CAfile', `${inside}/root.pem`, `${inside}/kem.pem`)).exitCode).not.toBe(0);
  });

  it('shows the expected algorithms and extensions', async () => {
    const text = async (file: string) => (await openssl('x509', '-in', `${inside}/${file}`, '-noout', '-text')).stdout;
    const root = await text('root.pem');
    expect(root).toMatch(/Signature Algorithm: ML-DSA-65/);
    expect(root).toMatch(/Public Key Algorithm: ML-DSA-65/);
    expect(root).toMatch(/Subject: CN=E2E Root, O=QubeSec/);
    expect(root).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE\n/);
    expect(root).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
    expect(await text('int.pem')).toMatch(/CA:TRUE, pathlen:0/);
    const leaf = await text('leaf.pem');
    expect(leaf).toMatch(/Public Key Algorithm: ML-DSA-44/);
    expect(leaf).toMatch(/Signature Algorithm: ML-DSA-65/);
    expect(leaf).toMatch(/CA:FALSE/);
    expect(leaf).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication/);
    expect(leaf).toMatch(/DNS:chain\.pq\.example\.com, IP Address:127\.0\.0\.1/);
    expect(leaf).toMatch(/X509v3 Authority Key Identifier/);
    const kem = await text('kem.pem');
    expect(kem).toMatch(/Public Key Algorithm: ML-KEM-768/);
    expect(kem).toMatch(/X509v3 Key Usage: critical\s+Key Encipherment\n/);
    expect((await openssl('pkey', '-in', `${inside}/leaf.key`, '-noout', '-text')).stdout).toMatch(/^ML-DSA-44 Private-Key/);
  });

  it('inspects the served chain, in order', async () => {
    const r = await cert('inspect', 'leaf.pem', '--json');
    const info = JSON.parse(r.stdout);
    expect(info.chainInOrder).toBe(true);
    expect(info.certificates.map((c: { publicKeyAlgorithm: string; signatureAlgorithm: string }) => `${c.publicKeyAlgorithm}/${c.signatureAlgorithm}`)).toEqual(['ml-dsa-44/ml-dsa-65', 'ml-dsa-65/ml-dsa-65']);
  });

  it('names the file and the problem for wrong input, and writes nothing', async () => {
    const mismatch = await cert('leaf', '--ca-cert', 'int.pem', '--ca-key', 'root.key', '--dns', 'x.example', '--out-cert', 'x.pem', '--out-key', 'x.key');
    expect([mismatch.exitCode, mismatch.stderr]).toEqual([1, "qubesec cert: the issuer's private key does not match its certificate"]);
    const algorithm = await cert('root', '--algorithm', 'falcon-512', '--out-cert', 'y.pem', '--out-key', 'y.key');
    expect(algorithm.stderr).toMatch(/^qubesec cert: --algorithm: "falcon-512" is not one of ml-dsa-44, ml-dsa-65/);
    const missing = await cert('inspect', 'nope.pem');
    expect(missing.stderr).toBe('qubesec cert: inspect nope.pem: no such file');
    const notKey = await cert('leaf', '--ca-cert', 'int.pem', '--ca-key', 'int.pem', '--dns', 'x.example', '--out-cert', 'x.pem', '--out-key', 'x.key');
    expect(notKey.stderr).toMatch(/^qubesec cert: --ca-key int\.pem is not a PEM private key/);
    await expect(readFile(join(dir, 'x.pem'))).rejects.toThrow();
    await expect(readFile(join(dir, 'y.pem'))).rejects.toThrow();
  });
});

describe('an ML-DSA chain in a real handshake', () => {
  let controller: TestController;
  let backend: EchoBackend;
  let manifests: string;

  beforeAll(async () => {
    manifests = await mkdtemp(join(rootfs(), 'tmp', 'qubesec-pki-manifests-'));
    const port = await freePort();
    backend = await startEchoBackend('chain', port);
    const { service, slice } = serviceFor('chain', port, '127.0.0.1');
    const b64 = async (file: string) => (await readFile(join(dir, file))).toString('base64');
    const secret = { apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name: 'chain', namespace: 'default' }, data: { 'tls.crt': await b64('leaf.pem'), 'tls.key': await b64('leaf.key') } };
    await writeFile(join(manifests, 'all.yaml'), [QUBESEC_CLASS, service, slice, secret, pqIngress('chain', 'chain.pq.example.com', 'chain', { secrets: ['chain'] })].map((o) => stringify(o)).join('---\n'));
    controller = await startTestController({ manifests });
  });

  afterAll(async () => {
    await controller?.stop();
    backend?.close();
    await rm(manifests, { recursive: true, force: true });
  });

  it('NGINX serves leaf + intermediate and curl trusts them from the root alone', async () => {
    const r = await eventually(async () => {
      const x = await pqCurl({ host: 'chain.pq.example.com', port: controller.httpsPort }, { curves: 'X25519MLKEM768', cacert: `${inside}/root.pem` });
      return x.status === 200 ? x : undefined;
    }, 15_000, 'chain served');
    expect([r.group, r.signature]).toEqual(['X25519MLKEM768', 'id-ml-dsa-44']);
    const untrusted = await pqCurl({ host: 'chain.pq.example.com', port: controller.httpsPort }, { cacert: `${inside}/other-root.pem` });
    expect(untrusted.exitCode).toBe(60);
  });
});
