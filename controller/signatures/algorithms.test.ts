import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  SIGNATURE_ALGORITHMS, SLH_DSA_ALGORITHMS, generatePrivateKey, importPrivateKey, importPublicKey, isSignatureAlgorithm, type SignatureAlgorithm,
} from './algorithms.js';
import { COMPOSITE_ALGORITHMS, compositeSpec, messageRepresentative, type CompositeAlgorithm } from './composite.js';
import { TAG, bitString, oid, readSequence, sequence } from './der.js';

// The LAMPS working group's vectors (testdata/composite-sigs/README.md): m, ctx, and per algorithm pk, sk, sk_pkcs8, s, sWithContext.
const testdata = fileURLToPath(new URL('../../../controller/signatures/testdata/composite-sigs/testvectors.json', import.meta.url));
const vectors = JSON.parse(readFileSync(testdata, 'utf8')) as { m: string; ctx: string; tests: { tcId: string; pk: string; sk: string; sk_pkcs8: string; s: string; sWithContext: string }[] };
const b64 = (s: string) => Buffer.from(s, 'base64');
const message = b64(vectors.m);
const context = b64(vectors.ctx);
const ML_DSA_OIDS: Record<string, string> = { 'ML-DSA-44': '2.16.840.1.101.3.4.3.17', 'ML-DSA-65': '2.16.840.1.101.3.4.3.18', 'ML-DSA-87': '2.16.840.1.101.3.4.3.19' };

/** The vector's pk as SubjectPublicKeyInfo: the composite OID, or ML-DSA's, with no parameters. */
function spkiOf(name: SignatureAlgorithm, pk: Buffer): Buffer {
  const dotted = name in COMPOSITE_ALGORITHMS ? COMPOSITE_ALGORITHMS[name as CompositeAlgorithm].oid : ML_DSA_OIDS[name]!;
  return sequence(sequence(oid(dotted)), bitString(pk));
}

describe('the draft-ietf-lamps-pq-composite-sigs-19 vectors', () => {
  const cases = vectors.tests.map((t) => [t.tcId.replace(/^id-/, ''), t] as const);

  it('cover every ML-DSA and composite algorithm QubeSec offers, and QubeSec offers all of them', () => {
    expect(cases.map(([name]) => name).sort()).toEqual(SIGNATURE_ALGORITHMS.filter((a) => !(SLH_DSA_ALGORITHMS as readonly string[]).includes(a)).sort());
  });

  it.each(cases)('%s: s and sWithContext verify with pk; a changed message, context or signature does not', (name, t) => {
    expect(isSignatureAlgorithm(name)).toBe(true);
    const key = importPublicKey(spkiOf(name as SignatureAlgorithm, b64(t.pk)), t.tcId);
    expect(key.algorithm).toBe(name);
    expect(key.verify(message, b64(t.s))).toBe(true);
    expect(key.verify(message, b64(t.sWithContext), context)).toBe(true);
    expect(key.verify(message, b64(t.sWithContext))).toBe(false);
    expect(key.verify(message, b64(t.s), context)).toBe(false);
    expect(key.verify(Buffer.from('The quick brown fox jumps over the lazy cat.'), b64(t.s))).toBe(false);
    const flipped = b64(t.s);
    flipped[flipped.length - 1]! ^= 1;
    expect(key.verify(message, flipped)).toBe(false);
  });

  it.each(cases)('%s: sk_pkcs8 imports, gives the vector pk, and signs what pk verifies (with and without context)', (name, t) => {
    const key = importPrivateKey(b64(t.sk_pkcs8), t.tcId);
    expect(key.algorithm).toBe(name);
    expect(key.publicKey.spki).toEqual(spkiOf(name as SignatureAlgorithm, b64(t.pk)));
    const verifier = importPublicKey(spkiOf(name as SignatureAlgorithm, b64(t.pk)), t.tcId);
    expect(verifier.verify(message, key.sign(message))).toBe(true);
    expect(verifier.verify(message, key.sign(message, context), context)).toBe(true);
    // sk is the bare private key that sk_pkcs8 wraps: the composite key, or ML-DSA's seed (RFC 9881's [0] seed form).
    const [, , inner] = readSequence(b64(t.sk_pkcs8), [TAG.integer, TAG.sequence, TAG.octetString], 'PKCS#8');
    expect(inner!.content).toEqual(name in COMPOSITE_ALGORITHMS ? b64(t.sk) : Buffer.concat([Buffer.from([0x80, 32]), b64(t.sk)]));
  });
});

describe('M\' (the composite message representative)', () => {
  it('is Prefix || Label || len(ctx) || ctx || PH(M)', () => {
    const spec = compositeSpec('MLDSA65-ECDSA-P256-SHA512');
    const m = messageRepresentative(spec, Buffer.from('abc'), Buffer.from('xy'));
    const expected = Buffer.concat([
      Buffer.from('436F6D706F73697465416C676F726974686D5369676E61747572657332303235', 'hex'),
      Buffer.from('COMPSIG-MLDSA65-ECDSA-P256-SHA512'),
      Buffer.from([2]), Buffer.from('xy'),
      // SHA-512("abc") (FIPS 180-2 example)
      Buffer.from('ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f', 'hex'),
    ]);
    expect(m).toEqual(expected);
    expect(() => messageRepresentative(spec, Buffer.from('abc'), Buffer.alloc(256))).toThrow('at most 255');
  });
});

describe('every algorithm', () => {
  it.each(SIGNATURE_ALGORITHMS)('%s: generates, exports and re-imports, signs and verifies; other data or keys fail', (algorithm) => {
    const key = generatePrivateKey(algorithm);
    const again = importPrivateKey(key.pkcs8, 'the exported key');
    expect(again.algorithm).toBe(algorithm);
    expect(again.publicKey.spki).toEqual(key.publicKey.spki);
    const data = Buffer.from('signed data');
    const signature = again.sign(data);
    const publicKey = importPublicKey(key.publicKey.spki, 'the exported public key');
    expect(publicKey.keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(publicKey.verify(data, signature)).toBe(true);
    expect(publicKey.verify(Buffer.from('other data'), signature)).toBe(false);
    expect(publicKey.verify(data, key.sign(data, Buffer.from('ctx')), Buffer.from('ctx'))).toBe(true);
    expect(generatePrivateKey(algorithm).publicKey.verify(data, signature)).toBe(false);
  });

  it('refuses a key that cannot make QubeSec signatures, naming its source', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => importPrivateKey(ec.privateKey.export({ type: 'pkcs8', format: 'der' }), 'key.pem')).toThrow('key.pem: a ec prime256v1 key cannot make QubeSec signatures');
    expect(() => importPublicKey(Buffer.from('not der'), 'pub.pem')).toThrow(/^pub\.pem: /);
  });
});
