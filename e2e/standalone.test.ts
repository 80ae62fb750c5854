// Standalone mode: the same controller reading a folder of manifests (no API server), real NGINX and curl.
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startEchoBackend, type EchoBackend } from '../controller/cli/echo-backend.js';
import { installTrustAnchors, legacyHandshake, pqCurl, tlsSession } from './lib/clients.js';
import { eventually, freePort, rootfs } from './lib/env.js';
import { startTestController, type TestController } from './lib/harness.js';
import { QUBESEC_CLASS, pqIngress, serviceFor, tlsSecret } from './lib/objects.js';
import { gateway, gatewayClass, httpRoute, httpRule, httpsListener } from '../controller/model/testing.js';

let dir: string;
let controller: TestController;
let anchors: Awaited<ReturnType<typeof installTrustAnchors>>;
const backends: EchoBackend[] = [];

const write = (file: string, ...objects: object[]) => writeFile(join(dir, file), objects.map((o) => stringify(o)).join('---\n'));
const https = (host: string, path = '/') => ({ host, port: controller.httpsPort, path });
const answer = (host: string, accept: (r: Awaited<ReturnType<typeof pqCurl>>) => boolean, path = '/', curl: Parameters<typeof pqCurl>[1] = {}) =>
  eventually(async () => {
    const r = await pqCurl(https(host, path), { cacert: anchors.mldsa, ...curl });
    if (accept(r)) return r;
    throw new Error(`last answer: curl exit ${r.exitCode}, status ${r.status}, body ${r.body.slice(0, 200)}`);
  }, 15_000, `${host}${path}`);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qubesec-manifests-'));
  anchors = await installTrustAnchors();
  for (const name of ['one', 'two']) {
    const port = await freePort();
    backends.push(await startEchoBackend(name, port));
    const { service, slice } = serviceFor(name, port, '127.0.0.1');
    await write(`${name}-service.yaml`, service, slice);
  }
  await write('class.yaml', { ...QUBESEC_CLASS, metadata: { name: 'qubesec', annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' } } });
  await write('secrets.yaml', tlsSecret('pq-mldsa', 'mldsa65'), tlsSecret('pq-ecdsa', 'ecdsa'));
  await write('web.yaml', pqIngress('web', 'web.pq.example.com', 'one', { secrets: ['pq-mldsa', 'pq-ecdsa'], path: '/app' }));
  controller = await startTestController({ manifests: dir });
}, 120_000);

afterAll(async () => {
  await controller?.stop();
  for (const b of backends) b.close();
  await rm(dir, { recursive: true, force: true });
  if (anchors) await rm(anchors.dir, { recursive: true, force: true });
});

describe('QubeSec in standalone mode (a folder of manifests)', () => {
  it('serves ML-DSA over X25519MLKEM768 to PQ clients and ECDSA to legacy clients', async () => {
    const r = await answer('web.pq.example.com', (x) => x.status === 200, '/app/x');
    expect([r.group, r.signature]).toEqual(['X25519MLKEM768', 'id-ml-dsa-65']);
    expect(JSON.parse(r.body)).toEqual(expect.objectContaining({ backend: 'one', path: '/app/x' }));
    // Prefix /app is element-wise: /application is not under it.
    expect((await pqCurl(https('web.pq.example.com', '/application'), { cacert: anchors.mldsa })).status).toBe(404);
    const legacy = await legacyHandshake('web.pq.example.com', controller.httpsPort, anchors.hostEcdsa);
    expect([legacy.ok, legacy.signatureType]).toEqual([true, 'ECDSA']);
  });

  it('follows edits to a manifest file, and its removal', async () => {
    await write('web.yaml', pqIngress('web', 'web.pq.example.com', 'two', { secrets: ['pq-mldsa', 'pq-ecdsa'], path: '/v2' }));
    await answer('web.pq.example.com', (x) => x.status === 200 && JSON.parse(x.body).backend === 'two', '/v2');
    expect((await pqCurl(https('web.pq.example.com', '/app/x'), { cacert: anchors.mldsa })).status).toBe(404);

    await write('strict.yaml', pqIngress('strict', 'strict.pq.example.com', 'one', { secrets: ['pq-mldsa'], annotations: { 'qubesec.io/pq-mode': 'strict' } }));
    await answer('strict.pq.example.com', (x) => x.status === 200);
    expect((await pqCurl(https('strict.pq.example.com'), { cacert: anchors.mldsa, curves: 'X25519' })).exitCode).not.toBe(0);
    await unlink(join(dir, 'strict.yaml'));
    await eventually(async () => ((await pqCurl(https('strict.pq.example.com'), { args: ['-k'] })).status === 404 || undefined), 15_000, 'removal');
  });

  it('serves an Ingress without a class when the QubeSec IngressClass is the default', async () => {
    const classless = pqIngress('classless', 'classless.pq.example.com', 'one', { secrets: ['pq-mldsa'] });
    delete classless.spec!.ingressClassName;
    await write('classless.yaml', classless);
    await answer('classless.pq.example.com', (x) => x.status === 200);
  });

  it('keeps serving the last good version when a file stops parsing or an annotation is bad, and logs why', async () => {
    await writeFile(join(dir, 'web.yaml'), 'kind: Ingress\nmetadata: {name: web\n  oops: [');
    await eventually(async () => controller.logs.find((l) => l.includes('manifest does not parse')), 10_000, 'parse error logged');
    expect(JSON.parse((await answer('web.pq.example.com', (x) => x.status === 200, '/v2')).body).backend).toBe('two');

    await write('web.yaml', pqIngress('web', 'web.pq.example.com', 'one', { secrets: ['pq-mldsa'], path: '/v3', annotations: { 'qubesec.io/tls-groups': 'X25519MLKEM768:FrodoKEM' } }));
    const event = await eventually(async () => controller.logs.find((l) => l.includes('"event":"Rejected"')), 10_000, 'rejection logged');
    expect(JSON.parse(event)).toEqual(expect.objectContaining({
      object: 'Ingress default/web',
      message: expect.stringMatching(/^Ingress default\/web: annotation qubesec\.io\/tls-groups: group "FrodoKEM" is not supported by the data plane \(OpenSSL 3\.\d+\.\d+\)$/),
    }));
    expect(JSON.parse((await pqCurl(https('web.pq.example.com', '/v2'), { cacert: anchors.mldsa })).body).backend).toBe('two');
    expect((await pqCurl(https('web.pq.example.com', '/v3'), { cacert: anchors.mldsa })).status).toBe(404);
  });

  it('refuses, object by object, the names and paths the API server refuses, and keeps a refused object\'s last good version', async () => {
    const good = pqIngress('names-good', 'names-good.pq.example.com', 'one', { secrets: ['pq-mldsa'] });
    const badName = pqIngress('names bad', 'names-bad.pq.example.com', 'one', { secrets: ['pq-mldsa'], annotations: { 'nginx.ingress.kubernetes.io/limit-rps': '10' } });
    const traversal = pqIngress('names-traversal', 'names-traversal.pq.example.com', 'one', { secrets: ['pq-mldsa'], path: '/a/../b' });
    await write('names.yaml', good, badName, traversal, { apiVersion: 'v1', kind: 'K'.repeat(100_000), metadata: { name: 'x' } });
    await answer('names-good.pq.example.com', (x) => x.status === 200);
    const refused = await eventually(async () => controller.logs.find((l) => l.includes('manifest object refused')), 10_000, 'refusal logged');
    expect(JSON.parse(refused)).toEqual(expect.objectContaining({ file: 'names.yaml', document: 1, error: 'metadata.name: "names bad" is not a valid object name (RFC 1123 subdomain)' }));
    const rejected = await eventually(async () => controller.logs.find((l) => l.includes('names-traversal: spec.rules')), 10_000, 'path rejection logged');
    expect(JSON.parse(rejected).message).toBe('Ingress default/names-traversal: spec.rules[0].http.paths[0].path: "/a/../b" must not contain "/../" (pathType Exact or Prefix)');
    expect((await pqCurl(https('names-bad.pq.example.com'), { args: ['-k'] })).status).toBe(404);
    const ignored = controller.logs.find((l) => l.includes('not a kind QubeSec reads') && l.includes('"file":"names.yaml"'));
    expect(JSON.parse(ignored!).kind).toBe(`${'K'.repeat(77)}...`);
    expect((await pqCurl(https('names-traversal.pq.example.com', '/b'), { args: ['-k'] })).status).toBe(404);

    // The good one is renamed to a name the API server would refuse: like a refused write, its served version stays.
    await write('names.yaml', { ...good, metadata: { ...good.metadata, name: 'Names-Good' } }, badName, traversal);
    await eventually(async () => controller.logs.find((l) => l.includes('keeping its previous version') && l.includes('Names-Good')), 10_000, 'kept');
    expect((await answer('names-good.pq.example.com', (x) => x.status === 200)).status).toBe(200);
  });

  it('serves a new manifest though another one holds an Ingress NGINX refuses, and logs that refusal once', async () => {
    // JavaScript compiles this regex (translation passes it); PCRE2 does not know the property.
    await write('pcre.yaml', pqIngress('pcre', 'pcre.pq.example.com', 'one', { secrets: ['pq-mldsa'], path: '/x\\p{Nope}', pathType: 'ImplementationSpecific', annotations: { 'nginx.ingress.kubernetes.io/use-regex': 'true' } }));
    const refusals = () => controller.logs.filter((l) => l.includes('"event":"RefusedByNginx"'));
    await eventually(async () => refusals().length > 0 || undefined, 10_000, 'refusal logged');
    expect(JSON.parse(refusals()[0]!)).toEqual(expect.objectContaining({ object: 'Ingress default/pcre', message: expect.stringContaining('pcre2_compile() failed: unknown property') }));

    await write('after.yaml', pqIngress('after', 'after.pq.example.com', 'two', { secrets: ['pq-mldsa'] }));
    expect(JSON.parse((await answer('after.pq.example.com', (x) => x.status === 200)).body).backend).toBe('two');
    expect(refusals()).toHaveLength(1);
    await unlink(join(dir, 'pcre.yaml'));
  });

  it('resumes TLS sessions after NGINX restarts, with ticket keys it generates and keeps in memory', async () => {
    const session = `${anchors.dir.slice(rootfs().length)}/web.session`;
    await answer('web.pq.example.com', (x) => x.status === 200, '/v2');
    expect(await tlsSession('web.pq.example.com', controller.httpsPort, { save: session })).toMatchObject({ reused: false, peerSignature: 'mldsa65' });
    // NGINX's own keys would survive a reload (it keeps them in the shared session cache), not a restart.
    process.kill(controller.applier.nginx.pid!, 'SIGKILL');
    await eventually(async () => /^qubesec_nginx_restarts_total 1$/m.test(await controller.metricsText()) || undefined, 15_000, 'NGINX restarted');
    await answer('web.pq.example.com', (x) => x.status === 200, '/v2');
    expect(await tlsSession('web.pq.example.com', controller.httpsPort, { offer: session })).toMatchObject({ reused: true, group: 'X25519MLKEM768', peerSignature: '' });
  });

  it('serves an HTTPRoute of a Gateway from the folder, and fails a route whose fields are not of the schema alone', async () => {
    const listener = { ...httpsListener('https', '*.pq.example.com', ['pq-mldsa', 'pq-ecdsa']), port: controller.httpsPort };
    await write('gateway.yaml', gatewayClass(), gateway('gw', [listener]),
      httpRoute('shop', { hostnames: ['shop.pq.example.com'], rules: [httpRule('/', 'two')] }),
      httpRoute('broken', { hostnames: ['broken.pq.example.com'], rules: 'not a list' as never }));
    const r = await answer('shop.pq.example.com', (x) => x.status === 200);
    expect([r.group, r.signature]).toEqual(['X25519MLKEM768', 'id-ml-dsa-65']);
    expect(JSON.parse(r.body)).toEqual(expect.objectContaining({ backend: 'two' }));
    const legacy = await legacyHandshake('shop.pq.example.com', controller.httpsPort, anchors.hostEcdsa);
    expect([legacy.ok, legacy.signatureType]).toEqual([true, 'ECDSA']);
    await eventually(async () => controller.logs.some((l) => l.includes('HTTPRoute default/broken: its fields do not follow the Gateway API schema')) || undefined, 15_000, 'Invalid logged');
    // The Ingress from another file still serves.
    await answer('web.pq.example.com', (x) => x.status === 200, '/v2');
  });
});
