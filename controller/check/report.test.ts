import { buildReport, EXIT_CODES, formatReport, PREFERENCE_OFFER, PROBED_GROUPS, worstExitCode, type CertificateReport, type HandshakeOutcome, type ProbeResults } from './report.js';

const TARGET = { host: 'shop.pq.example.com', port: 443, address: '10.0.0.1', ingress: null };
const ALL_GROUPS = Object.values(PROBED_GROUPS).flat();
const refusedAlert: HandshakeOutcome = { ok: false, error: 'ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE: alert 40', refused: true };

/** Probe results of a server that accepts `accepted` and picks `preferred` from PREFERENCE_OFFER. */
function probes(accepted: string[], preferred: string | null): ProbeResults {
  const negotiated = (group: string): HandshakeOutcome => ({ ok: true, group, protocol: 'TLSv1.3' });
  const byGroup = Object.fromEntries(ALL_GROUPS.map((g) => [g, accepted.includes(g) ? negotiated(g) : refusedAlert]));
  return { byGroup, preference: preferred ? negotiated(preferred) : refusedAlert };
}

const verified: CertificateReport = { verified: true, verifyError: null, chain: [] };
const unverified: CertificateReport = { verified: false, verifyError: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', chain: [] };

describe('qubesec check verdicts', () => {
  it('pq-ready: a hybrid-mode server accepts hybrids and classical and picks the hybrid over a classical-first offer', () => {
    const report = buildReport(TARGET, probes([...PROBED_GROUPS.hybrid, ...PROBED_GROUPS.classical], 'X25519MLKEM768'), verified, true);
    expect(report.verdict).toBe('pq-ready');
    expect(report.exitCode).toBe(0);
    expect(report.groups).toEqual({
      accepted: { hybrid: PROBED_GROUPS.hybrid, mlKem: [], classical: PROBED_GROUPS.classical },
      refused: PROBED_GROUPS['ml-kem'],
      preferred: 'X25519MLKEM768',
      preferredClass: 'hybrid',
      refusesClassical: false,
    });
  });

  it('pq-ready and refusing classical: a strict-mode server', () => {
    const report = buildReport(TARGET, probes([...PROBED_GROUPS.hybrid, 'MLKEM768', 'MLKEM1024'], 'X25519MLKEM768'), verified, true);
    expect(report.verdict).toBe('pq-ready');
    expect(report.groups.accepted.mlKem).toEqual(['MLKEM768', 'MLKEM1024']);
    expect(report.groups.refusesClassical).toBe(true);
  });

  it('hybrid-only: accepts ML-KEM but takes the classical group a client lists first', () => {
    const report = buildReport(TARGET, probes(['X25519MLKEM768', 'X25519'], 'X25519'), verified, true);
    expect(report.verdict).toBe('hybrid-only');
    expect(report.groups.preferredClass).toBe('classical');
    expect(report.exitCode).toBe(EXIT_CODES['hybrid-only']);
  });

  it('classical-only: no ML-KEM group accepted', () => {
    const report = buildReport(TARGET, probes(['X25519', 'secp256r1'], 'X25519'), verified, true);
    expect(report.verdict).toBe('classical-only');
    expect(report.exitCode).toBe(EXIT_CODES['classical-only']);
    expect(report.groups.refused).toEqual(PREFERENCE_OFFER.filter((g) => g !== 'X25519' && g !== 'secp256r1'));
  });

  it('unreachable: a connection error on every probe, reported with its reason', () => {
    const down: HandshakeOutcome = { ok: false, error: 'ECONNREFUSED: connect ECONNREFUSED 10.0.0.1:443', refused: false };
    const report = buildReport(TARGET, { byGroup: Object.fromEntries(ALL_GROUPS.map((g) => [g, down])), preference: down }, null, false);
    expect(report).toMatchObject({ verdict: 'unreachable', exitCode: EXIT_CODES.unreachable, error: down.error, protocol: null, certificate: null });
  });

  it('unreachable: a server that refuses every group we offer says so', () => {
    const report = buildReport(TARGET, probes([], null), null, false);
    expect(report.verdict).toBe('unreachable');
    expect(report.error).toMatch(/^every handshake was refused: ERR_SSL/);
  });

  it('a chain that --cacert does not verify exits 6; without --cacert it is only reported', () => {
    const pqReady = probes(['X25519MLKEM768', 'X25519'], 'X25519MLKEM768');
    expect(buildReport(TARGET, pqReady, unverified, true).exitCode).toBe(EXIT_CODES['certificate-unverified']);
    const reportOnly = buildReport(TARGET, pqReady, unverified, false);
    expect(reportOnly.exitCode).toBe(0);
    expect(reportOnly.certificate?.verifyError).toBe('UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
  });

  it('the worst host decides the exit code of a multi-host check', () => {
    expect(worstExitCode([])).toBe(0);
    expect(worstExitCode([0, 3, 0])).toBe(3);
    expect(worstExitCode([4, 3, 0])).toBe(4);
    expect(worstExitCode([6, 4])).toBe(6);
    expect(worstExitCode([6, 5, 0])).toBe(5);
  });

  it('the text report names what a user must know: groups per class, refusal of classical, the chain, the verdict', () => {
    const chain = [{ subject: 'CN=pq.example.com', issuer: 'CN=QubeSec CA', publicKeyAlgorithm: 'ml-dsa-65', signatureAlgorithm: 'ml-dsa-65', notAfter: '2027-01-01T00:00:00.000Z', daysLeft: 33 }];
    const strict = buildReport({ ...TARGET, ingress: 'shop/web' }, probes([...PROBED_GROUPS.hybrid, 'MLKEM768'], 'X25519MLKEM768'), { ...verified, chain }, true);
    expect(formatReport(strict)).toBe([
      'shop.pq.example.com:443 (at 10.0.0.1)  [Ingress shop/web]',
      '  hybrid      X25519MLKEM768, SecP256r1MLKEM768, SecP384r1MLKEM1024',
      '  ML-KEM      MLKEM768',
      '  classical   -  (refuses classical: clients without ML-KEM cannot connect)',
      '  preferred   X25519MLKEM768 (hybrid, offered after classical groups)',
      '  protocol    TLSv1.3',
      '  certificate verified',
      '    [1] CN=pq.example.com: key ml-dsa-65, signed ml-dsa-65, expires 2027-01-01T00:00:00.000Z (33 days)',
      '  verdict     pq-ready',
    ].join('\n'));
    const down: HandshakeOutcome = { ok: false, error: 'no TLS handshake within 10 s', refused: false };
    expect(formatReport(buildReport({ ...TARGET, address: TARGET.host }, { byGroup: {}, preference: down }, null, false)))
      .toBe('shop.pq.example.com:443\n  verdict     unreachable: no TLS handshake within 10 s');
  });
});
