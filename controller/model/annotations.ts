// Every qubesec.io annotation is parsed and validated here, and nowhere else. docs/annotations.md has a row for each.
// The same parsers read the controller's global defaults (flags and ConfigMap keys of the same names).
import { quote } from './names.js';
import { CERTIFICATE_PREFERENCES, PQ_MODES, supportedGroup, type Capabilities } from './pq.js';
import { COMPAT_PREFIXES, PROXY_ANNOTATIONS } from './proxy-annotations.js';
import type { CertificatePreference, PqMode, TlsVersion } from './types.js';

export const ANNOTATION_PREFIX = 'qubesec.io/';

/** Values an Ingress may set; undefined means "use the global default". */
export interface IngressSettings {
  pqMode?: PqMode;
  tlsGroups?: string[];
  tlsMinVersion?: TlsVersion;
  certificatePreference?: CertificatePreference;
}

type Parsed<T> = { value: T } | { error: string };

interface SettingParser<K extends keyof IngressSettings> {
  /** Annotation suffix after qubesec.io/, also the ConfigMap key. */
  key: string;
  field: K;
  parse(raw: string, capabilities: Capabilities): Parsed<NonNullable<IngressSettings[K]>>;
}

/** A setting whose value is one of a few words. */
function oneOf<K extends 'pqMode' | 'certificatePreference'>(key: string, field: K, values: readonly NonNullable<IngressSettings[K]>[]): SettingParser<K> {
  return {
    key,
    field,
    parse(raw) {
      const value = raw.trim() as NonNullable<IngressSettings[K]>;
      return values.includes(value) ? { value } : { error: `${quote(raw)} is not one of ${values.join(', ')}` };
    },
  };
}

const pqMode = oneOf('pq-mode', 'pqMode', PQ_MODES);

const tlsGroups: SettingParser<'tlsGroups'> = {
  key: 'tls-groups',
  field: 'tlsGroups',
  parse(raw, capabilities) {
    const names = raw.split(/[\s:,]+/).filter((g) => g !== '');
    if (names.length === 0) return { error: 'is empty: list TLS groups separated by ":" or ","' };
    const groups: string[] = [];
    for (const name of names) {
      const group = supportedGroup(capabilities, name);
      if (group === undefined) {
        return { error: `group ${quote(name)} is not supported by the data plane (OpenSSL ${capabilities.opensslVersion})` };
      }
      if (!groups.includes(group)) groups.push(group);
    }
    return { value: groups };
  },
};

const tlsMinVersion: SettingParser<'tlsMinVersion'> = {
  key: 'tls-min-version',
  field: 'tlsMinVersion',
  parse(raw) {
    const value = raw.trim().replace(/^TLSv/i, '');
    if (value === '1.3') return { value: 'TLSv1.3' };
    if (value === '1.2') return { value: 'TLSv1.2' };
    return { error: `${quote(raw)} is not 1.2 or 1.3` };
  },
};

const certificatePreference = oneOf('certificate-preference', 'certificatePreference', CERTIFICATE_PREFERENCES);

const SETTINGS = [pqMode, tlsGroups, tlsMinVersion, certificatePreference] as const;

/** Read by the PKI controller (as cert-manager's ingress-shim): a Certificate for each spec.tls entry. */
export const CERTIFICATE_ANNOTATIONS = {
  issuer: 'qubesec.io/issuer',
  clusterIssuer: 'qubesec.io/cluster-issuer',
  algorithm: 'qubesec.io/certificate-algorithm',
  classicalTwin: 'qubesec.io/classical-twin',
} as const;

/** The TLS policy annotations (a Gateway listener's tls.options takes the same keys). */
export const TLS_ANNOTATION_KEYS: readonly string[] = SETTINGS.map((s) => ANNOTATION_PREFIX + s.key);

/** Every annotation key QubeSec reads. */
export const ANNOTATION_KEYS: readonly string[] = [
  ...TLS_ANNOTATION_KEYS,
  ...Object.values(CERTIFICATE_ANNOTATIONS),
  ...COMPAT_PREFIXES.flatMap((prefix) => Object.keys(PROXY_ANNOTATIONS).map((name) => prefix + name)),
];

/**
 * ingress-nginx annotations that restrict who gets in and that QubeSec does not implement. Serving the Ingress
 * without them would open what it meant to close, so it is rejected instead.
 */
export const UNSUPPORTED_ACCESS_CONTROL = [
  'auth-url', 'auth-signin', 'auth-type', 'auth-secret', 'auth-secret-type', 'auth-realm', 'auth-method', 'auth-tls-match-cn',
  'satisfy', 'enable-global-auth', 'enable-modsecurity', 'enable-owasp-core-rules', 'modsecurity-transaction-id',
] as const;

