// Checkpoints: a c2sp.org/tlog-checkpoint body (origin, tree size, base64 root hash, one line each) in a
// c2sp.org/signed-note note, signed over the note text (no context string) with the receiver's key: ML-DSA-65 by
// default, or any algorithm of controller/signatures. signed-note assigns no type to these, so QubeSec uses the
// escape it reserves, 0xff followed by an identifier: the type is 0xff || "qubesec.io/" || the algorithm's name
// ("qubesec.io/ML-DSA-65"), and the key ID is, as the spec recommends, SHA-256(key name || 0x0A || type || public
// key as SPKI DER)[:4], the key name being the origin.
import { createHash } from 'node:crypto';
import type { PublicKey } from '../algorithms.js';
import type { SigningKey } from '../keys.js';
import { HASH_BYTES } from './merkle.js';

export interface Checkpoint {
  origin: string;
  size: number;
  /** The Merkle tree hash over the first `size` records. */
  root: Buffer;
}

export function checkpointBody(checkpoint: Checkpoint): string {
  return `${checkpoint.origin}\n${checkpoint.size}\n${checkpoint.root.toString('base64')}\n`;
}

/** The body's three lines; later lines (tlog-checkpoint's extensions) are not written, so none is accepted. */
export function parseCheckpointBody(body: string): Checkpoint {
  const lines = body.split('\n');
  if (lines.length !== 4 || lines[3] !== '') throw new Error('the checkpoint text is not three lines (origin, tree size, root hash)');
  const [origin = '', size = '', root = ''] = lines;
  if (origin === '' || /\s|\+/.test(origin)) throw new Error(`origin ${JSON.stringify(origin)} is empty or holds a space or +`);
  if (!/^(0|[1-9]\d{0,15})$/.test(size)) throw new Error(`tree size ${JSON.stringify(size)} is not a decimal number`);
  const rootHash = Buffer.from(root, 'base64');
  if (rootHash.length !== HASH_BYTES || rootHash.toString('base64') !== root) throw new Error(`root hash ${JSON.stringify(root)} is not 32 bytes of base64`);
  return { origin, size: Number(size), root: rootHash };
}

function signatureType(key: PublicKey): Buffer {
  return Buffer.concat([Buffer.of(0xff), Buffer.from(`qubesec.io/${key.algorithm}`)]);
}

export function noteKeyId(name: string, key: PublicKey): Buffer {
  return createHash('sha256').update(`${name}\n`).update(signatureType(key)).update(key.spki).digest().subarray(0, 4);
}

/** The signed note of a checkpoint: its text, a blank line, the signature line (key name = origin). */
export async function signCheckpoint(checkpoint: Checkpoint, key: SigningKey): Promise<string> {
  const text = checkpointBody(checkpoint);
  const signature = await key.sign(Buffer.from(text));
  const blob = Buffer.concat([noteKeyId(checkpoint.origin, key.publicKey), signature]).toString('base64');
  return `${text}\n\u2014 ${checkpoint.origin} ${blob}\n`;
}

/** The text of a signed note (up to its last blank line), or an error saying why it is not one. */
export function noteText(note: string): string {
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw new Error('not a signed note (text, blank line, signature lines)');
  return note.slice(0, split + 1);
}

/**
 * The checkpoint of a note signed by one of `keys` (several while the receiver's key is being replaced). As signed-note
 * asks, lines of unknown keys are skipped, and a known key's line that does not verify refuses the note.
 */
export function openCheckpoint(note: string, keys: PublicKey[]): Checkpoint {
  const text = noteText(note);
  const checkpoint = parseCheckpointBody(text);
  const known = new Map(keys.map((key) => [noteKeyId(checkpoint.origin, key).toString('hex'), key]));
  for (const line of note.slice(text.length + 1, -1).split('\n')) {
    const match = /^\u2014 (\S+) ([A-Za-z0-9+/]+={0,2})$/.exec(line);
    if (!match) throw new Error(`signature line ${JSON.stringify(line.slice(0, 80))} is not "\u2014 name base64"`);
    const blob = Buffer.from(match[2]!, 'base64');
    const key = match[1] === checkpoint.origin && blob.length > 4 ? known.get(blob.subarray(0, 4).toString('hex')) : undefined;
    if (!key) continue;
    if (!key.verify(Buffer.from(text), blob.subarray(4))) throw new Error(`the ${key.algorithm} signature does not verify with key ${key.keyId}`);
    return checkpoint;
  }
  throw new Error(`no signature by ${keys.length === 1 ? `the key (${keys[0]!.algorithm}, key ID ${noteKeyId(checkpoint.origin, keys[0]!).toString('hex')})` : `any of the ${keys.length} keys`} under key name ${checkpoint.origin}`);
}
