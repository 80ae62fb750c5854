// SignaturePolicy (qubesec.io/v1alpha1, cluster-scoped) into a typed model: which objects it covers, whom it trusts,
// what it demands. Pure: the Secrets, ConfigMaps and Issuers it names come in as lookups, so every bad spec and every
// missing or broken trust source is a unit test. A policy that cannot be evaluated still says what it matches, so an
// enforce policy fails closed for exactly those objects.
import type { V1ConfigMap, V1LabelSelector, V1Secret } from '@kubernetes/client-node';
import { secretData } from '../model/certificates.js';
import { checkNamespaceName, quote } from '../model/names.js';
import type { Condition, IssuerResource } from '../pki/resources.js';
import { parseFieldPath } from './canonical.js';
import { trustAnchorsFrom, type TrustAnchors } from './trust.js';

const POLICY_KIND = 'SignaturePolicy';
export const POLICY_PLURAL = 'signaturepolicies';
const POLICY_MODES = ['enforce', 'warn', 'audit'] as const;
export type PolicyMode = (typeof POLICY_MODES)[number];
const MAX_REQUIRED_SIGNERS = 16;

interface SourceRef { namespace?: string; name?: string; key?: string }

export interface SignaturePolicyResource {
  apiVersion: string;
  kind: typeof POLICY_KIND;
  metadata: { name: string; generation?: number; resourceVersion?: string; uid?: string };
  spec?: {
    match?: { kinds?: { apiGroup?: string; kind?: string }[]; namespaces?: string[]; namespaceSelector?: V1LabelSelector };
    trust?: { keys?: { secretRef?: SourceRef; configMapRef?: SourceRef }[]; issuers?: { kind?: string; name?: string; namespace?: string }[] };
    requiredSigners?: number;
    mode?: string;
    ignoredFields?: string[];
    exemptions?: { namespaces?: string[]; serviceAccounts?: string[]; users?: string[]; groups?: string[] };
  };
  status?: { conditions?: Condition[]; trustedSigners?: number };
}

/** apiGroup/kind; '*' matches any. */
interface KindPattern { apiGroup: string; kind: string }

/** The object an admission request is about, as far as matching goes. */
export interface MatchSubject {
  group: string;
  kind: string;
  /** '' for cluster-scoped objects. */
  namespace: string;
  /** Labels of that namespace (none for cluster-scoped objects or a namespace not seen). */
  namespaceLabels: Record<string, string>;
  username: string;
  groups: string[];
}

export interface SignaturePolicyModel {
  name: string;
  mode: PolicyMode;
  /** undefined when spec.match cannot be read: the policy then matches nothing (its status says why). */
  matches: ((subject: MatchSubject) => boolean) | undefined;
  /** Whether the requester or namespace is exempt from this policy. */
  exempts: (subject: MatchSubject) => boolean;
  requiredSigners: number;
  ignoredFields: string[];
  /** Resolved trust, or undefined when the policy cannot be evaluated (problem says why). */
  anchors: TrustAnchors | undefined;
  /** Keys and CA certificates the trust sources resolved to. */
  trustedSigners: number;
  /** Why the policy cannot be evaluated: its Ready condition's reason and message. */
  problem: { reason: PolicyProblem; message: string } | undefined;
}

export type PolicyProblem = 'InvalidSpec' | 'TrustSourceNotFound' | 'TrustSourceInvalid';

/** What a policy's trust sources are looked up in: the controller's informer caches. */
export interface TrustLookups {
  secret(namespace: string, name: string): V1Secret | undefined;
  configMap(namespace: string, name: string): V1ConfigMap | undefined;
  issuer(kind: 'Issuer' | 'ClusterIssuer', namespace: string, name: string): IssuerResource | undefined;
  /** Where ClusterIssuers' CA Secrets live (--cluster-resource-namespace). */
  clusterResourceNamespace: string;
}

export function translatePolicy(resource: SignaturePolicyResource, lookups: TrustLookups): SignaturePolicyModel {
  const spec = resource.spec ?? {};
  const errors: string[] = [];
  const mode = (spec.mode ?? 'enforce') as PolicyMode;
  if (!POLICY_MODES.includes(mode)) errors.push(`spec.mode: ${quote(String(spec.mode))} is not one of ${POLICY_MODES.join(', ')}`);
  const requiredSigners = spec.requiredSigners ?? 1;
  if (!Number.isInteger(requiredSigners) || requiredSigners < 1 || requiredSigners > MAX_REQUIRED_SIGNERS) {
    errors.push(`spec.requiredSigners: ${String(requiredSigners)} is not a whole number from 1 to ${MAX_REQUIRED_SIGNERS}`);
  }
  const ignoredFields = spec.ignoredFields ?? [];
  ignoredFields.forEach((field, i) => {
    try {
      parseFieldPath(String(field));
    } catch (err) {
      errors.push(`spec.ignoredFields[${i}]: ${(err as Error).message}`);
    }
  });
  const matchErrors: string[] = [];
  const matches = compileMatch(spec.match, matchErrors);
  errors.push(...matchErrors);
  const exempts = compileExemptions(spec.exemptions ?? {}, errors);

  const base = { name: resource.metadata.name, mode: POLICY_MODES.includes(mode) ? mode : 'enforce', matches: matchErrors.length > 0 ? undefined : matches, exempts, requiredSigners, ignoredFields };
  if (errors.length > 0) return { ...base, anchors: undefined, trustedSigners: 0, problem: { reason: 'InvalidSpec', message: errors.join('; ') } };
  const trust = resolveTrust(spec.trust ?? {}, lookups);
  if ('reason' in trust) return { ...base, anchors: undefined, trustedSigners: 0, problem: trust };
  return { ...base, anchors: trust.anchors, trustedSigners: trust.count, problem: undefined };
}

