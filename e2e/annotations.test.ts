// ingress-nginx annotations end to end: a real kube-apiserver + etcd, the controller, NGINX on OpenSSL 3.5 and curl 8.14.
// Each test asserts what a client or a backend observes: the path sent upstream, statuses, headers, TLS groups.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { groupName } from '../controller/model/pq.js';
import type { Issuer } from '../controller/pki/x509.js';
import { startEcho } from './lib/backends.js';
import { pqCurl, type CurlOptions, type CurlResult, type Target } from './lib/clients.js';
import { eventually, freePort, rootfs } from './lib/env.js';
import { startTestController, type TestController } from './lib/harness.js';
import type { Kube } from './lib/kube.js';
import type { TestHost } from './lib/netns.js';
import { caSecret, pqIngress } from './lib/objects.js';
import { startClusterSetup, stopClusterSetup, type ClusterSetup } from './lib/setup.js';
import { mldsaLeaf, mldsaRoot, startTlsBackend } from './lib/tls-backend.js';

const N = 'nginx.ingress.kubernetes.io/';
/** The name in the HTTPS backend's certificate, which proxy-ssl-name must ask for. */
const BACKEND_NAME = 'backend.qubesec.internal';

let setup: ClusterSetup;
let kube: Kube;
let controller: TestController;
let anchors: ClusterSetup['anchors'];
let testHost: TestHost;
/** ML-DSA-65 roots made for this run: one signs the HTTPS backend, one client certificates; the others sign nothing we trust. */
let upstreamCa: Issuer;
let clientCa: Issuer;
let unrelatedCa: Issuer;

const https = (host: string, path = '/'): Target => ({ host, port: controller.httpsPort, path });
const http = (host: string, path = '/'): Target => ({ host, port: controller.httpPort, path, scheme: 'http' });
const trusted = (extra: CurlOptions = {}): CurlOptions => ({ cacert: anchors.mldsa, ...extra });

/**
 * Polls until a request's answer satisfies `accept`: each change reaches NGINX through a sync and a reload. A new
 * worker's answer comes while the old workers still accept for about 100 ms, so the answer must hold again a moment
 * later, when only new workers are left.
 */
const OLD_WORKERS_ACCEPT_MS = 250;
const until = (target: Target, accept: (r: CurlResult) => boolean, options: CurlOptions = trusted()) =>
  eventually(async () => {
    let last = await pqCurl(target, options);
    if (accept(last)) {
      await new Promise((resolve) => setTimeout(resolve, OLD_WORKERS_ACCEPT_MS));
      last = await pqCurl(target, options);
      if (accept(last)) return last;
    }
    throw new Error(`last answer: curl exit ${last.exitCode}, status ${last.status}, body ${last.body.slice(0, 200)}`);
  }, 15_000, `${target.scheme ?? 'https'}://${target.host}${target.path ?? '/'}`);

/** What the echo backend saw; anything but its 200 fails with what came instead. */
function echoed(r: CurlResult): { backend: string; path: string; clientSubjectDn: string | null } {
  if (r.status !== 200) throw new Error(`expected the echo backend's 200, got ${r.status} (curl exit ${r.exitCode}): ${r.body.slice(0, 200)}`);
  return JSON.parse(r.body);
}

const publish = (name: string, port: number) => kube.publishService(name, port, testHost.address);

/**
 * An HTTPS backend that answers with the group and protocol it negotiated ("$ssl_curve $ssl_protocol"). One port offers
 * X25519MLKEM768 and X25519, the other X25519 only. Services tls-hybrid and tls-classical point at them. A third port
 * (Service tls-mtls) asks for a client certificate from the client CA and answers with its subject.
 */
