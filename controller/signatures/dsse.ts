// DSSE envelopes (github.com/secure-systems-lab/dsse, the envelope of in-toto and sigstore): payloadType, payload,
// signatures [{keyid, sig}], each signature over PAE(payloadType, payload). QubeSec adds `x5c` to a signature (the
// signer's certificate chain, base64 DER as in JWS) when it signs with a certificate; DSSE readers ignore it.
import { X509Certificate } from 'node:crypto';
import { EnvelopeError, certificatesPem } from './jws.js';
import type { SigningKey } from './keys.js';
import type { SignatureFailure, VerifiedSigner } from './objects.js';
import { resolveSigner, type TrustAnchors } from './trust.js';

export interface DsseSignature {
  keyid: string;
  /** base64 */
  sig: string;
  x5c?: string[];
}

export interface DsseEnvelope {
  payloadType: string;
  /** base64 */
  payload: string;
  signatures: DsseSignature[];
}

/** PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in ASCII decimal bytes. */
export function pae(payloadType: string, body: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${body.length} `), body]);
}

/** `envelope` (or a new one) with `key`'s signature over `payload` added, replacing an earlier one by the same key. */
export async function signEnvelope(payloadType: string, payload: Uint8Array, key: SigningKey, envelope?: DsseEnvelope): Promise<DsseEnvelope> {
  const encoded = Buffer.from(payload).toString('base64');
  if (envelope && (envelope.payloadType !== payloadType || envelope.payload !== encoded)) throw new EnvelopeError('the existing envelope is over another payload; sign into a new one');
  const signature: DsseSignature = { keyid: key.keyId, sig: Buffer.from(await key.sign(pae(payloadType, payload))).toString('base64') };
  if (key.certificateChainPem) signature.x5c = key.certificateChainPem.map((p) => new X509Certificate(p).raw.toString('base64'));
  return { payloadType, payload: encoded, signatures: [...(envelope?.signatures ?? []).filter((s) => s.keyid !== key.keyId), signature] };
}

export function parseEnvelope(text: string): DsseEnvelope {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new EnvelopeError(`not JSON: ${(err as Error).message}`);
  }
  const e = value as Partial<DsseEnvelope>;
  if (typeof e !== 'object' || e === null || typeof e.payloadType !== 'string' || typeof e.payload !== 'string' || !Array.isArray(e.signatures)) {
    throw new EnvelopeError('not a DSSE envelope (payloadType, payload, signatures)');
  }
  e.signatures.forEach((s, i) => {
    if (typeof s !== 'object' || s === null || typeof s.keyid !== 'string' || typeof s.sig !== 'string' || (s.x5c !== undefined && !(Array.isArray(s.x5c) && s.x5c.every((c) => typeof c === 'string')))) {
      throw new EnvelopeError(`signatures[${i}] is not {keyid, sig}`);
    }
  });
  if (e.signatures.length === 0) throw new EnvelopeError('the envelope has no signature');
  return e as DsseEnvelope;
}

/** Each signature of the envelope against the trust anchors; failures are named `signatures[i] (keyid K)`. */
export function verifyEnvelope(envelope: DsseEnvelope, anchors: TrustAnchors, now = new Date()): { signers: VerifiedSigner[]; failures: SignatureFailure[] } {
  const message = pae(envelope.payloadType, Buffer.from(envelope.payload, 'base64'));
  const signers = new Map<string, VerifiedSigner>();
  const failures: SignatureFailure[] = [];
  envelope.signatures.forEach((s, i) => {
    try {
      const signer = resolveSigner(anchors, s.keyid, certificatesPem(s.x5c), now);
      if (!signer.publicKey.verify(message, Buffer.from(s.sig, 'base64'))) throw new Error(`the ${signer.publicKey.algorithm} signature by key ${s.keyid} does not verify (signature or payload changed)`);
      signers.set(signer.keyId, { id: signer.keyId, algorithm: signer.publicKey.algorithm, ...(signer.subject ? { subject: signer.subject } : {}) });
    } catch (err) {
      failures.push({ annotation: `signatures[${i}] (keyid ${s.keyid})`, reason: (err as Error).message });
    }
  });
  return { signers: [...signers.values()], failures };
}
