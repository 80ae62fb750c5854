import { checkCaConfigMap } from '../model/certificates.js';
import { translateGateways } from '../model/gateway.js';
import { BUILTIN_TLS_DEFAULTS } from '../model/pq.js';
import type { BackendTLSPolicy, GRPCRoute } from '../model/gateway-api.js';
import { CAPABILITIES, backendTlsPolicy, caConfigMap, gateway, gatewayClass, grpcRoute, grpcRule, httpListener, httpRoute, httpRule, servicesByKey, testPem } from '../model/testing.js';
import type { GatewayStatus } from '../reconciler.js';
import { gatewayStatusPatches, type GatewayObjects, type StatusHolder, type StatusPatch } from './gateway.js';

const CONTROLLER = 'qubesec.io/gateway-controller';
const T0 = new Date('2026-12-01T10:00:00.123Z');
const T1 = new Date('2026-12-01T11:00:00Z');

function translated(programmed = true, routes = [httpRoute('web', { hostnames: ['web.example.com'], rules: [httpRule('/', 'web')] })], grpcRoutes: GRPCRoute[] = [], backendTlsPolicies: BackendTLSPolicy[] = []): GatewayStatus {
  const t = translateGateways({
    gatewayClasses: [gatewayClass()],
    gateways: [gateway('gw', [httpListener('http')])],
    httpRoutes: routes,
    grpcRoutes,
    tlsRoutes: [],
    referenceGrants: [],
    backendTlsPolicies,
    namespaceLabels: new Map(),
    services: servicesByKey(['default/web']),
    certificates: new Set(),
    caConfigMaps: new Map([['default/ca', checkCaConfigMap(caConfigMap('ca', testPem('mldsa-ca.crt')), T0)]]),
  }, { controllerName: CONTROLLER, defaults: BUILTIN_TLS_DEFAULTS, capabilities: CAPABILITIES, ports: { http: 80, https: 443 } });
  return { gatewayClasses: t.gatewayClasses, gateways: t.gateways, routes: t.routes, policies: t.policies, programmed };
}

/** The objects as the API server would hold them after `patches`: keys in its own (sorted) order, a new resourceVersion. */
function stored(objects: GatewayObjects, patches: StatusPatch[]): GatewayObjects {
  const sortKeys = (v: unknown): unknown => (Array.isArray(v) ? v.map(sortKeys) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => b.localeCompare(a)).map(([k, x]) => [k, sortKeys(x)])) : v);
  const apply = (list: readonly StatusHolder[], kind: StatusPatch['kind']) => list.map((o) => {
    const patch = patches.find((p) => p.kind === kind && p.name === o.metadata?.name && p.namespace === (o.metadata?.namespace ?? ''));
    return patch ? { metadata: { ...o.metadata, resourceVersion: `${o.metadata?.resourceVersion}+` }, status: sortKeys({ ...o.status, ...patch.status }) as StatusHolder['status'] } : o;
  });
  return { gatewayClasses: apply(objects.gatewayClasses, 'GatewayClass'), gateways: apply(objects.gateways, 'Gateway'), httpRoutes: apply(objects.httpRoutes, 'HTTPRoute'), grpcRoutes: apply(objects.grpcRoutes, 'GRPCRoute'), tlsRoutes: apply(objects.tlsRoutes, 'TLSRoute'), backendTlsPolicies: apply(objects.backendTlsPolicies, 'BackendTLSPolicy') };
}

const fresh = (): GatewayObjects => ({
  gatewayClasses: [{ metadata: { name: 'qubesec', resourceVersion: '1', generation: 1 } }],
  gateways: [{ metadata: { namespace: 'default', name: 'gw', resourceVersion: '2', generation: 1 } }],
  httpRoutes: [{ metadata: { namespace: 'default', name: 'web', resourceVersion: '3', generation: 1 } }],
  grpcRoutes: [],
  tlsRoutes: [],
  backendTlsPolicies: [],
});
const conditionsOf = (patch: StatusPatch | undefined) => (patch?.status?.conditions ?? []).map((c) => `${c.type}=${c.status}/${c.reason}@${c.lastTransitionTime}`);

