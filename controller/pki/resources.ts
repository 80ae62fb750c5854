// The qubesec.io/v1alpha1 resources (Issuer, ClusterIssuer, Certificate) and the pure decisions about them:
// is a spec valid, is an issuer usable, does a Secret need (re)issuing and when. No I/O here.
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { isIP } from 'node:net';
import type { V1Secret } from '@kubernetes/client-node';
import { secretData } from '../model/certificates.js';
import { checkHost, quote } from '../model/names.js';
import { DEFAULT_ALGORITHM, isKeyAlgorithm, isSignatureAlgorithm, type KeyAlgorithm } from './algorithms.js';
import type { Issuer } from './x509.js';

export const GROUP = 'qubesec.io';
export const VERSION = 'v1alpha1';
/** Annotations on Secrets this controller writes: they mark ownership and what was issued. */
export const SECRET_ANNOTATIONS = {
  certificate: 'qubesec.io/certificate-name',
  issuer: 'qubesec.io/issuer-name',
  specHash: 'qubesec.io/spec-hash',
} as const;

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime?: string;
  observedGeneration?: number;
}

interface Meta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  ownerReferences?: unknown[];
  annotations?: Record<string, string>;
}

export interface IssuerResource {
  apiVersion: string;
  kind: 'Issuer' | 'ClusterIssuer';
  metadata: Meta;
  spec?: { ca?: { secretName?: string; classicalSecretName?: string }; selfSigned?: Record<string, never> };
  status?: { conditions?: Condition[] };
}

export interface CertificateResource {
  apiVersion: string;
  kind: 'Certificate';
  metadata: Meta;
  spec?: {
    secretName?: string;
    commonName?: string;
    dnsNames?: string[];
    ipAddresses?: string[];
    algorithm?: string;
    isCA?: boolean;
    duration?: string;
    renewBefore?: string;
    usages?: 'server' | 'client' | 'server-client';
    classicalTwin?: boolean;
    issuerRef?: { name?: string; kind?: string };
  };
  status?: { conditions?: Condition[]; algorithm?: string; notBefore?: string; notAfter?: string; renewalTime?: string; revision?: number };
}

export interface CertificateSpec {
  secretName: string;
  commonName: string;
  dnsNames: string[];
  ipAddresses: string[];
  algorithm: KeyAlgorithm;
  isCA: boolean;
  durationMs: number;
  renewBeforeMs: number;
  usages: 'server' | 'client' | 'server-client';
  classicalTwin: boolean;
  issuerRef: { name: string; kind: 'Issuer' | 'ClusterIssuer' };
}

const DEFAULT_DURATION_MS = 2160 * 3600_000;
const MIN_DURATION_MS = 10_000;

/** Go duration strings as Kubernetes users write them: 2160h, 1h30m, 45s, 500ms. */
export function parseDuration(text: string): number | undefined {
  const units: Record<string, number> = { h: 3600_000, m: 60_000, s: 1000, ms: 1 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) return undefined;
  return parts.reduce((total, p) => total + Number(p[1]) * units[p[2]!]!, 0);
}

