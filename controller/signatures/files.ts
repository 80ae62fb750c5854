// Detached file signatures: FILE.sig.json, a DSSE envelope around an in-toto Statement (v1) whose subject is the file
// with its SHA-256 and SHA-512 digests, so in-toto and sigstore tooling can read it. A Helm chart archive, a tarball, a
// configuration file or an image digest written to a text file: any bytes.
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { parseEnvelope, signEnvelope, verifyEnvelope, type DsseEnvelope } from './dsse.js';
import { EnvelopeError } from './jws.js';
import type { SigningKey } from './keys.js';
import type { ObjectVerification } from './objects.js';
import type { TrustAnchors } from './trust.js';

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const IN_TOTO_STATEMENT = 'https://in-toto.io/Statement/v1';
export const FILE_SIGNATURE_PREDICATE = 'https://qubesec.io/signatures/file/v1';
export const BUNDLE_SUFFIX = '.sig.json';

interface Statement {
  _type: string;
  subject: { name: string; digest: Record<string, string> }[];
  predicateType: string;
  predicate: Record<string, unknown>;
}

const DIGEST_NAMES: Record<string, string> = { sha256: 'SHA-256', sha512: 'SHA-512' };

function digests(bytes: Uint8Array): Record<string, string> {
  return { sha256: createHash('sha256').update(bytes).digest('hex'), sha512: createHash('sha512').update(bytes).digest('hex') };
}

/** The statement QubeSec signs for a file: no time or host in it, so signing the same file twice signs the same bytes. */
export function fileStatement(fileName: string, bytes: Uint8Array): Buffer {
  const statement: Statement = { _type: IN_TOTO_STATEMENT, subject: [{ name: basename(fileName), digest: digests(bytes) }], predicateType: FILE_SIGNATURE_PREDICATE, predicate: {} };
  return Buffer.from(JSON.stringify(statement));
}

/** A bundle for the file, or `existing` (its text) with this key's signature added or replaced. */
export async function signFile(fileName: string, bytes: Uint8Array, key: SigningKey, existing?: string): Promise<string> {
  const envelope: DsseEnvelope | undefined = existing === undefined ? undefined : parseEnvelope(existing);
  return `${JSON.stringify(await signEnvelope(IN_TOTO_PAYLOAD_TYPE, fileStatement(fileName, bytes), key, envelope), null, 2)}\n`;
}

/** Checks the bundle's signatures and that its statement names these bytes. Throws EnvelopeError for a bundle that is not one. */
export function verifyFile(bytes: Uint8Array, bundle: string, anchors: TrustAnchors, now = new Date()): ObjectVerification {
  const envelope = parseEnvelope(bundle);
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) throw new EnvelopeError(`the bundle's payloadType is ${JSON.stringify(envelope.payloadType)}, not ${IN_TOTO_PAYLOAD_TYPE}`);
  let statement: Statement;
  try {
    statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as Statement;
  } catch {
    throw new EnvelopeError('the bundle\'s payload is not a JSON in-toto statement');
  }
  if (statement._type !== IN_TOTO_STATEMENT || !Array.isArray(statement.subject) || statement.subject.length !== 1 || typeof statement.subject[0]?.digest !== 'object') {
    throw new EnvelopeError('the bundle\'s payload is not an in-toto Statement v1 with one subject');
  }
  const result = verifyEnvelope(envelope, anchors, now);
  const signed = statement.subject[0].digest;
  const actual = digests(bytes);
  if (!signed.sha512 && !signed.sha256) throw new EnvelopeError('the bundle\'s subject has no sha256 or sha512 digest');
  const differing = Object.keys(actual).filter((algorithm) => signed[algorithm] !== undefined && signed[algorithm] !== actual[algorithm]);
  if (differing.length > 0) {
    return { signers: [], failures: [{ annotation: 'subject', reason: `the file's ${differing.map((a) => DIGEST_NAMES[a]).join(' and ')} digest${differing.length > 1 ? 's differ' : ' differs'} from the bundle's subject ${statement.subject[0].name} (the file changed, or the bundle is another file's)` }, ...result.failures] };
  }
  return result;
}
