// Benchmark: the controller on a real kube-apiserver with 1,000 Ingresses present (QUBESEC_BENCH_INGRESSES). Prints how
// long a new Ingress takes from its creation to the first successful request over X25519MLKEM768, plain (no reload)
// and allowlisted (its reload) in turns, the reloads while Ingresses are created one after another, and what 1,000
// EndpointSlice changes cost under load (reloads, endpoint updates, failed requests). Asserts nothing on the figures.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { startEcho } from '../lib/backends.js';
import { nodeHttps, pqCurl } from '../lib/clients.js';
import { eventually } from '../lib/env.js';
import { startTestController, type TestController } from '../lib/harness.js';
import type { Kube } from '../lib/kube.js';
import { pqIngress, serviceFor } from '../lib/objects.js';
import { startClusterSetup, stopClusterSetup } from '../lib/setup.js';
import { inRootfs, quantile } from './lib.js';

const PRESENT = Number(process.env.QUBESEC_BENCH_INGRESSES ?? 1000);
const MEASURED = Number(process.env.QUBESEC_BENCH_MEASURED ?? 50);
/** --debounce-ms: a lone change syncs at once; the debounce gathers the changes that follow it (endpoint churn). */
const DEBOUNCE_MS = process.env.QUBESEC_BENCH_DEBOUNCE_MS ?? '100';
/** Each waits for a reload (seconds at 10,000 present): fewer than the 100 plain ones, counted per 100. */
const ALLOWLISTED_IN_SEQUENCE = 20;
const ENDPOINT_CHANGES = 1000;
const HYBRID = 'X25519MLKEM768';

const hostOf = (i: number | string) => `bench-${i}.pq.example.com`;

/**
 * The figures of this benchmark before the incremental sync (docs/benchmarks.md, run of 2026-11-29 on this machine,
 * 1,000 present): that code path is gone, so they are printed beside this run's, not measured again.
 */
const BEFORE = { p50: 2207, p90: 2875, p99: 3158, min: 1699, syncMs: 2316 };

/** Clients run from 127.0.0.1: an allowlist that lets them in still makes an Ingress wait for its reload. */
const ALLOWLIST = { 'nginx.ingress.kubernetes.io/whitelist-source-range': '127.0.0.1/32,198.18.0.0/15' };

async function inBatches<T>(items: T[], size: number, each: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(each));
}

/** One GET over the hybrid group from Node's OpenSSL 3.5 (no process per attempt: polling every few ms stays cheap). */
function hybridGet(controller: TestController, host: string, ca: string): Promise<number> {
  return nodeHttps(`https://127.0.0.1:${controller.httpsPort}/`, { servername: host, headers: { host }, ca, ecdhCurve: HYBRID, agent: false, timeout: 2000 })
    .then((r) => r.status, () => 0);
}

/**
 * Creates the Ingress and polls until it answers 200 over the hybrid group: milliseconds from the create call. Then,
 * untimed, waits for the sync that served it to end (a reload is confirmed after NGINX answers), so that the next
 * Ingress finds the controller idle and does not wait for this one's sync.
 */
async function untilServed(kube: Kube, controller: TestController, ca: string, name: string, annotations?: Record<string, string>): Promise<number> {
  const syncs = await controller.metric('qubesec_sync_duration_seconds_count');
  const started = performance.now();
  await kube.apply(pqIngress(`bench-${name}`, hostOf(name), 'bench', { secrets: ['pq-mldsa'], annotations }));
  while ((await hybridGet(controller, hostOf(name), ca)) !== 200) await new Promise((r) => setTimeout(r, 5));
  const served = performance.now() - started;
  await eventually(async () => ((await controller.metric('qubesec_sync_duration_seconds_count')) > syncs || undefined), 30_000, `the sync that served ${name}`);
  return served;
}

const summary = (times: number[]) =>
  `p50 ${quantile(times, 0.5).toFixed(0)} ms, p90 ${quantile(times, 0.9).toFixed(0)} ms, p99 ${quantile(times, 0.99).toFixed(0)} ms (max of ${times.length}), min ${Math.min(...times).toFixed(0)} ms`;

/**
 * Plain Ingresses (served by the catch-all path, no reload) and allowlisted ones (which wait for their reload), in
 * turns: both sides under the same load.
 */
