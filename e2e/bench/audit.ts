// Benchmark: the audit trail's append throughput (events/s, each batch written and fdatasync'd before the next, as
// the receiver acknowledges them), the same through the real receiver process over TLS, the cost of signing a
// checkpoint next to one batch's append, and verification speed. Prints figures and ratios; asserts nothing.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { createLogger } from '../../controller/observability/log.js';
import { createAuditMetrics } from '../../controller/observability/metrics.js';
import { selfSignedPair } from '../../controller/pki/selfsigned.js';
import { generatePrivateKey, type SignatureAlgorithm } from '../../controller/signatures/algorithms.js';
import type { SigningKey } from '../../controller/signatures/keys.js';
import { signCheckpoint } from '../../controller/signatures/audit/checkpoint.js';
import { AUDIT_PATH } from '../../controller/signatures/audit/receiver.js';
import { scanLog } from '../../controller/signatures/audit/scan.js';
import { openStore } from '../../controller/signatures/audit/store.js';
import { nodeHttps } from '../lib/clients.js';
import { eventually, freePort } from '../lib/env.js';

const SECONDS = Number(process.env.QUBESEC_BENCH_SECONDS ?? 5);
const MAIN = fileURLToPath(new URL('../../controller/cli/main.js', import.meta.url));

/** A Metadata-level event as the API server writes one for a ConfigMap update (about 900 bytes). */
function event(): string {
  const now = new Date().toISOString();
  return JSON.stringify({
    kind: 'Event', apiVersion: 'audit.k8s.io/v1', level: 'Metadata', auditID: randomUUID(), stage: 'ResponseComplete',
    requestURI: '/api/v1/namespaces/shop/configmaps/settings?fieldManager=kubectl-client-side-apply', verb: 'patch',
    user: { username: 'system:serviceaccount:shop:deployer', uid: randomUUID(), groups: ['system:serviceaccounts', 'system:serviceaccounts:shop', 'system:authenticated'] },
    sourceIPs: ['198.18.0.7'], userAgent: 'kubectl/v1.36.3 (linux/amd64) kubernetes/0000000',
    objectRef: { resource: 'configmaps', namespace: 'shop', name: 'settings', apiVersion: 'v1' },
    responseStatus: { metadata: {}, code: 200 }, requestReceivedTimestamp: now, stageTimestamp: now,
    annotations: { 'authorization.k8s.io/decision': 'allow', 'authorization.k8s.io/reason': 'RBAC: allowed by RoleBinding "deployer/shop" of Role "deployer" to ServiceAccount "deployer/shop"' },
  });
}

async function timed(label: string, once: () => Promise<number>, unit: string): Promise<number> {
  await once(); // warm-up
  let count = 0;
  let calls = 0;
  const start = performance.now();
  while (performance.now() - start < SECONDS * 1000) {
    count += await once();
    calls++;
  }
  const seconds = (performance.now() - start) / 1000;
  console.log(`${label.padEnd(70)} ${(count / seconds).toFixed(0).padStart(9)} ${unit}/s  (${(seconds * 1000 / calls).toFixed(2)} ms per call)`);
  return count / seconds;
}

