// Gateway API through the whole pipeline: the pinned standard CRDs on a real kube-apiserver, the controller's sources,
// translation and status writer, real NGINX on OpenSSL 3.5, real curl (PQ) and OpenSSL 3.0 s_client (legacy).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { parseAllDocuments } from 'yaml';
import type { Gateway, HTTPRoute } from '../controller/model/gateway-api.js';
import { groupName } from '../controller/model/pq.js';
import { backendTlsPolicy, caConfigMap, gateway, gatewayClass, grpcRoute, grpcRule, httpListener, httpRoute, httpRule, httpsListener, tlsListener, tlsRoute } from '../controller/model/testing.js';
import type { WrittenCondition } from '../controller/status/gateway.js';
import type { TestCluster } from './cluster/cluster.js';
import { startEcho } from './lib/backends.js';
import { legacyHandshake, pqCurl } from './lib/clients.js';
import { eventually, freePort, gatewayApiCrds, kubeBinary, rootfs } from './lib/env.js';
import { startTestController, type TestController } from './lib/harness.js';
import type { Kube } from './lib/kube.js';
import type { TestHost } from './lib/netns.js';
import { pqIngress, tlsSecret } from './lib/objects.js';
import { QUBESEC_MAIN } from './lib/qrng-service.js';
import { startClusterSetup, stopClusterSetup, type ClusterSetup } from './lib/setup.js';
import { mldsaLeaf, mldsaRoot, startTlsBackend } from './lib/tls-backend.js';

const PUBLISHED = '198.18.0.10';
/** The name in the HTTPS pod's certificate, which its BackendTLSPolicy asks for. */
const POD_NAME = 'pods.qubesec.internal';

let setup: ClusterSetup;
let cluster: TestCluster;
let kube: Kube;
let controller: TestController;
let anchors: ClusterSetup['anchors'];
let testHost: TestHost;

