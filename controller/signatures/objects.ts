// Signatures on Kubernetes objects: one annotation per signer, `signatures.qubesec.io/<keyId>`, holding a JWS (compact)
// whose payload is the object's canonical form (canonical.ts). The payload is kept so that a verifier can name the
// field that changed, and so that any JOSE library can check the signature on its own.
import type { KubernetesObject } from '@kubernetes/client-node';
import {
  SIGNATURE_ANNOTATION_PREFIX, canonicalForm, compareWithSigned, describeDifference, kindKey, parseFieldPath, signedView, type CanonicalOptions, type Json,
} from './canonical.js';
import type { SignatureAlgorithm } from './algorithms.js';
import { EnvelopeError, certificatesPem, parseCompact, signCompact } from './jws.js';
import type { SigningKey } from './keys.js';
import { resolveSigner, type TrustAnchors } from './trust.js';

export { SIGNATURE_ANNOTATION_PREFIX, canonicalForm, type CanonicalOptions };

/** The JWS `typ` of an object signature. */
export const OBJECT_SIGNATURE_TYPE = 'qubesec-object+jws';
/** kube-apiserver's limit on the sum of an object's annotation keys and values (apimachinery TotalAnnotationSizeLimitB). */
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;
/** The protected header parameter with the fields the signer left out of what it signed (CanonicalOptions.ignoredFields). */
const IGNORED_HEADER = 'qubesec.io/ignored-fields';

export interface VerifiedSigner {
  /** The signer's key id (SHA-256 of its SubjectPublicKeyInfo, 16 hex digits): one per distinct key. */
  id: string;
  /** The certificate subject, for a signer with a certificate (or a trusted certificate's key). */
  subject?: string;
  algorithm: SignatureAlgorithm;
}

export interface SignatureFailure {
  /** The annotation key the failed signature is in. */
  annotation: string;
  reason: string;
}

export interface ObjectVerification {
  /** Distinct signers whose signatures verified and whose signed form matches the object. */
  signers: VerifiedSigner[];
  failures: SignatureFailure[];
}

export function signatureAnnotation(keyId: string): string {
  return `${SIGNATURE_ANNOTATION_PREFIX}${keyId}`;
}

/**
 * `obj` with `key`'s signature added (or replaced: signing again with the same key gives the same payload); other
 * signers' signatures stay. The object given is not changed.
 */
export async function signObject<T extends KubernetesObject>(obj: T, key: SigningKey, options: CanonicalOptions = {}): Promise<T> {
  const ignoredFields = options.ignoredFields ?? [];
  ignoredFields.forEach(parseFieldPath); // a bad path fails here, naming itself
  const header = { typ: OBJECT_SIGNATURE_TYPE, ...(ignoredFields.length ? { [IGNORED_HEADER]: ignoredFields } : {}) };
  const jws = await signCompact(header, canonicalForm(obj, { ignoredFields }), key);
  const signed = JSON.parse(JSON.stringify(obj)) as T;
  const annotations = { ...signed.metadata?.annotations, [signatureAnnotation(key.keyId)]: jws };
  // The signature holds the signed form, so a large object cannot carry it: the API server would refuse it at apply.
  const size = Object.entries(annotations).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
  if (size > MAX_ANNOTATIONS_BYTES) {
    throw new Error(`metadata.annotations would hold ${size} bytes with this signature (it carries the signed form, ${jws.length} bytes), over the API server's ${MAX_ANNOTATIONS_BYTES}: sign the manifest file instead (qubesec sign --detached)`);
  }
  signed.metadata = { ...signed.metadata, annotations };
  return signed;
}

/** Every signature on `obj`, checked against `anchors` and against the object as it is now. */
export async function verifyObject(obj: KubernetesObject, anchors: TrustAnchors, options: CanonicalOptions & { now?: Date } = {}): Promise<ObjectVerification> {
  const now = options.now ?? new Date();
  const signers = new Map<string, VerifiedSigner>();
  const failures: SignatureFailure[] = [];
  for (const [annotation, value] of Object.entries(obj.metadata?.annotations ?? {})) {
    if (!annotation.startsWith(SIGNATURE_ANNOTATION_PREFIX)) continue;
    try {
      const signer = verifyOne(obj, annotation, value, anchors, options.ignoredFields ?? [], now);
      signers.set(signer.id, signer);
    } catch (err) {
      failures.push({ annotation, reason: (err as Error).message });
    }
  }
  return { signers: [...signers.values()], failures };
}

function verifyOne(obj: KubernetesObject, annotation: string, value: string, anchors: TrustAnchors, ignoredByVerifier: string[], now: Date): VerifiedSigner {
  const jws = parseCompact(value);
  const { header } = jws;
  if (header.typ !== OBJECT_SIGNATURE_TYPE) throw new EnvelopeError(`the JWS typ is ${JSON.stringify(header.typ)}, not ${OBJECT_SIGNATURE_TYPE}`);
  if (annotation !== signatureAnnotation(header.kid)) throw new EnvelopeError(`the signature is by key ${header.kid}, but it is in the annotation of key ${annotation.slice(SIGNATURE_ANNOTATION_PREFIX.length)}`);
  const signer = resolveSigner(anchors, header.kid, certificatesPem(header.x5c), now);
  if (signer.publicKey.algorithm !== header.alg) throw new Error(`wrong key type: the signature is ${header.alg}, the trusted key ${header.kid} is ${signer.publicKey.algorithm}`);
  if (!signer.publicKey.verify(jws.signingInput, jws.signature)) throw new Error(`the ${header.alg} signature by key ${header.kid} does not verify (signature or payload changed)`);

  const ignoredBySigner = header[IGNORED_HEADER] ?? [];
  if (!Array.isArray(ignoredBySigner) || !ignoredBySigner.every((p) => typeof p === 'string')) throw new EnvelopeError(`the JWS header's ${IGNORED_HEADER} is not a list of field paths`);
  let signedForm: Json;
  try {
    signedForm = JSON.parse(jws.payload.toString('utf8')) as Json;
  } catch {
    throw new EnvelopeError('the signed payload is not JSON');
  }
  // The signer's ignored fields are signed: what it chose not to sign may change. The verifier's own list is
  // left out of both sides.
  const ignoredFields = [...ignoredByVerifier, ...ignoredBySigner];
  const found = signedView(obj, { ignoredFields });
  const signed = signedView(signedForm as KubernetesObject, { ignoredFields });
  const differences = compareWithSigned(signed, found, kindKey(found));
  if (differences.length > 0) {
    const shown = differences.slice(0, 3).map(describeDifference).join('; ');
    throw new Error(`tampered: ${shown}${differences.length > 3 ? `; and ${differences.length - 3} more` : ''}`);
  }
  return { id: signer.keyId, algorithm: signer.publicKey.algorithm, ...(signer.subject ? { subject: signer.subject } : {}) };
}
