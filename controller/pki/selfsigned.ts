// Self-signed server pairs: the default ("fake") certificate for unknown hosts, and the demo's certificates.
import { checkPair } from '../model/certificates.js';
import type { CertificatePair } from '../model/types.js';
import { generateKeyPair, type SignatureAlgorithm } from './algorithms.js';
import { issueCertificate, privateKeyPem } from './x509.js';

export async function selfSignedPair(algorithm: SignatureAlgorithm, commonName: string, dnsNames: string[], days = 365): Promise<{ certificatePem: string; keyPem: string }> {
  const keys = generateKeyPair(algorithm);
  const certificatePem = await issueCertificate(
    { subject: `CN=${commonName},O=QubeSec`, dnsNames, profile: 'server', notAfter: new Date(Date.now() + days * 86_400_000), publicKey: keys.publicKey },
    { selfKey: keys.privateKey },
  );
  return { certificatePem, keyPem: privateKeyPem(keys.privateKey) };
}

/** One default pair per algorithm: PQ clients get the ML-DSA certificate, legacy ones the ECDSA one. */
export const DEFAULT_CERTIFICATE_ALGORITHMS = ['ml-dsa-65', 'ecdsa-p256'] as const;

/** A fresh default certificate: self-signed pairs for hosts without a usable Secret. */
export async function defaultCertificatePairs(): Promise<CertificatePair[]> {
  const pairs: CertificatePair[] = [];
  for (const algorithm of DEFAULT_CERTIFICATE_ALGORITHMS) {
    const made = await selfSignedPair(algorithm, 'QubeSec default certificate', ['ingress.local']);
    const checked = checkPair(`(default ${algorithm})`, made.certificatePem, made.keyPem, new Date());
    if ('error' in checked) throw new Error(checked.error);
    pairs.push(checked.pair);
  }
  return pairs;
}