/** The policy's Ready condition, as its status shows it (mergeCondition adds the times and generation). */
export function readyCondition(policy: SignaturePolicyModel): Omit<Condition, 'lastTransitionTime'> {
  return policy.problem
    ? { type: 'Ready', status: 'False', reason: policy.problem.reason, message: policy.problem.message }
    : { type: 'Ready', status: 'True', reason: 'TrustResolved', message: `${policy.trustedSigners} trusted key(s) or CA certificate(s); ${policy.mode} mode` };
}

/** "SignaturePolicy <name>" in messages. */
export function policyRef(name: string): string {
  return `${POLICY_KIND} ${name}`;
}

function compileMatch(match: NonNullable<SignaturePolicyResource['spec']>['match'], errors: string[]): (subject: MatchSubject) => boolean {
  if (!match) {
    errors.push('spec.match: is required');
    return () => false;
  }
  const kinds: KindPattern[] = [];
  if (!Array.isArray(match.kinds) || match.kinds.length === 0) errors.push('spec.match.kinds: needs at least one apiGroup/kind');
  (match.kinds ?? []).forEach((k, i) => {
    if (typeof k?.apiGroup !== 'string') errors.push(`spec.match.kinds[${i}].apiGroup: is required ("" for the core group, "*" for any)`);
    if (typeof k?.kind !== 'string' || k.kind === '') errors.push(`spec.match.kinds[${i}].kind: is required ("*" for any)`);
    else kinds.push({ apiGroup: k.apiGroup ?? '', kind: k.kind });
  });
  const names = new Set(match.namespaces ?? []);
  for (const [i, name] of (match.namespaces ?? []).entries()) {
    const error = checkNamespaceName(name);
    if (error) errors.push(`spec.match.namespaces[${i}]: ${quote(name)} ${error}`);
  }
  const selector = match.namespaceSelector ? compileSelector(match.namespaceSelector, 'spec.match.namespaceSelector', errors) : undefined;
  const anyNamespace = names.size === 0 && !selector;
  return (subject) => {
    if (!kinds.some((k) => (k.apiGroup === '*' || k.apiGroup === subject.group) && (k.kind === '*' || k.kind === subject.kind))) return false;
    if (anyNamespace) return true;
    if (subject.namespace === '') return false;
    return names.has(subject.namespace) || (selector?.(subject.namespaceLabels) ?? false);
  };
}

/** A metav1.LabelSelector: matchLabels and matchExpressions, all of which must hold. */
function compileSelector(selector: V1LabelSelector, field: string, errors: string[]): (labels: Record<string, string>) => boolean {
  const tests: ((labels: Record<string, string>) => boolean)[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) tests.push((labels) => labels[key] === value);
  (selector.matchExpressions ?? []).forEach((e, i) => {
    const values = e.values ?? [];
    const at = `${field}.matchExpressions[${i}]`;
    switch (e.operator) {
      case 'In':
      case 'NotIn':
        if (values.length === 0) errors.push(`${at}.values: ${e.operator} needs at least one value`);
        tests.push(e.operator === 'In' ? (labels) => e.key in labels && values.includes(labels[e.key]!) : (labels) => !(e.key in labels) || !values.includes(labels[e.key]!));
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (values.length > 0) errors.push(`${at}.values: ${e.operator} takes no values`);
        tests.push(e.operator === 'Exists' ? (labels) => e.key in labels : (labels) => !(e.key in labels));
        break;
      default:
        errors.push(`${at}.operator: ${quote(String(e.operator))} is not one of In, NotIn, Exists, DoesNotExist`);
    }
  });
  return (labels) => tests.every((t) => t(labels));
}

