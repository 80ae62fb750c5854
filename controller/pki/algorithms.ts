// Key algorithms the PKI issues: ML-DSA (FIPS 204) and ECDSA for signatures, ML-KEM (FIPS 203) for key establishment.
// Keys are node:crypto KeyObjects (OpenSSL 3.5 inside Node 24); signing goes through WebCrypto for @peculiar/x509.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';

/** SLH-DSA (FIPS 205): hash-based, large and slow signatures; for long-lived roots. */
export const SLH_DSA_ALGORITHMS = ['slh-dsa-sha2-128s', 'slh-dsa-sha2-128f', 'slh-dsa-sha2-192s', 'slh-dsa-sha2-192f', 'slh-dsa-sha2-256s', 'slh-dsa-sha2-256f'] as const;
export const SIGNATURE_ALGORITHMS = ['ml-dsa-44', 'ml-dsa-65', 'ml-dsa-87', 'ecdsa-p256', 'ecdsa-p384', ...SLH_DSA_ALGORITHMS] as const;
export const KEM_ALGORITHMS = ['ml-kem-512', 'ml-kem-768', 'ml-kem-1024'] as const;
export type SignatureAlgorithm = (typeof SIGNATURE_ALGORITHMS)[number];
export type KemAlgorithm = (typeof KEM_ALGORITHMS)[number];
export type KeyAlgorithm = SignatureAlgorithm | KemAlgorithm;

export const DEFAULT_ALGORITHM: SignatureAlgorithm = 'ml-dsa-65';

export function isSignatureAlgorithm(name: string): name is SignatureAlgorithm {
  return (SIGNATURE_ALGORITHMS as readonly string[]).includes(name);
}

export function isKeyAlgorithm(name: string): name is KeyAlgorithm {
  return isSignatureAlgorithm(name) || (KEM_ALGORITHMS as readonly string[]).includes(name);
}

export function generateKeyPair(algorithm: KeyAlgorithm): { publicKey: KeyObject; privateKey: KeyObject } {
  switch (algorithm) {
    case 'ecdsa-p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'ecdsa-p384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' });
    default:
      return generateKeyPairSync(algorithm as 'ml-dsa-65');
  }
}

/** Our name for a key's algorithm, or undefined when the PKI does not handle it. */
export function algorithmOf(key: KeyObject): KeyAlgorithm | undefined {
  const type = key.asymmetricKeyType ?? '';
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    return curve === 'prime256v1' ? 'ecdsa-p256' : curve === 'secp384r1' ? 'ecdsa-p384' : undefined;
  }
  return isKeyAlgorithm(type) ? type : undefined;
}

/** WebCrypto parameters to sign with a key of this algorithm (the signature algorithm of what it issues). */
export function webSigningAlgorithm(algorithm: SignatureAlgorithm): { name: string; hash?: string; namedCurve?: string } {
  switch (algorithm) {
    case 'ecdsa-p256':
      return { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    case 'ecdsa-p384':
      return { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' };
    default:
      // ML-DSA-65, SLH-DSA-SHA2-128s: the WebCrypto and @peculiar/x509 spelling.
      return { name: standardName(algorithm) };
  }
}

/** The FIPS 204/205 name of a node:crypto key type: 'ml-dsa-65' is ML-DSA-65, 'slh-dsa-sha2-128s' is SLH-DSA-SHA2-128s. */
export function standardName(nodeKeyType: string): string {
  return nodeKeyType.toUpperCase().replace(/(\d)([SF])$/, (_m, d: string, v: string) => d + v.toLowerCase());
}

export function isSlhDsa(algorithm: string): boolean {
  return algorithm.startsWith('slh-dsa-');
}
