// Benchmark: requests per second and latency through QubeSec's NGINX (HTTPS with X25519MLKEM768 and an ML-DSA-65
// certificate, proxied to the backend) next to the same backend asked directly, on keep-alive connections: at
// saturation, then at one fixed rate below it. The variants compared take turns in short runs, so load from elsewhere
// on the machine falls on all of them alike. Prints figures and ratios; asserts nothing on numbers.
import { SECONDS, fixed, h2load, machine, quantile, row, withStage, type Stage } from './lib.js';

const CLIENTS = 32;
const FIXED_RATE_CLIENTS = 16;
/** Each variant runs in turns of about this many seconds, each after a warm-up that opens the connections. */
const TURN_SECONDS = 2.5;
const WARM_UP_SECONDS = 0.3;

interface Variant {
  label: string;
  args: string[];
  /** What NGINX must log for each request: the key-exchange group ('' without TLS); undefined: nothing may reach it. */
  group?: string;
}

interface Figure {
  label: string;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU microseconds per request of each process. */
  qubesecUs: number;
  clientUs: number;
  backendUs: number;
}

/**
 * Runs the variants in turns until each has SECONDS of measurement; CPU is taken around every run and divided by the
 * requests of the run, warm-up included (NGINX's log counts them for the ingress; for the backend, h2load's rate does).
 */
async function takeTurns(stage: Stage, variants: Variant[], extra: string[]): Promise<Figure[]> {
  const turns = Math.max(1, Math.round(SECONDS / TURN_SECONDS));
  const runMs = Math.round((SECONDS / turns) * 1000);
  const totals = variants.map(() => ({ done: 0, seconds: 0, requests: 0, latencies: [] as number[], qubesec: 0, backend: 0, client: 0 }));
  for (let turn = 0; turn < turns; turn++) {
    for (const [i, v] of variants.entries()) {
      const t = totals[i]!;
      await stage.truncateAccessLog();
      const before = await stage.cpu();
      const r = await h2load(stage, ['-t', '2', '-D', `${runMs}ms`, '--warm-up-time', `${WARM_UP_SECONDS * 1000}ms`, ...extra, ...v.args], true);
      const after = await stage.cpu();
      await new Promise((resolve) => setTimeout(resolve, 100)); // NGINX logs a request after its response is sent
      const lines = await stage.accessLog();
      if (v.group !== undefined) {
        // Requests in flight when the time is up are dropped by h2load: NGINX logs those as 499.
        const upstream = `127.0.0.1:${stage.backendPort}`;
        const wrong = lines.filter((l) => l.tls_group !== v.group || l.upstream !== upstream || (l.status !== 200 && l.status !== 499));
        if (wrong.length > 0 || lines.length < r.done) {
          throw new Error(`${v.label}: of ${lines.length} requests NGINX logged (h2load: ${r.done}), ${wrong.length} were not ${v.group || 'plain HTTP'} proxied to ${upstream}, e.g. ${JSON.stringify(wrong[0])}`);
        }
      } else if (lines.length > 0) {
        throw new Error(`${v.label}: ${lines.length} requests meant for the backend went through the ingress`);
      }
      t.done += r.done;
      t.seconds += r.seconds;
      t.requests += v.group !== undefined ? lines.length : r.done * (1 + (WARM_UP_SECONDS * 1000) / runMs);
      for (const l of r.latenciesUs) t.latencies.push(l);
      t.qubesec += after.ingress - before.ingress + after.controller - before.controller;
      t.backend += after.backend - before.backend;
      t.client += r.clientCpu;
    }
  }
  return variants.map((v, i) => {
    const t = totals[i]!;
    const us = (cpu: number) => (cpu * 1e6) / t.requests;
    return { label: v.label, perSecond: t.done / t.seconds, p50Ms: quantile(t.latencies, 0.5) / 1000, p99Ms: quantile(t.latencies, 0.99) / 1000, qubesecUs: us(t.qubesec), clientUs: us(t.client), backendUs: us(t.backend) };
  });
}

