// The reconciler with Gateway API objects in its source: HTTPRoutes become served intents beside Ingresses, through
// the same builder, and the status drafts follow the snapshot.
import { jest } from '@jest/globals';
import type { KubernetesObject } from '@kubernetes/client-node';
import { BUILTIN_TLS_DEFAULTS } from './model/pq.js';
import { CAPABILITIES, backendTlsPolicy, caConfigMap, gateway, gatewayClass, grpcRoute, grpcRule, httpListener, httpRoute, httpRule, httpsListener, ingress, route, service, testPem, tlsSecret } from './model/testing.js';
import type { Diagnostic, Model } from './model/types.js';
import { createLogger } from './observability/log.js';
import { createMetrics } from './observability/metrics.js';
import { Reconciler, type ReconcilerOptions } from './reconciler.js';
import { emptySnapshot, type Snapshot } from './sources/source.js';

const INGRESS_CLASS = { metadata: { name: 'qubesec' }, spec: { controller: 'qubesec.io/ingress-controller' } };
const GATEWAY_OPTIONS: ReconcilerOptions['gateway'] = { controllerName: 'qubesec.io/gateway-controller', ports: { http: 80, https: 443 } };

/** As the source holds it: Gateway API objects are KubernetesObjects whose creationTimestamp is the API server's string. */
const versioned = (object: { metadata?: object }, resourceVersion = '1') => ({ ...object, metadata: { ...object.metadata, resourceVersion } }) as KubernetesObject as never;
const hosts = (model: Model | undefined) => (model?.servers ?? []).map((s) => s.host).filter((h) => h !== '').sort();
const serverOf = (model: Model | undefined, host: string) => model?.servers.find((s) => s.host === host);

async function running(initial: Partial<Snapshot>, gatewayApi: 'on' | 'off' = 'on') {
  let snapshot: Snapshot = { ...emptySnapshot(), ingressClasses: [INGRESS_CLASS], ...initial };
  const applied: Model[] = [];
  const events: Diagnostic[] = [];
  let changed = () => {};
  const reconciler = new Reconciler(
    { start: async (onChange) => void (changed = onChange), snapshot: () => snapshot, stop: async () => {} },
    { apply: async (model) => (applied.push(model), { status: 'applied', hash: String(applied.length) }), test: async () => undefined },
    { record: async (d) => void events.push(d) },
    { controllerName: 'qubesec.io/ingress-controller', ingressClass: 'qubesec', tlsDefaults: BUILTIN_TLS_DEFAULTS, configMap: '', capabilities: CAPABILITIES, defaultCertificates: [], debounceMs: 0, gateway: gatewayApi === 'on' ? GATEWAY_OPTIONS : undefined },
    createMetrics(),
    createLogger('error', {}, () => {}),
  );
  const synced = () => new Promise<void>((resolve) => (reconciler.onSynced = resolve));
  const first = synced();
  await reconciler.start();
  await first;
  return {
    reconciler,
    events,
    last: () => applied.at(-1),
    /** Replaces lists of the snapshot and waits for the sync. */
    async sync(next: Partial<Snapshot>) {
      snapshot = { ...snapshot, ...next };
      const done = synced();
      changed();
      await jest.advanceTimersByTimeAsync(1);
      await done;
    },
  };
}

const web = () => versioned(httpRoute('web', { hostnames: ['web.example.com'], rules: [httpRule('/', 'web')] }));
const gatewayObjects = (): Partial<Snapshot> => ({
  gatewayClasses: [versioned(gatewayClass())],
  gateways: [versioned(gateway('gw', [httpListener('http')]))],
  httpRoutes: [web()],
  services: [versioned(service('web', [{ port: 80 }]))],
});