async function createdToServed(kube: Kube, controller: TestController, ca: string): Promise<void> {
  const syncs = [await controller.metric('qubesec_sync_duration_seconds_count'), await controller.metric('qubesec_sync_duration_seconds_sum')];
  const plain: number[] = [];
  const allowlisted: number[] = [];
  for (let i = 0; i < MEASURED; i++) {
    plain.push(await untilServed(kube, controller, ca, `new-${i}`));
    allowlisted.push(await untilServed(kube, controller, ca, `allow-${i}`, ALLOWLIST));
  }
  // Checked once with curl: the measured requests did negotiate the hybrid group with the ML-DSA certificate.
  const check = await pqCurl({ host: hostOf('new-0'), port: controller.httpsPort }, { curves: HYBRID, args: ['-k'] });
  if (check.status !== 200 || check.group !== HYBRID || check.signature !== 'id-ml-dsa-65') throw new Error(`setup broken: ${JSON.stringify(check)}`);
  console.log(`Ingress created -> first ${HYBRID} 200, ${MEASURED} + ${MEASURED} new Ingresses in turns, ${PRESENT} present, --debounce-ms ${DEBOUNCE_MS}:`);
  console.log(`  plain (no reload, the catch-all path): ${summary(plain)}`);
  console.log(`  with an allowlist (waits for its reload): ${summary(allowlisted)}`);
  console.log(`  ratio plain / allowlisted: p50 ${(quantile(plain, 0.5) / quantile(allowlisted, 0.5)).toFixed(3)}, p99 ${(quantile(plain, 0.99) / quantile(allowlisted, 0.99)).toFixed(3)}`);
  console.log(`  before the incremental sync (2026-11-29, 1,000 present, every Ingress reloaded): p50 ${BEFORE.p50} ms, p90 ${BEFORE.p90} ms, p99 ${BEFORE.p99} ms, min ${BEFORE.min} ms`);
  const count = (await controller.metric('qubesec_sync_duration_seconds_count')) - syncs[0]!;
  const seconds = (await controller.metric('qubesec_sync_duration_seconds_sum')) - syncs[1]!;
  console.log(`  ${count} syncs meanwhile, ${((seconds / count) * 1000).toFixed(0)} ms each on average (translate, render, reload or table update, confirm); before: ${BEFORE.syncMs} ms`);
}

/**
 * Reloads while new Ingresses are created one after another, each awaited until served (a pipeline deploying one
 * after another): plain ones, then allowlisted ones.
 */
async function reloadsPerNewIngresses(kube: Kube, controller: TestController, ca: string): Promise<void> {
  const reloadsFor = async (count: number, prefix: string, annotations?: Record<string, string>) => {
    const before = await controller.metric('qubesec_config_reloads_total');
    const started = performance.now();
    for (let i = 0; i < count; i++) await untilServed(kube, controller, ca, `${prefix}-${i}`, annotations);
    const reloads = (await controller.metric('qubesec_config_reloads_total')) - before;
    return { reloads, seconds: (performance.now() - started) / 1000 };
  };
  const plain = await reloadsFor(100, 'seq');
  const allowlisted = await reloadsFor(ALLOWLISTED_IN_SEQUENCE, 'seq-allow', ALLOWLIST);
  console.log(`Reloads while new Ingresses are created one after another (each until served), ${PRESENT} present:`);
  console.log(`  100 plain: ${plain.reloads} reloads in ${plain.seconds.toFixed(1)} s (one per --new-host-reload-ms window)`);
  console.log(`  ${ALLOWLISTED_IN_SEQUENCE} allowlisted: ${allowlisted.reloads} reloads in ${allowlisted.seconds.toFixed(1)} s (${((allowlisted.reloads / ALLOWLISTED_IN_SEQUENCE) * 100).toFixed(0)} per 100)`);
}

interface LoadTotals { done: number; ok: number; serverErrors: number; failed: number; errored: number }