async function kubectl(args: string[]) {
  const result = await execa(kubeBinary('kubectl'), ['--kubeconfig', cluster.kubeconfigPath, ...args], { reject: false });
  if (result.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function backend(name: string): Promise<void> {
  await kube.publishService(name, await startEcho(testHost, name), testHost.address);
}

// Listeners name 80 and 443, the ports clients reach (--gateway-http-port, --gateway-https-port below); NGINX listens on
// the test's free ports.
const target = (host: string, path = '/') => ({ host, port: controller.httpsPort, path });

/** Polls until PQ curl (ML-DSA anchor) gets an answer `accept` takes. */
const served = (host: string, accept: (r: Awaited<ReturnType<typeof pqCurl>>) => boolean, path = '/') =>
  eventually(async () => {
    const r = await pqCurl(target(host, path), { cacert: anchors.mldsa });
    if (accept(r)) return r;
    throw new Error(`last answer: curl exit ${r.exitCode}, status ${r.status}, body ${r.body.slice(0, 200)}`);
  }, 20_000, `${host}${path}`);
/** A host no route serves: the catch-all server (its default certificate, which curl is told not to verify) answers 404. */
const notServed = (host: string) =>
  eventually(async () => {
    const r = await pqCurl(target(host), { args: ['-k'] });
    if (r.status === 404) return r;
    throw new Error(`last answer: curl exit ${r.exitCode}, status ${r.status}, body ${r.body.slice(0, 200)}`);
  }, 20_000, `${host} not served`);

async function status<T>(resource: string, name: string, namespace = 'default'): Promise<T> {
  return JSON.parse(await kubectl(['get', resource, name, '-o', 'json', ...(resource === 'gatewayclass' ? [] : ['-n', namespace])])).status as T;
}
const summary = (conditions: WrittenCondition[] = []) => Object.fromEntries(conditions.map((c) => [c.type, `${c.status}/${c.reason}`]));
type GatewayStatus = { addresses?: { type: string; value: string }[]; conditions?: WrittenCondition[]; listeners?: { name: string; attachedRoutes: number; supportedKinds: { kind: string }[]; conditions: WrittenCondition[] }[] };
/** A route's parents, once it has any: each as [Gateway name, conditions as type -> status/reason]. */
async function parentsOf(resource: string, name: string) {
  const s = await eventually(async () => {
    const held = await status<RouteStatus>(resource, name);
    return held?.parents?.length ? held : undefined;
  }, 20_000, `${resource} ${name} status`);
  return s.parents!.map((p) => [p.parentRef.name, summary(p.conditions)]);
}
type PolicyStatus = { ancestors?: { controllerName: string; ancestorRef: { kind: string; name: string }; conditions: WrittenCondition[] }[] };
type RouteStatus = { parents?: { controllerName: string; parentRef: { name: string }; conditions: WrittenCondition[] }[] };

beforeAll(async () => {
  setup = await startClusterSetup();
  ({ cluster, kube, anchors, testHost } = setup);
  await kubectl(['apply', '--server-side', '-f', gatewayApiCrds()]);
  await kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
  await kube.apply(tlsSecret('pq-ecdsa', 'ecdsa'));
  for (const name of ['alpha', 'beta']) await backend(name);
  controller = await startTestController({ kubeconfig: cluster.kubeconfigPath }, ['--publish-status-address', PUBLISHED, '--election-ttl', '15s', '--gateway-http-port', '80', '--gateway-https-port', '443']);
  await kube.apply(gatewayClass() as never);
}, 300_000);

afterAll(() => stopClusterSetup(setup, controller));

describe('Gateway API on a real API server', () => {
  it('serves an HTTPRoute on an HTTPS listener: ML-DSA over X25519MLKEM768 to PQ curl, ECDSA to legacy clients; statuses as the spec says', async () => {
    const gw: Gateway = gateway('gw', [httpListener('http'), httpsListener('https', '*.pq.example.com', ['pq-mldsa', 'pq-ecdsa'])]);
    await kube.apply(gw as never);
    await kube.apply(httpRoute('web', { parentRefs: [{ name: 'gw' }], hostnames: ['web.pq.example.com'], rules: [httpRule('/', 'alpha')] }) as never);

    const r = await served('web.pq.example.com', (x) => x.status === 200);
    expect(r.group).toBe('X25519MLKEM768');
    expect(r.signature).toBe('id-ml-dsa-65');
    expect(JSON.parse(r.body)).toEqual(expect.objectContaining({ backend: 'alpha', host: 'web.pq.example.com' }));
    const legacy = await legacyHandshake('web.pq.example.com', controller.httpsPort, anchors.hostEcdsa);
    expect(legacy).toEqual(expect.objectContaining({ ok: true, signatureType: 'ECDSA', verification: 'OK' }));
    // The HTTP listener serves the route too (plain), and a host no route names is the catch-all's 404.
    expect((await pqCurl({ host: 'web.pq.example.com', port: controller.httpPort, scheme: 'http' })).status).toBe(200);

    const classStatus = await eventually(async () => {
      const s = await status<{ conditions?: WrittenCondition[] }>('gatewayclass', 'qubesec');
      return s?.conditions?.length ? s : undefined;
    }, 20_000, 'GatewayClass status');
    expect(summary(classStatus.conditions)).toEqual({ Accepted: 'True/Accepted' });
    const gwStatus = await eventually(async () => {
      const s = await status<GatewayStatus>('gateway', 'gw');
      return summary(s?.conditions).Programmed === 'True/Programmed' ? s : undefined;
    }, 20_000, 'Gateway Programmed');
    expect(summary(gwStatus.conditions)).toEqual({ Accepted: 'True/Accepted', Programmed: 'True/Programmed' });
    expect(gwStatus.addresses).toEqual([{ type: 'IPAddress', value: PUBLISHED }]);
    expect(gwStatus.listeners?.map((l) => [l.name, l.attachedRoutes, summary(l.conditions)])).toEqual([
      ['http', 1, { Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs', Conflicted: 'False/NoConflicts', Programmed: 'True/Programmed' }],
      ['https', 1, { Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs', Conflicted: 'False/NoConflicts', Programmed: 'True/Programmed' }],
    ]);
    const routeStatus = await eventually(async () => {
      const s = await status<RouteStatus>('httproute', 'web');
      return s?.parents?.length ? s : undefined;
    }, 20_000, 'HTTPRoute status');
    expect(routeStatus.parents?.map((p) => [p.controllerName, p.parentRef.name, summary(p.conditions)])).toEqual([
      ['qubesec.io/gateway-controller', 'gw', { Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' }],
    ]);
    const observed = routeStatus.parents![0]!.conditions.map((c) => c.observedGeneration);
    expect(observed).toEqual([1, 1]);
  });

  it('refuses classical clients on a strict listener (tls.options qubesec.io/pq-mode), and fails a listener with a bad option alone', async () => {
    await kube.apply(gateway('strict', [
      httpsListener('strict', 'strict.pq.example.com', ['pq-mldsa'], { 'qubesec.io/pq-mode': 'strict' }),
      httpsListener('bad', 'bad.pq.example.com', ['pq-mldsa'], { 'qubesec.io/pq-mode': 'fast' }),
    ]) as never);
    await kube.apply(httpRoute('strict', { parentRefs: [{ name: 'strict' }], hostnames: ['strict.pq.example.com', 'bad.pq.example.com'], rules: [httpRule('/', 'beta')] }) as never);
    const pq = await served('strict.pq.example.com', (x) => x.status === 200 && JSON.parse(x.body).backend === 'beta');
    expect(pq.group).toBe('X25519MLKEM768');
    const classical = await pqCurl(target('strict.pq.example.com'), { cacert: anchors.mldsa, curves: 'X25519:secp256r1' });
    expect(classical.exitCode).not.toBe(0);
    // The earlier hybrid route still takes classical clients.
    expect((await pqCurl(target('web.pq.example.com'), { cacert: anchors.mldsa, curves: 'X25519' })).status).toBe(200);

    const gwStatus = await eventually(async () => {
      const s = await status<GatewayStatus>('gateway', 'strict');
      return s?.listeners?.length === 2 ? s : undefined;
    }, 20_000, 'strict Gateway status');
    const bad = gwStatus.listeners!.find((l) => l.name === 'bad')!;
    expect(summary(bad.conditions)).toMatchObject({ Accepted: 'False/UnsupportedValue', Programmed: 'False/Invalid' });
    expect(bad.conditions.find((c) => c.type === 'Accepted')?.message).toContain('spec.listeners[1].tls.options[qubesec.io/pq-mode]: "fast"');
    expect(summary(gwStatus.conditions)).toMatchObject({ Accepted: 'True/ListenersNotValid' });
    // The bad listener's host is not served by this route.
    await notServed('bad.pq.example.com');
  });

  it('says BackendNotFound for a missing Service and serves it once it exists; a deleted route stops being served', async () => {
    const route: HTTPRoute = httpRoute('later', { parentRefs: [{ name: 'gw', sectionName: 'https' }], hostnames: ['later.pq.example.com'], rules: [httpRule('/', 'gamma')] });
    await kube.apply(route as never);
    // An invalid backendRef's share answers 500 (the spec), not the 503 of a Service with no ready endpoint.
    await served('later.pq.example.com', (x) => x.status === 500);
    const missing = await eventually(async () => {
      const s = await status<RouteStatus>('httproute', 'later');
      return s?.parents?.length ? s : undefined;
    }, 20_000, 'later status');
    expect(summary(missing.parents![0]!.conditions)).toEqual({ Accepted: 'True/Accepted', ResolvedRefs: 'False/BackendNotFound' });

    await backend('gamma');
    await served('later.pq.example.com', (x) => x.status === 200 && JSON.parse(x.body).backend === 'gamma');
    await eventually(async () => (summary((await status<RouteStatus>('httproute', 'later')).parents?.[0]?.conditions).ResolvedRefs === 'True/ResolvedRefs' || undefined), 20_000, 'ResolvedRefs True');
    // sectionName https: the HTTP listener does not take this route; plain HTTP to its host is redirected to HTTPS.
    expect((await pqCurl({ host: 'later.pq.example.com', port: controller.httpPort, scheme: 'http' })).status).toBe(308);

    await kubectl(['delete', 'httproute', 'later']);
    await notServed('later.pq.example.com');
    await eventually(async () => {
      const s = await status<GatewayStatus>('gateway', 'gw');
      return s.listeners?.find((l) => l.name === 'https')?.attachedRoutes === 1 || undefined;
    }, 20_000, 'attachedRoutes back to 1');
  });

  it('chooses by header, query parameter and method, splits by weight, edits request and response headers, and answers 500 for a refused backendRef, in NGINX', async () => {
    const rules = [
      { matches: [{ path: { value: '/' }, headers: [{ name: 'X-Version', value: 'beta' }] }], backendRefs: [{ name: 'beta', port: 80 }], filters: [
        { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Env', value: 'canary' }], add: [{ name: 'X-Trace', value: 'gateway' }], remove: ['X-Drop'] } },
        { type: 'ResponseHeaderModifier', responseHeaderModifier: { add: [{ name: 'X-Served-By', value: 'beta-rule' }] } },
      ] },
      { matches: [{ path: { value: '/' }, queryParams: [{ name: 'to', value: 'beta' }] }], backendRefs: [{ name: 'beta', port: 80 }] },
      { matches: [{ path: { value: '/' }, method: 'POST' }], backendRefs: [{ name: 'beta', port: 80 }] },
      { matches: [{ path: { type: 'Exact', value: '/split' } }], backendRefs: [{ name: 'alpha', port: 80, weight: 3 }, { name: 'beta', port: 80, weight: 1 }] },
      { matches: [{ path: { type: 'Exact', value: '/refused' } }], backendRefs: [{ group: 'example.com', kind: 'Bucket', name: 'assets' }] },
      httpRule('/', 'alpha'),
    ];
    await kube.apply(httpRoute('match', { parentRefs: [{ name: 'gw', sectionName: 'https' }], hostnames: ['match.pq.example.com'], rules: rules as never }) as never);
    const host = 'match.pq.example.com';
    await served(host, (x) => x.status === 200);
    const ask = async (path: string, args: string[] = []) => {
      const r = await pqCurl(target(host, path), { cacert: anchors.mldsa, args });
      expect(r.status).toBe(200);
      return { backend: JSON.parse(r.body).backend as string, headers: JSON.parse(r.body).headers as Record<string, string>, response: r.headers };
    };
    expect((await ask('/')).backend).toBe('alpha');
    expect((await ask('/', ['-H', 'X-Version: other'])).backend).toBe('alpha');
    const byHeader = await ask('/', ['-H', 'x-version: beta', '-H', 'X-Trace: client', '-H', 'X-Drop: secret']);
    expect(byHeader.backend).toBe('beta');
    expect(byHeader.headers).toEqual(expect.objectContaining({ 'x-env': 'canary', 'x-trace': 'client,gateway' }));
    expect(byHeader.headers['x-drop']).toBeUndefined();
    expect(byHeader.response['x-served-by']).toBe('beta-rule');
    expect((await ask('/')).response['x-served-by']).toBeUndefined();
    expect((await ask('/items?to=beta')).backend).toBe('beta');
    expect((await ask('/items?to=alpha')).backend).toBe('alpha');
    expect((await ask('/', ['-X', 'POST'])).backend).toBe('beta');
    // A backendRef of another kind: the spec's 500, and ResolvedRefs False InvalidKind below.
    expect((await pqCurl(target(host, '/refused'), { cacert: anchors.mldsa })).status).toBe(500);

    // 3:1 over 200 requests: 150 expected, 25 (four standard deviations) either way allowed.
    const counts: Record<string, number> = {};
    for (let i = 0; i < 200; i++) {
      const { backend: chosen } = await ask('/split');
      counts[chosen] = (counts[chosen] ?? 0) + 1;
    }
    expect(Object.keys(counts).sort()).toEqual(['alpha', 'beta']);
    expect(counts.alpha).toBeGreaterThanOrEqual(125);
    expect(counts.alpha).toBeLessThanOrEqual(175);
    await eventually(async () => (summary((await status<RouteStatus>('httproute', 'match')).parents?.[0]?.conditions).Accepted === 'True/Accepted' || undefined), 20_000, 'match Accepted');
    expect(summary((await status<RouteStatus>('httproute', 'match')).parents?.[0]?.conditions)).toEqual({ Accepted: 'True/Accepted', ResolvedRefs: 'False/InvalidKind' });
  });

  it('rewrites the path (a prefix, the whole path) and the Host sent upstream, times out a slow backend with 504, and redirects as asked per request', async () => {
    const host = 'rewrite.pq.example.com';
    const rewriteTo = (urlRewrite: object) => [{ type: 'URLRewrite', urlRewrite }];
    await kube.apply(httpRoute('rewrite', { parentRefs: [{ name: 'gw', sectionName: 'https' }], hostnames: [host], rules: [
      { matches: [{ path: { value: '/strip' } }], filters: rewriteTo({ path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } }), backendRefs: [{ name: 'alpha', port: 80 }] },
      { matches: [{ path: { value: '/v1' } }], filters: rewriteTo({ hostname: 'internal.example.com', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v2' } }), backendRefs: [{ name: 'alpha', port: 80 }] },
      { matches: [{ path: { type: 'Exact', value: '/old' } }], filters: rewriteTo({ path: { type: 'ReplaceFullPath', replaceFullPath: '/new' } }), backendRefs: [{ name: 'alpha', port: 80 }] },
      { matches: [{ path: { value: '/slow' } }], timeouts: { request: '500ms' }, backendRefs: [{ name: 'alpha', port: 80 }] },
      { matches: [{ path: { value: '/moved' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' }, statusCode: 301 } }] },
      { matches: [{ path: { type: 'Exact', value: '/old' }, headers: [{ name: 'X-Move', value: '1' }] }], filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'elsewhere.example.com' } }] },
      { matches: [{ path: { type: 'Exact', value: '/go' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'plain.example.com' } }] },
      { matches: [{ path: { type: 'Exact', value: '/go' }, headers: [{ name: 'X-Stay', value: '1' }] }], backendRefs: [{ name: 'alpha', port: 80 }] },
    ] as never }) as never);
    await served(host, (x) => x.status === 200, '/old');
    const echoed = async (path: string) => {
      const r = await pqCurl(target(host, path), { cacert: anchors.mldsa });
      expect(r.status).toBe(200);
      return JSON.parse(r.body) as { path: string; host: string };
    };
    expect(await echoed('/strip/three?x=1')).toEqual(expect.objectContaining({ path: '/three?x=1', host }));
    expect((await echoed('/strip')).path).toBe('/');
    expect(await echoed('/v1/items')).toEqual(expect.objectContaining({ path: '/v2/items', host: 'internal.example.com' }));
    expect((await echoed('/old?q=2')).path).toBe('/new?q=2');
    expect((await echoed('/slow?delay-ms=10')).path).toBe('/slow?delay-ms=10');
    const slow = await pqCurl(target(host, '/slow?delay-ms=1500'), { cacert: anchors.mldsa });
    expect(slow.status).toBe(504);
    // Redirects the data plane builds per request: the matched prefix replaced, or one branch among a path's matches.
    const location = async (path: string, args: string[] = []) => {
      const r = await pqCurl(target(host, path), { cacert: anchors.mldsa, args });
      return `${r.status} ${r.headers.location ?? ''}`;
    };
    expect(await location('/moved/a/b?x=1')).toBe(`301 https://${host}/new/a/b?x=1`);
    expect(await location('/moved')).toBe(`301 https://${host}/new`);
    expect(await location('/old', ['-H', 'X-Move: 1'])).toBe('302 https://elsewhere.example.com/old');
    // A plain redirect sharing its path with a header match: the match first, the redirect for the rest.
    expect(await location('/go?q=1')).toBe('302 https://plain.example.com/go?q=1');
    const stayed = await pqCurl(target(host, '/go'), { cacert: anchors.mldsa, args: ['-H', 'X-Stay: 1'] });
    expect([stayed.status, JSON.parse(stayed.body).backend]).toEqual([200, 'alpha']);
    await eventually(async () => (summary((await status<RouteStatus>('httproute', 'rewrite')).parents?.[0]?.conditions).Accepted === 'True/Accepted' || undefined), 20_000, 'rewrite Accepted');
    expect(summary((await status<RouteStatus>('httproute', 'rewrite')).parents?.[0]?.conditions)).toEqual({ Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' });
  });

  it('serves a GRPCRoute: calls by service, method and header over h2 with ML-DSA and X25519MLKEM768, h2c on the HTTP listener, gRPC to the pods; an HTTPRoute for its host after it loses', async () => {
    const host = 'grpc.pq.example.com';
    await kube.apply(gateway('rpc', [httpListener('http'), httpsListener('https', host, ['pq-mldsa', 'pq-ecdsa'])]) as never);
    await kube.apply(grpcRoute('calls', { parentRefs: [{ name: 'rpc' }], hostnames: [host], rules: [
      { ...grpcRule('echo.Echo', 'Say', 'alpha'), filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { add: [{ name: 'x-via', value: 'qubesec' }] } }] },
      { matches: [{ method: { service: 'echo.Echo' }, headers: [{ name: 'x-version', value: '2' }] }], backendRefs: [{ name: 'beta', port: 80 }] },
    ] }) as never);
    // A gRPC call with an empty message (flag 0, length 0), as grpcurl would send it.
    const call = (path: string, options: { plain?: boolean; headers?: string[] } = {}) => pqCurl(
      options.plain ? { host, port: controller.httpPort, scheme: 'http', path } : target(host, path),
      { cacert: anchors.mldsa, input: Buffer.alloc(5), args: [options.plain ? '--http2-prior-knowledge' : '--http2', '-H', 'content-type: application/grpc', '-H', 'te: trailers', ...(options.headers ?? []).flatMap((h) => ['-H', h]), '--data-binary', '@-'] },
    );
    const message = (r: Awaited<ReturnType<typeof pqCurl>>) => JSON.parse(r.body.slice(r.body.indexOf('{'))) as { backend: string; path: string; httpVersion: string; received: number; headers: Record<string, string> };

    const say = await eventually(async () => {
      const r = await call('/echo.Echo/Say');
      return r.status === 200 && r.headers['grpc-status'] === '0' ? r : undefined;
    }, 20_000, 'the gRPC call');
    expect([say.group, say.signature]).toEqual(['X25519MLKEM768', 'id-ml-dsa-65']);
    expect(say.stderr).toMatch(/using HTTP\/2/);
    // The pod got the call over HTTP/2 (grpc_pass), its 5-byte message, and the header the filter added.
    expect(message(say)).toEqual(expect.objectContaining({ backend: 'alpha', path: '/echo.Echo/Say', httpVersion: '2.0', received: 5 }));
    expect(message(say).headers['x-via']).toBe('qubesec');
    // A service match with a header: the other backend; without the header no rule matches (404).
    expect(message(await call('/echo.Echo/Ask', { headers: ['x-version: 2'] })).backend).toBe('beta');
    expect((await call('/echo.Echo/Ask')).status).toBe(404);
    // h2c with prior knowledge on the HTTP listener, as the spec asks of GRPCRoute there; HTTP/1.1 still works there.
    const plain = await call('/echo.Echo/Say', { plain: true });
    expect([plain.status, plain.headers['grpc-status'], message(plain).backend]).toEqual([200, '0', 'alpha']);
    expect((await pqCurl({ host: 'web.pq.example.com', port: controller.httpPort, scheme: 'http' })).status).toBe(200);

    expect(await parentsOf('grpcroute', 'calls')).toEqual([['rpc', { Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' }]]);
    const gwStatus = await eventually(async () => {
      const s = await status<GatewayStatus>('gateway', 'rpc');
      return s?.listeners?.length ? s : undefined;
    }, 20_000, 'Gateway rpc status');
    expect(gwStatus.listeners?.map((l) => l.supportedKinds.map((k) => k.kind))).toEqual([['HTTPRoute', 'GRPCRoute'], ['HTTPRoute', 'GRPCRoute']]);

    // An HTTPRoute for the same host on the same listeners, newer: not accepted; the GRPCRoute keeps serving.
    await kube.apply(httpRoute('rival', { parentRefs: [{ name: 'rpc' }], hostnames: [host], rules: [httpRule('/', 'beta')] }) as never);
    const rival = await eventually(async () => {
      const s = await status<RouteStatus>('httproute', 'rival');
      return s?.parents?.length ? s : undefined;
    }, 20_000, 'HTTPRoute rival status');
    expect(summary(rival.parents![0]!.conditions).Accepted).toBe('False/HostnameConflict');
    expect(message(await call('/echo.Echo/Say')).backend).toBe('alpha');
  });

  it('speaks TLS to the pods as a BackendTLSPolicy asks: hybrid ML-KEM, the ML-DSA CA from its ConfigMap, its hostname as SNI; a wrong CA answers 502, a missing one 503 until it comes', async () => {
    const [podCa, unrelatedCa] = await Promise.all([mldsaRoot('Pod CA'), mldsaRoot('Unrelated CA')]);
    const leaf = await mldsaLeaf(anchors.dir, podCa, 'gateway-pods', `CN=${POD_NAME}`, 'server', [POD_NAME]);
    const port = await freePort();
    await startTlsBackend(testHost, anchors.dir, 'gateway-pods-nginx', leaf, [{ port, groups: 'X25519MLKEM768:X25519', answer: '$ssl_curve $ssl_protocol $ssl_server_name' }]);
    for (const name of ['tls-pods', 'tls-wrong-ca', 'tls-later-ca']) await kube.publishService(name, port, testHost.address);
    await kube.apply(caConfigMap('pods-ca', podCa.certificatePem));
    await kube.apply(caConfigMap('unrelated-ca', unrelatedCa.certificatePem));
    const policy = (name: string, service: string, configMap: string) => backendTlsPolicy(name, service, { hostname: POD_NAME, caCertificateRefs: [{ group: '', kind: 'ConfigMap', name: configMap }] });
    await kube.apply(policy('pods-tls', 'tls-pods', 'pods-ca') as never);
    await kube.apply(policy('wrong-ca-tls', 'tls-wrong-ca', 'unrelated-ca') as never);
    await kube.apply(policy('later-ca-tls', 'tls-later-ca', 'later-ca') as never);
    await kube.apply(httpRoute('to-pods', { parentRefs: [{ name: 'gw', sectionName: 'https' }], hostnames: ['pods.pq.example.com'], rules: [httpRule('/', 'tls-pods'), httpRule('/wrong', 'tls-wrong-ca'), httpRule('/later', 'tls-later-ca')] }) as never);

    // PQ curl to NGINX, and NGINX to the pod: both X25519MLKEM768; the pod was asked for the policy's hostname.
    const r = await served('pods.pq.example.com', (x) => x.status === 200);
    expect([r.group, r.signature]).toEqual(['X25519MLKEM768', 'id-ml-dsa-65']);
    const [group, protocol, sni] = r.body.trim().split(' ');
    expect([groupName(group!), protocol, sni]).toEqual(['X25519MLKEM768', 'TLSv1.3', POD_NAME]);
    process.stdout.write(`HTTPS pod behind a BackendTLSPolicy reported: ${r.body.trim()}\n`);
    await served('pods.pq.example.com', (x) => x.status === 502, '/wrong');
    await served('pods.pq.example.com', (x) => x.status === 503, '/later');

    const ancestors = (name: string, accept: (s: PolicyStatus) => boolean) => eventually(async () => {
      const s = await status<PolicyStatus>('backendtlspolicy', name);
      return s?.ancestors?.length && accept(s) ? s.ancestors.map((a) => [`${a.ancestorRef.kind} ${a.ancestorRef.name}`, a.controllerName, summary(a.conditions)]) : undefined;
    }, 20_000, `BackendTLSPolicy ${name} status`);
    const ours = (conditions: Record<string, string>) => [['Gateway gw', 'qubesec.io/gateway-controller', conditions]];
    expect(await ancestors('pods-tls', () => true)).toEqual(ours({ Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' }));
    // NGINX cannot verify the pod with the unrelated CA: the policy is fine, the connection is not.
    expect(await ancestors('wrong-ca-tls', () => true)).toEqual(ours({ Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' }));
    expect(await ancestors('later-ca-tls', () => true)).toEqual(ours({ Accepted: 'False/NoValidCACertificate', ResolvedRefs: 'False/InvalidCACertificateRef' }));

    // The ConfigMap it names comes: served, and the policy says so.
    await kube.apply(caConfigMap('later-ca', podCa.certificatePem));
    await served('pods.pq.example.com', (x) => x.status === 200, '/later');
    expect(await ancestors('later-ca-tls', (s) => summary(s.ancestors![0]!.conditions).Accepted === 'True/Accepted')).toEqual(ours({ Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' }));
  });

  it('passes TLS through by SNI to a TLSRoute\'s pod on the HTTPS port: the pod\'s own ML-DSA certificate and key exchange reach PQ curl, while HTTPS routes there still terminate', async () => {
    const podCa = await mldsaRoot('Passthrough pod CA');
    await writeFile(join(anchors.dir, 'passthrough-ca.crt'), podCa.certificatePem);
    const podCaFile = `${anchors.dir.slice(rootfs().length)}/passthrough-ca.crt`;
    const leaf = await mldsaLeaf(anchors.dir, podCa, 'passthrough-pod', 'CN=db.pass.example.com', 'server', ['db.pass.example.com']);
    const port = await freePort();
    await startTlsBackend(testHost, anchors.dir, 'passthrough-nginx', leaf, [{ port, groups: 'X25519MLKEM768', answer: 'pod $ssl_server_name $ssl_protocol' }]);
    await kube.publishService('tls-db', port, testHost.address);
    await kube.apply(gateway('pass-gw', [tlsListener('pass', '*.pass.example.com')]) as never);
    const route = tlsRoute('db', ['db.pass.example.com'], 'tls-db', 80);
    await kube.apply({ ...route, spec: { ...route.spec, parentRefs: [{ name: 'pass-gw' }] } } as never);
    const db = { host: 'db.pass.example.com', port: controller.httpsPort, path: '/' };

    const r = await eventually(async () => {
      const answer = await pqCurl(db, { cacert: podCaFile });
      if (answer.status === 200) return answer;
      throw new Error(`last answer: curl exit ${answer.exitCode}, status ${answer.status}, body ${answer.body.slice(0, 200)}`);
    }, 20_000, 'db.pass.example.com through passthrough');
    // Verified against the pod's CA only: the handshake was the pod's, not NGINX's.
    expect([r.group, r.signature, r.body.trim()]).toEqual(['X25519MLKEM768', 'id-ml-dsa-65', 'pod db.pass.example.com TLSv1.3']);
    // The same port still terminates the HTTPS listener's hosts with QubeSec's certificates.
    expect((await pqCurl(target('web.pq.example.com'), { cacert: anchors.mldsa })).status).toBe(200);

    expect(await parentsOf('tlsroute', 'db')).toEqual([['pass-gw', { Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' }]]);
    const gwStatus = await eventually(async () => {
      const s = await status<GatewayStatus>('gateway', 'pass-gw');
      return summary(s?.conditions).Programmed === 'True/Programmed' ? s : undefined;
    }, 20_000, 'pass-gw Programmed');
    expect(gwStatus.listeners?.map((l) => [l.name, l.attachedRoutes, l.supportedKinds.map((k) => k.kind)])).toEqual([['pass', 1, ['TLSRoute']]]);

    // The route gone: the name is QubeSec's again (the catch-all's 404, behind its own certificate).
    await kubectl(['delete', 'tlsroute', 'db']);
    await notServed('db.pass.example.com');
  });

  it('qubesec migrate prints Gateway API objects the API server takes and QubeSec serves as it served the Ingress', async () => {
    const host = 'legacy.pq.example.com';
    await kube.apply(pqIngress('legacy', host, 'beta', { secrets: ['pq-mldsa', 'pq-ecdsa'], annotations: { 'qubesec.io/pq-mode': 'strict' } }));
    await served(host, (x) => x.status === 200 && JSON.parse(x.body).backend === 'beta');
    const migrate = await execa(process.execPath, [QUBESEC_MAIN, 'migrate', '--kubeconfig', cluster.kubeconfigPath, '--namespace', 'default', '--gateway-name', 'migrated'], { reject: false });
    expect([migrate.exitCode, migrate.stderr]).toEqual([0, '']);
    const objects = parseAllDocuments(migrate.stdout).map((d) => d.toJS() as { kind: string; metadata: { name: string } });
    expect(objects.map((o) => `${o.kind} ${o.metadata.name}`)).toEqual(['Gateway migrated', `HTTPRoute legacy-${host}`]);
    // Through the CRDs' schemas, then served by the route alone: the Ingress goes.
    for (const object of objects) await kube.apply(object as never);
    await kubectl(['delete', 'ingress', 'legacy']);
    await eventually(async () => (summary((await status<RouteStatus>('httproute', `legacy-${host}`)).parents?.[0]?.conditions).Accepted === 'True/Accepted' || undefined), 20_000, 'migrated route Accepted');
    const r = await served(host, (x) => x.status === 200 && JSON.parse(x.body).backend === 'beta');
    expect([r.group, r.signature]).toEqual(['X25519MLKEM768', 'id-ml-dsa-65']);
    // pq-mode strict became the listener's tls.options: a classical client is refused, as it was by the Ingress.
    expect((await pqCurl(target(host), { cacert: anchors.mldsa, curves: 'X25519:secp256r1' })).exitCode).not.toBe(0);
    const legacy = await legacyHandshake(host, controller.httpsPort, anchors.hostEcdsa);
    expect(legacy.ok).toBe(false);
  });
});
