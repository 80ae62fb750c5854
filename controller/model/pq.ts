// Post-quantum TLS policy: which key-exchange groups each pq-mode offers, and how a group is classified.
import type { CertificatePreference, PqMode, TlsPolicy, TlsVersion } from './types.js';

/** What the data plane's OpenSSL can do; probed at start (dataplane/capabilities.ts). */
export interface Capabilities {
  opensslVersion: string;
  groups: string[];
  signatureAlgorithms: string[];
}

/**
 * What the image's OpenSSL 3.5 offers. The controller probes its own data plane instead; what has none to ask
 * (`qubesec migrate`, the unit tests) takes this.
 */
export const OPENSSL_3_5_CAPABILITIES: Capabilities = {
  opensslVersion: '3.5.9',
  groups: 'secp256r1:secp384r1:secp521r1:x25519:x448:MLKEM512:MLKEM768:MLKEM1024:SecP256r1MLKEM768:X25519MLKEM768:SecP384r1MLKEM1024'.split(':'),
  // As OpenSSL 3.5's `openssl list -tls-signature-algorithms` prints them, less the DSA and SHA-1 ones.
  signatureAlgorithms: 'ecdsa_secp256r1_sha256:ecdsa_secp384r1_sha384:ed25519:rsa_pss_rsae_sha256:rsa_pkcs1_sha256:mldsa44:mldsa65:mldsa87'.split(':'),
};

export type GroupClass = 'hybrid' | 'ml-kem' | 'classical';

const HYBRID_GROUPS = ['X25519MLKEM768', 'SecP256r1MLKEM768', 'SecP384r1MLKEM1024'];
const PURE_ML_KEM_GROUPS = ['MLKEM512', 'MLKEM768', 'MLKEM1024'];
const CLASSICAL_GROUPS = ['X25519', 'secp256r1', 'secp384r1'];

/** Every group QubeSec names, by class (spelled as Node and OpenSSL 3.5 spell them). */
export const GROUPS_BY_CLASS: Readonly<Record<GroupClass, readonly string[]>> = {
  hybrid: HYBRID_GROUPS,
  'ml-kem': PURE_ML_KEM_GROUPS,
  classical: CLASSICAL_GROUPS,
};

/** Group tiers per mode: hybrids before everything else, so a client that can do ML-KEM does. */
export const GROUPS_BY_MODE: Record<PqMode, string[][]> = {
  hybrid: [HYBRID_GROUPS, CLASSICAL_GROUPS],
  strict: [HYBRID_GROUPS, ['MLKEM768', 'MLKEM1024']],
  classical: [CLASSICAL_GROUPS],
};

export const PQ_MODES: readonly PqMode[] = ['hybrid', 'strict', 'classical'];

export function classifyGroup(group: string): GroupClass {
  const upper = group.toUpperCase();
  if (HYBRID_GROUPS.some((g) => g.toUpperCase() === upper)) return 'hybrid';
  if (PURE_ML_KEM_GROUPS.some((g) => g.toUpperCase() === upper)) return 'ml-kem';
  return 'classical';
}

/** IANA codepoints of the ML-KEM groups: NGINX before 1.27.5 logs $ssl_curve as a hex codepoint for them. */
export const GROUP_CODEPOINTS: Record<string, string> = {
  '0x11ec': 'X25519MLKEM768',
  '0x11eb': 'SecP256r1MLKEM768',
  '0x11ed': 'SecP384r1MLKEM1024',
  '0x0200': 'MLKEM512',
  '0x0201': 'MLKEM768',
  '0x0202': 'MLKEM1024',
};

/** One spelling per group for logs and metrics: NGINX, curl and OpenSSL variously print x25519 and X25519. */
export function groupName(loggedGroup: string): string {
  const name = GROUP_CODEPOINTS[loggedGroup.toLowerCase()] ?? loggedGroup;
  const known = [...HYBRID_GROUPS, ...PURE_ML_KEM_GROUPS, ...CLASSICAL_GROUPS].find((g) => g.toLowerCase() === name.toLowerCase());
  return known ?? name;
}

/** The data plane's own spelling of a group, or undefined when it cannot do it. */
export function supportedGroup(capabilities: Capabilities, group: string): string | undefined {
  return capabilities.groups.find((g) => g.toLowerCase() === group.toLowerCase());
}

