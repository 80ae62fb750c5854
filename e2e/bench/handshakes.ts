// Benchmark: TLS 1.3 handshakes per second through QubeSec's NGINX (the controller in standalone mode renders and runs
// it): X25519MLKEM768 against X25519 on one ECDSA certificate, ML-DSA-65 and ML-DSA-44 certificates against ECDSA on
// X25519MLKEM768, each against the bound `openssl speed` gives for its primitives; then resumed handshakes, PQ against
// classical. The variants compared take turns in short runs, so load from elsewhere on the machine falls on all of
// them alike. Prints figures and ratios; asserts nothing on numbers, but stops if a handshake is not the one asked for.
import { cpus } from 'node:os';
import { CERT_LABEL, SECONDS, fixed, h2load, machine, opensslSpeed, row, withStage, type AccessLine, type CertKind, type Group, type LoadResult, type Stage } from './lib.js';

const CORES = cpus().length;
/** Parallel connections of the first (warm-up) batch of full handshakes; later batches last about a third of a second. */
const FIRST_BATCH = 100;
const RESUMING_CLIENTS = 32;
/** Resumed handshakes are measured in runs this long (after a warm-up in which each client makes its full handshake). */
const RESUMED_RUN_SECONDS = 1;
/** openssl speed runs of each algorithm, in turn; the best rate of each operation is the bound's. */
const SPEED_REPEATS = 3;

const SPEED_NAME: Record<CertKind | Group, string> = { 'ecdsa-p256': 'ecdsap256', 'ml-dsa-65': 'ML-DSA-65', 'ml-dsa-44': 'ML-DSA-44', X25519MLKEM768: 'X25519MLKEM768', X25519: 'X25519' };

interface Variant {
  kind: CertKind;
  group: Group;
  /** h2load's count of completed handshakes (one request each) and the seconds it measured them over. */
  done: number;
  seconds: number;
  /** CPU seconds over this variant's runs: QubeSec's NGINX, the controller, the backend, h2load. */
  cpu: { ingress: number; controller: number; backend: number; client: number };
  /** Connections NGINX logged for this variant's host and group: full handshakes, resumed ones. */
  full: number;
  resumed: number;
}

/** A variant's figures: handshakes/s and CPU milliseconds per handshake of each process. */
interface Figure {
  kind: CertKind;
  group: Group;
  perSecond: number;
  ingressMs: number;
  controllerMs: number;
  backendMs: number;
  clientMs: number;
  resumedShare: number;
}

const label = (v: { kind: CertKind; group: Group }) => `${CERT_LABEL[v.kind]} / ${v.group}`;

/**
 * Runs each variant in turn (`once` is one h2load run) until each has SECONDS of measurement, taking CPU around every
 * run; then checks in NGINX's access log that every connection was the variant's host and group, answered 200.
 */
async function takeTurns(stage: Stage, pairs: [CertKind, Group][], once: (v: Variant) => Promise<LoadResult>, resumed: boolean): Promise<Variant[]> {
  const variants: Variant[] = pairs.map(([kind, group]) => ({ kind, group, done: 0, seconds: 0, cpu: { ingress: 0, controller: 0, backend: 0, client: 0 }, full: 0, resumed: 0 }));
  await stage.truncateAccessLog();
  while (variants.some((v) => v.seconds < SECONDS)) {
    for (const v of variants) {
      const before = await stage.cpu();
      const r = await once(v);
      const after = await stage.cpu();
      v.done += r.done;
      v.seconds += r.seconds;
      v.cpu.ingress += after.ingress - before.ingress;
      v.cpu.controller += after.controller - before.controller;
      v.cpu.backend += after.backend - before.backend;
      v.cpu.client += r.clientCpu;
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 200)); // NGINX logs a request after its response is sent
  const lines = await stage.accessLog();
  const of = (v: Variant) => (l: AccessLine) => l.host === stage.host(v.kind) && l.tls_group === v.group;
  const stray = lines.filter((l) => !variants.some((v) => of(v)(l)));
  if (stray.length > 0) throw new Error(`${stray.length} connections were none of the variants asked for, e.g. ${JSON.stringify(stray[0])}`);
  for (const v of variants) {
    const own = lines.filter(of(v));
    // h2load drops the requests in flight when a timed run ends: NGINX logs those as 499.
    const failed = own.filter((l) => l.status !== 200 && !(resumed && l.status === 499));
    if (failed.length > 0) throw new Error(`${label(v)}: ${failed.length} requests were not answered 200, e.g. ${JSON.stringify(failed[0])}`);
    v.resumed = own.filter((l) => l.tls_session_reused === 'r').length;
    v.full = own.length - v.resumed;
    if (!resumed && v.resumed > 0) throw new Error(`${label(v)}: ${v.resumed} of ${own.length} connections resumed a session; full handshakes were asked for`);
    if (resumed && v.resumed < 0.8 * own.length) throw new Error(`${label(v)}: only ${v.resumed} of ${own.length} connections resumed a session`);
    // Batches: NGINX logged what h2load made. Timed runs: NGINX also logged the warm-ups, which h2load does not count.
    if (resumed ? own.length < v.done : Math.abs(own.length - v.done) > Math.max(2, v.done / 100)) {
      throw new Error(`${label(v)}: h2load completed ${v.done} requests, NGINX logged ${own.length}`);
    }
  }
  return variants;
}