/** h2load from the rootfs, 8 clients over the hybrid group, in 3-second runs until `until` settles; totals summed. */
async function loadUntil(controller: TestController, until: Promise<unknown>): Promise<LoadTotals> {
  let finished = false;
  void until.finally(() => (finished = true));
  const totals: LoadTotals = { done: 0, ok: 0, serverErrors: 0, failed: 0, errored: 0 };
  while (!finished) {
    const run = await inRootfs(['h2load', '-D', '3', '-c', '8', '-t', '1', '--groups', HYBRID, `--connect-to=127.0.0.1:${controller.httpsPort}`, `https://${hostOf(0)}:${controller.httpsPort}/`]);
    const output = `${run.stdout}\n${run.stderr}`;
    const requests = /requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed, (\d+) errored/.exec(output);
    const codes = /status codes: (\d+) 2xx, \d+ 3xx, \d+ 4xx, (\d+) 5xx/.exec(output);
    if (!requests || !codes) throw new Error(`h2load printed no summary: ${output.slice(-500)}`);
    totals.done += Number(requests[1]);
    totals.failed += Number(requests[2]);
    totals.errored += Number(requests[3]);
    totals.ok += Number(codes[1]);
    totals.serverErrors += Number(codes[2]);
  }
  return totals;
}

/** Backend 0 stays ready; each change flips the readiness of one of backends 1-3 (a Pod coming or going). */
async function endpointChurn(kube: Kube, controller: TestController, slices: Array<ReturnType<typeof serviceFor>['slice']>): Promise<void> {
  const reloads = await controller.metric('qubesec_config_reloads_total');
  const updates = await controller.metric('qubesec_endpoint_updates_total');
  const started = performance.now();
  const churn = (async () => {
    for (let i = 0; i < ENDPOINT_CHANGES; i++) {
      const slice = slices[1 + (i % 3)]!;
      const ready = Math.floor(i / 3) % 2 === 1;
      await kube.apply({ ...slice, endpoints: (slice.endpoints ?? []).map((e) => ({ ...e, conditions: { ready } })) });
    }
    return (performance.now() - started) / 1000;
  })();
  const [load, seconds] = await Promise.all([loadUntil(controller, churn), churn]);
  console.log(`${ENDPOINT_CHANGES} EndpointSlice changes in ${seconds.toFixed(1)} s under load (h2load, 8 clients, ${HYBRID}):`);
  console.log(`  reloads ${(await controller.metric('qubesec_config_reloads_total')) - reloads}, endpoint updates without a reload ${(await controller.metric('qubesec_endpoint_updates_total')) - updates} (changes arriving within --debounce-ms are applied together)`);
  console.log(`  requests ${load.done} done: ${load.ok} 2xx, ${load.serverErrors} 5xx, ${load.failed} failed, ${load.errored} errored`);
}

async function main(): Promise<void> {
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}; Node ${process.version}`);
  const setup = await startClusterSetup();
  let controller: TestController | undefined;
  try {
    const { kube, cluster, testHost, anchors } = setup;
    const backendPorts = await Promise.all(['a', 'b', 'c', 'd'].map((n) => startEcho(testHost, `bench-${n}`)));
    const slices = backendPorts.map((port, i) => {
      const { slice } = serviceFor('bench', port, testHost.address);
      return { ...slice, metadata: { ...slice.metadata, name: `bench-${i}` } };
    });
    await kube.apply(serviceFor('bench', backendPorts[0]!, testHost.address).service);
    for (const slice of slices) await kube.apply(slice);
    controller = await startTestController({ kubeconfig: cluster.kubeconfigPath }, ['--debounce-ms', DEBOUNCE_MS, '--worker-processes', '2', '--log-level', 'warn']);
    const ca = readFileSync(anchors.hostMldsa, 'utf8');

    const started = performance.now();
    await inBatches([...Array(PRESENT).keys()], 20, (i) => kube.apply(pqIngress(`bench-${i}`, hostOf(i), 'bench', { secrets: ['pq-mldsa'] })));
    await eventually(async () => ((await hybridGet(controller!, hostOf(PRESENT - 1), ca)) === 200 || undefined), 300_000, `${PRESENT} Ingresses served`);
    console.log(`${PRESENT} Ingresses created and served in ${((performance.now() - started) / 1000).toFixed(1)} s`);

    await createdToServed(kube, controller, ca);
    await reloadsPerNewIngresses(kube, controller, ca);
    await endpointChurn(kube, controller, slices);
  } finally {
    await stopClusterSetup(setup, controller);
  }
}

await main();