describe('gatewayStatusPatches', () => {
  it('writes Accepted and Programmed, the addresses and the listeners of new objects, and nothing once they say it', () => {
    const patches = gatewayStatusPatches(translated(), fresh(), [{ ip: '198.18.0.10' }, { hostname: 'lb.example.com' }], CONTROLLER, T0);
    expect(patches.map((p) => `${p.kind} ${p.name}@${p.resourceVersion}`)).toEqual(['GatewayClass qubesec@1', 'Gateway gw@2', 'HTTPRoute web@3']);
    const gw = patches[1]!;
    expect(conditionsOf(gw)).toEqual(['Accepted=True/Accepted@2026-12-01T10:00:00Z', 'Programmed=True/Programmed@2026-12-01T10:00:00Z']);
    expect(gw.status?.addresses).toEqual([{ type: 'IPAddress', value: '198.18.0.10' }, { type: 'Hostname', value: 'lb.example.com' }]);
    expect(gw.status?.listeners?.[0]).toMatchObject({ name: 'http', attachedRoutes: 1 });
    expect(gw.status?.listeners?.[0]?.conditions.map((c) => `${c.type}=${c.status}`)).toEqual(['Accepted=True', 'ResolvedRefs=True', 'Conflicted=False', 'Programmed=True']);
    expect(patches[2]!.status?.parents?.map((p) => [p.controllerName, p.parentRef.name, p.conditions.map((c) => `${c.type}=${c.status}`)])).toEqual([[CONTROLLER, 'gw', ['Accepted=True', 'ResolvedRefs=True']]]);
    const after = stored(fresh(), patches);
    expect(gatewayStatusPatches(translated(), after, [{ ip: '198.18.0.10' }, { hostname: 'lb.example.com' }], CONTROLLER, T1)).toEqual([]);
  });

  it('moves lastTransitionTime only for a condition whose status changed', () => {
    const held = stored(fresh(), gatewayStatusPatches(translated(), fresh(), [], CONTROLLER, T0));
    const patches = gatewayStatusPatches(translated(false), held, [], CONTROLLER, T1);
    expect(patches.map((p) => p.kind)).toEqual(['Gateway']);
    expect(conditionsOf(patches[0])).toEqual(['Accepted=True/Accepted@2026-12-01T10:00:00Z', 'Programmed=False/Pending@2026-12-01T11:00:00Z']);
  });

  it('keeps the route parents other controllers wrote, and removes ours from a route that no longer names our Gateways', () => {
    const other = { parentRef: { name: 'theirs' }, controllerName: 'example.com/other', conditions: [{ type: 'Accepted', status: 'True' as const, reason: 'Accepted', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }] };
    const objects = fresh();
    const withOther: GatewayObjects = { ...objects, httpRoutes: [{ ...objects.httpRoutes[0]!, status: { parents: [other] } }] };
    const patches = gatewayStatusPatches(translated(), withOther, [], CONTROLLER, T0);
    const route = patches.find((p) => p.kind === 'HTTPRoute');
    expect(route?.status?.parents?.map((p) => p.controllerName)).toEqual(['example.com/other', CONTROLLER]);
    const held = stored(withOther, patches);
    const gone = gatewayStatusPatches(translated(true, []), held, [], CONTROLLER, T1).find((p) => p.kind === 'HTTPRoute');
    expect(gone?.status?.parents).toEqual([other]);
  });

  it('writes a GRPCRoute\'s parents to the GRPCRoute, apart from an HTTPRoute of the same name', () => {
    const calls = [grpcRoute('web', { hostnames: ['rpc.example.com'], rules: [grpcRule('echo.Echo', undefined, 'web')] })];
    const objects: GatewayObjects = { ...fresh(), grpcRoutes: [{ metadata: { namespace: 'default', name: 'web', resourceVersion: '4', generation: 1 } }] };
    const patches = gatewayStatusPatches(translated(true, undefined, calls), objects, [], CONTROLLER, T0);
    expect(patches.filter((p) => p.kind.endsWith('Route')).map((p) => `${p.kind} ${p.name}@${p.resourceVersion}`)).toEqual(['HTTPRoute web@3', 'GRPCRoute web@4']);
    const held = stored(objects, patches);
    expect(held.grpcRoutes[0]!.status?.parents?.map((p) => p.conditions.map((c) => `${c.type}=${c.status}`))).toEqual([['Accepted=True', 'ResolvedRefs=True']]);
    // The GRPCRoute gone from the translation: its parent entry goes, the HTTPRoute's stays.
    const gone = gatewayStatusPatches(translated(true, undefined, []), held, [], CONTROLLER, T1);
    // (and the listener's attachedRoutes drops to 1)
    expect(gone.map((p) => `${p.kind} ${p.name}`)).toEqual(['Gateway gw', 'GRPCRoute web']);
    expect(gone[0]!.status?.listeners?.[0]?.attachedRoutes).toBe(1);
    expect(gone[1]!.status?.parents).toEqual([]);
  });

  it('writes a BackendTLSPolicy\'s conditions under our Gateway as its ancestor, keeps other controllers\' ancestors, and removes ours once no route of ours reaches it', () => {
    const policy = backendTlsPolicy('web-tls', 'web');
    const other = { ancestorRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'default', name: 'theirs' }, controllerName: 'example.com/other', conditions: [{ type: 'Accepted', status: 'True' as const, reason: 'Accepted', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }] };
    const objects: GatewayObjects = { ...fresh(), backendTlsPolicies: [{ metadata: { namespace: 'default', name: 'web-tls', resourceVersion: '5', generation: 1 }, status: { ancestors: [other] } }] };
    const patches = gatewayStatusPatches(translated(true, undefined, [], [policy]), objects, [], CONTROLLER, T0);
    const written = patches.find((p) => p.kind === 'BackendTLSPolicy');
    expect(written?.resourceVersion).toBe('5');
    expect(written?.status?.ancestors?.map((a) => [a.controllerName, `${a.ancestorRef.kind} ${a.ancestorRef.namespace}/${a.ancestorRef.name}`, a.conditions.map((c) => `${c.type}=${c.status}/${c.reason}@${c.lastTransitionTime}`)])).toEqual([
      ['example.com/other', 'Gateway default/theirs', ['Accepted=True/Accepted@2026-01-01T00:00:00Z']],
      [CONTROLLER, 'Gateway default/gw', ['Accepted=True/Accepted@2026-12-01T10:00:00Z', 'ResolvedRefs=True/ResolvedRefs@2026-12-01T10:00:00Z']],
    ]);
    const held = stored(objects, patches);
    expect(gatewayStatusPatches(translated(true, undefined, [], [policy]), held, [], CONTROLLER, T1).filter((p) => p.kind === 'BackendTLSPolicy')).toEqual([]);
    const gone = gatewayStatusPatches(translated(true, [httpRoute('web', { hostnames: ['web.example.com'], rules: [httpRule('/', 'api')] })], [], [policy]), held, [], CONTROLLER, T1).find((p) => p.kind === 'BackendTLSPolicy');
    expect(gone?.status?.ancestors).toEqual([other]);
  });
});
