// The signature webhook's decision for one admission request, from the policies' model: which policies match, whether
// the object's signatures satisfy each, and what that means per mode (enforce denies, warn warns, audit records).
// No I/O: verification is node:crypto through verifyObject; the caller turns the outcomes into metrics and Events.
import { performance } from 'node:perf_hooks';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { AdmissionRequest, AdmissionVerdict } from '../admission/review.js';
import { verifyObject, type ObjectVerification } from './objects.js';
import { policyRef, type MatchSubject, type PolicyMode, type SignaturePolicyModel } from './policy.js';

export const VALIDATE_SIGNATURES_PATH = '/validate/signatures';

/**
 * Never reviewed, whatever a policy or the webhook's rules say, so the webhook cannot lock the cluster out: the
 * system namespaces, the control plane's own users and kube-system's controllers (they make ReplicaSets, Pods and
 * Endpoints from signed objects), and the controller's own namespace and service accounts (added by the caller).
 */
const SYSTEM_NAMESPACES: readonly string[] = ['kube-system', 'kube-public', 'kube-node-lease'];
const SYSTEM_USERS: readonly string[] = ['system:apiserver', 'system:kube-controller-manager', 'system:kube-scheduler'];
const SYSTEM_USER_PREFIXES: readonly string[] = ['system:node:', 'system:serviceaccount:kube-system:'];

/** What the informers hold: the policies, or why nothing can be decided yet. */
export type PolicyView =
  | { synced: true; policies: readonly SignaturePolicyModel[]; namespaceLabels(namespace: string): Record<string, string> }
  | { synced: false; pending: string[] };

export type PolicyResult = 'verified' | 'failed' | 'error';

/** One matching policy's judgement. */
export interface PolicyOutcome {
  policy: string;
  mode: PolicyMode;
  result: PolicyResult;
  /** For failed and error: the message a user sees ("Deployment default/web: SignaturePolicy x (enforce): unsigned ..."). */
  message: string;
  /** Time spent in verifyObject; 0 when nothing was verified. */
  verificationSeconds: number;
}

export interface SignatureReview {
  verdict: AdmissionVerdict;
  outcomes: PolicyOutcome[];
  /** The object as messages and Events name it. */
  object: { apiVersion: string; kind: string; namespace: string; name: string };
}

export interface ReviewOptions {
  /** The controller's namespace: exempt, with its service accounts. */
  controllerNamespace: string;
  now?: Date;
}

/** Why `subject` is exempt from every policy, or undefined. */
export function systemExemption(subject: Pick<MatchSubject, 'namespace' | 'username'>, controllerNamespace: string): string | undefined {
  if (SYSTEM_NAMESPACES.includes(subject.namespace) || subject.namespace === controllerNamespace) return `namespace ${subject.namespace} is exempt`;
  if (SYSTEM_USERS.includes(subject.username) || SYSTEM_USER_PREFIXES.some((p) => subject.username.startsWith(p))
    || subject.username.startsWith(`system:serviceaccount:${controllerNamespace}:`)) return `user ${subject.username} is exempt`;
  return undefined;
}

export async function reviewSignatures(request: AdmissionRequest, view: PolicyView, options: ReviewOptions): Promise<SignatureReview> {
  const object = (typeof request.object === 'object' && request.object !== null ? request.object : {}) as { apiVersion?: string; metadata?: { name?: string; generateName?: string; namespace?: string } };
  const kind = request.kind ?? { group: '', version: '', kind: '' };
  const namespace = object.metadata?.namespace || request.namespace;
  const name = object.metadata?.name || request.name || `${object.metadata?.generateName ?? ''}*`;
  const about = { apiVersion: object.apiVersion ?? (kind.group ? `${kind.group}/${kind.version}` : kind.version), kind: kind.kind, namespace, name };
  const label = `${kind.kind} ${namespace ? `${namespace}/` : ''}${name}`;
  const allow: SignatureReview = { verdict: { allowed: true, warnings: [] }, outcomes: [], object: about };
  // DELETE and CONNECT carry no object to verify; subresources (status, scale) are not what was signed.
  if ((request.operation !== 'CREATE' && request.operation !== 'UPDATE') || request.subResource !== '') return allow;
  const subject = { group: kind.group, kind: kind.kind, namespace, username: request.userInfo.username, groups: request.userInfo.groups };
  if (systemExemption(subject, options.controllerNamespace)) return allow;
  if (!view.synced) {
    // Any enforce policy might match: nothing unverified gets in before the controller knows.
    return { ...allow, verdict: { allowed: false, message: `${label}: signature policies cannot be checked yet (the controller's first lists of ${view.pending.join(', ')} are not in); refused until they are` } };
  }
  const matchSubject: MatchSubject = { ...subject, namespaceLabels: namespace ? view.namespaceLabels(namespace) : {} };
  const matching = view.policies.filter((p) => p.matches?.(matchSubject) && !p.exempts(matchSubject));
  if (matching.length === 0) return allow;

  const outcomes: PolicyOutcome[] = [];
  for (const policy of matching) outcomes.push(await judge(policy, request.object, label, options.now ?? new Date()));
  const denials = outcomes.filter((o) => o.mode === 'enforce' && o.result !== 'verified').map((o) => o.message);
  const warnings = outcomes.filter((o) => o.mode === 'warn' && o.result !== 'verified').map((o) => o.message);
  return { verdict: denials.length > 0 ? { allowed: false, message: denials.join('; ') } : { allowed: true, warnings }, outcomes, object: about };
}

async function judge(policy: SignaturePolicyModel, object: unknown, label: string, now: Date): Promise<PolicyOutcome> {
  const prefix = `${label}: ${policyRef(policy.name)} (${policy.mode})`;
  const outcome = (result: PolicyResult, why: string, verificationSeconds = 0): PolicyOutcome =>
    ({ policy: policy.name, mode: policy.mode, result, message: result === 'verified' ? '' : `${prefix}: ${why}`, verificationSeconds });
  if (!policy.anchors) return outcome('error', `cannot be evaluated: ${policy.problem?.message ?? 'its trust is not resolved'}`);
  const started = performance.now();
  let verification: ObjectVerification;
  try {
    verification = await verifyObject(object as KubernetesObject, policy.anchors, { ignoredFields: policy.ignoredFields, now });
  } catch (err) {
    return outcome('error', `verification failed: ${(err as Error).message}`, (performance.now() - started) / 1000);
  }
  const seconds = (performance.now() - started) / 1000;
  const signers = [...new Set(verification.signers.map((s) => s.id))];
  if (signers.length >= policy.requiredSigners) return outcome('verified', '', seconds);
  const failures = verification.failures.map((f) => `${f.annotation}: ${f.reason}`);
  if (signers.length === 0 && failures.length === 0) return outcome('failed', 'unsigned: the object carries no signature', seconds);
  const tooFew = signers.length > 0 || policy.requiredSigners > 1
    ? [`too few signers: ${signers.length} trusted (${signers.join(', ') || 'none'}), ${policy.requiredSigners} required`]
    : [];
  return outcome('failed', [...tooFew, ...failures].join('; '), seconds);
}
