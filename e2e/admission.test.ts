// The validating admission webhook behind a real kube-apiserver: the API server calls it over TLS (Go's client,
// ECDSA chain), and its verdicts and messages must be the controller's own.
import { rm, mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1ValidatingWebhookConfiguration } from '@kubernetes/client-node';
import { execa } from 'execa';
import { MAX_BODY_BYTES, VALIDATE_GATEWAYS_PATH, VALIDATE_GRPC_ROUTES_PATH, VALIDATE_HTTP_ROUTES_PATH, VALIDATE_INGRESSES_PATH, VALIDATE_TLS_ROUTES_PATH } from '../controller/admission/server.js';
import { gateway, gatewayClass, grpcRoute, grpcRule, httpListener, httpRoute, httpRule, httpsListener, tlsRoute } from '../controller/model/testing.js';
import { startCluster, type TestCluster } from './cluster/cluster.js';
import { legacyHandshake, nodeHttps } from './lib/clients.js';
import { eventually, freePort, gatewayApiCrds, kubeBinary, rootfs } from './lib/env.js';
import { startTestController, type TestController } from './lib/harness.js';
import { Kube } from './lib/kube.js';
import { QUBESEC_CLASS, pqIngress } from './lib/objects.js';
import { webhookServingPair } from './lib/webhook.js';

const WEBHOOK = 'validate.ingress.qubesec.io';
const CONFIGURATION = { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: 'qubesec-e2e' } };
const INGRESSES = '/apis/networking.k8s.io/v1/namespaces/default/ingresses';
const GATEWAY_API = '/apis/gateway.networking.k8s.io/v1/namespaces/default';

let cluster: TestCluster;
let kube: Kube;
let controller: TestController;
let dir: string;
let webhookPort: number;
let pairs: Record<'ecdsa' | 'mldsa', Awaited<ReturnType<typeof webhookServingPair>>>;

