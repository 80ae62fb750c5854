// Checkpoints: a c2sp.org/tlog-checkpoint body (origin, tree size, base64 root hash, one line each) in a
// c2sp.org/signed-note note, signed with ML-DSA (FIPS 204, pure, empty context) over the note text.
// signed-note assigns no ML-DSA signature type, so QubeSec uses the escape it reserves (0xff followed by an
// identifier): the type is 0xff || "qubesec.io/<ML-DSA-65>" (the algorithm's name), and the key ID is, as the spec
// recommends, SHA-256(key name || 0x0A || type || public key as SPKI DER)[:4], the key name being the origin.
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { HASH_BYTES } from './merkle.js';

const ML_DSA_NAMES: Record<string, string> = { 'ml-dsa-44': 'ML-DSA-44', 'ml-dsa-65': 'ML-DSA-65', 'ml-dsa-87': 'ML-DSA-87' };

export interface Checkpoint {
  origin: string;
  size: number;
  /** The Merkle tree hash over the first `size` records. */
  root: Buffer;
}

export interface CheckpointVerifier {
  /** ML-DSA-44, ML-DSA-65 or ML-DSA-87. */
  algorithm: string;
  spki: Buffer;
  verify(text: Buffer, signature: Buffer): boolean;
}

export interface CheckpointSigner extends CheckpointVerifier {
  sign(text: Buffer): Buffer;
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

export function signatureType(key: CheckpointVerifier): Buffer {
  return Buffer.concat([Buffer.of(0xff), Buffer.from(`qubesec.io/${key.algorithm}`)]);
}

export function noteKeyId(name: string, key: CheckpointVerifier): Buffer {
  return createHash('sha256').update(`${name}\n`).update(signatureType(key)).update(key.spki).digest().subarray(0, 4);
}

/** The signed note of a checkpoint: its text, a blank line, the signature line (key name = origin). */
export function signCheckpoint(checkpoint: Checkpoint, signer: CheckpointSigner): string {
  const text = checkpointBody(checkpoint);
  const signature = signer.sign(Buffer.from(text));
  const blob = Buffer.concat([noteKeyId(checkpoint.origin, signer), signature]).toString('base64');
  return `${text}\n\u2014 ${checkpoint.origin} ${blob}\n`;
}

/**
 * The checkpoint of a note that `key` signed. Signature lines of other keys are skipped (signed-note); a note with no
 * line of this key, or whose line does not verify, is refused with the reason.
 */
export function openCheckpoint(note: string, key: CheckpointVerifier): Checkpoint {
  // signed-note: the text ends at the last blank line.
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw new Error('not a signed note (text, blank line, signature lines)');
  const text = note.slice(0, split + 1);
  const checkpoint = parseCheckpointBody(text);
  const ours = noteKeyId(checkpoint.origin, key);
  for (const line of note.slice(split + 2, -1).split('\n')) {
    const match = /^\u2014 (\S+) ([A-Za-z0-9+/]+={0,2})$/.exec(line);
    if (!match) throw new Error(`signature line ${JSON.stringify(line.slice(0, 80))} is not "\u2014 name base64"`);
    const blob = Buffer.from(match[2]!, 'base64');
    if (match[1] !== checkpoint.origin || blob.length < 5 || !blob.subarray(0, 4).equals(ours)) continue;
    if (!key.verify(Buffer.from(text), blob.subarray(4))) throw new Error(`the ${key.algorithm} signature does not verify with the key`);
    return checkpoint;
  }
  throw new Error(`no signature by the key (key name ${checkpoint.origin}, key ID ${ours.toString('hex')}, ${key.algorithm})`);
}

function mlDsaName(key: KeyObject, source: string): string {
  const name = ML_DSA_NAMES[key.asymmetricKeyType ?? ''];
  if (!name) throw new Error(`${source}: a ${key.asymmetricKeyType ?? 'unknown'} key; checkpoints are signed with ML-DSA (ml-dsa-44, ml-dsa-65 or ml-dsa-87)`);
  return name;
}

function verifierOf(publicKey: KeyObject, source: string): CheckpointVerifier {
  return {
    algorithm: mlDsaName(publicKey, source),
    spki: publicKey.export({ format: 'der', type: 'spki' }),
    verify: (text, signature) => verify(null, text, publicKey, signature),
  };
}

/** An ML-DSA private key (PKCS#8 PEM, as `openssl genpkey -algorithm ML-DSA-65` writes) that signs checkpoints. */
export function loadCheckpointSigner(pem: string, source: string): CheckpointSigner {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (err) {
    throw new Error(`${source}: not a PEM private key (${(err as Error).message})`, { cause: err });
  }
  return { ...verifierOf(createPublicKey(privateKey), source), sign: (text) => sign(null, text, privateKey) };
}

/** An ML-DSA public key (SPKI PEM); a private key's PEM gives its public half. */
export function loadCheckpointVerifier(pem: string, source: string): CheckpointVerifier {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey(pem);
  } catch (err) {
    throw new Error(`${source}: not a PEM public key (${(err as Error).message})`, { cause: err });
  }
  return verifierOf(publicKey, source);
}