async function startBackends(): Promise<void> {
  const leaf = await mldsaLeaf(anchors.dir, upstreamCa, 'backend', `CN=${BACKEND_NAME}`, 'server', [BACKEND_NAME]);
  const inside = anchors.dir.slice(rootfs().length);
  const [hybridPort, classicalPort, mtlsPort] = [await freePort(), await freePort(), await freePort()];
  await writeFile(join(anchors.dir, 'client-ca.crt'), clientCa.certificatePem);
  const negotiated = '$ssl_curve $ssl_protocol';
  await startTlsBackend(testHost, anchors.dir, 'backend-nginx', leaf, [
    { port: hybridPort, groups: 'X25519MLKEM768:X25519', answer: negotiated },
    { port: classicalPort, groups: 'X25519', answer: negotiated },
    { port: mtlsPort, groups: 'X25519MLKEM768', answer: '$ssl_client_s_dn', directives: `ssl_verify_client on;\n        ssl_client_certificate ${inside}/client-ca.crt;` },
  ]);
  await publish('tls-hybrid', hybridPort);
  await publish('tls-classical', classicalPort);
  await publish('tls-mtls', mtlsPort);
}

async function ingressEvents(name: string) {
  const list = await kube.core.listNamespacedEvent({ namespace: 'default' });
  return list.items.filter((e) => e.involvedObject.kind === 'Ingress' && e.involvedObject.name === name);
}

beforeAll(async () => {
  setup = await startClusterSetup();
  ({ kube, anchors, testHost } = setup);
  [upstreamCa, clientCa, unrelatedCa] = await Promise.all([mldsaRoot('Upstream CA'), mldsaRoot('Client CA'), mldsaRoot('Unrelated CA')]);
  await publish('echo', await startEcho(testHost, 'echo'));
  await startBackends();
  controller = await startTestController({ kubeconfig: setup.cluster.kubeconfigPath });
}, 300_000);

afterAll(() => stopClusterSetup(setup, controller));

