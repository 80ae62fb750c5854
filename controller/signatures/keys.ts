// A signer: a private key (PKCS#8 PEM, as `openssl genpkey -algorithm ML-DSA-65` writes it, or a composite key from
// `qubesec sign --new-key`), optionally with its certificate chain from QubeSec's PKI, which signatures embed.
import { X509Certificate } from 'node:crypto';
import { KeyError, importPrivateKey, type PrivateKey, type PublicKey, type SignatureAlgorithm } from './algorithms.js';
import { pemBlocks } from './pem.js';

export interface SigningKey {
  algorithm: SignatureAlgorithm;
  /** The first 16 hex digits of SHA-256 over the public key's SubjectPublicKeyInfo: stable, and fit for an annotation key. */
  keyId: string;
  /** The signer's certificate first, then its intermediates (no root), when it signs with a certificate. */
  certificateChainPem?: string[];
  publicKey: PublicKey;
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** The signing key in `pem` (PKCS#8); `source` (a file name, a Secret) names it in every error. */
export function loadSigningKey(pem: string, source: string, certificatePem?: string, now = new Date()): SigningKey {
  const privateKey = readPrivateKey(pem, source);
  const key: SigningKey = {
    algorithm: privateKey.algorithm,
    keyId: privateKey.publicKey.keyId,
    publicKey: privateKey.publicKey,
    sign: (data) => Promise.resolve(privateKey.sign(data)),
  };
  if (certificatePem !== undefined) key.certificateChainPem = checkedChain(certificatePem, privateKey, source, now);
  return key;
}

function readPrivateKey(pem: string, source: string): PrivateKey {
  const blocks = pemBlocks(pem);
  const block = blocks.find((b) => b.label === 'PRIVATE KEY');
  if (!block) {
    const labels = blocks.map((b) => b.label);
    if (labels.includes('ENCRYPTED PRIVATE KEY')) throw new KeyError(`${source}: the private key is encrypted; decrypt it first (openssl pkey -in ${source} -out KEY.pem)`);
    if (labels.includes('PUBLIC KEY') || labels.includes('CERTIFICATE')) throw new KeyError(`${source}: holds a ${labels.includes('PUBLIC KEY') ? 'public key' : 'certificate'}, not the private key that signs`);
    throw new KeyError(`${source}: no PKCS#8 private key (-----BEGIN PRIVATE KEY-----) in it`);
  }
  return importPrivateKey(block.der, source);
}

function checkedChain(certificatePem: string, key: PrivateKey, source: string, now: Date): string[] {
  const certificates = pemBlocks(certificatePem).filter((b) => b.label === 'CERTIFICATE');
  if (certificates.length === 0) throw new KeyError(`${source}: the certificate file holds no PEM certificate`);
  const chain = certificates.map((b, i) => {
    try {
      return new X509Certificate(b.der);
    } catch (err) {
      throw new KeyError(`${source}: certificate ${i + 1} is not X.509: ${(err as Error).message}`);
    }
  });
  const leaf = chain[0]!;
  if (!leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(key.publicKey.spki)) {
    throw new KeyError(`${source}: the certificate (${oneLine(leaf.subject)}) is not for this key`);
  }
  if (new Date(leaf.validTo) < now) throw new KeyError(`${source}: the certificate ${oneLine(leaf.subject)} expired at ${new Date(leaf.validTo).toISOString()}`);
  if (new Date(leaf.validFrom) > now) throw new KeyError(`${source}: the certificate ${oneLine(leaf.subject)} is not valid before ${new Date(leaf.validFrom).toISOString()}`);
  // A self-signed root stays with the verifiers (their trust anchors); the signature carries the rest.
  return chain.filter((c, i) => i === 0 || !c.checkIssued(c)).map((c) => c.toString());
}

export function oneLine(name: string): string {
  return name.replace(/\n/g, ', ');
}