export interface TlsDefaults {
  pqMode: PqMode;
  certificatePreference: CertificatePreference;
  /** Replaces the hybrid-mode tiers when set (flag --default-tls-groups or ConfigMap key tls-groups). */
  hybridGroups?: string[][];
  minVersion: TlsVersion;
}

export const BUILTIN_TLS_DEFAULTS: TlsDefaults = { pqMode: 'hybrid', certificatePreference: 'client', minVersion: 'TLSv1.3' };

/** Defaults with the settings given (flags, ConfigMap keys) laid over `base`; tls-groups becomes a strict order. */
export function overrideDefaults(base: TlsDefaults, settings: { pqMode?: PqMode; certificatePreference?: CertificatePreference; tlsGroups?: string[]; tlsMinVersion?: TlsVersion }): TlsDefaults {
  return {
    pqMode: settings.pqMode ?? base.pqMode,
    certificatePreference: settings.certificatePreference ?? base.certificatePreference,
    hybridGroups: settings.tlsGroups ? strictOrder(settings.tlsGroups) : base.hybridGroups,
    minVersion: settings.tlsMinVersion ?? base.minVersion,
  };
}

export function protocolsFrom(minVersion: TlsVersion): TlsVersion[] {
  return minVersion === 'TLSv1.2' ? ['TLSv1.2', 'TLSv1.3'] : ['TLSv1.3'];
}

/** The group tiers a mode offers on this data plane, dropping groups its OpenSSL lacks and tiers left empty. */
export function groupsForMode(mode: PqMode, defaults: TlsDefaults, capabilities: Capabilities): string[][] {
  const wanted = mode === 'hybrid' && defaults.hybridGroups ? defaults.hybridGroups : GROUPS_BY_MODE[mode];
  return wanted
    .map((tier) => tier.map((g) => supportedGroup(capabilities, g)).filter((g): g is string => g !== undefined))
    .filter((tier) => tier.length > 0);
}

/** Group tiers in OpenSSL 3.5's list syntax ('/' separates preference tiers, ':' groups within a tier). */
export function opensslGroupList(tiers: string[][]): string {
  return tiers.map((tier) => tier.join(':')).join('/');
}

/** An explicit ordered list: each group is its own tier, so the server's order decides. */
export function strictOrder(groups: string[]): string[][] {
  return groups.map((g) => [g]);
}

export function defaultPolicy(defaults: TlsDefaults, capabilities: Capabilities): TlsPolicy {
  return {
    pqMode: defaults.pqMode,
    groups: groupsForMode(defaults.pqMode, defaults, capabilities),
    protocols: protocolsFrom(defaults.minVersion),
    ...certificateChoice(defaults.certificatePreference, capabilities),
  };
}

export const CERTIFICATE_PREFERENCES: readonly CertificatePreference[] = ['client', 'classical', 'post-quantum'];

// OpenSSL 3.5 names ML-DSA mldsa44/65/87; the OQS provider adds SLH-DSA, Falcon and composites such as p256_mldsa44.
const POST_QUANTUM_SIGNATURE = /mldsa|slhdsa|sphincs|falcon/i;

/**
 * The policy's certificate fields for a preference: the data plane's TLS signature algorithms with the preferred kind
 * first (each kind in OpenSSL's own order), so a client that accepts both kinds gets a certificate of that kind, and
 * a client that accepts one kind still gets it.
 */
export function certificateChoice(preference: CertificatePreference, capabilities: Capabilities): Pick<TlsPolicy, 'certificatePreference' | 'signatureAlgorithms'> {
  if (preference === 'client') return { certificatePreference: preference };
  const postQuantum = capabilities.signatureAlgorithms.filter((a) => POST_QUANTUM_SIGNATURE.test(a));
  const classical = capabilities.signatureAlgorithms.filter((a) => !POST_QUANTUM_SIGNATURE.test(a));
  return { certificatePreference: preference, signatureAlgorithms: preference === 'classical' ? [...classical, ...postQuantum] : [...postQuantum, ...classical] };
}

export function samePolicy(a: TlsPolicy, b: TlsPolicy): boolean {
  return policyKey(a) === policyKey(b);
}

export function policyKey(policy: TlsPolicy): string {
  return `${listenerKey(policy)}|${policy.certificatePreference}`;
}

/** What hosts sharing a listener must agree on: groups and protocols are settled before the client's SNI is read. */
export function listenerKey(policy: TlsPolicy): string {
  return `${opensslGroupList(policy.groups)}|${policy.protocols.join(' ')}`;
}