function keyOf(algorithm: SignatureAlgorithm): SigningKey {
  const key = generatePrivateKey(algorithm);
  return { algorithm, keyId: key.publicKey.keyId, publicKey: key.publicKey, sign: (data) => Promise.resolve(key.sign(data)) };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'qubesec-audit-bench-'));
  try {
    console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}; Node ${process.version} (OpenSSL ${process.versions.openssl}); log on ${tmpdir()}; ${SECONDS} s per figure; events of ${event().length} bytes`);
    const signer = keyOf('ML-DSA-65');
    const store = async (name: string, checkpointEvents: number) => openStore({
      dir: join(dir, name), signer, origin: 'bench.example/audit', segmentBytes: 64 * 2 ** 20, maxBytes: undefined, checkpointEvents,
      checkpointIntervalMs: 3_600_000, log: createLogger('error'), metrics: createAuditMetrics(),
    });
    const rates: Record<string, number> = {};
    for (const size of [1, 100, 400]) {
      const events = Array.from({ length: size }, event);
      const s = await store(`batch-${size}`, 1_000_000);
      rates[size] = await timed(`store: batches of ${size} events (write + fdatasync), no checkpoints`, async () => (await s.append(events), size), 'events');
      await s.close();
    }
    const withCheckpoints = await store('checkpointed', 1000);
    const batch = Array.from({ length: 400 }, event);
    const checkpointed = await timed('store: batches of 400, an ML-DSA-65 checkpoint every 1000 events', async () => (await withCheckpoints.append(batch), 400), 'events');
    await withCheckpoints.close();
    console.log(`ratio batches of 400 / of 1 (fdatasync per batch amortised): ${(rates[400]! / rates[1]!).toFixed(1)}x; checkpoints every 1000 cost ${((1 - checkpointed / rates[400]!) * 100).toFixed(1)}% of throughput`);

    const note = { origin: 'bench.example/audit', size: 123_456, root: Buffer.alloc(32, 1) };
    const signRates: Record<string, number> = {};
    for (const algorithm of ['ML-DSA-44', 'ML-DSA-65', 'ML-DSA-87'] as const) {
      const key = keyOf(algorithm);
      signRates[algorithm] = await timed(`checkpoint signing: ${algorithm} signed note`, async () => (await signCheckpoint(note, key), 1), 'checkpoints');
    }
    const batchMs = 1000 * 400 / rates[400]!;
    console.log(`ratio one ML-DSA-65 checkpoint / one 400-event batch append: ${((1000 / signRates['ML-DSA-65']!) / batchMs).toFixed(3)} (${(1000 / signRates['ML-DSA-65']!).toFixed(2)} ms vs ${batchMs.toFixed(2)} ms)`);

    const logDir = join(dir, 'checkpointed');
    const total = (await scanLog(logDir)).tree.size;
    await timed(`verify: scan ${total} records with their ML-DSA-65 checkpoints`, async () => ((await scanLog(logDir, { keys: [signer.publicKey] })).tree.size), 'records');

    // End to end: the real receiver process, over TLS with a bearer token, one batch at a time.
    const keyPair = generateKeyPairSync('ml-dsa-65');
    const tls = await selfSignedPair('ecdsa-p256', 'audit', ['localhost']);
    const files = { key: join(dir, 'key.pem'), tokens: join(dir, 'tokens'), cert: join(dir, 'tls.crt'), tlsKey: join(dir, 'tls.key') };
    await writeFile(files.key, keyPair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
    await writeFile(files.tokens, 'bench-token\n');
    await writeFile(files.cert, tls.certificatePem);
    await writeFile(files.tlsKey, tls.keyPem);
    const [port, metricsPort] = [await freePort(), await freePort()];
    const receiver = execa(process.execPath, [MAIN, 'audit', 'serve', '--dir', join(dir, 'served'), '--key', files.key, '--token-file', files.tokens,
      '--tls-certificate', files.cert, '--tls-key', files.tlsKey, '--listen', `127.0.0.1:${port}`, '--metrics-address', '127.0.0.1', '--metrics-port', String(metricsPort)], { reject: false });
    try {
      await eventually(async () => ((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).ok ? true : undefined), 15_000, 'receiver ready');
      const body = JSON.stringify({ apiVersion: 'audit.k8s.io/v1', kind: 'EventList', items: batch.map((e) => JSON.parse(e) as unknown) });
      const options = { method: 'POST', ca: tls.certificatePem, servername: 'localhost', headers: { Authorization: 'Bearer bench-token', 'Content-Type': 'application/json' } };
      const served = await timed('receiver process: POST batches of 400 over TLS (new connection each)', async () => {
        const reply = await nodeHttps(`https://127.0.0.1:${port}${AUDIT_PATH}`, options, body);
        if (reply.status !== 200) throw new Error(`${reply.status} ${reply.body}`);
        return 400;
      }, 'events');
      console.log(`ratio receiver end to end / store alone (batches of 400): ${(served / rates[400]!).toFixed(2)}`);
    } finally {
      receiver.kill('SIGTERM');
      await receiver;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
