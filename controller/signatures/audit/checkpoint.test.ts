import { generateKeyPairSync, verify } from 'node:crypto';
import { generatePrivateKey, type SignatureAlgorithm } from '../algorithms.js';
import { loadSigningKey } from '../keys.js';
import { checkpointBody, noteKeyId, openCheckpoint, parseCheckpointBody, signCheckpoint } from './checkpoint.js';

const { privateKey, publicKey: nodePublicKey } = generateKeyPairSync('ml-dsa-65');
const signer = loadSigningKey(privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, 'test key');
const keyOf = (algorithm: SignatureAlgorithm) => generatePrivateKey(algorithm);
const checkpoint = { origin: 'example.com/audit', size: 1234, root: Buffer.alloc(32, 7) };

describe('checkpoint text (c2sp.org/tlog-checkpoint)', () => {
  it('is origin, decimal size and base64 root, one line each', () => {
    const body = checkpointBody(checkpoint);
    expect(body).toBe(`example.com/audit\n1234\n${Buffer.alloc(32, 7).toString('base64')}\n`);
    expect(parseCheckpointBody(body)).toEqual(checkpoint);
  });

  it('refuses bodies that are not exactly that', () => {
    const root = Buffer.alloc(32).toString('base64');
    for (const [body, error] of [
      [`o\n1\n${root}`, /three lines/], [`o\n1\n${root}\next\n`, /three lines/], [`o o\n1\n${root}\n`, /origin/],
      [`o\n01\n${root}\n`, /tree size/], [`o\n-1\n${root}\n`, /tree size/], ['o\n1\nAAAA\n', /32 bytes/],
    ] as const) expect(() => parseCheckpointBody(body)).toThrow(error);
  });
});

describe('signed checkpoints (c2sp.org/signed-note, ML-DSA)', () => {
  it('signs the note text with ML-DSA-65; the line holds the key ID and a signature node:crypto verifies on its own', async () => {
    const note = await signCheckpoint(checkpoint, signer);
    const [text, line] = note.split('\n\n') as [string, string];
    expect(`${text}\n`).toBe(checkpointBody(checkpoint));
    const match = /^\u2014 example\.com\/audit ([A-Za-z0-9+/=]+)\n$/.exec(line);
    expect(match).not.toBeNull();
    const blob = Buffer.from(match![1]!, 'base64');
    expect(blob.subarray(0, 4)).toEqual(noteKeyId('example.com/audit', signer.publicKey));
    expect(blob.length).toBe(4 + 3309);
    expect(verify(null, Buffer.from(`${text}\n`), nodePublicKey, blob.subarray(4))).toBe(true);
    expect(openCheckpoint(note, [signer.publicKey])).toEqual(checkpoint);
  });

  it('derives the key ID from the name, the signature type and the public key', () => {
    const other = keyOf('ML-DSA-65').publicKey;
    const ids = new Set([noteKeyId('a', signer.publicKey), noteKeyId('b', signer.publicKey), noteKeyId('a', other), noteKeyId('a', keyOf('ML-DSA-44').publicKey)].map((b) => b.toString('hex')));
    expect(ids.size).toBe(4);
  });

  it('signs with the other algorithms of controller/signatures too', async () => {
    for (const algorithm of ['ML-DSA-44', 'ML-DSA-87', 'SLH-DSA-SHA2-128f'] as const) {
      const key = keyOf(algorithm);
      const note = await signCheckpoint(checkpoint, { algorithm, keyId: key.publicKey.keyId, publicKey: key.publicKey, sign: (data) => Promise.resolve(key.sign(data)) });
      expect(openCheckpoint(note, [key.publicKey])).toEqual(checkpoint);
    }
  });

  it('refuses a changed text, another key, a malformed note; skips signatures of other keys; takes several keys', async () => {
    const note = await signCheckpoint(checkpoint, signer);
    const other = keyOf('ML-DSA-65').publicKey;
    expect(() => openCheckpoint(note.replace('\n1234\n', '\n1233\n'), [signer.publicKey])).toThrow(`the ML-DSA-65 signature does not verify with key ${signer.keyId}`);
    expect(() => openCheckpoint(note, [other])).toThrow(/^no signature by the key \(ML-DSA-65, key ID [0-9a-f]{8}\) under key name example.com\/audit$/);
    expect(() => openCheckpoint(note.replace('\n\n', '\n'), [signer.publicKey])).toThrow(/not a signed note/);
    expect(() => openCheckpoint(note.replace('\u2014 ', '-- '), [signer.publicKey])).toThrow(/signature line/);
    const cosigned = `${note}\u2014 witness.example/w ${Buffer.alloc(68, 1).toString('base64')}\n`;
    expect(openCheckpoint(cosigned, [signer.publicKey])).toEqual(checkpoint);
    const otherFirst = note.replace('\n\n', `\n\n\u2014 example.com/audit ${Buffer.alloc(68, 1).toString('base64')}\n`);
    expect(openCheckpoint(otherFirst, [signer.publicKey])).toEqual(checkpoint);
    expect(openCheckpoint(note, [other, signer.publicKey])).toEqual(checkpoint);
  });
});
