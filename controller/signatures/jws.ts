// JWS compact serialization (RFC 7515) for object signatures. `alg` is the algorithm's name: RFC 9964's ML-DSA-44,
// ML-DSA-65, ML-DSA-87 (pure ML-DSA, empty context), so any JOSE library with ML-DSA verifies them; SLH-DSA and the
// composites use QubeSec's names (docs/signatures.md says why). The format is a few lines, the same for every
// algorithm; the `jose` package, which has ML-DSA only, checks it independently in the tests.
import { X509Certificate } from 'node:crypto';
import { isSignatureAlgorithm, type SignatureAlgorithm } from './algorithms.js';
import type { SigningKey } from './keys.js';
import { pem } from './pem.js';

export class EnvelopeError extends Error {}

export interface JwsHeader {
  alg: SignatureAlgorithm;
  kid: string;
  typ?: string;
  /** The signer's certificate chain (base64 DER, leaf first), RFC 7515 section 4.1.6. */
  x5c?: string[];
  [parameter: string]: unknown;
}

export interface ParsedJws {
  header: JwsHeader;
  payload: Buffer;
  /** ASCII(BASE64URL(header) || '.' || BASE64URL(payload)): what the signature is over. */
  signingInput: Buffer;
  signature: Buffer;
}

export async function signCompact(header: Omit<JwsHeader, 'alg' | 'kid' | 'x5c'>, payload: Uint8Array, key: SigningKey): Promise<string> {
  const full: JwsHeader = { alg: key.algorithm, kid: key.keyId, ...header };
  if (key.certificateChainPem) full.x5c = key.certificateChainPem.map((p) => new X509Certificate(p).raw.toString('base64'));
  const signingInput = `${Buffer.from(JSON.stringify(full)).toString('base64url')}.${Buffer.from(payload).toString('base64url')}`;
  return `${signingInput}.${Buffer.from(await key.sign(Buffer.from(signingInput, 'ascii'))).toString('base64url')}`;
}

export function parseCompact(jws: string): ParsedJws {
  const parts = jws.trim().split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) throw new EnvelopeError('not a JWS in compact serialization (three base64url parts)');
  let header: JwsHeader;
  try {
    header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as JwsHeader;
  } catch {
    throw new EnvelopeError('the JWS header is not JSON');
  }
  if (typeof header !== 'object' || header === null) throw new EnvelopeError('the JWS header is not a JSON object');
  if (typeof header.alg !== 'string' || !isSignatureAlgorithm(header.alg)) throw new EnvelopeError(`the JWS alg ${JSON.stringify(header.alg)} is not one QubeSec verifies`);
  if (typeof header.kid !== 'string') throw new EnvelopeError('the JWS header has no kid');
  if (header.x5c !== undefined && !(Array.isArray(header.x5c) && header.x5c.every((c) => typeof c === 'string'))) throw new EnvelopeError('the JWS x5c is not a list of base64 certificates');
  return {
    header,
    payload: Buffer.from(parts[1]!, 'base64url'),
    signingInput: Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii'),
    signature: Buffer.from(parts[2]!, 'base64url'),
  };
}

export function certificatesPem(x5c: string[] | undefined): string[] | undefined {
  return x5c?.map((der) => pem('CERTIFICATE', Buffer.from(der, 'base64')));
}