/**
 * Full handshakes: h2load batches of N clients making one request each (-n = -c), so no connection resumes a session.
 * `Connection: close` as in the resumed runs, so NGINX closes every connection in both.
 */
async function full(stage: Stage, pairs: [CertKind, Group][]): Promise<Figure[]> {
  const batch = (v: { kind: CertKind; group: Group }, n: number) =>
    h2load(stage, ['--h1', '-H', 'Connection: close', '-t', '2', '-c', String(n), '-n', String(n), ...stage.target(v.kind, v.group)]);
  const sizes = new Map<string, number>();
  for (const [kind, group] of pairs) {
    const warm = await batch({ kind, group }, FIRST_BATCH);
    sizes.set(label({ kind, group }), Math.min(500, Math.max(50, Math.round(warm.done / warm.seconds / 3))));
  }
  const variants = await takeTurns(stage, pairs, (v) => batch(v, sizes.get(label(v))!), false);
  return variants.map((v) => {
    const ms = (cpu: number) => (cpu * 1000) / v.full;
    return { kind: v.kind, group: v.group, perSecond: v.done / v.seconds, ingressMs: ms(v.cpu.ingress), controllerMs: ms(v.cpu.controller), backendMs: ms(v.cpu.backend), clientMs: ms(v.cpu.client), resumedShare: 0 };
  });
}

/**
 * Resumed handshakes: h2load clients reconnecting after every request (the server closes on `Connection: close`) offer
 * the TLS 1.3 session ticket of their previous connection; NGINX's $ssl_session_reused confirms the resumptions. Each
 * client's first, full handshake falls in the run's warm-up; its CPU is taken off with the full-handshake figures.
 */
async function resumed(stage: Stage, pairs: [CertKind, Group][], fulls: Figure[]): Promise<Figure[]> {
  const variants = await takeTurns(stage, pairs, (v) => h2load(stage, ['--h1', '-H', 'Connection: close', '-t', '2', '-c', String(RESUMING_CLIENTS),
    '-D', String(RESUMED_RUN_SECONDS), '--warm-up-time', '300ms', ...stage.target(v.kind, v.group)]), true);
  return variants.map((v) => {
    const first = fulls.find((f) => f.kind === v.kind && f.group === v.group)!;
    const ms = (cpu: number, fullMs: number) => (cpu * 1000 - v.full * fullMs) / v.resumed;
    return {
      kind: v.kind,
      group: v.group,
      perSecond: v.done / v.seconds,
      ingressMs: ms(v.cpu.ingress, first.ingressMs),
      controllerMs: ms(v.cpu.controller, first.controllerMs),
      backendMs: ms(v.cpu.backend, first.backendMs),
      clientMs: ms(v.cpu.client, first.clientMs),
      resumedShare: v.resumed / (v.resumed + v.full),
    };
  });
}

function printFigures(title: string, figures: Figure[]): void {
  console.log(`\n${title}`);
  row('certificate / group', 'handshakes/s', 'per NGINX s', 'NGINX ms', 'client ms', 'ctrl ms', 'backend ms', 'resumed');
  for (const f of figures) {
    row(`  ${label(f)}`, fixed(f.perSecond, 1), fixed(1000 / f.ingressMs), fixed(f.ingressMs, 3), fixed(f.clientMs, 3), fixed(f.controllerMs, 3), fixed(f.backendMs, 3), `${fixed(f.resumedShare * 100, 1)}%`);
  }
  console.log('  (ms: CPU milliseconds per handshake: QubeSec\'s NGINX master and workers, h2load, the controller, the backend NGINX;');
  console.log('   per NGINX s: handshakes per CPU-second of QubeSec\'s NGINX, which other load on the machine changes little)');
}

