// Benchmark: signature verification at admission. Bursts of 100 ML-DSA-65-signed Deployments, (1) posted as
// AdmissionReviews straight to the controller's webhook server, (2) created (dry run) through the real kube-apiserver,
// which calls that webhook, next to the same bursts in a namespace the webhook is not called for. Prints
// verifications/s and p50/p99 latency per request, and the ratios; asserts nothing.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { V1Deployment } from '@kubernetes/client-node';
import { GROUP, VERSION } from '../../controller/pki/resources.js';
import { loadSigningKey } from '../../controller/signatures/keys.js';
import { signObject } from '../../controller/signatures/objects.js';
import { VALIDATE_SIGNATURES_PATH } from '../../controller/signatures/review.js';
import { startCluster } from '../cluster/cluster.js';
import { nodeHttps } from '../lib/clients.js';
import { eventually, freePort, rootfs } from '../lib/env.js';
import { startTestController } from '../lib/harness.js';
import { Kube } from '../lib/kube.js';
import { webhookServingPair } from '../lib/webhook.js';

const BURST = 100;
const BURSTS = Number(process.env.QUBESEC_BENCH_BURSTS ?? 10);

const deployment = (namespace: string, name: string): V1Deployment => ({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace },
  spec: { replicas: 2, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: `registry.example.com/${name}:1.0`, env: [{ name: 'MODE', value: 'bench' }] }] } } },
});

/** Runs BURSTS bursts of BURST requests at once; each request's latency in ms, and requests per second overall. */
async function bursts(label: string, request: (i: number) => Promise<void>): Promise<{ perSecond: number; p50: number; p99: number }> {
  await Promise.all(Array.from({ length: BURST }, (_, i) => request(i))); // warm-up: connections, JIT
  const latencies: number[] = [];
  const started = performance.now();
  for (let b = 0; b < BURSTS; b++) {
    await Promise.all(Array.from({ length: BURST }, async (_, i) => {
      const t = performance.now();
      await request(b * BURST + i);
      latencies.push(performance.now() - t);
    }));
  }
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  const figures = { perSecond: latencies.length / seconds, p50: at(0.5), p99: at(0.99) };
  console.log(`${label.padEnd(78)} ${figures.perSecond.toFixed(0).padStart(6)} /s   p50 ${figures.p50.toFixed(1).padStart(7)} ms   p99 ${figures.p99.toFixed(1).padStart(7)} ms`);
  return figures;
}