function print(title: string, figures: Figure[]): void {
  console.log(`\n${title}`);
  row('', 'requests/s', 'p50 ms', 'p99 ms', 'QubeSec us', 'client us', 'backend us');
  for (const f of figures) row(`  ${f.label}`, fixed(f.perSecond), fixed(f.p50Ms, 2), fixed(f.p99Ms, 2), fixed(f.qubesecUs, 1), fixed(f.clientUs, 1), fixed(f.backendUs, 1));
  console.log('  (us: CPU microseconds per request: QubeSec\'s NGINX and controller, h2load, the backend NGINX; latency: to the end of each response)');
}

async function main(): Promise<void> {
  console.log(await machine());
  await withStage(['ml-dsa-65'], { plainHost: true }, async (stage) => {
    await stage.verify('ml-dsa-65', 'X25519MLKEM768');
    const direct: Variant = { label: 'backend directly (HTTP/1.1)', args: ['--h1', `http://127.0.0.1:${stage.backendPort}/`] };
    const plain: Variant = { label: 'ingress, HTTP/1.1 without TLS', args: ['--h1', ...stage.plainTarget], group: '' };
    const h1: Variant = { label: 'ingress, HTTPS HTTP/1.1', args: ['--h1', ...stage.target('ml-dsa-65', 'X25519MLKEM768')], group: 'X25519MLKEM768' };
    const h2: Variant = { label: 'ingress, HTTPS HTTP/2', args: stage.target('ml-dsa-65', 'X25519MLKEM768'), group: 'X25519MLKEM768' };

    const saturated = await takeTurns(stage, [direct, plain, h1, h2], ['-c', String(CLIENTS)]);
    print(`saturation: h2load, ${CLIENTS} keep-alive connections (2 threads); ingress: ML-DSA-65 host, X25519MLKEM768, proxied to the backend`, saturated);

    // Latency apart from saturation: both at a third of what the ingress sustained over HTTPS HTTP/1.1.
    const perClient = Math.max(1, Math.round(saturated[2]!.perSecond / 3 / FIXED_RATE_CLIENTS));
    const target = perClient * FIXED_RATE_CLIENTS;
    const fixedRate = await takeTurns(stage, [direct, h1], ['-c', String(FIXED_RATE_CLIENTS), '--rps', String(perClient)]);
    print(`fixed rate: ${FIXED_RATE_CLIENTS} connections x ${perClient} requests/s = ${target}/s, a third of the ingress's HTTPS HTTP/1.1 saturation`, fixedRate);
    for (const f of fixedRate) if (f.perSecond < 0.9 * target) console.log(`  note: ${f.label} made ${fixed(f.perSecond)}/s, short of ${target}/s: it was saturated (other load on the machine?)`);

    const [directMax, plainMax, h1Max, h2Max] = saturated as [Figure, Figure, Figure, Figure];
    const [directFixed, ingressFixed] = fixedRate as [Figure, Figure];
    console.log('\nratios');
    const line = (text: string, value: string) => console.log(`  ${text.padEnd(58)}${value}`);
    line('requests/s, ingress without TLS / backend directly', fixed(plainMax.perSecond / directMax.perSecond, 2));
    line('requests/s, ingress HTTPS HTTP/1.1 / backend directly', fixed(h1Max.perSecond / directMax.perSecond, 2));
    line('requests/s, ingress HTTPS HTTP/2 / backend directly', fixed(h2Max.perSecond / directMax.perSecond, 2));
    line('requests/s, ingress HTTPS / without TLS (HTTP/1.1)', fixed(h1Max.perSecond / plainMax.perSecond, 2));
    line('QubeSec CPU per request, HTTPS HTTP/1.1 / without TLS', fixed(h1Max.qubesecUs / plainMax.qubesecUs, 2));
    line('QubeSec CPU per request, HTTPS HTTP/2 / HTTP/1.1', fixed(h2Max.qubesecUs / h1Max.qubesecUs, 2));
    line('QubeSec CPU / backend CPU per request (HTTPS HTTP/1.1)', fixed(h1Max.qubesecUs / h1Max.backendUs, 1));
    line('p99 at the fixed rate, ingress - backend directly', `+${fixed(ingressFixed.p99Ms - directFixed.p99Ms, 2)} ms (p50 +${fixed(ingressFixed.p50Ms - directFixed.p50Ms, 2)} ms)`);
  });
}

await main();
