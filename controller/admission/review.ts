// admission.k8s.io/v1 AdmissionReview in, AdmissionReview out: pure, so every malformed request is a unit test.
// The verdict itself comes from the reconciler (Reconciler.admit), the code that decides what the data plane serves.
import type { V1Ingress } from '@kubernetes/client-node';
import type { AdmissionDecision } from '../reconciler.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';
const INGRESS_KIND = { group: 'networking.k8s.io', version: 'v1', kind: 'Ingress' };

/**
 * What the HTTP server sends: an AdmissionReview, with what it was about for the log ("CREATE Ingress default/web"), or
 * a plain-text error.
 */
export type ReviewReply = { status: 200; review: AdmissionReviewResponse; about: string } | { status: 400; error: string };

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: {
    uid: string;
    allowed: boolean;
    status?: { status: 'Failure'; code: 400; reason: 'BadRequest'; message: string };
    warnings?: string[];
  };
}

interface AdmissionRequest {
  uid?: unknown;
  kind?: { group?: unknown; version?: unknown; kind?: unknown };
  name?: unknown;
  namespace?: unknown;
  operation?: unknown;
  object?: unknown;
}

/**
 * Answers one request body. A body that is not an AdmissionReview with a request uid cannot be answered in kind: it
 * gets an HTTP 400. Anything else gets an AdmissionReview; a request about something other than an Ingress is denied,
 * so a ValidatingWebhookConfiguration whose rules match too much is noticed at once.
 */
export function answerReview(body: string, admit: (ingress: V1Ingress) => AdmissionDecision): ReviewReply {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    return { status: 400, error: `request body is not JSON: ${(err as Error).message}` };
  }
  if (!isObject(parsed) || parsed.apiVersion !== ADMISSION_API_VERSION || parsed.kind !== 'AdmissionReview') {
    return { status: 400, error: `request body is not an ${ADMISSION_API_VERSION} AdmissionReview (apiVersion and kind)` };
  }
  const request = parsed.request as AdmissionRequest | undefined;
  if (!isObject(request) || typeof request.uid !== 'string' || request.uid === '') {
    return { status: 400, error: 'AdmissionReview has no request.uid' };
  }
  const kind = request.kind;
  const kindText = isObject(kind) ? texts(kind.group, kind.version, kind.kind).join('/') : '';
  const about = texts(request.operation, kindText, texts(request.namespace, request.name).join('/')).join(' ');
  const reply = (response: Omit<AdmissionReviewResponse['response'], 'uid'>): ReviewReply => ({
    status: 200,
    review: { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response: { uid: request.uid as string, ...response } },
    about,
  });
  const deny = (message: string) => reply({ allowed: false, status: { status: 'Failure', code: 400, reason: 'BadRequest', message } });

  if (!isObject(kind) || kind.group !== INGRESS_KIND.group || kind.version !== INGRESS_KIND.version || kind.kind !== INGRESS_KIND.kind) {
    return deny(`this webhook reviews networking.k8s.io/v1 Ingresses, not ${kindText || 'nothing'}: check the rules of its ValidatingWebhookConfiguration`);
  }
  // DELETE and CONNECT carry no new object: there is nothing the data plane would be asked to serve.
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return reply({ allowed: true });
  if (!isObject(request.object)) return deny(`request.object: is required for ${String(request.operation)}`);

  const ingress = request.object as V1Ingress;
  // The API server fills in the namespace before validating webhooks run; the request's own field is the fallback.
  const namespace = ingress.metadata?.namespace || (typeof request.namespace === 'string' ? request.namespace : undefined);
  const decision = admit({ ...ingress, metadata: { ...ingress.metadata, namespace } });
  if (!decision.allowed) return deny(decision.message);
  return reply(decision.warnings.length > 0 ? { allowed: true, warnings: decision.warnings } : { allowed: true });
}

/** The non-empty strings among fields of unchecked JSON. */
function texts(...values: unknown[]): string[] {
  return values.filter((v): v is string => typeof v === 'string' && v !== '');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
