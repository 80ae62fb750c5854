// admission.k8s.io/v1 AdmissionReview in, AdmissionReview out: pure, so every malformed request is a unit test.
// The verdict itself comes from the reconciler (Reconciler.admit), the code that decides what the data plane serves.
import type { KubernetesObject } from '@kubernetes/client-node';
import { GATEWAY_GROUP, GATEWAY_VERSION } from '../model/gateway-api.js';
import type { AdmissionDecision } from '../reconciler.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

/** A kind a webhook path reviews. */
export interface ReviewedKind {
  group: string;
  version: string;
  kind: string;
  /** For messages: "Ingresses". */
  plural: string;
}

export const INGRESS_KIND: ReviewedKind = { group: 'networking.k8s.io', version: 'v1', kind: 'Ingress', plural: 'Ingresses' };
export const HTTP_ROUTE_KIND: ReviewedKind = { group: GATEWAY_GROUP, version: GATEWAY_VERSION, kind: 'HTTPRoute', plural: 'HTTPRoutes' };
export const GRPC_ROUTE_KIND: ReviewedKind = { group: GATEWAY_GROUP, version: GATEWAY_VERSION, kind: 'GRPCRoute', plural: 'GRPCRoutes' };
export const TLS_ROUTE_KIND: ReviewedKind = { group: GATEWAY_GROUP, version: GATEWAY_VERSION, kind: 'TLSRoute', plural: 'TLSRoutes' };
export const GATEWAY_KIND: ReviewedKind = { group: GATEWAY_GROUP, version: GATEWAY_VERSION, kind: 'Gateway', plural: 'Gateways' };

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

interface RawRequest {
  uid?: unknown;
  kind?: { group?: unknown; version?: unknown; kind?: unknown };
  name?: unknown;
  namespace?: unknown;
  operation?: unknown;
  subResource?: unknown;
  dryRun?: unknown;
  userInfo?: { username?: unknown; groups?: unknown };
  object?: unknown;
}

/** The fields of an AdmissionReview's request that the webhooks read, checked for their types. */
export interface AdmissionRequest {
  uid: string;
  /** undefined when the request names no kind (a malformed review). */
  kind: { group: string; version: string; kind: string } | undefined;
  /** "group/version/Kind" as the request gives it, for messages. */
  kindText: string;
  name: string;
  namespace: string;
  operation: string;
  /** '' unless the request is about a subresource (status, scale). */
  subResource: string;
  /** A dry run: the webhook must leave no trace (no Event). */
  dryRun: boolean;
  userInfo: { username: string; groups: string[] };
  object: unknown;
}

/** A webhook's verdict on one request; a denial's message reaches the user after the webhook's name. */
export type AdmissionVerdict = { allowed: true; warnings: string[] } | { allowed: false; message: string };

/**
 * Reads one request body. A body that is not an AdmissionReview with a request uid cannot be answered in kind: it gets
 * an HTTP 400. Otherwise `answer` turns a verdict into the AdmissionReview to send.
 */
export function readReview(body: string): { request: AdmissionRequest; answer: (verdict: AdmissionVerdict) => ReviewReply } | { status: 400; error: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    return { status: 400, error: `request body is not JSON: ${(err as Error).message}` };
  }
  if (!isObject(parsed) || parsed.apiVersion !== ADMISSION_API_VERSION || parsed.kind !== 'AdmissionReview') {
    return { status: 400, error: `request body is not an ${ADMISSION_API_VERSION} AdmissionReview (apiVersion and kind)` };
  }
  const raw = parsed.request as RawRequest | undefined;
  if (!isObject(raw) || typeof raw.uid !== 'string' || raw.uid === '') {
    return { status: 400, error: 'AdmissionReview has no request.uid' };
  }
  const kind = isObject(raw.kind) && typeof raw.kind.version === 'string' && typeof raw.kind.kind === 'string'
    ? { group: typeof raw.kind.group === 'string' ? raw.kind.group : '', version: raw.kind.version, kind: raw.kind.kind }
    : undefined;
  const kindText = isObject(raw.kind) ? texts(raw.kind.group, raw.kind.version, raw.kind.kind).join('/') : '';
  const userInfo = isObject(raw.userInfo) ? raw.userInfo : {};
  const request: AdmissionRequest = {
    uid: raw.uid,
    kind,
    kindText,
    name: texts(raw.name)[0] ?? '',
    namespace: texts(raw.namespace)[0] ?? '',
    operation: texts(raw.operation)[0] ?? '',
    subResource: texts(raw.subResource)[0] ?? '',
    dryRun: raw.dryRun === true,
    userInfo: {
      username: texts(userInfo.username)[0] ?? '',
      groups: Array.isArray(userInfo.groups) ? texts(...(userInfo.groups as unknown[])) : [],
    },
    object: raw.object,
  };
  const about = texts(request.operation, kindText, texts(request.namespace, request.name).join('/')).join(' ');
  const answer = (verdict: AdmissionVerdict): ReviewReply => {
    const response: AdmissionReviewResponse['response'] = verdict.allowed
      ? { uid: request.uid, allowed: true, ...(verdict.warnings.length > 0 ? { warnings: verdict.warnings } : {}) }
      : { uid: request.uid, allowed: false, status: { status: 'Failure', code: 400, reason: 'BadRequest', message: verdict.message } };
    return { status: 200, review: { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response }, about };
  };
  return { request, answer };
}

/**
 * Answers one review of `reviewed` objects (Ingresses, HTTPRoutes) with the reconciler's decision. A request about
 * another kind is denied, so a ValidatingWebhookConfiguration whose rules match too much is noticed at once.
 */
export function answerReview<T extends KubernetesObject>(body: string, reviewed: ReviewedKind, admit: (object: T) => AdmissionDecision): ReviewReply {
  const read = readReview(body);
  if ('status' in read) return read;
  const { request, answer } = read;
  const deny = (message: string) => answer({ allowed: false, message });
  const kind = request.kind;
  if (!kind || kind.group !== reviewed.group || kind.version !== reviewed.version || kind.kind !== reviewed.kind) {
    return deny(`this webhook reviews ${reviewed.group}/${reviewed.version} ${reviewed.plural}, not ${request.kindText || 'nothing'}: check the rules of its ValidatingWebhookConfiguration`);
  }
  // DELETE and CONNECT carry no new object: there is nothing the data plane would be asked to serve.
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return answer({ allowed: true, warnings: [] });
  if (!isObject(request.object)) return deny(`request.object: is required for ${request.operation}`);

  const object = request.object as T;
  // The API server fills in the namespace before validating webhooks run; the request's own field is the fallback.
  const namespace = object.metadata?.namespace || request.namespace || undefined;
  const decision = admit({ ...object, metadata: { ...object.metadata, namespace } });
  if (!decision.allowed) return deny(decision.message);
  return answer({ allowed: true, warnings: decision.warnings });
}

/** The non-empty strings among fields of unchecked JSON. */
function texts(...values: unknown[]): string[] {
  return values.filter((v): v is string => typeof v === 'string' && v !== '');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