export interface AnnotationKeyReview {
  /** Annotations that reject the Ingress: snippets and access control QubeSec cannot honour. */
  errors: string[];
  /** Controller annotations (qubesec.io/, nginx.ingress.kubernetes.io/) this version does not know. */
  unknown: string[];
}

/** Sorts an Ingress's controller annotations into read, refused and unknown; other tools' annotations are not ours. */
export function reviewAnnotationKeys(annotations: Record<string, string> | undefined): AnnotationKeyReview {
  const review: AnnotationKeyReview = { errors: [], unknown: [] };
  for (const key of Object.keys(annotations ?? {})) {
    const prefix = COMPAT_PREFIXES.find((p) => key.startsWith(p));
    if (prefix === undefined || ANNOTATION_KEYS.includes(key)) continue;
    const name = key.slice(prefix.length);
    if (name.endsWith('-snippet')) {
      review.errors.push(`annotation ${key}: snippets are refused: raw NGINX configuration from an Ingress could read any Secret the controller can or run code in the data plane (the IngressNightmare class of attacks); use the annotations in docs/annotations.md`);
    } else if ((UNSUPPORTED_ACCESS_CONTROL as readonly string[]).includes(name)) {
      review.errors.push(`annotation ${key}: restricts access and QubeSec does not implement it; serving without it would expose what it protects (see docs/annotations.md, migrating)`);
    } else {
      review.unknown.push(key);
    }
  }
  return review;
}

export interface CertificateRequest {
  issuerRef: { name: string; kind: 'Issuer' | 'ClusterIssuer' };
  algorithm?: string;
  classicalTwin: boolean;
}

/** The Certificate an Ingress asks for through annotations, or undefined when it asks for none. */
export function parseCertificateAnnotations(annotations: Record<string, string> | undefined, algorithms: readonly string[]): { request?: CertificateRequest; errors: string[] } {
  const a = annotations ?? {};
  const issuer = a[CERTIFICATE_ANNOTATIONS.issuer];
  const clusterIssuer = a[CERTIFICATE_ANNOTATIONS.clusterIssuer];
  if (issuer === undefined && clusterIssuer === undefined) return { errors: [] };
  const errors: string[] = [];
  if (issuer !== undefined && clusterIssuer !== undefined) errors.push(`annotations ${CERTIFICATE_ANNOTATIONS.issuer} and ${CERTIFICATE_ANNOTATIONS.clusterIssuer}: set one, not both`);
  const name = (issuer ?? clusterIssuer)!.trim();
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name)) errors.push(`annotation ${issuer !== undefined ? CERTIFICATE_ANNOTATIONS.issuer : CERTIFICATE_ANNOTATIONS.clusterIssuer}: ${quote(name)} is not an object name`);
  const algorithm = a[CERTIFICATE_ANNOTATIONS.algorithm];
  if (algorithm !== undefined && !algorithms.includes(algorithm)) errors.push(`annotation ${CERTIFICATE_ANNOTATIONS.algorithm}: ${quote(algorithm)} is not one of ${algorithms.join(', ')}`);
  const twin = a[CERTIFICATE_ANNOTATIONS.classicalTwin];
  if (twin !== undefined && twin !== 'true' && twin !== 'false') errors.push(`annotation ${CERTIFICATE_ANNOTATIONS.classicalTwin}: ${quote(twin)} is not true or false`);
  if (errors.length > 0) return { errors };
  return {
    request: { issuerRef: { name, kind: issuer !== undefined ? 'Issuer' : 'ClusterIssuer' }, algorithm, classicalTwin: twin === 'true' },
    errors,
  };
}

export interface SettingsResult {
  settings: IngressSettings;
  /** Each error names the annotation (or key) it is about. */
  errors: string[];
}

/**
 * Reads settings from a map of key -> value. With prefix 'qubesec.io/' it reads Ingress annotations; with prefix ''
 * the keys of the defaults ConfigMap. Other keys are left alone (reviewAnnotationKeys reports unknown annotations).
 */
export function parseSettings(
  entries: Record<string, string> | undefined,
  capabilities: Capabilities,
  prefix = ANNOTATION_PREFIX,
  describe = (key: string) => `annotation ${key}`,
): SettingsResult {
  const result: SettingsResult = { settings: {}, errors: [] };
  for (const [key, raw] of Object.entries(entries ?? {})) {
    const parser = SETTINGS.find((s) => prefix + s.key === key);
    if (parser === undefined) continue;
    const parsed = parser.parse(raw, capabilities);
    if ('error' in parsed) result.errors.push(`${describe(key)}: ${parsed.error}`);
    else (result.settings as Record<string, unknown>)[parser.field] = parsed.value;
  }
  return result;
}