/** Registered as docs/admission.md shows, minus matchConditions, so Ingresses of other classes reach it too. */
const webhookConfiguration = (): V1ValidatingWebhookConfiguration => ({
  ...CONFIGURATION,
  webhooks: [{
    name: WEBHOOK,
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    failurePolicy: 'Fail',
    timeoutSeconds: 10,
    // Go's crypto/x509 in the API server verifies the ECDSA chain; ML-DSA is for clients that can.
    clientConfig: { url: `https://127.0.0.1:${webhookPort}${VALIDATE_INGRESSES_PATH}`, caBundle: Buffer.from(pairs.ecdsa.caPem).toString('base64') },
    rules: [{ apiGroups: ['networking.k8s.io'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['ingresses'], scope: 'Namespaced' }],
  }, ...([['httproute', VALIDATE_HTTP_ROUTES_PATH], ['grpcroute', VALIDATE_GRPC_ROUTES_PATH], ['tlsroute', VALIDATE_TLS_ROUTES_PATH], ['gateway', VALIDATE_GATEWAYS_PATH]] as const).map(([kind, path]) => ({
    name: `validate.${kind}.qubesec.io`,
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    failurePolicy: 'Fail',
    timeoutSeconds: 10,
    clientConfig: { url: `https://127.0.0.1:${webhookPort}${path}`, caBundle: Buffer.from(pairs.ecdsa.caPem).toString('base64') },
    rules: [{ apiGroups: ['gateway.networking.k8s.io'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: [`${kind}s`], scope: 'Namespaced' }],
  }))],
});

const bogus = (name: string, className?: string) => pqIngress(name, `${name}.example.com`, 'alpha', { className, annotations: { 'qubesec.io/pq-mode': 'bogus' } });

beforeAll(async () => {
  cluster = await startCluster();
  kube = new Kube(cluster.kc);
  await kube.apply(QUBESEC_CLASS);
  const kubectl = (args: string[]) => execa(kubeBinary('kubectl'), ['--kubeconfig', cluster.kubeconfigPath, ...args]);
  await kubectl(['apply', '--server-side', '-f', gatewayApiCrds()]);
  await kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
  await kube.apply(gatewayClass() as never);
  // Stored before the webhook exists: the controller rejects it with an Event, the message the webhook must repeat.
  await kube.apply(bogus('guarded'));

  pairs = { ecdsa: await webhookServingPair('ecdsa-p256'), mldsa: await webhookServingPair('ml-dsa-65') };
  // Inside the rootfs, so its OpenSSL can read the ML-DSA CA.
  dir = await mkdtemp(join(rootfs(), 'tmp', 'qubesec-webhook-'));
  for (const [name, pair] of Object.entries(pairs)) {
    await writeFile(join(dir, `${name}-ca.crt`), pair.caPem);
    await writeFile(join(dir, `${name}.crt`), pair.certificatePem);
    await writeFile(join(dir, `${name}.key`), pair.keyPem);
  }
  webhookPort = await freePort();
  controller = await startTestController({ kubeconfig: cluster.kubeconfigPath }, [
    '--validating-webhook', `127.0.0.1:${webhookPort}`,
    '--validating-webhook-certificate', `${join(dir, 'mldsa.crt')},${join(dir, 'ecdsa.crt')}`,
    '--validating-webhook-key', `${join(dir, 'mldsa.key')},${join(dir, 'ecdsa.key')}`,
    '--gateway-http-port', '80', '--gateway-https-port', '443',
  ]);

  await kube.apply(webhookConfiguration());
  // The API server picks webhook configurations up asynchronously; a dry-run create shows when ours is called.
  await eventually(async () => (await kube.request('POST', `${INGRESSES}?dryRun=All`, bogus('probe'))).status === 400 || undefined, 30_000, 'webhook called');
}, 300_000);

afterAll(async () => {
  // Each e2e file has its own cluster; deleting it anyway keeps a failed run from blocking Ingress writes.
  await kube?.delete(CONFIGURATION).catch(() => {});
  await controller?.stop();
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the validating admission webhook', () => {
  it('denies through the API server what the controller rejects, with the message of its Rejected Event', async () => {
    const event = await eventually(async () => (await kube.eventNotes('default', 'Ingress', 'guarded')).find((n) => n.startsWith('Rejected: ')));
    expect(event).toBe('Rejected: Ingress default/guarded: annotation qubesec.io/pq-mode: "bogus" is not one of hybrid, strict, classical');
    const expected = `admission webhook "${WEBHOOK}" denied the request: ${event.slice('Rejected: '.length)}`;

    const stored = await kube.request('GET', `${INGRESSES}/guarded`);
    const update = await kube.request('PUT', `${INGRESSES}/guarded`, { ...stored.json, metadata: { ...(stored.json.metadata as object), labels: { touched: 'yes' } } });
    expect([update.status, update.json.message]).toEqual([400, expected]);

    await kube.delete(bogus('guarded'));
    const create = await kube.request('POST', INGRESSES, bogus('guarded'));
    expect([create.status, create.json.message]).toEqual([400, expected]);
  });

  it('judges Gateways, HTTPRoutes, GRPCRoutes and TLSRoutes as the controller would: refused values denied with the field, what is not served yet warned', async () => {
    const gatewayWith = (pqMode: string) => gateway('gw', [httpListener('http'), httpsListener('https', 'pq.example.com', ['pq-mldsa'], { 'qubesec.io/pq-mode': pqMode })]);
    const refused = await eventually(async () => {
      const r = await kube.request('POST', `${GATEWAY_API}/gateways?dryRun=All`, gatewayWith('fast'));
      return r.status === 400 ? r : undefined;
    }, 30_000, 'Gateway webhook called');
    expect(refused.json.message).toBe('admission webhook "validate.gateway.qubesec.io" denied the request: Gateway default/gw: spec.listeners[1].tls.options[qubesec.io/pq-mode]: "fast" is not one of hybrid, strict, classical');
    const stored = await kube.request('POST', `${GATEWAY_API}/gateways`, gatewayWith('strict'));
    expect(stored.status).toBe(201);
    const terminating = await kube.request('POST', `${GATEWAY_API}/gateways?dryRun=All`, gateway('tls', [{ name: 'tls', port: 443, protocol: 'TLS', tls: { mode: 'Terminate', certificateRefs: [{ name: 'pq-mldsa' }] } }]));
    expect([terminating.status, terminating.warnings]).toEqual([201, [expect.stringContaining('spec.listeners[0].tls.mode: a TLS listener serves Passthrough; Terminate (TLSRoute to plain backends) is not supported yet'), 'Gateway default/tls: no listener is valid (tls)']]);

    // The Gateway the controller now holds: a route naming it is judged; the webhook may be a sync behind, so poll.
    // A value the CRD's schema lets through (it checks no regular expression) and the controller refuses.
    const badRoute = httpRoute('bad', { parentRefs: [{ name: 'gw' }], hostnames: ['pq.example.com'], rules: [{ matches: [{ headers: [{ type: 'RegularExpression', name: 'x-canary', value: '(unclosed' }] }], backendRefs: [{ name: 'alpha', port: 80 }] }] });
    const deniedRoute = await eventually(async () => {
      const r = await kube.request('POST', `${GATEWAY_API}/httproutes?dryRun=All`, badRoute);
      return r.status === 400 ? r : undefined;
    }, 30_000, 'HTTPRoute denied');
    expect(deniedRoute.json.message).toMatch(/^admission webhook "validate.httproute.qubesec.io" denied the request: HTTPRoute default\/bad: spec\.rules\[0\]\.matches\[0\]\.headers\[0\]\.value: "\(unclosed" is not a regular expression/);
    // On the HTTP listener (the HTTPS one has no Secret here): allowed, told only that its Service is not there.
    const good = await kube.request('POST', `${GATEWAY_API}/httproutes?dryRun=All`, httpRoute('good', { parentRefs: [{ name: 'gw', sectionName: 'http' }], hostnames: ['pq.example.com'], rules: [httpRule('/', 'alpha')] }));
    expect([good.status, good.warnings]).toEqual([201, ['HTTPRoute default/good: spec.rules[0].backendRefs[0]: Service default/alpha not found (its share of requests answers 500)']]);
    // A GRPCRoute: its regular expression the schema lets through, judged by its own webhook.
    const badCalls = grpcRoute('bad-calls', { parentRefs: [{ name: 'gw', sectionName: 'http' }], hostnames: ['pq.example.com'], rules: [{ matches: [{ method: { type: 'RegularExpression', service: '(unclosed' } }], backendRefs: [{ name: 'alpha', port: 80 }] }] });
    const deniedCalls = await kube.request('POST', `${GATEWAY_API}/grpcroutes?dryRun=All`, badCalls);
    expect([deniedCalls.status, deniedCalls.json.message]).toEqual([400, expect.stringMatching(/^admission webhook "validate.grpcroute.qubesec.io" denied the request: GRPCRoute default\/bad-calls: spec\.rules\[0\]\.matches\[0\]\.method\.service: "\(unclosed" is not a regular expression/)]);
    const goodCalls = await kube.request('POST', `${GATEWAY_API}/grpcroutes?dryRun=All`, grpcRoute('calls', { parentRefs: [{ name: 'gw', sectionName: 'http' }], hostnames: ['rpc.pq.example.com'], rules: [grpcRule('echo.Echo', 'Say', 'alpha')] }));
    expect([goodCalls.status, goodCalls.warnings]).toEqual([201, ['GRPCRoute default/calls: spec.rules[0].backendRefs[0]: Service default/alpha not found (its share of requests answers 500)']]);
    // A TLSRoute, judged by its own webhook: allowed, told that no listener of the Gateway takes it (none is TLS) and
    // that its Service is not there.
    const passing = await kube.request('POST', `${GATEWAY_API}/tlsroutes?dryRun=All`, tlsRoute('db', ['db.pq.example.com'], 'alpha'));
    expect([passing.status, passing.warnings]).toEqual([201, [
      expect.stringMatching(/^TLSRoute default\/db: no listener of Gateway default\/gw allows TLSRoutes from namespace default/),
      'TLSRoute default/db: spec.rules[0].backendRefs[0]: Service default/alpha not found (its share of connections is rejected)',
    ]]);
  });

  it('admits a good Ingress, warning as the controller does, and an Ingress of another class untouched', async () => {
    const good = await kube.request('POST', INGRESSES, pqIngress('admitted', 'admitted.example.com', 'alpha', { annotations: { 'qubesec.io/no-such-thing': 'x' } }));
    expect(good.status).toBe(201);
    expect(good.warnings).toEqual(['annotation qubesec.io/no-such-thing is not known to QubeSec and has no effect']);
    expect(await eventually(async () => (await kube.eventNotes('default', 'Ingress', 'admitted')).find((n) => n.startsWith('UnknownAnnotation: '))))
      .toBe(`UnknownAnnotation: ${good.warnings[0]}`);

    const foreign = await kube.request('POST', INGRESSES, bogus('foreign', 'nginx'));
    expect([foreign.status, foreign.warnings]).toEqual([201, []]);
    expect((foreign.json.metadata as { annotations?: object }).annotations).toEqual({ 'qubesec.io/pq-mode': 'bogus' });
    // It did reach the webhook, which let it through.
    const reviews = controller.logs.filter((l) => l.includes('"admission allowed"')).map((l) => JSON.parse(l) as { review: string });
    expect(reviews.map((r) => r.review)).toContain('CREATE networking.k8s.io/v1/Ingress default/foreign');
  });

  it('negotiates X25519MLKEM768 and serves ML-DSA-65 to PQ clients, ECDSA over X25519 to classical ones', async () => {
    const inRoot = (file: string) => join(dir, file).slice(rootfs().length);
    const pq = await execa('chroot', [rootfs(), 'openssl', 's_client', '-brief', '-groups', 'X25519MLKEM768', '-connect', `127.0.0.1:${webhookPort}`,
      '-CAfile', inRoot('mldsa-ca.crt'), '-verify_ip', '127.0.0.1', '-verify_return_error'], { input: '', reject: false, all: true, timeout: 10_000 });
    expect(pq.all).toMatch(/^Negotiated TLS1\.3 group: X25519MLKEM768$/m);
    expect(pq.all).toMatch(/^Signature type: mldsa65$/m);
    expect(pq.all).toMatch(/^Verification: OK$/m);

    const legacy = await legacyHandshake('qubesec-webhook', webhookPort, join(dir, 'ecdsa-ca.crt'));
    expect(legacy).toEqual(expect.objectContaining({ ok: true, signatureType: 'ECDSA', verification: 'OK' }));
    expect(legacy.serverTempKey).toMatch(/^X25519/);
  });

  it('answers malformed requests with clear HTTP errors, and goes on serving', async () => {
    const call = (body?: string | Buffer, method = 'POST', path = VALIDATE_INGRESSES_PATH, headers: Record<string, string> = {}) =>
      nodeHttps(`https://127.0.0.1:${webhookPort}${path}`, { method, ca: [pairs.ecdsa.caPem, pairs.mldsa.caPem], headers: { 'Content-Type': 'application/json', ...headers } }, body);

    expect(await call('{"apiVersion": ')).toEqual(expect.objectContaining({ status: 400, body: expect.stringMatching(/^request body is not JSON: /) }));
    expect(await call('{"apiVersion": "v1", "kind": "Pod"}')).toEqual(expect.objectContaining({
      status: 400, body: 'request body is not an admission.k8s.io/v1 AdmissionReview (apiVersion and kind)\n',
    }));
    const pod = await call(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u1', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', object: {} } }));
    expect(pod.status).toBe(200);
    expect(JSON.parse(pod.body).response).toEqual(expect.objectContaining({ uid: 'u1', allowed: false }));
    // Too large as declared up front, and as counted while a chunked body streams in.
    const tooLarge = expect.objectContaining({ status: 413, body: `request body exceeds ${MAX_BODY_BYTES} bytes\n` });
    expect(await call(Buffer.alloc(MAX_BODY_BYTES + 1, ' '))).toEqual(tooLarge);
    expect(await call(Buffer.alloc(MAX_BODY_BYTES + 1, ' '), 'POST', VALIDATE_INGRESSES_PATH, { 'Transfer-Encoding': 'chunked' })).toEqual(tooLarge);
    expect((await call(undefined, 'GET')).status).toBe(405);
    expect((await call('{}', 'POST', '/mutate')).status).toBe(404);

    const after = await kube.request('POST', `${INGRESSES}?dryRun=All`, bogus('after'));
    expect(after.json.message).toBe(`admission webhook "${WEBHOOK}" denied the request: Ingress default/after: annotation qubesec.io/pq-mode: "bogus" is not one of hybrid, strict, classical`);
  });

  it('serves a rotated certificate without a restart, and the API server calls it with the new caBundle', async () => {
    const rotated = await webhookServingPair('ecdsa-p256');
    // Key first, then certificate: the moment in between does not check out and is skipped.
    await writeFile(join(dir, 'ecdsa.key'), rotated.keyPem);
    await writeFile(join(dir, 'ecdsa.crt'), rotated.certificatePem);
    await writeFile(join(dir, 'rotated-ca.crt'), rotated.caPem);
    const served = await eventually(async () => {
      const legacy = await legacyHandshake('qubesec-webhook', webhookPort, join(dir, 'rotated-ca.crt'));
      return legacy.verification === 'OK' ? legacy : undefined;
    }, 15_000, 'the rotated certificate served');
    expect(served).toEqual(expect.objectContaining({ ok: true, signatureType: 'ECDSA' }));
    expect(controller.logs.some((line) => line.includes('webhook certificates reloaded'))).toBe(true);

    pairs.ecdsa = rotated;
    await kube.apply(webhookConfiguration());
    const denied = await eventually(async () => {
      const r = await kube.request('POST', `${INGRESSES}?dryRun=All`, bogus('after-rotation'));
      return r.status === 400 ? r : undefined;
    }, 30_000, 'denied through the rotated certificate');
    expect(denied.body).toContain('qubesec.io/pq-mode');
  });
});