function compileExemptions(exemptions: NonNullable<NonNullable<SignaturePolicyResource['spec']>['exemptions']>, errors: string[]): (subject: MatchSubject) => boolean {
  const namespaces = new Set(exemptions.namespaces ?? []);
  const users = new Set(exemptions.users ?? []);
  const groups = new Set(exemptions.groups ?? []);
  (exemptions.serviceAccounts ?? []).forEach((account, i) => {
    const [namespace = '', name = '', ...rest] = account.split('/');
    if (rest.length > 0 || checkNamespaceName(namespace) || name === '') errors.push(`spec.exemptions.serviceAccounts[${i}]: ${quote(account)} is not namespace/name`);
    else users.add(`system:serviceaccount:${namespace}:${name}`);
  });
  return (subject) => namespaces.has(subject.namespace) || users.has(subject.username) || subject.groups.some((g) => groups.has(g));
}

function resolveTrust(trust: NonNullable<NonNullable<SignaturePolicyResource['spec']>['trust']>, lookups: TrustLookups): { anchors: TrustAnchors; count: number } | { reason: PolicyProblem; message: string } {
  const sources: { name: string; pem: string }[] = [];
  const problems: { reason: PolicyProblem; message: string }[] = [];
  (trust.keys ?? []).forEach((ref, i) => {
    const field = `spec.trust.keys[${i}]`;
    const isSecret = ref.secretRef !== undefined;
    const source = ref.secretRef ?? ref.configMapRef;
    if (!source || (ref.secretRef && ref.configMapRef)) return problems.push({ reason: 'TrustSourceInvalid', message: `${field}: needs exactly one of secretRef or configMapRef` });
    const at = `${field}.${isSecret ? 'secretRef' : 'configMapRef'}`;
    const { namespace = '', name = '', key = '' } = source;
    if (!namespace || !name || !key) return problems.push({ reason: 'TrustSourceInvalid', message: `${at}: needs namespace, name and key` });
    const kind = isSecret ? 'Secret' : 'ConfigMap';
    const object = isSecret ? lookups.secret(namespace, name) : lookups.configMap(namespace, name);
    if (!object) return problems.push({ reason: 'TrustSourceNotFound', message: `${at}: ${kind} ${namespace}/${name} not found` });
    const pem = isSecret ? secretData(object as V1Secret, key) : ((object as V1ConfigMap).data?.[key]);
    if (!pem) return problems.push({ reason: 'TrustSourceNotFound', message: `${at}: ${kind} ${namespace}/${name} has no key ${quote(key)}` });
    sources.push({ name: `${kind} ${namespace}/${name} key ${key}`, pem });
  });
  (trust.issuers ?? []).forEach((ref, i) => {
    const at = `spec.trust.issuers[${i}]`;
    const kind = ref.kind ?? 'ClusterIssuer';
    if (kind !== 'Issuer' && kind !== 'ClusterIssuer') return problems.push({ reason: 'TrustSourceInvalid', message: `${at}.kind: ${quote(kind)} is not Issuer or ClusterIssuer` });
    if (!ref.name) return problems.push({ reason: 'TrustSourceInvalid', message: `${at}.name: is required` });
    if (kind === 'Issuer' && !ref.namespace) return problems.push({ reason: 'TrustSourceInvalid', message: `${at}.namespace: is required for an Issuer` });
    const namespace = kind === 'Issuer' ? ref.namespace! : '';
    const label = `${kind} ${namespace ? `${namespace}/` : ''}${ref.name}`;
    const issuer = lookups.issuer(kind, namespace, ref.name);
    if (!issuer) return problems.push({ reason: 'TrustSourceNotFound', message: `${at}: ${label} not found` });
    const secretName = issuer.spec?.ca?.secretName;
    if (!secretName) return problems.push({ reason: 'TrustSourceInvalid', message: `${at}: ${label} is not a CA issuer (spec.ca.secretName), so no CA certificate anchors its certificates` });
    const secretNamespace = kind === 'Issuer' ? namespace : lookups.clusterResourceNamespace;
    const secret = lookups.secret(secretNamespace, secretName);
    // tls.crt is the issuer's own CA certificate (ca.crt, where present, is the CA above it: broader trust).
    const pem = secret && secretData(secret, 'tls.crt');
    if (!pem) return problems.push({ reason: 'TrustSourceNotFound', message: `${at}: the CA Secret ${secretNamespace}/${secretName} of ${label} is missing or has no tls.crt` });
    sources.push({ name: `CA of ${label}`, pem });
  });
  if (problems.length > 0) return { reason: problems[0]!.reason, message: problems.map((p) => p.message).join('; ') };
  if (sources.length === 0) return { reason: 'InvalidSpec', message: 'spec.trust: names no key and no issuer, so no signer could be trusted' };
  for (const source of sources) {
    try {
      trustAnchorsFrom([source]);
    } catch (err) {
      return { reason: 'TrustSourceInvalid', message: `${source.name}: ${(err as Error).message}` };
    }
  }
  return { anchors: trustAnchorsFrom(sources), count: sources.length };
}
