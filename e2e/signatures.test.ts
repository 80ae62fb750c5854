// Signatures against real parts: OpenSSL 3.5 from the rootfs checks QubeSec's raw ML-DSA and SLH-DSA signatures, each
// component of its composite signatures over the draft's M' (computed here by hand), and the JWS signing input;
// OpenSSL-made keys and signatures work in QubeSec. Then the CLI as its own process, and objects applied to a real
// kube-apiserver, read back with kubectl (defaults and server metadata added), verify through `kubectl qubesec`.
import { createHash, createPrivateKey } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { PROJECT_ROOT } from '../controller/project.js';
import { generateKeyPair } from '../controller/pki/algorithms.js';
import { issueCertificate, privateKeyPem } from '../controller/pki/x509.js';
import { generatePrivateKey, importPrivateKey, importPublicKey, type SignatureAlgorithm } from '../controller/signatures/algorithms.js';
import { loadSigningKey } from '../controller/signatures/keys.js';
import { signManifests } from '../controller/signatures/manifests.js';
import { signObject, signatureAnnotation } from '../controller/signatures/objects.js';
import { pemBlocks } from '../controller/signatures/pem.js';
import { startCluster, type TestCluster } from './cluster/cluster.js';
import { kubeBinary, rootfs } from './lib/env.js';

const CLI = join(PROJECT_ROOT, 'dist', 'controller', 'cli', 'main.js');
const PLUGIN = join(PROJECT_ROOT, 'dist', 'controller', 'cli', 'kubectl-qubesec.js');
let dir: string;
let inside: string;
const openssl = (...args: string[]) => execa('chroot', [rootfs(), 'openssl', ...args], { reject: false, all: true });
const qubesec = (args: string[], input?: string) => execa(process.execPath, [CLI, ...args], { cwd: dir, reject: false, ...(input === undefined ? {} : { input }) });
const file = (name: string) => join(dir, name);
const inRoot = (name: string) => `${inside}/${name}`;
const OPENSSL_ALGORITHMS = ['ML-DSA-44', 'ML-DSA-65', 'ML-DSA-87', 'SLH-DSA-SHA2-128s', 'SLH-DSA-SHAKE-128f'] as const;

async function genpkey(algorithm: string, name: string, ...options: string[]): Promise<void> {
  const key = await openssl('genpkey', '-algorithm', algorithm, ...options, '-out', inRoot(`${name}.key`));
  if (key.exitCode !== 0) throw new Error(`openssl genpkey ${algorithm}: ${key.all}`);
  const pub = await openssl('pkey', '-in', inRoot(`${name}.key`), '-pubout', '-out', inRoot(`${name}.pub`));
  if (pub.exitCode !== 0) throw new Error(`openssl pkey -pubout: ${pub.all}`);
}

/** `openssl pkeyutl -verify` of `signature` over the file `message` with the public key file `pub`. */
async function opensslVerifies(pub: string, message: Buffer, signature: Buffer, ...options: string[]): Promise<boolean> {
  await writeFile(file('msg.bin'), message);
  await writeFile(file('sig.bin'), signature);
  const r = await openssl('pkeyutl', '-verify', '-pubin', '-inkey', inRoot(pub), '-rawin', '-in', inRoot('msg.bin'), '-sigfile', inRoot('sig.bin'), ...options);
  if (r.exitCode === 0 && !r.all.includes('Signature Verified Successfully')) throw new Error(`openssl said ${r.all}`);
  return r.exitCode === 0;
}

