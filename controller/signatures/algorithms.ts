// The signature algorithms QubeSec signs and verifies with, all on node:crypto (OpenSSL 3.5): ML-DSA (FIPS 204),
// SLH-DSA (FIPS 205) and the composites of ML-DSA with a traditional algorithm (composite.ts). One key interface for
// all of them: a public key verifies, a private key signs, both with an optional FIPS 204/205 context string.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import {
  COMPOSITE_ALGORITHMS, compositeByOid, compositeFromPrivateKey, compositePrivateKey, compositePublicKey, compositeSign, compositeSpec,
  compositeVerify, generateCompositeKeyPair, isCompositeAlgorithm, splitPublicKey, type CompositeAlgorithm, type MlDsaAlgorithm,
} from './composite.js';
import { standardName } from '../pki/algorithms.js';
import { pem } from './pem.js';
import { DerError, TAG, bitString, octetString, oid, oidToString, readSequence, sequence, smallInteger } from './der.js';

export const ML_DSA_ALGORITHMS = ['ML-DSA-44', 'ML-DSA-65', 'ML-DSA-87'] as const satisfies readonly MlDsaAlgorithm[];
export const SLH_DSA_ALGORITHMS = [
  'SLH-DSA-SHA2-128s', 'SLH-DSA-SHA2-128f', 'SLH-DSA-SHA2-192s', 'SLH-DSA-SHA2-192f', 'SLH-DSA-SHA2-256s', 'SLH-DSA-SHA2-256f',
  'SLH-DSA-SHAKE-128s', 'SLH-DSA-SHAKE-128f', 'SLH-DSA-SHAKE-192s', 'SLH-DSA-SHAKE-192f', 'SLH-DSA-SHAKE-256s', 'SLH-DSA-SHAKE-256f',
] as const;
export type SlhDsaAlgorithm = (typeof SLH_DSA_ALGORITHMS)[number];
export type SignatureAlgorithm = MlDsaAlgorithm | SlhDsaAlgorithm | CompositeAlgorithm;
export type { CompositeAlgorithm, MlDsaAlgorithm };

export const SIGNATURE_ALGORITHMS: readonly SignatureAlgorithm[] = [...ML_DSA_ALGORITHMS, ...SLH_DSA_ALGORITHMS, ...(Object.keys(COMPOSITE_ALGORITHMS) as CompositeAlgorithm[])];
export const DEFAULT_SIGNATURE_ALGORITHM: SignatureAlgorithm = 'ML-DSA-65';

export function isSignatureAlgorithm(name: string): name is SignatureAlgorithm {
  return (SIGNATURE_ALGORITHMS as readonly string[]).includes(name);
}

export class KeyError extends Error {}

export interface PublicKey {
  algorithm: SignatureAlgorithm;
  /** SubjectPublicKeyInfo, DER. */
  spki: Buffer;
  /** A stable short id: the first 16 hex digits of SHA-256 over the SubjectPublicKeyInfo (DER). */
  keyId: string;
  verify(data: Uint8Array, signature: Uint8Array, context?: Uint8Array): boolean;
}

export interface PrivateKey {
  algorithm: SignatureAlgorithm;
  publicKey: PublicKey;
  /** PKCS#8 PrivateKeyInfo, DER. */
  pkcs8: Buffer;
  sign(data: Uint8Array, context?: Uint8Array): Buffer;
}

/** node:crypto's asymmetricKeyType for ML-DSA and SLH-DSA ('ml-dsa-65', 'slh-dsa-sha2-128s') to our name. */
function nodeTypeToAlgorithm(type: string | undefined): MlDsaAlgorithm | SlhDsaAlgorithm | undefined {
  const name = standardName(type ?? '');
  return (ML_DSA_ALGORITHMS as readonly string[]).includes(name) || (SLH_DSA_ALGORITHMS as readonly string[]).includes(name) ? (name as MlDsaAlgorithm) : undefined;
}

export function keyIdOf(spki: Uint8Array): string {
  return createHash('sha256').update(spki).digest('hex').slice(0, 16);
}

function nodePublicKey(key: KeyObject, algorithm: MlDsaAlgorithm | SlhDsaAlgorithm): PublicKey {
  const spki = key.export({ type: 'spki', format: 'der' });
  return {
    algorithm,
    spki,
    keyId: keyIdOf(spki),
    verify: (data, signature, context) => verify(null, data, context?.length ? { key, context } : key, signature),
  };
}

