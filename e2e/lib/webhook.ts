// Serving certificates for webhooks the test API server calls on 127.0.0.1.
import { generateKeyPair, type SignatureAlgorithm } from '../../controller/pki/algorithms.js';
import { issueCertificate, privateKeyPem } from '../../controller/pki/x509.js';

/** A CA of `algorithm` and the certificate it issues the webhook for 127.0.0.1. */
export async function webhookServingPair(algorithm: SignatureAlgorithm): Promise<{ caPem: string; certificatePem: string; keyPem: string }> {
  const ca = generateKeyPair(algorithm);
  const caPem = await issueCertificate({ subject: `CN=webhook test CA ${algorithm}`, profile: 'ca', notAfter: new Date(Date.now() + 2 * 86_400_000), publicKey: ca.publicKey }, { selfKey: ca.privateKey });
  const leaf = generateKeyPair(algorithm);
  const certificatePem = await issueCertificate(
    { subject: 'CN=qubesec-webhook', ipAddresses: ['127.0.0.1'], profile: 'server', notAfter: new Date(Date.now() + 86_400_000), publicKey: leaf.publicKey },
    { certificatePem: caPem, privateKey: ca.privateKey },
  );
  return { caPem, certificatePem, keyPem: privateKeyPem(leaf.privateKey) };
}
