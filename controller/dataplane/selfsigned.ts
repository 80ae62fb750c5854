// Self-signed pairs made by the data plane's own OpenSSL: the default ("fake") certificate for unknown hosts and the
// demo's certificates. One ML-DSA-65 and one ECDSA P-256 pair, so PQ and legacy clients both get a certificate.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { command, hostPath, type DataPlaneRuntime } from './runtime.js';

export type SelfSignedAlgorithm = 'ml-dsa-65' | 'ml-dsa-44' | 'ml-dsa-87' | 'ecdsa-p256';

const NEWKEY: Record<SelfSignedAlgorithm, string[]> = {
  'ml-dsa-65': ['-newkey', 'mldsa65'],
  'ml-dsa-44': ['-newkey', 'mldsa44'],
  'ml-dsa-87': ['-newkey', 'mldsa87'],
  'ecdsa-p256': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
};

export async function selfSignedPair(
  runtime: DataPlaneRuntime,
  algorithm: SelfSignedAlgorithm,
  commonName: string,
  names: string[],
  days = 365,
): Promise<{ certificatePem: string; keyPem: string }> {
  const dir = await mkdtemp(join(hostPath(runtime, '/tmp'), 'qubesec-cert-'));
  const inside = runtime.root === '' ? dir : dir.slice(runtime.root.length);
  try {
    const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
    const [file, args] = command(runtime, runtime.opensslBinary, [
      'req', '-x509', ...NEWKEY[algorithm], '-nodes', '-days', String(days),
      '-subj', `/O=QubeSec/CN=${commonName}`,
      ...(san ? ['-addext', `subjectAltName=${san}`] : []),
      '-keyout', `${inside}/tls.key`, '-out', `${inside}/tls.crt`,
    ]);
    await execa(file, args);
    const [certificatePem, keyPem] = await Promise.all([readFile(join(dir, 'tls.crt'), 'utf8'), readFile(join(dir, 'tls.key'), 'utf8')]);
    return { certificatePem, keyPem };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
