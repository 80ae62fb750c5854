// Where the PKI's randomness (and the session ticket keys') comes from: OpenSSL's generator (the default), or the QRNG service (--entropy-source).
// From the service, ML-DSA (FIPS 204) and ML-KEM (FIPS 203) keys are made from seeds it serves, through WebCrypto's
// 'raw-seed' import (Node 24 on OpenSSL 3.5: the standards' seeded KeyGen), and every serial number is its bytes.
// Node has no seeded key generation for ECDSA and SLH-DSA: those keys come from OpenSSL's generator, but their
// certificates still need a serial from the service. Fail closed: when the service gives nothing, the draw throws
// EntropyUnavailable and nothing is issued.
import { KeyObject, createPublicKey, randomBytes, webcrypto } from 'node:crypto';
import { EntropyUnavailable } from '../qrng/errors.js';
import { OpenApiSource } from '../qrng/sources.js';
import { generateKeyPair, type KeyAlgorithm } from './algorithms.js';

export interface KeyPair {
  publicKey: KeyObject;
  privateKey: KeyObject;
}

export interface KeyMaterial {
  /** Where it comes from, for events and logs. */
  readonly origin: string;
  keyPair(algorithm: KeyAlgorithm): Promise<KeyPair>;
  /** 20 random bytes for a serial number. */
  serialBytes(): Promise<Buffer>;
  /** Secret random bytes (session ticket keys). */
  secretBytes(bytes: number): Promise<Buffer>;
}

/** Seed lengths of the standards' seeded key generation: ML-DSA's xi (32 bytes), ML-KEM's d || z (64 bytes). */
export const SEED_BYTES: Partial<Record<KeyAlgorithm, number>> = { 'ml-dsa-44': 32, 'ml-dsa-65': 32, 'ml-dsa-87': 32, 'ml-kem-512': 64, 'ml-kem-768': 64, 'ml-kem-1024': 64 };

/** The key pair that `seed` determines (FIPS 204 ML-DSA.KeyGen_internal, FIPS 203 ML-KEM.KeyGen_internal). */
export async function keyPairFromSeed(algorithm: KeyAlgorithm, seed: Buffer): Promise<KeyPair> {
  const bytes = SEED_BYTES[algorithm];
  if (!bytes) throw new Error(`${algorithm} keys are not made from a seed`);
  if (seed.length !== bytes) throw new Error(`a ${algorithm} seed is ${bytes} bytes, not ${seed.length}`);
  const usages: webcrypto.KeyUsage[] = algorithm.startsWith('ml-dsa') ? ['sign'] : ['decapsulateBits'];
  const key = await webcrypto.subtle.importKey('raw-seed', seed, { name: algorithm.toUpperCase() }, true, usages);
  const privateKey = KeyObject.from(key);
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** OpenSSL's generator: what the PKI uses without --entropy-source. */
export const OPENSSL_KEY_MATERIAL: KeyMaterial = {
  origin: 'OpenSSL',
  keyPair: async (algorithm) => generateKeyPair(algorithm),
  serialBytes: async () => randomBytes(20),
  secretBytes: async (bytes) => randomBytes(bytes),
};

/** Key material from `draw` (the QRNG service); any failure to draw is EntropyUnavailable. */
export function drawnKeyMaterial(origin: string, draw: (bytes: number) => Promise<Buffer>): KeyMaterial {
  const take = async (bytes: number): Promise<Buffer> => {
    try {
      const got = await draw(bytes);
      if (got.length !== bytes) throw new Error(`got ${got.length} bytes, not ${bytes}`);
      return got;
    } catch (err) {
      if (err instanceof EntropyUnavailable) throw err;
      throw new EntropyUnavailable(`no randomness from ${origin}: ${(err as Error).message}`);
    }
  };
  return {
    origin,
    keyPair: async (algorithm) => {
      const bytes = SEED_BYTES[algorithm];
      if (!bytes) return generateKeyPair(algorithm);
      const seed = await take(bytes);
      try {
        return await keyPairFromSeed(algorithm, seed);
      } finally {
        seed.fill(0);
      }
    },
    serialBytes: () => take(20),
    secretBytes: take,
  };
}

export interface ServiceKeyMaterialOptions {
  /** The service's base URL (qubesec qrng serve or any QRNG Open API). */
  url: string;
  ca?: string;
  bearerToken?: string;
}

/** Key material drawn from a QRNG service, one request per draw; close() ends its connections. */
export function serviceKeyMaterial(options: ServiceKeyMaterialOptions): KeyMaterial & { close(): Promise<void> } {
  // The service's output is already health-tested and conditioned: this client only fetches (its model is unused).
  const client = new OpenApiSource({ name: 'entropy-source', url: options.url, model: { sampleBits: 8, minEntropy: 8 }, blockSize: 64, attempts: 2, timeoutMs: 5000, ...(options.ca ? { ca: options.ca } : {}), ...(options.bearerToken ? { bearerToken: options.bearerToken } : {}) });
  const material = drawnKeyMaterial(options.url, async (bytes) => {
    try {
      return await client.read(bytes);
    } finally {
      // Nothing drawn is kept for a later key: each draw asks the service, so a refusal is seen at once.
      client.discard();
    }
  });
  return { ...material, close: () => client.close() };
}