describe('Reconciler with Gateway API objects', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] }));
  afterEach(() => jest.useRealTimers());

  it('serves an HTTPRoute attached to a Gateway of its class, beside an Ingress, with status drafts for each object', async () => {
    const r = await running({ ...gatewayObjects(), ingresses: [versioned(ingress('legacy', { rules: [route('legacy.example.com', '/', 'Prefix', 'web')] }))] });
    expect(hosts(r.last())).toEqual(['legacy.example.com', 'web.example.com']);
    const location = serverOf(r.last(), 'web.example.com')!.locations.find((l) => l.path === '/');
    expect(location?.ingress).toMatchObject({ kind: 'HTTPRoute', namespace: 'default', name: 'web' });
    const status = r.reconciler.gatewayStatus;
    expect(status.programmed).toBe(true);
    expect(status.gatewayClasses.map((c) => c.conditions.map((x) => `${x.type}=${x.status}`))).toEqual([['Accepted=True']]);
    expect(status.gateways[0]?.conditions.find((c) => c.type === 'Accepted')?.status).toBe('True');
    expect(status.gateways[0]?.listeners[0]?.attachedRoutes).toBe(1);
    expect(status.routes[0]?.parents[0]?.conditions.map((c) => `${c.type}=${c.status}`)).toEqual(['Accepted=True', 'ResolvedRefs=True']);
    expect([...r.reconciler.served].sort()).toEqual(['HTTPRoute default/web', 'default/legacy']);
  });

  it('keeps an unchanged route\'s server object when an Ingress changes, and stops serving a route once it is deleted', async () => {
    const r = await running(gatewayObjects());
    const before = serverOf(r.last(), 'web.example.com');
    await r.sync({ ingresses: [versioned(ingress('legacy', { rules: [route('legacy.example.com', '/', 'Prefix', 'web')] }))] });
    expect(hosts(r.last())).toEqual(['legacy.example.com', 'web.example.com']);
    expect(serverOf(r.last(), 'web.example.com')).toBe(before);
    // A change of the Gateway translates again; an equal intent keeps its object too.
    await r.sync({ gateways: [versioned(gateway('gw', [httpListener('http')]), '2')] });
    expect(serverOf(r.last(), 'web.example.com')).toBe(before);
    await r.sync({ httpRoutes: [] });
    expect(hosts(r.last())).toEqual(['legacy.example.com']);
    expect(r.reconciler.gatewayStatus.routes).toEqual([]);
    expect(r.reconciler.served.has('HTTPRoute default/web')).toBe(false);
  });

  it('serves an HTTPS listener\'s ML-DSA and ECDSA Secrets side by side, and a route whose Service comes later', async () => {
    const listener = httpsListener('https', '*.pq.example.com', ['mldsa', 'ecdsa']);
    const r = await running({
      ...gatewayObjects(),
      gateways: [versioned(gateway('gw', [listener]))],
      httpRoutes: [versioned(httpRoute('web', { hostnames: ['web.pq.example.com'], rules: [httpRule('/', 'web')] }))],
      services: [],
      secrets: [versioned(tlsSecret('mldsa', 'mldsa65')), versioned(tlsSecret('ecdsa', 'ecdsa'))],
    });
    const tls = serverOf(r.last(), 'web.pq.example.com')?.tls;
    expect(tls?.certificates.map((c) => c.source).sort()).toEqual(['default/ecdsa', 'default/mldsa']);
    expect(r.reconciler.gatewayStatus.routes[0]?.parents[0]?.conditions.find((c) => c.type === 'ResolvedRefs')).toMatchObject({ status: 'False', reason: 'BackendNotFound' });
    await r.sync({ services: [versioned(service('web', [{ port: 80 }]))] });
    expect(r.reconciler.gatewayStatus.routes[0]?.parents[0]?.conditions.find((c) => c.type === 'ResolvedRefs')?.status).toBe('True');
  });

  it('fails a route whose fields are not of the schema alone, with a Warning naming it', async () => {
    const broken = versioned(httpRoute('broken', { hostnames: ['broken.example.com'], rules: 'not a list' as never }));
    const r = await running({ ...gatewayObjects(), httpRoutes: [broken, web()] });
    expect(hosts(r.last())).toEqual(['web.example.com']);
    expect(r.events.map((e) => `${e.object.kind} ${e.object.name}: ${e.reason}`)).toContain('HTTPRoute broken: Invalid');
  });

  it('leaves Gateway API objects alone when Gateway API is off', async () => {
    const r = await running(gatewayObjects(), 'off');
    expect(hosts(r.last())).toEqual([]);
    expect(r.reconciler.gatewayStatus.gateways).toEqual([]);
  });

  it('admits routes as a sync would judge them: refused values denied, features not served yet warned, other controllers\' routes left alone', async () => {
    const r = await running(gatewayObjects());
    const badRegex = httpRoute('bad', { hostnames: ['bad.example.com'], rules: [httpRule('(unclosed', 'web', 80, 'RegularExpression')] });
    const denied = r.reconciler.admitRoute('HTTPRoute', badRegex);
    expect(denied.allowed).toBe(false);
    expect(denied.allowed ? '' : denied.message).toMatch(/^HTTPRoute default\/bad: spec\.rules\[0\]\.matches\[0\]\.path\.value: "\(unclosed" /);
    const retry = httpRoute('retry', { hostnames: ['t.example.com'], rules: [httpRule('/', 'web', 80, 'PathPrefix', { retry: { attempts: 2 } })] });
    const warned = r.reconciler.admitRoute('HTTPRoute', retry);
    expect(warned).toEqual({ allowed: true, warnings: [expect.stringContaining('spec.rules[0].retry: not supported yet')] });
    const badHeader = httpRoute('bad-header', { hostnames: ['h.example.com'], rules: [{ ...httpRule('/', 'web'), matches: [{ headers: [{ name: 'x canary', value: '1' }] }] }] });
    const refused = r.reconciler.admitRoute('HTTPRoute', badHeader);
    expect(refused.allowed ? '' : refused.message).toMatch(/^HTTPRoute default\/bad-header: spec\.rules\[0\]\.matches\[0\]\.headers\[0\]\.name: "x canary" is not an HTTP header name/);
    expect(r.reconciler.admitRoute('HTTPRoute', httpRoute('elsewhere', { parentRefs: [{ name: 'not-ours' }], rules: [httpRule('(unclosed', 'web', 80, 'RegularExpression')] }))).toEqual({ allowed: true, warnings: [] });
    // An update of a served route is judged in place of its current version.
    expect(r.reconciler.admitRoute('HTTPRoute', web())).toEqual({ allowed: true, warnings: [] });
  });

  it('follows a BackendTLSPolicy and the ConfigMap it names: 503 without the CA, TLS to the pods once it exists, plain again once the policy goes', async () => {
    const policy = versioned(backendTlsPolicy('web-tls', 'web'));
    const r = await running({ ...gatewayObjects(), backendTlsPolicies: [policy] });
    const action = () => serverOf(r.last(), 'web.example.com')!.locations.find((l) => l.path === '/')!.action;
    expect(action()).toMatchObject({ kind: 'unavailable', reason: expect.stringContaining('ConfigMap default/ca not found') });
    expect(r.reconciler.gatewayStatus.policies[0]?.ancestors[0]?.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`)).toEqual(['Accepted=False/NoValidCACertificate', 'ResolvedRefs=False/InvalidCACertificateRef']);
    await r.sync({ configMaps: [versioned(caConfigMap('ca', testPem('mldsa-ca.crt')))] });
    expect(action()).toMatchObject({ kind: 'proxy', protocol: 'HTTPS', tls: { serverName: 'pods.example.com', verify: { ca: expect.objectContaining({ source: 'default/ca' }) } } });
    expect(r.reconciler.gatewayStatus.policies[0]?.ancestors[0]?.conditions.map((c) => `${c.type}=${c.status}`)).toEqual(['Accepted=True', 'ResolvedRefs=True']);
    await r.sync({ backendTlsPolicies: [] });
    expect(action()).toMatchObject({ kind: 'proxy', protocol: 'HTTP' });
    expect(r.reconciler.gatewayStatus.policies).toEqual([]);
  });

  it('serves a GRPCRoute beside HTTPRoutes, follows its changes, and admits GRPCRoutes as a sync would judge them', async () => {
    const calls = (method: string, version = '1') => versioned(grpcRoute('calls', { hostnames: ['rpc.example.com'], rules: [grpcRule('echo.Echo', method, 'web')] }), version);
    const r = await running({ ...gatewayObjects(), grpcRoutes: [calls('Say')] });
    expect(hosts(r.last())).toEqual(['rpc.example.com', 'web.example.com']);
    const say = serverOf(r.last(), 'rpc.example.com')!.locations.find((l) => l.path === '/echo.Echo/Say');
    expect(say?.ingress).toMatchObject({ kind: 'GRPCRoute', name: 'calls' });
    expect(say?.action.kind === 'proxy' && say.action.protocol).toBe('GRPC');
    expect(r.reconciler.gatewayStatus.routes.map((x) => `${x.ref.kind} ${x.ref.name}`)).toEqual(['HTTPRoute web', 'GRPCRoute calls']);

    await r.sync({ grpcRoutes: [calls('Ask', '2')] });
    expect(serverOf(r.last(), 'rpc.example.com')!.locations.map((l) => l.path)).toContain('/echo.Echo/Ask');
    expect(serverOf(r.last(), 'rpc.example.com')!.locations.map((l) => l.path)).not.toContain('/echo.Echo/Say');

    const bad = grpcRoute('bad', { rules: [{ matches: [{ method: { service: 'no/slash' } }], backendRefs: [{ name: 'web', port: 80 }] }] });
    const denied = r.reconciler.admitRoute('GRPCRoute', bad);
    expect(denied.allowed ? '' : denied.message).toBe('GRPCRoute default/bad: spec.rules[0].matches[0].method.service: "no/slash" is not a gRPC service name (such as helloworld.Greeter)');
    // An HTTPRoute of the same name is another object: its admission does not judge the GRPCRoute.
    expect(r.reconciler.admitRoute('HTTPRoute', httpRoute('bad', { hostnames: ['b.example.com'], rules: [httpRule('/', 'web')] }))).toEqual({ allowed: true, warnings: [] });
  });

  it('admits Gateways as a sync would judge them: a refused listener value denied, what is not served yet warned, other classes left alone', async () => {
    const r = await running(gatewayObjects());
    const badOption = gateway('gw', [httpListener('http'), httpsListener('https', 'pq.example.com', ['pq-mldsa'], { 'qubesec.io/pq-mode': 'fast' })]);
    const denied = r.reconciler.admitGateway(badOption);
    expect(denied.allowed ? '' : denied.message).toMatch(/^Gateway default\/gw: spec\.listeners\[1\]\.tls\.options\[qubesec\.io\/pq-mode\]: "fast" is not one of hybrid, strict, classical/);
    const tcp = gateway('gw', [httpListener('http'), { name: 'tcp', port: 443, protocol: 'TCP' }]);
    const warned = r.reconciler.admitGateway(tcp);
    expect(warned).toEqual({ allowed: true, warnings: [expect.stringContaining('spec.listeners[1].protocol: "TCP" is not supported yet')] });
    expect(r.reconciler.admitGateway(gateway('theirs', [{ name: 'tls', port: 443, protocol: 'TLS' }], { className: 'other' }))).toEqual({ allowed: true, warnings: [] });
    // The current version of a served Gateway passes as it is.
    expect(r.reconciler.admitGateway(gateway('gw', [httpListener('http')]))).toEqual({ allowed: true, warnings: [] });
  });
});
