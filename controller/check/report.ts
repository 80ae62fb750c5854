// `qubesec check`, the pure part: turns what the probes saw into accepted groups, the preferred group, a verdict and an
// exit code. The JSON output is `CheckOutput`; docs/check.md documents it and an e2e test holds the two together.
import { GROUPS_BY_CLASS, classifyGroup, type GroupClass } from '../model/pq.js';
import type { CertificateInfo } from '../pki/inspect.js';

/** Every group `qubesec check` probes, one handshake each, by class. */
export const PROBED_GROUPS = GROUPS_BY_CLASS;

/**
 * The preference probe's offer: classical groups first, so the OpenSSL client sends its key share for X25519. A server
 * that prefers ML-KEM answers with a HelloRetryRequest for it; one that follows the client's order takes X25519.
 */
export const PREFERENCE_OFFER = [...PROBED_GROUPS.classical, ...PROBED_GROUPS.hybrid, ...PROBED_GROUPS['ml-kem']];

export type Verdict = 'pq-ready' | 'hybrid-only' | 'classical-only' | 'unreachable';

/** Exit codes: the worst over all checked hosts wins (see `worstExitCode`). 1 is an unexpected failure, 2 a usage error. */
export const EXIT_CODES = {
  'pq-ready': 0,
  usage: 2,
  'hybrid-only': 3,
  'classical-only': 4,
  unreachable: 5,
  'certificate-unverified': 6,
} as const;

/** One handshake: the group the server negotiated, or why the handshake failed. */
export type HandshakeOutcome =
  | { ok: true; group: string; protocol: string }
  | { ok: false; error: string; /** The server answered with a TLS alert: it is reachable but refused the offer. */ refused: boolean };

export interface ProbeResults {
  /** Handshake per group in PROBED_GROUPS. */
  byGroup: Record<string, HandshakeOutcome>;
  /** Handshake offering PREFERENCE_OFFER. */
  preference: HandshakeOutcome;
}

export interface ChainCertificate {
  subject: string;
  issuer: string;
  publicKeyAlgorithm: string;
  signatureAlgorithm: string;
  notAfter: string;
  /** Whole days until notAfter; negative once expired. */
  daysLeft: number;
}

export interface CertificateReport {
  /** The chain verified against --cacert (or Node's bundled roots without it) and matched the host name. */
  verified: boolean;
  verifyError: string | null;
  /** As the server sent it, leaf first. */
  chain: ChainCertificate[];
}

export interface GroupsReport {
  accepted: Record<'hybrid' | 'mlKem' | 'classical', string[]>;
  refused: string[];
  /** What the server chose when offered every group, classical first; null when that handshake failed. */
  preferred: string | null;
  preferredClass: GroupClass | null;
  /** No classical group accepted: clients without ML-KEM cannot connect at all. */
  refusesClassical: boolean;
}

export interface CheckReport {
  target: { host: string; port: number; address: string; ingress: string | null };
  verdict: Verdict;
  exitCode: number;
  /** Why the host is unreachable, or null. */
  error: string | null;
  protocol: string | null;
  groups: GroupsReport;
  certificate: CertificateReport | null;
}

export interface CheckOutput {
  schemaVersion: 1;
  results: CheckReport[];
}

export function summarizeGroups(probes: ProbeResults): GroupsReport {
  const accepted = (cls: GroupClass) => PROBED_GROUPS[cls].filter((g) => probes.byGroup[g]?.ok);
  const classical = accepted('classical');
  const preferred = probes.preference.ok ? probes.preference.group : null;
  return {
    accepted: { hybrid: accepted('hybrid'), mlKem: accepted('ml-kem'), classical },
    refused: PREFERENCE_OFFER.filter((g) => probes.byGroup[g]?.ok === false),
    preferred,
    preferredClass: preferred === null ? null : classifyGroup(preferred),
    refusesClassical: classical.length === 0,
  };
}

/**
 * pq-ready: accepts an ML-KEM group (hybrid or pure) and picks one even when the client lists classical groups first.
 * hybrid-only: accepts ML-KEM, but a client listing classical first gets classical: post-quantum only for clients that
 * ask for ML-KEM first. classical-only: no ML-KEM group accepted. unreachable: no handshake succeeded.
 */