/** The spec with defaults applied, or errors that name the field. */
export function checkCertificateSpec(resource: CertificateResource): { spec: CertificateSpec } | { errors: string[] } {
  const s = resource.spec ?? {};
  const errors: string[] = [];
  const algorithm = s.algorithm ?? DEFAULT_ALGORITHM;
  if (!isKeyAlgorithm(algorithm)) errors.push(`spec.algorithm: ${quote(algorithm)} is not supported`);
  if (!s.secretName) errors.push('spec.secretName: is required');
  if (!s.issuerRef?.name) errors.push('spec.issuerRef.name: is required');
  const kind = s.issuerRef?.kind ?? 'Issuer';
  if (kind !== 'Issuer' && kind !== 'ClusterIssuer') errors.push(`spec.issuerRef.kind: ${quote(kind)} is not Issuer or ClusterIssuer`);
  (s.dnsNames ?? []).forEach((n, i) => {
    const e = checkHost(n);
    if (e) errors.push(`spec.dnsNames[${i}]: ${quote(n)} ${e}`);
  });
  (s.ipAddresses ?? []).forEach((ip, i) => {
    if (isIP(ip) === 0) errors.push(`spec.ipAddresses[${i}]: ${quote(ip)} is not an IP address`);
  });
  const commonName = s.commonName ?? s.dnsNames?.[0] ?? s.ipAddresses?.[0] ?? '';
  if (commonName === '') errors.push('spec: needs commonName, dnsNames or ipAddresses');
  else if (/[,=+<>#;"\\\n]/.test(commonName)) errors.push(`spec.commonName: ${quote(commonName)} holds characters that are special in a distinguished name`);
  const durationMs = s.duration === undefined ? DEFAULT_DURATION_MS : parseDuration(s.duration);
  if (durationMs === undefined || durationMs < MIN_DURATION_MS) errors.push(`spec.duration: ${quote(String(s.duration))} is not a duration of at least 10s (e.g. 2160h)`);
  const renewBeforeMs = s.renewBefore === undefined ? (durationMs ?? 0) / 3 : parseDuration(s.renewBefore);
  if (renewBeforeMs === undefined || (durationMs !== undefined && renewBeforeMs >= durationMs)) {
    errors.push(`spec.renewBefore: ${s.renewBefore === undefined ? 'its default' : quote(s.renewBefore)} must be a duration shorter than spec.duration`);
  }
  if (isKeyAlgorithm(algorithm) && !isSignatureAlgorithm(algorithm) && (s.isCA || s.classicalTwin)) {
    errors.push(`spec.algorithm: ${algorithm} keys cannot sign, so isCA and classicalTwin do not apply`);
  }
  if (errors.length > 0) return { errors };
  return {
    spec: {
      secretName: s.secretName!,
      commonName,
      dnsNames: s.dnsNames ?? [],
      ipAddresses: s.ipAddresses ?? [],
      algorithm: algorithm as KeyAlgorithm,
      isCA: s.isCA ?? false,
      durationMs: durationMs!,
      renewBeforeMs: renewBeforeMs!,
      usages: s.usages ?? 'server',
      classicalTwin: s.classicalTwin ?? false,
      issuerRef: { name: s.issuerRef!.name!, kind: kind as 'Issuer' | 'ClusterIssuer' },
    },
  };
}

/** Hash of what the Secret must reflect: a change re-issues. */
export function specHash(spec: CertificateSpec): string {
  // renewBefore changes when to renew, not what is issued.
  return createHash('sha256').update(JSON.stringify({ ...spec, renewBeforeMs: undefined })).digest('hex').slice(0, 16);
}

/** Keeps lastTransitionTime when the status did not change, as Kubernetes conditions do. */
export function mergeCondition(conditions: Condition[] | undefined, next: Omit<Condition, 'lastTransitionTime'>, generation: number | undefined): Condition[] {
  const previous = (conditions ?? []).find((c) => c.type === next.type);
  const lastTransitionTime = previous && previous.status === next.status ? previous.lastTransitionTime : new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return [...(conditions ?? []).filter((c) => c.type !== next.type), { ...next, lastTransitionTime, observedGeneration: generation }];
}

export type IssuerState = { ready: true; kind: 'ca'; issuer: Issuer; classical?: Issuer } | { ready: true; kind: 'selfSigned' } | { ready: false; reason: string; message: string };

/** Whether an issuer can sign now, from its resource and the Secrets it names. */
export function issuerState(resource: IssuerResource, secrets: (name: string) => V1Secret | undefined, now: Date): IssuerState {
  const spec = resource.spec ?? {};
  if (spec.selfSigned && !spec.ca) return { ready: true, kind: 'selfSigned' };
  if (!spec.ca?.secretName) return { ready: false, reason: 'InvalidSpec', message: 'spec needs exactly one of ca or selfSigned' };
  const primary = caFromSecret(spec.ca.secretName, secrets, now, 'spec.ca.secretName');
  if ('reason' in primary) return { ready: false, ...primary };
  if (!spec.ca.classicalSecretName) return { ready: true, kind: 'ca', issuer: primary };
  const classical = caFromSecret(spec.ca.classicalSecretName, secrets, now, 'spec.ca.classicalSecretName');
  if ('reason' in classical) return { ready: false, ...classical };
  return { ready: true, kind: 'ca', issuer: primary, classical };
}

function caFromSecret(name: string, secrets: (name: string) => V1Secret | undefined, now: Date, field: string): Issuer | { reason: string; message: string } {
  const secret = secrets(name);
  if (!secret) return { reason: 'SecretNotFound', message: `${field}: Secret ${name} not found` };
  const certificatePem = secretData(secret, 'tls.crt');
  const keyPem = secretData(secret, 'tls.key');
  if (!certificatePem || !keyPem) return { reason: 'InvalidSecret', message: `${field}: Secret ${name} needs data tls.crt and tls.key` };
  let certificate: X509Certificate;
  let privateKey;
  try {
    certificate = new X509Certificate(certificatePem);
    privateKey = createPrivateKey(keyPem);
  } catch (err) {
    return { reason: 'InvalidSecret', message: `${field}: Secret ${name} does not hold a PEM certificate and key: ${(err as Error).message}` };
  }
  if (!certificate.ca) return { reason: 'NotACA', message: `${field}: the certificate in Secret ${name} is not a CA (basicConstraints CA:TRUE)` };
  if (!certificate.checkPrivateKey(privateKey)) return { reason: 'KeyMismatch', message: `${field}: in Secret ${name}, tls.key does not match tls.crt` };
  if (new Date(certificate.validTo) <= now) return { reason: 'Expired', message: `${field}: the CA certificate in Secret ${name} expired at ${new Date(certificate.validTo).toISOString()}` };
  return { certificatePem, privateKey };
}

export type Plan =
  | { issue: true; reason: string }
  | { issue: false; notBefore: Date; notAfter: Date; renewalTime: Date }
  | { error: string; reason: string };

/** Whether the Secret must be (re)issued now, and if not, when. */
export function plan(resource: CertificateResource, spec: CertificateSpec, secret: V1Secret | undefined, now: Date): Plan {
  if (!secret) return { issue: true, reason: 'the Secret does not exist' };
  const owner = secret.metadata?.annotations?.[SECRET_ANNOTATIONS.certificate];
  if (owner !== resource.metadata.name) {
    return { reason: 'SecretNotOwned', error: `Secret ${spec.secretName} exists and is not managed by this Certificate (annotation ${SECRET_ANNOTATIONS.certificate}); it is left alone` };
  }
  if (secret.metadata?.annotations?.[SECRET_ANNOTATIONS.specHash] !== specHash(spec)) return { issue: true, reason: 'the spec changed' };
  const pem = secretData(secret, 'tls.crt');
  const keyPem = secretData(secret, 'tls.key');
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pem ?? '');
    if (!certificate.checkPrivateKey(createPrivateKey(keyPem ?? ''))) return { issue: true, reason: 'tls.key does not match tls.crt' };
  } catch {
    return { issue: true, reason: 'the Secret does not hold a valid certificate and key' };
  }
  const notBefore = new Date(certificate.validFrom);
  const notAfter = new Date(certificate.validTo);
  const renewalTime = new Date(notAfter.getTime() - spec.renewBeforeMs);
  if (now >= renewalTime) return { issue: true, reason: `renewal time ${renewalTime.toISOString()} reached` };
  return { issue: false, notBefore, notAfter, renewalTime };
}
