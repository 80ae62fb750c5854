// Self-signed server pairs: the default ("fake") certificate for unknown hosts, and the demo's certificates.
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