beforeAll(async () => {
  dir = await mkdtemp(join(rootfs(), 'tmp', 'qubesec-signatures-'));
  inside = dir.slice(rootfs().length);
  for (const algorithm of OPENSSL_ALGORITHMS) await genpkey(algorithm, algorithm);
  await genpkey('ML-DSA-65', 'other');
  await genpkey('EC', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('raw signatures with OpenSSL 3.5', () => {
  it.each(OPENSSL_ALGORITHMS)('%s: keys from openssl genpkey; QubeSec\'s signatures verify with openssl pkeyutl, and OpenSSL\'s in QubeSec (with and without a context)', async (algorithm) => {
    const key = importPrivateKey(pemBlocks(await readFile(file(`${algorithm}.key`), 'utf8'))[0]!.der, `${algorithm}.key`);
    const publicKey = importPublicKey(pemBlocks(await readFile(file(`${algorithm}.pub`), 'utf8'))[0]!.der, `${algorithm}.pub`);
    expect([key.algorithm, publicKey.algorithm]).toEqual([algorithm, algorithm]);
    const message = Buffer.from(`release 1.2.3 of ${algorithm}`);
    const context = Buffer.from('qubesec-e2e');
    const ours = key.sign(message);
    expect(await opensslVerifies(`${algorithm}.pub`, message, ours)).toBe(true);
    expect(await opensslVerifies(`${algorithm}.pub`, message, key.sign(message, context), '-pkeyopt', 'context-string:qubesec-e2e')).toBe(true);
    expect(await opensslVerifies(`${algorithm}.pub`, Buffer.from('another message'), ours)).toBe(false);
    expect(await opensslVerifies('other.pub', message, ours)).toBe(false);

    await writeFile(file('msg.bin'), message);
    for (const [out, options] of [['openssl.sig', []], ['openssl-ctx.sig', ['-pkeyopt', 'context-string:qubesec-e2e']]] as const) {
      const r = await openssl('pkeyutl', '-sign', '-inkey', inRoot(`${algorithm}.key`), '-rawin', '-in', inRoot('msg.bin'), '-out', inRoot(out), ...options);
      expect(r.exitCode).toBe(0);
    }
    expect(publicKey.verify(message, await readFile(file('openssl.sig')))).toBe(true);
    expect(publicKey.verify(message, await readFile(file('openssl-ctx.sig')), context)).toBe(true);
    expect(publicKey.verify(message, await readFile(file('openssl-ctx.sig')))).toBe(false);
  });
});

describe('composite signatures, checked component by component with OpenSSL', () => {
  // What the draft says, written out here apart from composite.ts: M' = Prefix || Label || len(ctx) || ctx || PH(M),
  // ML-DSA over M' with the label as its context, the traditional signature over M', signature = mldsaSig || tradSig.
  const cases = [
    { algorithm: 'MLDSA65-ECDSA-P256-SHA512', mlDsa: 'ML-DSA-65', pkBytes: 1952, sigBytes: 3309, preHash: 'sha512', traditional: ['EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], digest: 'sha256' },
    { algorithm: 'MLDSA87-ECDSA-P384-SHA512', mlDsa: 'ML-DSA-87', pkBytes: 2592, sigBytes: 4627, preHash: 'sha512', traditional: ['EC', '-pkeyopt', 'ec_paramgen_curve:P-384'], digest: 'sha384' },
    { algorithm: 'MLDSA44-Ed25519-SHA512', mlDsa: 'ML-DSA-44', pkBytes: 1312, sigBytes: 2420, preHash: 'sha512', traditional: ['ED25519'] },
  ] as const;

  it.each(cases)('$algorithm: the ML-DSA and the traditional component each verify over M\'', async (c) => {
    const key = generatePrivateKey(c.algorithm as SignatureAlgorithm);
    const message = Buffer.from('apiVersion: v1\nkind: ConfigMap\n');
    const context = Buffer.from('ctx');
    const signature = key.sign(message, context);
    const label = `COMPSIG-${c.algorithm}`;
    const mPrime = Buffer.concat([Buffer.from('CompositeAlgorithmSignatures2025'), Buffer.from(label), Buffer.from([context.length]), context, createHash(c.preHash).update(message).digest()]);

    // The composite public key is the SPKI's BIT STRING; its parts become SPKIs with the header OpenSSL writes for keys of their type.
    // SPKI = 30 82 LL LL | 30 0a 06 08 <composite OID, 8 bytes> | 03 82 LL LL 00 <composite public key>
    const spki = key.publicKey.spki;
    expect([spki[4], spki[5], spki[16], spki[20]]).toEqual([0x30, 0x0a, 0x03, 0x00]);
    const compositePk = spki.subarray(21);
    const spkiHeader = async (genpkeyArgs: readonly string[], rawBytes: number) => {
      await genpkey(genpkeyArgs[0]!, 'template', ...genpkeyArgs.slice(1));
      const der = pemBlocks(await readFile(file('template.pub'), 'utf8'))[0]!.der;
      return der.subarray(0, der.length - rawBytes);
    };
    const tradPk = compositePk.subarray(c.pkBytes);
    const asPem = async (name: string, der: Buffer) => writeFile(file(name), `-----BEGIN PUBLIC KEY-----\n${der.toString('base64')}\n-----END PUBLIC KEY-----\n`);
    await asPem('component-mldsa.pub', Buffer.concat([await spkiHeader([c.mlDsa], c.pkBytes), compositePk.subarray(0, c.pkBytes)]));
    await asPem('component-trad.pub', Buffer.concat([await spkiHeader(c.traditional, tradPk.length), tradPk]));

    const mlDsaSig = signature.subarray(0, c.sigBytes);
    const tradSig = signature.subarray(c.sigBytes);
    expect(await opensslVerifies('component-mldsa.pub', mPrime, mlDsaSig, '-pkeyopt', `context-string:${label}`)).toBe(true);
    expect(await opensslVerifies('component-trad.pub', mPrime, tradSig, ...('digest' in c ? ['-digest', c.digest] : []))).toBe(true);
    // Not vacuous: the wrong context for ML-DSA, or the message instead of M', fail.
    expect(await opensslVerifies('component-mldsa.pub', mPrime, mlDsaSig)).toBe(false);
    expect(await opensslVerifies('component-trad.pub', message, tradSig, ...('digest' in c ? ['-digest', c.digest] : []))).toBe(false);
  });
});

describe('JWS signing input, checked with OpenSSL', () => {
  it.each(['ML-DSA-65', 'SLH-DSA-SHA2-128s'] as const)('%s: an object signature verifies with openssl pkeyutl over BASE64URL(header).BASE64URL(payload)', async (algorithm) => {
    const key = loadSigningKey(await readFile(file(`${algorithm}.key`), 'utf8'), `${algorithm}.key`);
    const signed = await signObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } } as KubernetesObject, key);
    const [header, payload, signature] = signed.metadata!.annotations![signatureAnnotation(key.keyId)]!.split('.');
    expect(JSON.parse(Buffer.from(header!, 'base64url').toString())).toEqual({ alg: algorithm, kid: key.keyId, typ: 'qubesec-object+jws' });
    expect(await opensslVerifies(`${algorithm}.pub`, Buffer.from(`${header}.${payload}`), Buffer.from(signature!, 'base64url'))).toBe(true);
  });
});

const MANIFESTS = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports: [{containerPort: 80}]
        resources: {limits: {cpu: 1000m, memory: 64Mi}}
        readinessProbe: {httpGet: {path: /healthz, port: 80}}
        env: [{name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
      - name: sidecar
        image: busybox
      volumes: [{name: conf, configMap: {name: web}}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web-nodeport, namespace: shop}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 8080, targetPort: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web, namespace: shop}
data: {mode: prod}
---
apiVersion: v1
kind: Secret
metadata: {name: web, namespace: shop}
stringData: {token: abc}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: postgres:17}]}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: shop}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: agent:2}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: shop}
spec:
  template:
    spec: {restartPolicy: Never, containers: [{name: m, image: migrate:1}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: shop}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec: {restartPolicy: OnFailure, containers: [{name: r, image: report:1}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  rules:
  - host: shop.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
`;

describe('qubesec sign and verify (the CLI)', () => {
  it('signs a multi-document stream with an openssl key, verifies it, and names the one tampered document (exit 1)', async () => {
    await writeFile(file('app.yaml'), MANIFESTS);
    const sign = await qubesec(['sign', '--key', 'ML-DSA-65.key', '--out', 'signed.yaml', 'app.yaml']);
    expect([sign.exitCode, sign.stderr]).toEqual([0, '']);
    const ok = await qubesec(['verify', '--key', 'ML-DSA-65.pub', 'signed.yaml']);
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout.split('\n')).toHaveLength(11);
    expect(ok.stdout).toMatch(/^OK {4}signed\.yaml document 2: Deployment shop\/web: signed by [0-9a-f]{16} ML-DSA-65$/m);

    const signed = await readFile(file('signed.yaml'), 'utf8');
    await writeFile(file('tampered.yaml'), signed.replace('ports: [ { port: 80 } ]', 'ports: [ { port: 81 } ]'));
    const tampered = await qubesec(['verify', '--key', 'ML-DSA-65.pub', 'tampered.yaml']);
    expect(tampered.exitCode).toBe(1);
    expect(tampered.stdout.split('\n').filter((l) => !l.startsWith('OK'))).toEqual([expect.stringMatching(/^FAIL {2}tampered\.yaml document 3: Service shop\/web: signatures\.qubesec\.io\/[0-9a-f]{16}: tampered: spec\.ports\[0\]\.port differs \(signed 80, found 81\)$/)]);

    const wrongKey = await qubesec(['verify', '--key', 'other.pub', 'signed.yaml']);
    expect(wrongKey.exitCode).toBe(1);
    expect(wrongKey.stdout).toMatch(/^FAIL {2}signed\.yaml document 1: Namespace shop: signatures\.qubesec\.io\/[0-9a-f]{16}: unknown signer: key [0-9a-f]{16} is not among the trusted keys/m);
    const unsigned = await qubesec(['verify', '--key', 'other.pub', 'app.yaml']);
    expect([unsigned.exitCode, unsigned.stdout.split('\n')[0]]).toEqual([1, 'FAIL  app.yaml document 1: Namespace shop: no signature']);
  });

  it('adds a second signer (a composite key from qubesec sign --new-key) and counts distinct signers (--min-signers)', async () => {
    expect((await qubesec(['sign', '--new-key', 'hybrid.pem', '--algorithm', 'MLDSA65-ECDSA-P256-SHA512'])).exitCode).toBe(0);
    const second = await qubesec(['sign', '--key', 'hybrid.pem', 'signed.yaml']);
    expect(second.exitCode).toBe(0);
    await writeFile(file('two.yaml'), second.stdout);
    const both = await qubesec(['verify', '--key', 'ML-DSA-65.pub', '--key', 'hybrid.pub.pem', '--min-signers', '2', 'two.yaml']);
    expect(both.exitCode).toBe(0);
    expect(both.stdout).toMatch(/Deployment shop\/web: signed by [0-9a-f]{16} ML-DSA-65, [0-9a-f]{16} MLDSA65-ECDSA-P256-SHA512$/m);
    const one = await qubesec(['verify', '--key', 'ML-DSA-65.pub', '--min-signers', '2', 'two.yaml']);
    expect(one.exitCode).toBe(1);
    expect(one.stdout.split('\n')[0]).toMatch(/^FAIL {2}two\.yaml document 1: Namespace shop: 1 verified signer\(s\) of 2 required/);
  });

  it('refuses a key of the wrong type, a missing trust flag and a bad field path with exit code 2', async () => {
    const ec = await qubesec(['sign', '--key', 'ec.key', 'app.yaml']);
    expect([ec.exitCode, ec.stderr]).toEqual([2, 'qubesec sign: ec.key: a ec prime256v1 key cannot make QubeSec signatures; use ML-DSA, SLH-DSA or a composite ML-DSA key (ML-DSA-65 is the default)']);
    expect((await qubesec(['verify', 'signed.yaml'])).exitCode).toBe(2);
    // A document that is not an object is an input error of its own; the others are verified and printed.
    await writeFile(file('mixed.yaml'), `${await readFile(file('signed.yaml'), 'utf8')}---\njust: [a list\n`);
    const mixed = await qubesec(['verify', '--key', 'ML-DSA-65.pub', 'mixed.yaml']);
    expect(mixed.exitCode).toBe(2);
    expect(mixed.stdout.split('\n').filter((l) => l.startsWith('OK'))).toHaveLength(11);
    expect(mixed.stdout.split('\n')[11]).toMatch(/^ERROR mixed\.yaml document 12: not YAML: /);
    const path = await qubesec(['verify', '--key', 'ML-DSA-65.pub', '--ignore-field', 'spec..x', 'signed.yaml']);
    expect([path.exitCode, path.stderr]).toEqual([2, 'qubesec verify: --ignore-field: field path "spec..x": cannot read it at character 5 (write a.b[0].c, ["key.with/dots"], * for any)']);
  });

  it('signs and verifies a detached file bundle (DSSE), and names a changed file or a malformed bundle', async () => {
    await execa('tar', ['czf', file('chart-1.0.0.tgz'), '-C', dir, 'app.yaml']);
    const sign = await qubesec(['sign', '--detached', '--key', 'SLH-DSA-SHA2-128s.key', 'chart-1.0.0.tgz']);
    expect(sign.exitCode).toBe(0);
    const bundle = JSON.parse(await readFile(file('chart-1.0.0.tgz.sig.json'), 'utf8')) as { payloadType: string; signatures: { keyid: string }[] };
    expect(bundle.payloadType).toBe('application/vnd.in-toto+json');
    const ok = await qubesec(['verify', '--key', 'SLH-DSA-SHA2-128s.pub', 'chart-1.0.0.tgz']);
    expect([ok.exitCode, ok.stdout]).toEqual([0, `OK    chart-1.0.0.tgz (bundle chart-1.0.0.tgz.sig.json): signed by ${bundle.signatures[0]!.keyid} SLH-DSA-SHA2-128s`]);
    await writeFile(file('digest.txt'), 'sha256:0000\n');
    const other = await qubesec(['verify', '--key', 'SLH-DSA-SHA2-128s.pub', '--bundle', 'chart-1.0.0.tgz.sig.json', 'digest.txt']);
    expect(other.exitCode).toBe(1);
    expect(other.stdout).toBe("FAIL  digest.txt (bundle chart-1.0.0.tgz.sig.json): subject: the file's SHA-256 and SHA-512 digests differ from the bundle's subject chart-1.0.0.tgz (the file changed, or the bundle is another file's)");
    await writeFile(file('broken.sig.json'), '{"payloadType": "application/vnd.in-toto+json"');
    const broken = await qubesec(['verify', '--key', 'SLH-DSA-SHA2-128s.pub', '--bundle', 'broken.sig.json', 'digest.txt']);
    expect(broken.exitCode).toBe(2);
    expect(broken.stdout).toMatch(/^ERROR digest\.txt \(bundle broken\.sig\.json\): not JSON: /);
  });

  it('verifies a signer certificate from qubesec cert against --ca, and refuses it revoked or expired', async () => {
    const cert = (...args: string[]) => qubesec(['cert', ...args]);
    expect((await cert('root', '--out-cert', 'root.pem', '--out-key', 'root.key')).exitCode).toBe(0);
    expect((await cert('leaf', '--ca-cert', 'root.pem', '--ca-key', 'root.key', '--profile', 'client', '--dns', 'release-bot.example.com', '--out-cert', 'bot.pem', '--out-key', 'bot.key')).exitCode).toBe(0);
    const sign = await qubesec(['sign', '--key', 'bot.key', '--cert', 'bot.pem', '--out', 'by-bot.yaml', 'app.yaml']);
    expect(sign.exitCode).toBe(0);
    const ok = await qubesec(['verify', '--ca', 'root.pem', 'by-bot.yaml']);
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toMatch(/^OK {4}by-bot\.yaml document 2: Deployment shop\/web: signed by [0-9a-f]{16} \(CN=release-bot\.example\.com\) ML-DSA-65$/m);
    const serial = (await openssl('x509', '-in', inRoot('bot.pem'), '-noout', '-serial')).stdout.replace('serial=', '');
    const revoked = await qubesec(['verify', '--ca', 'root.pem', '--revoked', serial, 'by-bot.yaml']);
    expect(revoked.exitCode).toBe(1);
    expect(revoked.stdout).toContain(`the signer certificate CN=release-bot.example.com (serial ${serial.replace(/^0+/, '')}) is revoked`);

    // An expired certificate: issued for last month, so the signing happens "then".
    const root = { certificatePem: await readFile(file('root.pem'), 'utf8'), privateKey: createPrivateKey(await readFile(file('root.key'), 'utf8')) };
    const keys = generateKeyPair('ml-dsa-65');
    const then = new Date(Date.now() - 20 * 86_400_000);
    const expiredPem = await issueCertificate({ subject: 'CN=old-bot', profile: 'client', publicKey: keys.publicKey, notBefore: new Date(Date.now() - 30 * 86_400_000), notAfter: new Date(Date.now() - 10 * 86_400_000) }, root);
    await writeFile(file('old.key'), privateKeyPem(keys.privateKey));
    await writeFile(file('old.pem'), expiredPem);
    const refused = await qubesec(['sign', '--key', 'old.key', '--cert', 'old.pem', 'app.yaml']);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(/^qubesec sign: old\.key: the certificate CN=old-bot expired at /);
    const signedThen = await signManifests(MANIFESTS, 'app.yaml', loadSigningKey(privateKeyPem(keys.privateKey), 'old.key', expiredPem, then));
    await writeFile(file('by-old.yaml'), signedThen);
    const expired = await qubesec(['verify', '--ca', 'root.pem', 'by-old.yaml']);
    expect(expired.exitCode).toBe(1);
    expect(expired.stdout.split('\n')[0]).toMatch(/^FAIL {2}by-old\.yaml document 1: Namespace shop: signatures\.qubesec\.io\/[0-9a-f]{16}: the signer certificate CN=old-bot expired at \d{4}-\d\d-\d\dT/);
  });
});

describe('objects from a real API server', () => {
  let cluster: TestCluster;
  let pluginDir: string;
  // KUBECONFIG, not --kubeconfig: kubectl takes no flag before a plugin's name.
  const kubectl = (args: string[], input?: string) => execa(kubeBinary('kubectl'), args, {
    reject: false, env: { PATH: `${pluginDir}:${process.env.PATH}`, KUBECONFIG: cluster.kubeconfigPath }, ...(input === undefined ? {} : { input }),
  });

  beforeAll(async () => {
    cluster = await startCluster();
    pluginDir = await mkdtemp(join(dir, 'plugins-'));
    // kubectl runs kubectl-qubesec from PATH for `kubectl qubesec ...`.
    await writeFile(join(pluginDir, 'kubectl-qubesec'), `#!/bin/sh\nexec "${process.execPath}" "${PLUGIN}" "$@"\n`);
    await chmod(join(pluginDir, 'kubectl-qubesec'), 0o755);
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('verify what kubectl get returns after kubectl apply (defaults, allocated IPs and ports, server metadata), through kubectl qubesec', async () => {
    await writeFile(file('cluster.yaml'), await signManifests(MANIFESTS, 'app.yaml', loadSigningKey(await readFile(file('ML-DSA-65.key'), 'utf8'), 'ML-DSA-65.key')));
    const applied = await kubectl(['apply', '-f', file('cluster.yaml')]);
    expect([applied.exitCode, applied.stderr]).toEqual([0, '']);
    const kinds = ['namespace/shop', 'deployment/web', 'service/web', 'service/web-nodeport', 'configmap/web', 'secret/web', 'statefulset/db', 'daemonset/agent', 'job/migrate', 'cronjob/report', 'ingress/web'];
    const got = await kubectl(['get', '-n', 'shop', ...kinds, '-o', 'yaml']);
    expect([got.exitCode, got.stderr]).toEqual([0, '']);
    expect(got.stdout).toContain('clusterIP: 198.19.');
    expect(got.stdout).toContain('terminationMessagePath: /dev/termination-log');
    const verified = await kubectl(['qubesec', 'verify', '--key', file('ML-DSA-65.pub'), '-'], got.stdout);
    expect([verified.stderr, ...verified.stdout.split('\n').filter((l) => !l.startsWith('OK'))]).toEqual(['']);
    expect(verified.stdout.split('\n')).toHaveLength(11);
    expect(verified.exitCode).toBe(0);

    expect((await kubectl(['-n', 'shop', 'set', 'image', 'deployment/web', 'web=nginx:evil'])).exitCode).toBe(0);
    expect((await kubectl(['-n', 'shop', 'scale', 'statefulset/db', '--replicas', '3'])).exitCode).toBe(0);
    const after = await kubectl(['get', '-n', 'shop', ...kinds, '-o', 'yaml']);
    const tampered = await kubectl(['qubesec', 'verify', '--key', file('ML-DSA-65.pub'), '-'], after.stdout);
    expect(tampered.exitCode).toBe(1);
    expect(tampered.stdout.split('\n').filter((l) => !l.startsWith('OK'))).toEqual([
      expect.stringMatching(/^FAIL {2}- document 1 item 1: Deployment shop\/web: .*tampered: spec\.template\.spec\.containers\[0\]\.image differs \(signed "nginx:1\.27", found "nginx:evil"\)$/),
      expect.stringMatching(/^FAIL {2}- document 1 item 6: StatefulSet shop\/db: .*tampered: spec\.replicas was added \(3; not signed/),
    ]);
    // The same object, verified with its replicas ignored, passes.
    const ignoring = await kubectl(['qubesec', 'verify', '--key', file('ML-DSA-65.pub'), '--ignore-field', 'spec.replicas', '-'], stringify(JSON.parse((await kubectl(['get', '-n', 'shop', 'statefulset/db', '-o', 'json'])).stdout)));
    expect(ignoring.exitCode).toBe(0);
  });
});
