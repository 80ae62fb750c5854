// Composite ML-DSA (draft-ietf-lamps-pq-composite-sigs-19): an ML-DSA signature and a traditional one over the same
// message representative M', both required to verify. Built from node:crypto's ML-DSA (with its FIPS 204 context) and
// its ECDSA, EdDSA and RSA; the construction (prefix, label, context, pre-hash, M') and the encodings are the draft's.
import { constants, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { TAG, bitString, octetString, oid, readSequence, sequence, smallInteger, tlv } from './der.js';

export type MlDsaAlgorithm = 'ML-DSA-44' | 'ML-DSA-65' | 'ML-DSA-87';

type Traditional =
  | { kind: 'ecdsa'; curve: 'P-256' | 'P-384' | 'P-521' | 'brainpoolP256r1' | 'brainpoolP384r1'; hash: string }
  | { kind: 'eddsa'; curve: 'ed25519' | 'ed448' }
  | { kind: 'rsa-pss'; bits: number; hash: string; saltLength: number }
  | { kind: 'rsa-pkcs1'; bits: number; hash: string };

export interface CompositeSpec {
  oid: string;
  /** The domain separator: it goes into M' and is the ML-DSA component's context. */
  label: string;
  mlDsa: MlDsaAlgorithm;
  preHash: 'sha256' | 'sha512' | 'shake256';
  traditional: Traditional;
}

const pss2048 = (hash = 'sha256') => ({ kind: 'rsa-pss' as const, hash, saltLength: hash === 'sha256' ? 32 : 48 });

/** Every composite of the draft (algParams.md: names, OIDs, labels, components); all of them run on node:crypto. */
export const COMPOSITE_ALGORITHMS = {
  'MLDSA44-RSA2048-PSS-SHA256': { oid: '1.3.6.1.5.5.7.6.37', mlDsa: 'ML-DSA-44', preHash: 'sha256', traditional: { ...pss2048(), bits: 2048 } },
  'MLDSA44-RSA2048-PKCS15-SHA256': { oid: '1.3.6.1.5.5.7.6.38', mlDsa: 'ML-DSA-44', preHash: 'sha256', traditional: { kind: 'rsa-pkcs1', bits: 2048, hash: 'sha256' } },
  'MLDSA44-Ed25519-SHA512': { oid: '1.3.6.1.5.5.7.6.39', mlDsa: 'ML-DSA-44', preHash: 'sha512', traditional: { kind: 'eddsa', curve: 'ed25519' } },
  'MLDSA44-ECDSA-P256-SHA256': { oid: '1.3.6.1.5.5.7.6.40', mlDsa: 'ML-DSA-44', preHash: 'sha256', traditional: { kind: 'ecdsa', curve: 'P-256', hash: 'sha256' } },
  'MLDSA65-RSA3072-PSS-SHA512': { oid: '1.3.6.1.5.5.7.6.41', mlDsa: 'ML-DSA-65', preHash: 'sha512', traditional: { ...pss2048(), bits: 3072 } },
  'MLDSA65-RSA3072-PKCS15-SHA512': { oid: '1.3.6.1.5.5.7.6.42', mlDsa: 'ML-DSA-65', preHash: 'sha512', traditional: { kind: 'rsa-pkcs1', bits: 3072, hash: 'sha256' } },
  'MLDSA65-RSA4096-PSS-SHA512': { oid: '1.3.6.1.5.5.7.6.43', mlDsa: 'ML-DSA-65', preHash: 'sha512', traditional: { ...pss2048('sha384'), bits: 4096 } },
  'MLDSA65-RSA4096-PKCS15-SHA512': { oid: '1.3.6.1.5.5.7.6.44', mlDsa: 'ML-DSA-65', preHash: 'sha512', traditional: { kind: 'rsa-pkcs1', bits: 4096, hash: 'sha384' } },
  'MLDSA65-ECDSA-P256-SHA512': { oid: '1.3.6.1.5.5.7.6.45', mlDsa: 'ML-DSA-65', preHash: 'sha512', traditional: { kind: 'ecdsa', curve: 'P-256', hash: 'sha256' } },
  'MLDSA65-ECDSA-P384-SHA512': { oid: '1.3.6.1.5.5.7.6.46', mlDsa: 'ML-DSA-65', preHash: 'sha512', traditional: { kind: 'ecdsa', curve: 'P-384', hash: 'sha384' } },
  'MLDSA65-ECDSA-brainpoolP256r1-SHA512': { oid: '1.3.6.1.5.5.7.6.47', label: 'COMPSIG-MLDSA65-ECDSA-BP256-SHA512', mlDsa: 'ML-DSA-65', preHash: 'sha512', traditional: { kind: 'ecdsa', curve: 'brainpoolP256r1', hash: 'sha256' } },
  'MLDSA65-Ed25519-SHA512': { oid: '1.3.6.1.5.5.7.6.48', mlDsa: 'ML-DSA-65', preHash: 'sha512', traditional: { kind: 'eddsa', curve: 'ed25519' } },
  'MLDSA87-ECDSA-P384-SHA512': { oid: '1.3.6.1.5.5.7.6.49', mlDsa: 'ML-DSA-87', preHash: 'sha512', traditional: { kind: 'ecdsa', curve: 'P-384', hash: 'sha384' } },
  'MLDSA87-ECDSA-brainpoolP384r1-SHA512': { oid: '1.3.6.1.5.5.7.6.50', label: 'COMPSIG-MLDSA87-ECDSA-BP384-SHA512', mlDsa: 'ML-DSA-87', preHash: 'sha512', traditional: { kind: 'ecdsa', curve: 'brainpoolP384r1', hash: 'sha384' } },
  'MLDSA87-Ed448-SHAKE256': { oid: '1.3.6.1.5.5.7.6.51', mlDsa: 'ML-DSA-87', preHash: 'shake256', traditional: { kind: 'eddsa', curve: 'ed448' } },
  'MLDSA87-RSA3072-PSS-SHA512': { oid: '1.3.6.1.5.5.7.6.52', mlDsa: 'ML-DSA-87', preHash: 'sha512', traditional: { ...pss2048(), bits: 3072 } },
  'MLDSA87-RSA4096-PSS-SHA512': { oid: '1.3.6.1.5.5.7.6.53', mlDsa: 'ML-DSA-87', preHash: 'sha512', traditional: { ...pss2048('sha384'), bits: 4096 } },
  'MLDSA87-ECDSA-P521-SHA512': { oid: '1.3.6.1.5.5.7.6.54', mlDsa: 'ML-DSA-87', preHash: 'sha512', traditional: { kind: 'ecdsa', curve: 'P-521', hash: 'sha512' } },
} satisfies Record<string, Omit<CompositeSpec, 'label'> & { label?: string }>;

export type CompositeAlgorithm = keyof typeof COMPOSITE_ALGORITHMS;

export function compositeSpec(name: CompositeAlgorithm): CompositeSpec {
  const spec: Omit<CompositeSpec, 'label'> & { label?: string } = COMPOSITE_ALGORITHMS[name];
  return { ...spec, label: spec.label ?? `COMPSIG-${name}` };
}

export function isCompositeAlgorithm(name: string): name is CompositeAlgorithm {
  return Object.hasOwn(COMPOSITE_ALGORITHMS, name);
}

export function compositeByOid(dotted: string): CompositeAlgorithm | undefined {
  return (Object.keys(COMPOSITE_ALGORITHMS) as CompositeAlgorithm[]).find((name) => COMPOSITE_ALGORITHMS[name].oid === dotted);
}

/** "CompositeAlgorithmSignatures2025", the draft's prefix of every M'. */
const PREFIX = Buffer.from('CompositeAlgorithmSignatures2025', 'ascii');

const ML_DSA = {
  'ML-DSA-44': { oid: '2.16.840.1.101.3.4.3.17', publicKeyBytes: 1312, signatureBytes: 2420 },
  'ML-DSA-65': { oid: '2.16.840.1.101.3.4.3.18', publicKeyBytes: 1952, signatureBytes: 3309 },
  'ML-DSA-87': { oid: '2.16.840.1.101.3.4.3.19', publicKeyBytes: 2592, signatureBytes: 4627 },
} as const;
const ML_DSA_SEED_BYTES = 32;
const EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const CURVE_OIDS = { 'P-256': '1.2.840.10045.3.1.7', 'P-384': '1.3.132.0.34', 'P-521': '1.3.132.0.35', brainpoolP256r1: '1.3.36.3.3.2.8.1.1.7', brainpoolP384r1: '1.3.36.3.3.2.8.1.1.11' } as const;
const EDDSA_OIDS = { ed25519: '1.3.101.112', ed448: '1.3.101.113' } as const;

/** The composite's two private keys. */
export interface CompositeKeyPair {
  algorithm: CompositeAlgorithm;
  mlDsa: KeyObject;
  traditional: KeyObject;
}

/** M' = Prefix || Label || len(ctx) || ctx || PH(M) (draft section 4.2). */
export function messageRepresentative(spec: CompositeSpec, message: Uint8Array, context: Uint8Array = new Uint8Array()): Buffer {
  if (context.length > 255) throw new Error(`the context is ${context.length} bytes; at most 255`);
  const hash = spec.preHash === 'shake256' ? createHash('shake256', { outputLength: 64 }) : createHash(spec.preHash);
  return Buffer.concat([PREFIX, Buffer.from(spec.label, 'ascii'), Buffer.from([context.length]), context, hash.update(message).digest()]);
}

export function compositeSign(keys: CompositeKeyPair, message: Uint8Array, context?: Uint8Array): Buffer {
  const spec = compositeSpec(keys.algorithm);
  const representative = messageRepresentative(spec, message, context);
  const mlDsaSignature = sign(null, representative, { key: keys.mlDsa, context: Buffer.from(spec.label, 'ascii') });
  return Buffer.concat([mlDsaSignature, traditionalSign(spec.traditional, keys.traditional, representative)]);
}

/** Verifies with the component keys of a composite public key (splitPublicKey, done once per key). */
export function compositeVerify(algorithm: CompositeAlgorithm, { mlDsa, traditional }: { mlDsa: KeyObject; traditional: KeyObject }, message: Uint8Array, signature: Uint8Array, context?: Uint8Array): boolean {
  const spec = compositeSpec(algorithm);
  const cut = ML_DSA[spec.mlDsa].signatureBytes;
  if (signature.length <= cut) return false;
  const representative = messageRepresentative(spec, message, context);
  const mlDsaOk = verify(null, representative, { key: mlDsa, context: Buffer.from(spec.label, 'ascii') }, signature.subarray(0, cut));
  // Both components are checked whatever the first gave: no early exit that tells which one failed.
  const traditionalOk = traditionalVerify(spec.traditional, traditional, representative, signature.subarray(cut));
  return mlDsaOk && traditionalOk;
}

export function generateCompositeKeyPair(algorithm: CompositeAlgorithm): CompositeKeyPair {
  const spec = compositeSpec(algorithm);
  const t = spec.traditional;
  const traditional =
    t.kind === 'ecdsa' ? generateKeyPairSync('ec', { namedCurve: t.curve }).privateKey
    : t.kind === 'eddsa' ? generateKeyPairSync(t.curve as 'ed25519').privateKey
    : generateKeyPairSync('rsa', { modulusLength: t.bits, publicExponent: 65537 }).privateKey;
  return { algorithm, mlDsa: generateKeyPairSync(spec.mlDsa.toLowerCase() as 'ml-dsa-65').privateKey, traditional };
}

/** The composite public key: mldsaPK || tradPK (tradPK: an uncompressed EC point, a raw EdDSA key, or RSAPublicKey). */
export function compositePublicKey(keys: CompositeKeyPair): Buffer {
  const spec = compositeSpec(keys.algorithm);
  const traditional = createPublicKey(keys.traditional);
  const tradPk = spec.traditional.kind.startsWith('rsa') ? traditional.export({ type: 'pkcs1', format: 'der' }) : spkiKeyBits(traditional);
  return Buffer.concat([spkiKeyBits(createPublicKey(keys.mlDsa)), tradPk]);
}

/** The composite private key: the ML-DSA seed || tradSK (SEC1 ECPrivateKey, a raw EdDSA key, or RSAPrivateKey). */
export function compositePrivateKey(keys: CompositeKeyPair): Buffer {
  const spec = compositeSpec(keys.algorithm);
  const seed = Buffer.from(keys.mlDsa.export({ format: 'jwk' }).priv as string, 'base64url');
  const t = spec.traditional;
  const tradSk =
    t.kind === 'ecdsa' ? keys.traditional.export({ type: 'sec1', format: 'der' })
    : t.kind === 'eddsa' ? Buffer.from(keys.traditional.export({ format: 'jwk' }).d!, 'base64url')
    : keys.traditional.export({ type: 'pkcs1', format: 'der' });
  return Buffer.concat([seed, tradSk]);
}

export function compositeFromPrivateKey(algorithm: CompositeAlgorithm, privateKey: Buffer): CompositeKeyPair {
  const spec = compositeSpec(algorithm);
  if (privateKey.length <= ML_DSA_SEED_BYTES) throw new Error(`a ${algorithm} private key is longer than ${privateKey.length} bytes`);
  const seed = privateKey.subarray(0, ML_DSA_SEED_BYTES);
  const tradSk = privateKey.subarray(ML_DSA_SEED_BYTES);
  const mlDsa = createPrivateKey({ key: sequence(smallInteger(0), sequence(oid(ML_DSA[spec.mlDsa].oid)), octetString(tlv(0x80, seed))), format: 'der', type: 'pkcs8' });
  const t = spec.traditional;
  const traditional =
    t.kind === 'ecdsa' ? createPrivateKey({ key: tradSk, format: 'der', type: 'sec1' })
    : t.kind === 'eddsa' ? createPrivateKey({ key: sequence(smallInteger(0), sequence(oid(EDDSA_OIDS[t.curve])), octetString(octetString(tradSk))), format: 'der', type: 'pkcs8' })
    : createPrivateKey({ key: tradSk, format: 'der', type: 'pkcs1' });
  checkTraditional(spec, traditional);
  return { algorithm, mlDsa, traditional };
}

/** The two component public keys of a composite public key, checked against the algorithm's parameters. */
export function splitPublicKey(spec: CompositeSpec, publicKey: Uint8Array): { mlDsa: KeyObject; traditional: KeyObject } {
  const cut = ML_DSA[spec.mlDsa].publicKeyBytes;
  if (publicKey.length <= cut) throw new Error(`the composite public key is ${publicKey.length} bytes, too short`);
  const mlDsaPk = publicKey.subarray(0, cut);
  const tradPk = Buffer.from(publicKey.subarray(cut));
  const mlDsa = createPublicKey({ key: sequence(sequence(oid(ML_DSA[spec.mlDsa].oid)), bitString(mlDsaPk)), format: 'der', type: 'spki' });
  const t = spec.traditional;
  const traditional =
    t.kind === 'ecdsa' ? createPublicKey({ key: sequence(sequence(oid(EC_PUBLIC_KEY), oid(CURVE_OIDS[t.curve])), bitString(tradPk)), format: 'der', type: 'spki' })
    : t.kind === 'eddsa' ? createPublicKey({ key: sequence(sequence(oid(EDDSA_OIDS[t.curve])), bitString(tradPk)), format: 'der', type: 'spki' })
    : createPublicKey({ key: tradPk, format: 'der', type: 'pkcs1' });
  checkTraditional(spec, traditional);
  return { mlDsa, traditional };
}

function checkTraditional(spec: CompositeSpec, key: KeyObject): void {
  const t = spec.traditional;
  const details = key.asymmetricKeyDetails ?? {};
  const ok =
    t.kind === 'ecdsa' ? key.asymmetricKeyType === 'ec' && details.namedCurve === { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' }[t.curve as string] || details.namedCurve === t.curve
    : t.kind === 'eddsa' ? key.asymmetricKeyType === t.curve
    : key.asymmetricKeyType === 'rsa' && details.modulusLength === t.bits;
  if (!ok) throw new Error(`the traditional component is not ${describeTraditional(t)}`);
}

function describeTraditional(t: Traditional): string {
  return t.kind === 'ecdsa' ? `an ECDSA ${t.curve} key` : t.kind === 'eddsa' ? `an ${t.curve === 'ed25519' ? 'Ed25519' : 'Ed448'} key` : `an RSA-${t.bits} key`;
}

function traditionalSign(t: Traditional, key: KeyObject, data: Buffer): Buffer {
  switch (t.kind) {
    case 'ecdsa':
      return sign(t.hash, data, { key, dsaEncoding: 'der' });
    case 'eddsa':
      return sign(null, data, key);
    case 'rsa-pss':
      return sign(t.hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: t.saltLength });
    case 'rsa-pkcs1':
      return sign(t.hash, data, { key, padding: constants.RSA_PKCS1_PADDING });
  }
}

function traditionalVerify(t: Traditional, key: KeyObject, data: Buffer, signature: Uint8Array): boolean {
  try {
    switch (t.kind) {
      case 'ecdsa':
        return verify(t.hash, data, { key, dsaEncoding: 'der' }, signature);
      case 'eddsa':
        return verify(null, data, key, signature);
      case 'rsa-pss':
        return verify(t.hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: t.saltLength }, signature);
      case 'rsa-pkcs1':
        return verify(t.hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
    }
  } catch {
    return false; // a malformed DER ECDSA signature, say
  }
}

/** The key bits of a SubjectPublicKeyInfo (the BIT STRING's content after its unused-bits octet). */
function spkiKeyBits(key: KeyObject): Buffer {
  const [, bits] = readSequence(key.export({ type: 'spki', format: 'der' }), [TAG.sequence, TAG.bitString], 'SubjectPublicKeyInfo');
  return bits!.content.subarray(1);
}