export function verdictOf(groups: GroupsReport): Verdict {
  const pq = groups.accepted.hybrid.length + groups.accepted.mlKem.length > 0;
  if (!pq) return groups.accepted.classical.length > 0 ? 'classical-only' : 'unreachable';
  return groups.preferredClass !== null && groups.preferredClass !== 'classical' ? 'pq-ready' : 'hybrid-only';
}

/** A handshake error other than a TLS alert (refused connection, timeout, no such host) on every probe. */
export function unreachableError(probes: ProbeResults): string | null {
  const outcomes = [probes.preference, ...Object.values(probes.byGroup)];
  if (outcomes.some((o) => o.ok)) return null;
  const first = outcomes.find((o) => !o.ok && !o.refused) ?? outcomes[0]!;
  return first.ok ? null : first.refused ? `every handshake was refused: ${first.error}` : first.error;
}

export function describeChain(certificates: CertificateInfo[], now: Date): ChainCertificate[] {
  return certificates.map((c) => ({
    subject: c.subject,
    issuer: c.issuer,
    publicKeyAlgorithm: c.publicKeyAlgorithm,
    signatureAlgorithm: c.signatureAlgorithm,
    notAfter: c.notAfter,
    daysLeft: Math.floor((Date.parse(c.notAfter) - now.getTime()) / 86_400_000),
  }));
}

/**
 * The exit code of one host: its verdict's, except that a chain that failed verification against a CA the user gave
 * (--cacert) turns an otherwise reachable host's code into 6, so CI fails on an untrusted or expired certificate.
 */
export function exitCodeOf(verdict: Verdict, certificate: CertificateReport | null, caGiven: boolean): number {
  if (verdict === 'unreachable') return EXIT_CODES.unreachable;
  if (caGiven && certificate && !certificate.verified) return EXIT_CODES['certificate-unverified'];
  return EXIT_CODES[verdict];
}

/** The worst code over all hosts: unreachable, then certificate, then classical-only, then hybrid-only. */
export function worstExitCode(codes: number[]): number {
  const rank: number[] = [EXIT_CODES['pq-ready'], EXIT_CODES['hybrid-only'], EXIT_CODES['classical-only'], EXIT_CODES['certificate-unverified'], EXIT_CODES.unreachable];
  return codes.reduce((worst, code) => (rank.indexOf(code) > rank.indexOf(worst) ? code : worst), EXIT_CODES['pq-ready']);
}

export function buildReport(target: CheckReport['target'], probes: ProbeResults, certificate: CertificateReport | null, caGiven: boolean): CheckReport {
  const groups = summarizeGroups(probes);
  const error = unreachableError(probes);
  const verdict = error === null ? verdictOf(groups) : 'unreachable';
  const protocol = probes.preference.ok ? probes.preference.protocol : null;
  return { target, verdict, exitCode: exitCodeOf(verdict, certificate, caGiven), error, protocol, groups, certificate };
}

/** The human-readable report of one host. */
export function formatReport(report: CheckReport): string {
  const { target, groups } = report;
  const lines = [`${target.host}:${target.port}${target.address !== target.host ? ` (at ${target.address})` : ''}${target.ingress ? `  [Ingress ${target.ingress}]` : ''}`];
  if (report.error !== null) return [...lines, `  verdict     unreachable: ${report.error}`].join('\n');
  const list = (groupNames: string[]) => (groupNames.length > 0 ? groupNames.join(', ') : '-');
  lines.push(
    `  hybrid      ${list(groups.accepted.hybrid)}`,
    `  ML-KEM      ${list(groups.accepted.mlKem)}`,
    `  classical   ${list(groups.accepted.classical)}${groups.refusesClassical ? '  (refuses classical: clients without ML-KEM cannot connect)' : ''}`,
    `  preferred   ${groups.preferred ?? '-'}${groups.preferredClass ? ` (${groups.preferredClass}, offered after classical groups)` : ''}`,
    `  protocol    ${report.protocol ?? '-'}`,
  );
  if (report.certificate) {
    const { verified, verifyError, chain } = report.certificate;
    lines.push(`  certificate ${verified ? 'verified' : `NOT verified: ${verifyError}`}`);
    chain.forEach((c, i) => lines.push(`    [${i + 1}] ${c.subject}: key ${c.publicKeyAlgorithm}, signed ${c.signatureAlgorithm}, expires ${c.notAfter} (${c.daysLeft} days)`));
  }
  lines.push(`  verdict     ${report.verdict}`);
  return lines.join('\n');
}