describe('ingress-nginx annotations on a real API server, NGINX and curl', () => {
  it('rewrite-target sends the rewritten path upstream, with the query, matching case-insensitively', async () => {
    const host = 'rewrite.pq.example.com';
    await kube.apply(pqIngress('rewrite', host, 'echo', { secrets: ['pq-mldsa'], path: '/app(/|$)(.*)', pathType: 'ImplementationSpecific', annotations: { [`${N}rewrite-target`]: '/$2' } }));
    const r = await until(https(host, '/app/users/42?active=1'), (x) => x.status === 200);
    expect(echoed(r).path).toBe('/users/42?active=1');
    expect(echoed(await pqCurl(https(host, '/app'), trusted())).path).toBe('/');
    expect(echoed(await pqCurl(https(host, '/APP/x'), trusted())).path).toBe('/x');
    expect((await pqCurl(https(host, '/application'), trusted())).status).toBe(404);
  });

  it('redirects: permanent-redirect 301, temporal-redirect 302, app-root 302, ssl-redirect and force-ssl-redirect 308 to HTTPS', async () => {
    const tls = { secrets: ['pq-mldsa'] };
    await kube.apply(pqIngress('moved', 'moved.pq.example.com', 'echo', { ...tls, annotations: { [`${N}permanent-redirect`]: 'https://new.example.com$request_uri' } }));
    await kube.apply(pqIngress('maintenance', 'maintenance.pq.example.com', 'echo', { ...tls, annotations: { [`${N}temporal-redirect`]: 'https://status.example.com/maintenance' } }));
    await kube.apply(pqIngress('app-root', 'approot.pq.example.com', 'echo', { ...tls, annotations: { [`${N}app-root`]: '/dashboard' } }));
    await kube.apply(pqIngress('plain-allowed', 'plain.pq.example.com', 'echo', { ...tls, annotations: { [`${N}ssl-redirect`]: 'false' } }));
    await kube.apply(pqIngress('forced', 'forced.pq.example.com', 'echo', { annotations: { [`${N}force-ssl-redirect`]: 'true' } }));
    await kube.apply(pqIngress('no-tls', 'notls.pq.example.com', 'echo'));

    const moved = await until(https('moved.pq.example.com', '/docs/a?page=2'), (x) => x.status === 301);
    expect(moved.headers.location).toBe('https://new.example.com/docs/a?page=2');
    const maintenance = await until(https('maintenance.pq.example.com', '/any'), (x) => x.status === 302);
    expect(maintenance.headers.location).toBe('https://status.example.com/maintenance');

    const root = await until(https('approot.pq.example.com', '/'), (x) => x.status === 302);
    expect(root.headers.location).toBe('/dashboard');
    expect(echoed(await pqCurl(https('approot.pq.example.com', '/dashboard'), trusted())).path).toBe('/dashboard');

    // Plain HTTP to a TLS host: 308 to the same path on HTTPS, unless ssl-redirect is false. The URL names no port:
    // clients reach HTTPS on 443 (a Service's port), not on the port NGINX listens on (--https-redirect-port's default).
    const toHttps = await pqCurl(http('approot.pq.example.com', '/dashboard?tab=1'));
    expect(toHttps.status).toBe(308);
    expect(toHttps.headers.location).toBe('https://approot.pq.example.com/dashboard?tab=1');
    expect(echoed(await until(http('plain.pq.example.com', '/x'), (x) => x.status === 200, {})).path).toBe('/x');

    // A host without spec.tls is served over plain HTTP, unless force-ssl-redirect sends it to HTTPS (default certificate).
    const forced = await until(http('forced.pq.example.com', '/f?q=1'), (x) => x.status === 308, {});
    expect(forced.headers.location).toBe('https://forced.pq.example.com/f?q=1');
    expect(echoed(await pqCurl(https('forced.pq.example.com', '/f'), { args: ['-k'] })).path).toBe('/f');
    expect((await until(http('notls.pq.example.com'), (x) => x.status === 200, {})).status).toBe(200);
  });

  it('allowlist-source-range and denylist-source-range judge the real client address, also behind SNI routing', async () => {
    // A second TLS policy puts every HTTPS host behind SNI routing, where NGINX learns the client from PROXY protocol.
    await kube.apply(pqIngress('sni-routing', 'strict.pq.example.com', 'echo', { secrets: ['pq-mldsa'], annotations: { 'qubesec.io/pq-mode': 'strict' } }));
    await until(https('strict.pq.example.com'), (x) => x.status === 200);
    expect(await readFile(join(rootfs(), controller.confDir, 'nginx.conf'), 'utf8')).toContain('real_ip_header proxy_protocol;');

    // The client here is 127.0.0.1.
    const tls = { secrets: ['pq-mldsa'], annotations: { [`${N}ssl-redirect`]: 'false' } };
    await kube.apply(pqIngress('outside', 'outside.pq.example.com', 'echo', { ...tls, annotations: { ...tls.annotations, [`${N}allowlist-source-range`]: '198.18.0.0/16, 198.19.0.0/16' } }));
    await kube.apply(pqIngress('inside', 'inside.pq.example.com', 'echo', { ...tls, annotations: { ...tls.annotations, [`${N}whitelist-source-range`]: '198.18.0.0/15, 127.0.0.0/8' } }));
    // Denied before allowed: the allowlist includes the client, the denylist wins.
    await kube.apply(pqIngress('denied', 'denied.pq.example.com', 'echo', { ...tls, annotations: { ...tls.annotations, [`${N}allowlist-source-range`]: '127.0.0.0/8', [`${N}denylist-source-range`]: '127.0.0.1' } }));

    await until(https('outside.pq.example.com'), (x) => x.status === 403);
    await until(https('inside.pq.example.com'), (x) => x.status === 200);
    await until(https('denied.pq.example.com'), (x) => x.status === 403);
    // Plain HTTP reaches NGINX directly, without PROXY protocol: the same answers.
    expect((await pqCurl(http('outside.pq.example.com'))).status).toBe(403);
    expect((await pqCurl(http('inside.pq.example.com'))).status).toBe(200);
    expect((await pqCurl(http('denied.pq.example.com'))).status).toBe(403);
  });

  it('limit-rps lets a burst of rps x limit-burst-multiplier through, then answers 503', async () => {
    const host = 'limited.pq.example.com';
    await kube.apply(pqIngress('limited', host, 'echo', { secrets: ['pq-mldsa'], annotations: { [`${N}limit-rps`]: '2', [`${N}limit-burst-multiplier`]: '3' } }));
    // The readiness requests' excess leaks away at 2 per second; from zero, the burst of 6 passes at once.
    await until(https(host, '/ready'), (x) => x.status === 200);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // 30 requests back to back on one connection, far faster than 2 per second.
    const burst = await pqCurl(https(host, '/burst/[1-30]'), trusted());
    expect(burst.statuses).toHaveLength(30);
    expect(burst.statuses.slice(0, 6)).toEqual([200, 200, 200, 200, 200, 200]);
    const rejected = burst.statuses.filter((s) => s === 503).length;
    expect(rejected).toBeGreaterThan(0);
    expect(burst.statuses.filter((s) => s !== 200 && s !== 503)).toEqual([]);
    process.stdout.write(`limit-rps 2, burst multiplier 3: ${burst.statuses.filter((s) => s === 200).length} of 30 passed, ${rejected} got 503\n`);
  });

  it('CORS: preflights get 204 with the allow headers; allowed origins are echoed, others get no Access-Control-Allow-Origin', async () => {
    const host = 'cors.pq.example.com';
    await kube.apply(pqIngress('cors', host, 'echo', {
      secrets: ['pq-mldsa'],
      annotations: {
        [`${N}enable-cors`]: 'true',
        [`${N}cors-allow-origin`]: 'https://app.example.com, https://*.shop.example.org',
        [`${N}cors-allow-methods`]: 'GET, POST',
        [`${N}cors-allow-headers`]: 'X-Request-Id, Content-Type',
        [`${N}cors-max-age`]: '600',
      },
    }));
    const preflight = await until(https(host, '/api'), (x) => x.status === 204, trusted({ args: ['-X', 'OPTIONS', '-H', 'Origin: https://app.example.com', '-H', 'Access-Control-Request-Method: POST'] }));
    expect(preflight.headers).toEqual(expect.objectContaining({
      'access-control-allow-origin': 'https://app.example.com',
      'access-control-allow-methods': 'GET, POST',
      'access-control-allow-headers': 'X-Request-Id, Content-Type',
      'access-control-allow-credentials': 'true',
      'access-control-max-age': '600',
    }));
    expect(preflight.body).toBe('');

    const allowed = await pqCurl(https(host, '/api'), trusted({ args: ['-H', 'Origin: https://eu.shop.example.org'] }));
    expect(allowed.status).toBe(200);
    expect(echoed(allowed).backend).toBe('echo');
    expect(allowed.headers['access-control-allow-origin']).toBe('https://eu.shop.example.org');
    expect(allowed.headers.vary).toBe('Origin');

    for (const origin of ['https://evil.example.com', 'https://app.example.com.evil.example.com', 'http://app.example.com']) {
      const other = await pqCurl(https(host, '/api'), trusted({ args: ['-H', `Origin: ${origin}`] }));
      expect(other.status).toBe(200);
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
    }
    const otherPreflight = await pqCurl(https(host, '/api'), trusted({ args: ['-X', 'OPTIONS', '-H', 'Origin: https://evil.example.com', '-H', 'Access-Control-Request-Method: POST'] }));
    expect(otherPreflight.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('backend-protocol HTTPS offers the pod hybrid ML-KEM, verifies its ML-DSA certificate, and stays strict in pq-mode strict', async () => {
    await kube.apply(caSecret('upstream-ca', upstreamCa.certificatePem));
    await kube.apply(caSecret('unrelated-ca', unrelatedCa.certificatePem));
    const toPod = (ca: string) => ({ [`${N}backend-protocol`]: 'HTTPS', [`${N}proxy-ssl-secret`]: ca, [`${N}proxy-ssl-verify`]: 'on', [`${N}proxy-ssl-name`]: BACKEND_NAME });
    const tls = { secrets: ['pq-mldsa'] };
    await kube.apply(pqIngress('upstream-pq', 'upstream.pq.example.com', 'tls-hybrid', { ...tls, annotations: toPod('upstream-ca') }));
    await kube.apply(pqIngress('upstream-wrong-ca', 'wrongca.pq.example.com', 'tls-hybrid', { ...tls, annotations: toPod('unrelated-ca') }));
    await kube.apply(pqIngress('upstream-hybrid', 'classical-pod.pq.example.com', 'tls-classical', { ...tls, annotations: toPod('upstream-ca') }));
    await kube.apply(pqIngress('upstream-strict', 'strict-pod.pq.example.com', 'tls-classical', { ...tls, annotations: { ...toPod('upstream-ca'), 'qubesec.io/pq-mode': 'strict' } }));

    const pq = await until(https('upstream.pq.example.com'), (x) => x.status === 200);
    const [group, protocol] = pq.body.trim().split(' ');
    expect(groupName(group!)).toBe('X25519MLKEM768');
    expect(protocol).toBe('TLSv1.3');
    process.stdout.write(`HTTPS backend reported: ${pq.body.trim()}\n`);
    // The same pod, verified against a CA that did not sign it: NGINX refuses the connection.
    await until(https('wrongca.pq.example.com'), (x) => x.status === 502);
    // A pod that only speaks X25519 is reached in hybrid mode, and not in strict mode.
    const classical = await until(https('classical-pod.pq.example.com'), (x) => x.status === 200);
    expect(classical.body.trim().toLowerCase()).toBe('x25519 tlsv1.3');
    await until(https('strict-pod.pq.example.com'), (x) => x.status === 502);

    // Right after a verified (or classical) connection to the same pod, neither a kept-alive connection nor a resumed
    // TLS session may carry it over to a location whose checks it would not pass.
    for (let round = 0; round < 3; round++) {
      expect((await pqCurl(https('upstream.pq.example.com'), trusted())).status).toBe(200);
      expect((await pqCurl(https('wrongca.pq.example.com'), trusted())).status).toBe(502);
      expect((await pqCurl(https('classical-pod.pq.example.com'), trusted())).status).toBe(200);
      expect((await pqCurl(https('strict-pod.pq.example.com'), trusted())).status).toBe(502);
    }
  });

  it('proxy-ssl-secret: NGINX presents its ML-DSA client certificate to a pod that asks for one', async () => {
    await mldsaLeaf(anchors.dir, clientCa, 'ingress-client', 'CN=qubesec-ingress', 'client');
    const [cert, key] = await Promise.all(['crt', 'key'].map((ext) => readFile(join(anchors.dir, `ingress-client.${ext}`), 'utf8')));
    await kube.apply({ apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name: 'upstream-client', namespace: 'default' }, stringData: { 'tls.crt': cert!, 'tls.key': key!, 'ca.crt': upstreamCa.certificatePem } });
    await kube.apply(caSecret('upstream-ca', upstreamCa.certificatePem));
    const toPod = (secret: string) => ({ [`${N}backend-protocol`]: 'HTTPS', [`${N}proxy-ssl-secret`]: secret, [`${N}proxy-ssl-verify`]: 'on', [`${N}proxy-ssl-name`]: BACKEND_NAME });
    await kube.apply(pqIngress('upstream-mtls', 'upstream-mtls.pq.example.com', 'tls-mtls', { secrets: ['pq-mldsa'], annotations: toPod('upstream-client') }));
    await kube.apply(pqIngress('upstream-no-client', 'upstream-nocert.pq.example.com', 'tls-mtls', { secrets: ['pq-mldsa'], annotations: toPod('upstream-ca') }));
    const presented = await until(https('upstream-mtls.pq.example.com'), (x) => x.status === 200);
    expect(presented.body.trim()).toBe('CN=qubesec-ingress');
    // Only ca.crt in the Secret: no client certificate, and the pod refuses the request.
    await until(https('upstream-nocert.pq.example.com'), (x) => x.status === 400);
  });

  it('auth-tls: an ML-DSA client certificate from the CA gets in and its subject reaches the pod; others and forgeries do not', async () => {
    await kube.apply(caSecret('client-ca', clientCa.certificatePem));
    const alice = await mldsaLeaf(anchors.dir, clientCa, 'alice', 'CN=alice,O=QubeSec e2e', 'client');
    const mallory = await mldsaLeaf(anchors.dir, unrelatedCa, 'mallory', 'CN=alice,O=QubeSec e2e', 'client');
    const withCert = (leaf: { cert: string; key: string }, ...args: string[]) => trusted({ args: ['--cert', leaf.cert, '--key', leaf.key, ...args] });
    const forged = ['-H', 'ssl-client-subject-dn: CN=admin,O=QubeSec e2e'];
    await kube.apply(pqIngress('mtls', 'mtls.pq.example.com', 'echo', { secrets: ['pq-mldsa'], annotations: { [`${N}auth-tls-secret`]: 'client-ca', [`${N}auth-tls-verify-client`]: 'on' } }));
    await kube.apply(pqIngress('mtls-optional', 'mtls-optional.pq.example.com', 'echo', { secrets: ['pq-mldsa'], annotations: { [`${N}auth-tls-secret`]: 'default/client-ca', [`${N}auth-tls-verify-client`]: 'optional' } }));

    // Required: no certificate, 400.
    await until(https('mtls.pq.example.com'), (x) => x.status === 400);
    const admitted = await pqCurl(https('mtls.pq.example.com'), withCert(alice, ...forged));
    expect(admitted.status).toBe(200);
    // NGINX writes the subject in RFC 2253 order; the forged header from the same client is replaced.
    expect(echoed(admitted).clientSubjectDn).toBe('O=QubeSec e2e,CN=alice');
    expect((await pqCurl(https('mtls.pq.example.com'), withCert(mallory))).status).toBe(400);

    // Optional: a client without a certificate gets in, and a subject header it forged does not reach the pod.
    const anonymous = await until(https('mtls-optional.pq.example.com'), (x) => x.status === 200, trusted({ args: forged }));
    expect(echoed(anonymous).clientSubjectDn).toBeNull();
    expect(echoed(await pqCurl(https('mtls-optional.pq.example.com'), withCert(alice))).clientSubjectDn).toBe('O=QubeSec e2e,CN=alice');
    expect((await pqCurl(https('mtls-optional.pq.example.com'), withCert(mallory))).status).toBe(400);
  });

  it('refuses a snippet with a Rejected Warning and does not serve the Ingress; reports an unknown annotation once', async () => {
    const host = 'snippet.pq.example.com';
    await kube.apply(pqIngress('snippet', host, 'echo', { secrets: ['pq-mldsa'], annotations: { [`${N}configuration-snippet`]: 'more_set_headers "X-Injected: yes";' } }));
    const rejected = await eventually(async () => (await ingressEvents('snippet')).find((e) => e.reason === 'Rejected'), 15_000, 'Rejected Event');
    expect(rejected.type).toBe('Warning');
    expect(rejected.message).toMatch(new RegExp(`^Ingress default/snippet: annotation ${N}configuration-snippet: snippets are refused`));
    // The Event comes after the sync's configuration is live: the host is still unknown to NGINX.
    expect((await pqCurl(https(host), { args: ['-k'] })).status).toBe(404);
    // Without the snippet the same Ingress is served: the 404 was the refusal.
    await kube.apply(pqIngress('snippet', host, 'echo', { secrets: ['pq-mldsa'] }));
    await until(https(host), (x) => x.status === 200);

    const unknown = `${N}proxy-buffering`;
    for (const path of ['/v1', '/v2', '/v3']) {
      await kube.apply(pqIngress('unknown', 'unknown.pq.example.com', 'echo', { secrets: ['pq-mldsa'], path, annotations: { [unknown]: 'off' } }));
      await until(https('unknown.pq.example.com', path), (x) => x.status === 200);
    }
    // One more sync with a second unknown annotation: once its Event exists, that sync has reported the first one too.
    const second = `${N}proxy-request-buffering`;
    await kube.apply(pqIngress('unknown', 'unknown.pq.example.com', 'echo', { secrets: ['pq-mldsa'], path: '/v3', annotations: { [unknown]: 'off', [second]: 'off' } }));
    await eventually(async () => (await ingressEvents('unknown')).find((e) => e.message?.includes(second)), 15_000, 'second UnknownAnnotation Event');
    const notes = (await ingressEvents('unknown')).filter((e) => e.reason === 'UnknownAnnotation').map((e) => `${e.type} ${e.message}`);
    expect(notes.sort()).toEqual([
      `Warning annotation ${unknown} is not known to QubeSec and has no effect`,
      `Warning annotation ${second} is not known to QubeSec and has no effect`,
    ]);
  });
});