async function main(): Promise<void> {
  console.log(await machine());
  const kinds: CertKind[] = ['ecdsa-p256', 'ml-dsa-65', 'ml-dsa-44'];
  await withStage(kinds, {}, async (stage) => {
    // The setup, checked once: each host serves only its certificate, over the group the client offers.
    for (const kind of kinds) for (const group of ['X25519MLKEM768', 'X25519'] as const) await stage.verify(kind, group);
    console.log('server: QubeSec controller (standalone, --manifests) and its NGINX, worker_processes auto; backend: rootfs NGINX answering 200;');
    console.log(`client: h2load (2 threads) from the rootfs; client and servers share the ${CORES} cores`);

    const speedSeconds = Math.max(1, Math.round(SECONDS / 5));
    const speed = await opensslSpeed(['ML-DSA-65', 'ML-DSA-44', 'ecdsap256', 'X25519MLKEM768', 'X25519'], speedSeconds, SPEED_REPEATS);
    console.log(`\nprimitives: openssl speed, operations per CPU-second of one core (best of ${SPEED_REPEATS} runs of ${speedSeconds} s per operation)`);
    row('algorithm', 'keygen', 'sign/encaps', 'verify/decaps');
    for (const [name, ops] of Object.entries(speed)) row(`  ${name}`, fixed(ops.keygen ?? NaN), fixed(ops.sign ?? ops.encaps ?? NaN), fixed(ops.verify ?? ops.decaps ?? NaN));

    const fulls = await full(stage, [['ecdsa-p256', 'X25519'], ['ecdsa-p256', 'X25519MLKEM768'], ['ml-dsa-65', 'X25519MLKEM768'], ['ml-dsa-44', 'X25519MLKEM768']]);
    printFigures('full TLS 1.3 handshakes: h2load, one HTTP/1.1 request (Connection: close) per new connection, proxied to the backend', fulls);

    // One signature and one key-share encapsulation per handshake on the server; the client makes a key share,
    // decapsulates and verifies the signature on the same cores.
    console.log(`\nprimitive bound: server crypto per handshake = 1/sign + 1/encaps (openssl speed, one core); bound = ${CORES} cores / that`);
    row('certificate / group', 'server ms', 'bound/s', 'meas./bound', 'shared b./s', 'meas./shared', 'crypto/NGINX');
    for (const f of fulls) {
      const cert = speed[SPEED_NAME[f.kind]]!;
      const kem = speed[SPEED_NAME[f.group]]!;
      const serverMs = 1000 / cert.sign! + 1000 / kem.encaps!;
      const clientMs = 1000 / kem.keygen! + 1000 / kem.decaps! + 1000 / cert.verify!;
      const bound = (CORES * 1000) / serverMs;
      const shared = (CORES * 1000) / (serverMs + clientMs);
      row(`  ${label(f)}`, fixed(serverMs, 3), fixed(bound), fixed(f.perSecond / bound, 2), fixed(shared), fixed(f.perSecond / shared, 2), fixed(serverMs / f.ingressMs, 2));
    }
    console.log('  (shared bound: the client\'s 1/keygen + 1/decaps + 1/verify counted on the same cores too;');
    console.log('   crypto/NGINX: server ms / NGINX CPU ms per handshake = handshakes per NGINX CPU-second / bound per core)');

    const resumes = await resumed(stage, [['ecdsa-p256', 'X25519'], ['ml-dsa-65', 'X25519MLKEM768']], fulls);
    printFigures(`resumed TLS 1.3 handshakes: h2load, ${RESUMING_CLIENTS} clients, Connection: close, each reconnect offers the previous session ticket`, resumes);

    const [ecdsaClassical, ecdsaHybrid, mldsa65, mldsa44] = fulls as [Figure, Figure, Figure, Figure];
    const [resumedClassical, resumedPq] = resumes as [Figure, Figure];
    console.log('\nratios                                                              handshakes/s  per NGINX s');
    const ratio = (text: string, a: Figure, b: Figure, target = '') =>
      console.log(`  ${text.padEnd(66)}${fixed(a.perSecond / b.perSecond, 2).padStart(12)}${fixed(b.ingressMs / a.ingressMs, 2).padStart(13)}${target}`);
    ratio('hybrid / classical, full (ECDSA: X25519MLKEM768 / X25519)', ecdsaHybrid, ecdsaClassical, '   (target >= 0.9)');
    ratio('ML-DSA-65 / ECDSA, full (X25519MLKEM768)', mldsa65, ecdsaHybrid);
    ratio('ML-DSA-44 / ECDSA, full (X25519MLKEM768)', mldsa44, ecdsaHybrid);
    ratio('ML-DSA-44 / ML-DSA-65, full (X25519MLKEM768)', mldsa44, mldsa65);
    ratio('PQ / classical, full (ML-DSA-65 + X25519MLKEM768 / ECDSA + X25519)', mldsa65, ecdsaClassical);
    ratio('PQ / classical, resumed (same pairs)', resumedPq, resumedClassical);
    ratio('resumed / full, classical (ECDSA + X25519)', resumedClassical, ecdsaClassical);
    ratio('resumed / full, PQ (ML-DSA-65 + X25519MLKEM768)', resumedPq, mldsa65);
    console.log('  (target for ML-DSA handshakes: >= 0.9 of the primitive bound: meas./bound, and crypto/NGINX on a shared machine)');
  });
}

await main();