async function main(): Promise<void> {
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}; Node ${process.version} (OpenSSL ${process.versions.openssl}); ${BURSTS} bursts of ${BURST} concurrent requests per figure`);
  const cluster = await startCluster();
  const dir = await mkdtemp(join(rootfs(), 'tmp', 'qubesec-bench-signatures-'));
  let controller: Awaited<ReturnType<typeof startTestController>> | undefined;
  try {
    const kube = new Kube(cluster.kc);
    await kube.installQubesecCrds();
    for (const name of ['qubesec', 'signed', 'open']) await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    const { privateKey, publicKey } = generateKeyPairSync('ml-dsa-65');
    const key = loadSigningKey(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 'bench.pem');
    await kube.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'signers', namespace: 'qubesec' }, data: { 'bench.pem': publicKey.export({ type: 'spki', format: 'pem' }) as string } });
    await kube.custom.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'signaturepolicies', body: {
      apiVersion: `${GROUP}/${VERSION}`, kind: 'SignaturePolicy', metadata: { name: 'bench' },
      spec: { mode: 'enforce', match: { kinds: [{ apiGroup: 'apps', kind: 'Deployment' }], namespaces: ['signed'] }, trust: { keys: [{ configMapRef: { namespace: 'qubesec', name: 'signers', key: 'bench.pem' } }] } },
    } });

    const pair = await webhookServingPair('ecdsa-p256');
    await writeFile(join(dir, 'webhook.crt'), pair.certificatePem);
    await writeFile(join(dir, 'webhook.key'), pair.keyPem);
    const port = await freePort();
    controller = await startTestController({ kubeconfig: cluster.kubeconfigPath }, [
      '--validating-webhook', `127.0.0.1:${port}`, '--validating-webhook-certificate', join(dir, 'webhook.crt'), '--validating-webhook-key', join(dir, 'webhook.key'),
      '--enable-signatures', 'true', '--controller-namespace', 'qubesec', '--log-level', 'warn',
    ]);
    await kube.apply({
      apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: 'bench-signatures' },
      webhooks: [{
        name: 'verify.signatures.qubesec.io', admissionReviewVersions: ['v1'], sideEffects: 'NoneOnDryRun', failurePolicy: 'Fail', timeoutSeconds: 10,
        clientConfig: { url: `https://127.0.0.1:${port}${VALIDATE_SIGNATURES_PATH}`, caBundle: Buffer.from(pair.caPem).toString('base64') },
        rules: [{ apiGroups: ['apps'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['deployments'] }],
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'signed' } },
      }],
    });

    const total = (BURSTS + 1) * BURST;
    const signed = await Promise.all(Array.from({ length: total }, (_, i) => signObject(deployment('signed', `app-${i}`), key)));
    const open = Array.from({ length: total }, (_, i) => deployment('open', `app-${i}`));
    await eventually(async () => ((await kube.request('POST', '/apis/apps/v1/namespaces/signed/deployments?dryRun=All', deployment('signed', 'probe'))).status === 400 ? true : undefined), 30_000, 'the webhook enforcing');

    // (1) The webhook server alone, as the API server calls it (HTTPS, pooled connections).
    const agent = new Agent({ keepAlive: true, maxSockets: BURST });
    const review = (object: V1Deployment, i: number) => JSON.stringify({
      apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview',
      request: { uid: `u${i}`, kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, namespace: 'signed', name: object.metadata!.name, operation: 'CREATE', userInfo: { username: 'bench' }, object },
    });
    const direct = await bursts('webhook server: AdmissionReview of a signed Deployment, verified (allowed)', async (i) => {
      const reply = await nodeHttps(`https://127.0.0.1:${port}${VALIDATE_SIGNATURES_PATH}`, { method: 'POST', agent, ca: pair.caPem, headers: { 'Content-Type': 'application/json' } }, review(signed[i]!, i));
      if (!(JSON.parse(reply.body) as { response: { allowed: boolean } }).response.allowed) throw new Error(`denied: ${reply.body}`);
    });
    agent.destroy();

    // (2) Through kube-apiserver: dry-run creates, with and without the webhook in the path.
    const create = (namespace: string, object: V1Deployment) => async () => {
      const r = await kube.request('POST', `/apis/apps/v1/namespaces/${namespace}/deployments?dryRun=All`, object);
      if (r.status !== 201) throw new Error(`create refused (${r.status}): ${r.body}`);
    };
    const viaApi = await bursts('kube-apiserver dry-run create, signed Deployment, webhook verifies', (i) => create('signed', signed[i]!)());
    const baseline = await bursts('kube-apiserver dry-run create, Deployment the webhook is not called for', (i) => create('open', open[i]!)());

    const metrics = await controller.metricsText();
    const series = (name: string) => Number(metrics.split('\n').find((l) => l.startsWith(`${name}{mode="enforce"} `))?.split(' ')[1] ?? NaN);
    const [count, sum] = [series('qubesec_signature_verification_seconds_count'), series('qubesec_signature_verification_seconds_sum')];
    console.log(`controller: ${count} verifications, ${(1000 * sum / count).toFixed(2)} ms each on average (qubesec_signature_verification_seconds: canonical form, ML-DSA-65 verify, comparison; includes waiting for the event loop)`);
    console.log(`ratio webhook server alone / through the API server (verifications/s): ${(direct.perSecond / viaApi.perSecond).toFixed(2)}`);
    console.log(`ratio with / without the signature webhook through the API server (p50 latency): ${(viaApi.p50 / baseline.p50).toFixed(2)}x, (requests/s): ${(viaApi.perSecond / baseline.perSecond).toFixed(2)}`);
  } finally {
    await controller?.stop();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
