// Benchmark: ML-DSA-65 certificates issued per second in-process (qubesec PKI on Node 24's OpenSSL) next to
// `openssl req -x509` run as a process from the data-plane rootfs. Prints figures and ratios; asserts nothing.
import { cpus } from 'node:os';
import { execa } from 'execa';
import { generateKeyPair, type SignatureAlgorithm } from '../../controller/pki/algorithms.js';
import { issueCertificate } from '../../controller/pki/x509.js';
import { rootfs } from '../lib/env.js';

const SECONDS = Number(process.env.QUBESEC_BENCH_SECONDS ?? 5);

async function rate(label: string, once: () => Promise<unknown>): Promise<number> {
  await once(); // warm-up
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < SECONDS * 1000) {
    await once();
    n++;
  }
  const perSecond = n / ((performance.now() - start) / 1000);
  console.log(`${label.padEnd(62)} ${perSecond.toFixed(1).padStart(9)} /s  (${n} in ${SECONDS} s)`);
  return perSecond;
}

async function inProcess(algorithm: SignatureAlgorithm): Promise<number> {
  const ca = generateKeyPair(algorithm);
  const caPem = await issueCertificate({ subject: 'CN=bench CA', profile: 'ca', notAfter: new Date(Date.now() + 86_400_000), publicKey: ca.publicKey }, { selfKey: ca.privateKey });
  return rate(`in-process: ${algorithm} key + leaf signed by ${algorithm} CA`, async () => {
    const keys = generateKeyPair(algorithm);
    await issueCertificate({ subject: 'CN=leaf', dnsNames: ['leaf.example.com'], profile: 'server', notAfter: new Date(Date.now() + 3_600_000), publicKey: keys.publicKey }, { certificatePem: caPem, privateKey: ca.privateKey });
  });
}

async function main(): Promise<void> {
  const root = rootfs();
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}; Node ${process.version} (OpenSSL ${process.versions.openssl}); ${SECONDS} s per figure`);
  const mldsa = await inProcess('ml-dsa-65');
  const ecdsa = await inProcess('ecdsa-p256');
  const openssl = await rate('openssl req -x509 -newkey mldsa65 (one process per certificate)', () =>
    execa('chroot', [root, 'openssl', 'req', '-x509', '-newkey', 'mldsa65', '-nodes', '-subj', '/CN=leaf', '-keyout', '/dev/null', '-out', '/dev/null', '-days', '1']));
  console.log(`ratio in-process / openssl process (ML-DSA-65): ${(mldsa / openssl).toFixed(1)}x`);
  console.log(`ratio ML-DSA-65 / ECDSA P-256 (in-process):     ${(mldsa / ecdsa).toFixed(2)}`);
}

await main();
