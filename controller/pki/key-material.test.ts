// Seeded key generation against NIST's answers: the ACVP ML-DSA and ML-KEM keyGen sets (scripts/acvp-vectors.sh, the
// Go module Go's FIPS tests use) give a seed and the public key it must make. Then the drawn key material's rules:
// the seed is the draw, serials are drawn, and a failed draw is EntropyUnavailable with nothing made.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EntropyUnavailable } from '../qrng/errors.js';
import { SEED_BYTES, drawnKeyMaterial, keyPairFromSeed } from './key-material.js';
import type { KeyAlgorithm } from './algorithms.js';

interface KeyGenSet {
  vsId: number;
  algorithm: string;
  mode: string;
  testGroups: { tgId: number; parameterSet?: string; tests: { tcId: number; seed?: string; d?: string; z?: string; pk?: string; ek?: string }[] }[];
}

/** The keyGen vector set of `name` (ML-DSA, ML-KEM) with NIST's expected answers, by vsId/tgId/tcId. */
function keyGenVectors(name: string): { prompts: KeyGenSet; answers: Map<string, string> } {
  const dir = process.env.QUBESEC_ACVP;
  if (!dir) throw new Error('QUBESEC_ACVP is not set: run the tests through `npm test` (scripts/run.sh fetches the ACVP vectors)');
  const read = (kind: string) => (JSON.parse(readFileSync(join(dir, kind, `${name}.json`), 'utf8')) as KeyGenSet[]).slice(1); // [0] is the session header
  const prompts = read('vectors').find((s) => s.mode === 'keyGen')!;
  const answers = new Map<string, string>();
  for (const set of read('expected')) for (const group of set.testGroups) for (const test of group.tests) answers.set(`${set.vsId}/${group.tgId}/${test.tcId}`, (test.pk ?? test.ek)!);
  return { prompts, answers };
}

/** The raw public key: the SubjectPublicKeyInfo's BIT STRING, the last bytes of its DER for these algorithms. */
const rawPublicKey = (der: Buffer, length: number) => der.subarray(der.length - length);

describe('keyPairFromSeed against NIST ACVP keyGen vectors', () => {
  it.each(['ML-DSA', 'ML-KEM'])('makes the public key NIST expects from each %s seed', async (name) => {
    const { prompts, answers } = keyGenVectors(name);
    const checked: string[] = [];
    for (const group of prompts.testGroups) {
      const algorithm = group.parameterSet!.toLowerCase() as KeyAlgorithm;
      for (const test of group.tests) {
        const seed = Buffer.from(test.seed ?? `${test.d}${test.z}`, 'hex');
        const expected = Buffer.from(answers.get(`${prompts.vsId}/${group.tgId}/${test.tcId}`)!, 'hex');
        const { publicKey, privateKey } = await keyPairFromSeed(algorithm, seed);
        expect(privateKey.asymmetricKeyType).toBe(algorithm);
        expect(rawPublicKey(publicKey.export({ type: 'spki', format: 'der' }), expected.length).equals(expected)).toBe(true);
        checked.push(algorithm);
      }
    }
    expect(checked).toEqual(name === 'ML-DSA' ? ['ml-dsa-44', 'ml-dsa-65', 'ml-dsa-87'] : ['ml-kem-768', 'ml-kem-1024']);
  });

  it('refuses a seed of the wrong length and an algorithm without seeded generation', async () => {
    await expect(keyPairFromSeed('ml-dsa-65', Buffer.alloc(31))).rejects.toThrow('a ml-dsa-65 seed is 32 bytes, not 31');
    await expect(keyPairFromSeed('ecdsa-p256', Buffer.alloc(32))).rejects.toThrow('ecdsa-p256 keys are not made from a seed');
  });
});

describe('drawnKeyMaterial', () => {
  it('makes ML-DSA and ML-KEM keys from the seed it draws (the same draw, the same key), serials from draws', async () => {
    const draws: number[] = [];
    const material = drawnKeyMaterial('test', async (bytes) => {
      draws.push(bytes);
      return Buffer.alloc(bytes, 7);
    });
    const spki = async (a: KeyAlgorithm) => (await material.keyPair(a)).publicKey.export({ type: 'spki', format: 'der' });
    expect((await spki('ml-dsa-65')).equals(await spki('ml-dsa-65'))).toBe(true);
    expect((await spki('ml-kem-768')).equals((await keyPairFromSeed('ml-kem-768', Buffer.alloc(64, 7))).publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
    expect(await material.serialBytes()).toEqual(Buffer.alloc(20, 7));
    // ECDSA keys come from OpenSSL (no seeded generation in Node): no draw.
    await material.keyPair('ecdsa-p256');
    expect(draws).toEqual([SEED_BYTES['ml-dsa-65'], 32, 64, 20]);
  });

  it('says EntropyUnavailable when the draw fails or is short, and makes nothing', async () => {
    const failing = drawnKeyMaterial('https://qrng.test', async () => {
      throw new Error('POST /v1/entropy answered 503');
    });
    await expect(failing.keyPair('ml-dsa-65')).rejects.toThrow(new EntropyUnavailable('no randomness from https://qrng.test: POST /v1/entropy answered 503'));
    await expect(failing.serialBytes()).rejects.toBeInstanceOf(EntropyUnavailable);
    const short = drawnKeyMaterial('short', async () => Buffer.alloc(4));
    await expect(short.serialBytes()).rejects.toThrow('no randomness from short: got 4 bytes, not 20');
  });
});
