import { generateKeyPairSync, verify } from 'node:crypto';
import { checkpointBody, loadCheckpointSigner, loadCheckpointVerifier, noteKeyId, openCheckpoint, parseCheckpointBody, signCheckpoint } from './checkpoint.js';

const pems = (type: 'ml-dsa-44' | 'ml-dsa-65' | 'ml-dsa-87' | 'ec') => {
  const { privateKey, publicKey } = type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync(type as 'ml-dsa-65');
  return { privateKey: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, publicKey: publicKey.export({ format: 'pem', type: 'spki' }) as string };
};
const KEY = pems('ml-dsa-65');
const signer = loadCheckpointSigner(KEY.privateKey, 'test key');
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
  it('signs the note text with ML-DSA; the line holds the key ID and a signature node:crypto verifies on its own', () => {
    const note = signCheckpoint(checkpoint, signer);
    const [text, line] = note.split('\n\n') as [string, string];
    expect(`${text}\n`).toBe(checkpointBody(checkpoint));
    const match = /^\u2014 example\.com\/audit ([A-Za-z0-9+/=]+)\n$/.exec(line);
    expect(match).not.toBeNull();
    const blob = Buffer.from(match![1]!, 'base64');
    expect(blob.subarray(0, 4)).toEqual(noteKeyId('example.com/audit', signer));
    expect(blob.length).toBe(4 + 3309);
    expect(verify(null, Buffer.from(`${text}\n`), KEY.publicKey, blob.subarray(4))).toBe(true);
    expect(openCheckpoint(note, loadCheckpointVerifier(KEY.publicKey, 'pub'))).toEqual(checkpoint);
  });

  it('derives the key ID from the name, the ML-DSA type and the public key', () => {
    const other = loadCheckpointSigner(pems('ml-dsa-65').privateKey, 'other');
    const ids = new Set([noteKeyId('a', signer), noteKeyId('b', signer), noteKeyId('a', other), noteKeyId('a', loadCheckpointSigner(pems('ml-dsa-44').privateKey, '44'))].map((b) => b.toString('hex')));
    expect(ids.size).toBe(4);
    expect(noteKeyId('a', signer)).toEqual(noteKeyId('a', loadCheckpointVerifier(KEY.privateKey, 'private PEM gives its public half')));
  });

  it('signs with ML-DSA-44 and ML-DSA-87 keys too', () => {
    for (const type of ['ml-dsa-44', 'ml-dsa-87'] as const) {
      const pair = pems(type);
      const note = signCheckpoint(checkpoint, loadCheckpointSigner(pair.privateKey, type));
      expect(openCheckpoint(note, loadCheckpointVerifier(pair.publicKey, type))).toEqual(checkpoint);
    }
  });

  it('refuses a changed text, another key, a malformed note; skips signatures of other keys', () => {
    const note = signCheckpoint(checkpoint, signer);
    const verifier = loadCheckpointVerifier(KEY.publicKey, 'pub');
    expect(() => openCheckpoint(note.replace('\n1234\n', '\n1233\n'), verifier)).toThrow(/does not verify/);
    expect(() => openCheckpoint(note, loadCheckpointVerifier(pems('ml-dsa-65').publicKey, 'other'))).toThrow(/no signature by the key/);
    expect(() => openCheckpoint(note.replace('\n\n', '\n'), verifier)).toThrow(/not a signed note/);
    expect(() => openCheckpoint(note.replace('\u2014 ', '-- '), verifier)).toThrow(/signature line/);
    const cosigned = `${note}\u2014 witness.example/w ${Buffer.alloc(68, 1).toString('base64')}\n`;
    expect(openCheckpoint(cosigned, verifier)).toEqual(checkpoint);
    const otherFirst = note.replace('\n\n', `\n\n\u2014 example.com/audit ${Buffer.alloc(68, 1).toString('base64')}\n`);
    expect(openCheckpoint(otherFirst, verifier)).toEqual(checkpoint);
  });

  it('takes ML-DSA keys only, and says what it got', () => {
    expect(() => loadCheckpointSigner(pems('ec').privateKey, '--key k.pem')).toThrow('--key k.pem: a ec key; checkpoints are signed with ML-DSA');
    expect(() => loadCheckpointSigner('not a pem', '--key k.pem')).toThrow(/--key k.pem: not a PEM private key/);
    expect(() => loadCheckpointVerifier('not a pem', '--key p.pem')).toThrow(/--key p.pem: not a PEM public key/);
  });
});