function compositePublic(algorithm: CompositeAlgorithm, raw: Buffer): PublicKey {
  const components = splitPublicKey(compositeSpec(algorithm), raw); // a malformed key fails here, not at its first verification
  const spki = sequence(sequence(oid(COMPOSITE_ALGORITHMS[algorithm].oid)), bitString(raw));
  return { algorithm, spki, keyId: keyIdOf(spki), verify: (data, signature, context) => compositeVerify(algorithm, components, data, signature, context) };
}

/** A public key from SubjectPublicKeyInfo DER; `source` names where it came from in errors. */
export function importPublicKey(spki: Buffer, source: string): PublicKey {
  const composite = compositeOf(spki, 'spki', source);
  if (composite) {
    const [, bits] = readSequence(spki, [TAG.sequence, TAG.bitString], 'SubjectPublicKeyInfo');
    return wrap(source, () => compositePublic(composite, Buffer.from(bits!.content.subarray(1))));
  }
  const key = wrap(source, () => createPublicKey({ key: spki, format: 'der', type: 'spki' }));
  return nodePublicKey(key, supported(key, source));
}

/** A private key from PKCS#8 DER; `source` names where it came from in errors. */
export function importPrivateKey(pkcs8: Buffer, source: string): PrivateKey {
  const composite = compositeOf(pkcs8, 'pkcs8', source);
  if (composite) {
    const [, , key] = readSequence(pkcs8, [TAG.integer, TAG.sequence, TAG.octetString], 'PKCS#8');
    return compositePrivate(wrap(source, () => compositeFromPrivateKey(composite, Buffer.from(key!.content))));
  }
  const key = wrap(source, () => createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
  const algorithm = supported(key, source);
  return { algorithm, publicKey: nodePublicKey(createPublicKey(key), algorithm), pkcs8, sign: (data, context) => sign(null, data, context?.length ? { key, context } : key) };
}

function compositePrivate(keys: ReturnType<typeof compositeFromPrivateKey>): PrivateKey {
  const pkcs8 = sequence(smallInteger(0), sequence(oid(COMPOSITE_ALGORITHMS[keys.algorithm].oid)), octetString(compositePrivateKey(keys)));
  return { algorithm: keys.algorithm, publicKey: compositePublic(keys.algorithm, compositePublicKey(keys)), pkcs8, sign: (data, context) => compositeSign(keys, data, context) };
}

export function generatePrivateKey(algorithm: SignatureAlgorithm): PrivateKey {
  if (isCompositeAlgorithm(algorithm)) return compositePrivate(generateCompositeKeyPair(algorithm));
  const { privateKey } = generateKeyPairSync(algorithm.toLowerCase() as 'ml-dsa-65');
  return importPrivateKey(privateKey.export({ type: 'pkcs8', format: 'der' }), algorithm);
}

export function publicKeyPem(key: PublicKey): string {
  return pem('PUBLIC KEY', key.spki);
}

export function privateKeyPem(key: PrivateKey): string {
  return pem('PRIVATE KEY', key.pkcs8);
}


/** The composite algorithm of a SubjectPublicKeyInfo or PKCS#8 structure, or undefined for any other key. */
function compositeOf(der: Buffer, kind: 'spki' | 'pkcs8', source: string): CompositeAlgorithm | undefined {
  try {
    const items = readSequence(der, kind === 'spki' ? [TAG.sequence] : [TAG.integer, TAG.sequence], kind === 'spki' ? 'SubjectPublicKeyInfo' : 'PKCS#8');
    const [algorithmOid] = readSequence(items[kind === 'spki' ? 0 : 1]!.encoded, [TAG.oid], 'AlgorithmIdentifier');
    return compositeByOid(oidToString(algorithmOid!.content));
  } catch (err) {
    if (err instanceof DerError) throw new KeyError(`${source}: ${err.message}`);
    throw err;
  }
}

function supported(key: KeyObject, source: string): MlDsaAlgorithm | SlhDsaAlgorithm {
  const algorithm = nodeTypeToAlgorithm(key.asymmetricKeyType);
  if (!algorithm) {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    throw new KeyError(`${source}: a ${key.asymmetricKeyType}${curve ? ` ${curve}` : ''} key cannot make QubeSec signatures; use ML-DSA, SLH-DSA or a composite ML-DSA key (${DEFAULT_SIGNATURE_ALGORITHM} is the default)`);
  }
  return algorithm;
}

function wrap<T>(source: string, make: () => T): T {
  try {
    return make();
  } catch (err) {
    throw err instanceof KeyError ? err : new KeyError(`${source}: ${(err as Error).message}`);
  }
}
