// Benchmark: signatures and verifications per CPU-second in-process (node:crypto on OpenSSL 3.5, one core) for each
// algorithm family, next to `openssl speed` for the same algorithms from the rootfs in the same run; for composites,
// next to the bound the two components' `openssl speed` figures give. Then whole objects: signObject / verifyObject of
// a Deployment (canonical form, JWS, comparison with the signed form). Prints figures and ratios; asserts nothing.
import { cpus } from 'node:os';
import type { KubernetesObject } from '@kubernetes/client-node';
import { generatePrivateKey, privateKeyPem, publicKeyPem, type SignatureAlgorithm } from '../../controller/signatures/algorithms.js';
import { loadSigningKey } from '../../controller/signatures/keys.js';
import { signObject, verifyObject } from '../../controller/signatures/objects.js';
import { trustAnchorsFrom } from '../../controller/signatures/trust.js';
import { SECONDS, callsPerCpuSecond, opensslSpeed } from './lib.js';

const MESSAGE = Buffer.alloc(1024, 7);

const rate = async (once: () => unknown) => (await callsPerCpuSecond(once)).perCpuSecond;

/** sign/s and verify/s from `openssl speed` (its own key; per CPU-second of one core). */
async function speedOf(name: string): Promise<{ sign: number; verify: number }> {
  const ops = (await opensslSpeed([name], SECONDS, 1))[name]!;
  if (ops.sign === undefined || ops.verify === undefined) throw new Error(`openssl speed ${name}: no sign and verify figures (${JSON.stringify(ops)})`);
  return { sign: ops.sign, verify: ops.verify };
}

const fmt = (n: number) => n.toFixed(n < 100 ? 1 : 0).padStart(8);

async function main(): Promise<void> {
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}; Node ${process.version} (OpenSSL ${process.versions.openssl}); ${SECONDS} s per figure; 1 KiB message`);
  console.log('per CPU-second of one core (openssl speed\'s unit)');
  console.log(`${'algorithm'.padEnd(28)} ${'sign/s'.padStart(8)} ${'verify/s'.padStart(8)} | ${'openssl sign/s'.padStart(14)} ${'verify/s'.padStart(8)} | ratio sign, verify`);
  const pure: [SignatureAlgorithm, string][] = [['ML-DSA-44', 'ML-DSA-44'], ['ML-DSA-65', 'ML-DSA-65'], ['ML-DSA-87', 'ML-DSA-87'], ['SLH-DSA-SHA2-128s', 'SLH-DSA-SHA2-128s'], ['SLH-DSA-SHA2-128f', 'SLH-DSA-SHA2-128f']];
  // A composite costs at least its two components: the bound is 1 / (1/a + 1/b) of their openssl speed figures.
  const composite: [SignatureAlgorithm, string, string][] = [['MLDSA65-ECDSA-P256-SHA512', 'ML-DSA-65', 'ecdsap256'], ['MLDSA44-Ed25519-SHA512', 'ML-DSA-44', 'ed25519'], ['MLDSA87-ECDSA-P384-SHA512', 'ML-DSA-87', 'ecdsap384']];
  const speeds = new Map<string, { sign: number; verify: number }>();
  const speed = async (name: string) => speeds.get(name) ?? speeds.set(name, await speedOf(name)).get(name)!;

  const row = async (algorithm: SignatureAlgorithm, reference: { sign: number; verify: number }, label: string) => {
    const key = generatePrivateKey(algorithm);
    const signature = key.sign(MESSAGE);
    const sign = await rate(() => key.sign(MESSAGE));
    const verify = await rate(() => key.publicKey.verify(MESSAGE, signature));
    console.log(`${algorithm.padEnd(28)} ${fmt(sign)} ${fmt(verify)} | ${fmt(reference.sign).padStart(14)} ${fmt(reference.verify)} | ${(sign / reference.sign).toFixed(2)}, ${(verify / reference.verify).toFixed(2)}${label}`);
  };
  for (const [algorithm, name] of pure) await row(algorithm, await speed(name), '');
  for (const [algorithm, mlDsa, traditional] of composite) {
    const [a, b] = [await speed(mlDsa), await speed(traditional)];
    const bound = { sign: 1 / (1 / a.sign + 1 / b.sign), verify: 1 / (1 / a.verify + 1 / b.verify) };
    await row(algorithm, bound, `  (openssl: ${mlDsa} + ${traditional} bound)`);
  }

  const deployment = {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop', labels: { app: 'web' } },
    spec: { replicas: 3, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'nginx:1.27', ports: [{ containerPort: 80 }], env: [{ name: 'MODE', value: 'prod' }] }] } } },
  } as KubernetesObject;
  for (const algorithm of ['ML-DSA-65', 'MLDSA65-ECDSA-P256-SHA512'] as const) {
    const privateKey = generatePrivateKey(algorithm);
    const key = loadSigningKey(privateKeyPem(privateKey), 'bench');
    const anchors = trustAnchorsFrom([{ name: 'bench', pem: publicKeyPem(privateKey.publicKey) }]);
    const signed = await signObject(deployment, key);
    const sign = await rate(() => signObject(deployment, key));
    const verify = await rate(() => verifyObject(signed, anchors));
    const signature = privateKey.sign(MESSAGE);
    const raw = await rate(() => privateKey.publicKey.verify(MESSAGE, signature));
    console.log(`Deployment, ${algorithm.padEnd(25)} signObject ${fmt(sign)} /s, verifyObject ${fmt(verify)} /s = ${(verify / raw).toFixed(2)} of a bare 1 KiB verification`);
  }
}

await main();
