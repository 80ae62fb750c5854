import type { V1ConfigMap } from '@kubernetes/client-node';
import { configurationHash } from '../dataplane/applier.js';
import { render } from '../render/render.js';
import { RENDER_SETTINGS, inlined } from '../render/testing.js';
import { buildModel } from './build.js';
import { checkCaConfigMap, checkTlsSecret } from './certificates.js';
import type { BackendTLSPolicy, GatewayCondition, HTTPRoute, HTTPRouteRule, TLSRoute } from './gateway-api.js';
import { GATEWAY_CONTROLLER_NAME, intersect, translateGateways, type GatewayOptions, type GatewaySnapshot, type GatewayTranslation } from './gateway.js';
import { translateIngress } from './ingress.js';
import { BUILTIN_TLS_DEFAULTS, GROUPS_BY_MODE, defaultPolicy } from './pq.js';
import { CAPABILITIES, backendTlsPolicy, caConfigMap, endpointSlice, gateway, gatewayClass, grpcRoute, grpcRule, httpListener, httpRoute, httpRule, httpsListener, ingress, referenceGrant, route, service, servicesByKey, testPem, tlsListener, tlsRoute, tlsSecret } from './testing.js';
import { SYSTEM_CAS, type CaBundle, type CertificatePair } from './types.js';

const NOW = new Date('2026-11-28T00:00:00Z');

function pair(name: string, file: string, namespace = 'default'): CertificatePair {
  const checked = checkTlsSecret(tlsSecret(name, file, namespace), NOW);
  if ('error' in checked) throw new Error(checked.error);
  return checked.pair;
}

const CERTIFICATES = new Map([
  ['default/pq-mldsa', pair('pq-mldsa', 'mldsa65')],
  ['default/pq-ecdsa', pair('pq-ecdsa', 'ecdsa')],
  ['certs/shared', pair('shared', 'ecdsa', 'certs')],
]);

const OPTIONS: GatewayOptions = { controllerName: GATEWAY_CONTROLLER_NAME, defaults: BUILTIN_TLS_DEFAULTS, capabilities: CAPABILITIES, ports: { http: 80, https: 443 } };

function snapshot(parts: Partial<GatewaySnapshot>): GatewaySnapshot {
  return {
    gatewayClasses: [gatewayClass()],
    gateways: [gateway('gw', [httpListener('http')])],
    httpRoutes: [],
    grpcRoutes: [],
    tlsRoutes: [],
    referenceGrants: [],
    backendTlsPolicies: [],
    namespaceLabels: new Map<string, Record<string, string>>([['default', {}], ['team-a', { team: 'a', env: 'prod' }], ['team-b', { team: 'b' }], ['backends', {}], ['certs', {}]]),
    services: servicesByKey(['default/web', 'default/api', 'backends/shared']),
    certificates: CERTIFICATES,
    caConfigMaps: new Map(),
    ...parts,
  };
}

const translate = (parts: Partial<GatewaySnapshot>, options: GatewayOptions = OPTIONS) => translateGateways(snapshot(parts), options);

/** The conditions of a route's first parent as type -> [status, reason]. */
function parentConditions(t: GatewayTranslation, routeName = 'web', parent = 0): Record<string, [string, string]> {
  const status = t.routes.find((r) => r.ref.name === routeName);
  if (!status) throw new Error(`no status for HTTPRoute ${routeName}`);
  return Object.fromEntries(status.parents[parent]!.conditions.map((c) => [c.type, [c.status, c.reason]]));
}

function parentCondition(t: GatewayTranslation, type: string, routeName = 'web'): GatewayCondition {
  return t.routes.find((r) => r.ref.name === routeName)!.parents[0]!.conditions.find((c) => c.type === type)!;
}

function listenerConditions(t: GatewayTranslation, listener: string, gatewayName = 'gw'): Record<string, [string, string]> {
  const status = t.gateways.find((g) => g.ref.name === gatewayName)!.listeners.find((l) => l.name === listener)!;
  return Object.fromEntries(status.conditions.map((c) => [c.type, [c.status, c.reason]]));
}

const routeTable = (t: GatewayTranslation, name = 'web') => t.intents.find((i) => i.ref.name === name)?.routes.map((r) => [r.host, r.match, r.path, r.precedence, `${r.backend.namespace}/${r.backend.service}:${r.backend.port}`]);

describe('GatewayClass', () => {
  it('accepts the classes naming QubeSec\'s controller, ignores others, and refuses parameters', () => {
    const withParameters = gatewayClass('tuned');
    withParameters.spec.parametersRef = { group: 'example.com', kind: 'Config', name: 'x' };
    const t = translate({ gatewayClasses: [gatewayClass(), gatewayClass('other', 'example.com/gateway-controller'), withParameters] });
    expect(t.gatewayClasses).toEqual([
      { ref: expect.objectContaining({ kind: 'GatewayClass', name: 'qubesec' }), conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: `accepted by ${GATEWAY_CONTROLLER_NAME}`, observedGeneration: 1 }] },
      { ref: expect.objectContaining({ name: 'tuned' }), conditions: [expect.objectContaining({ type: 'Accepted', status: 'False', reason: 'InvalidParameters' })] },
    ]);
  });

  it('gives Gateways of another class no status, and their routes none either', () => {
    const t = translate({
      gateways: [gateway('gw', [httpListener()], { className: 'other' })],
      gatewayClasses: [gatewayClass(), gatewayClass('other', 'example.com/gateway-controller')],
      httpRoutes: [httpRoute('web', { rules: [httpRule('/', 'web')] })],
    });
    expect(t.gateways).toEqual([]);
    expect(t.routes).toEqual([]);
    expect(t.intents).toEqual([]);
  });
});

describe('HTTPRoute -> IngressIntent', () => {
  it('gives one intent per route with the Ingress path semantics and Accepted/ResolvedRefs True at the route\'s generation', () => {
    const t = translate({
      httpRoutes: [httpRoute('web', {
        hostnames: ['a.example.com'],
        rules: [httpRule('/app/', 'web', 8080), httpRule('/exact', 'api', 80, 'Exact'), httpRule('/v[0-9]+/items', 'api', 80, 'RegularExpression')],
      }, { generation: 7 })],
    });
    expect(t.diagnostics).toEqual([]);
    expect(t.intents.map((i) => [i.ref.kind, i.ref.namespace, i.ref.name, i.created])).toEqual([['HTTPRoute', 'default', 'web', '2026-01-01T00:00:00.000Z']]);
    expect(routeTable(t)).toEqual([
      ['a.example.com', 'exact', '/app', 2, 'default/web:8080'],
      ['a.example.com', 'prefix', '/app/', 1, 'default/web:8080'],
      ['a.example.com', 'exact', '/exact', 0, 'default/api:80'],
      ['a.example.com', 'regex', '^(?:/v[0-9]+/items)$', 1, 'default/api:80'],
    ]);
    expect(t.intents[0]!.routes[0]!.field).toBe('spec.rules[0].matches[0]');
    expect(t.intents[0]!.tls).toEqual([]);
    expect(t.routes[0]!.parents).toEqual([{
      parentRef: { name: 'gw' },
      controllerName: GATEWAY_CONTROLLER_NAME,
      conditions: [
        { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'accepted', observedGeneration: 7 },
        { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: 'all references resolved', observedGeneration: 7 },
      ],
    }]);
    const listener = t.gateways[0]!.listeners[0]!;
    expect(listener.attachedRoutes).toBe(1);
    expect(listener.supportedKinds).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' }, { group: 'gateway.networking.k8s.io', kind: 'GRPCRoute' }]);
    expect(listenerConditions(t, 'http')).toEqual({ Accepted: ['True', 'Accepted'], ResolvedRefs: ['True', 'ResolvedRefs'], Conflicted: ['False', 'NoConflicts'] });
    expect(t.gateways[0]!.conditions).toEqual([expect.objectContaining({ type: 'Accepted', status: 'True', reason: 'Accepted' })]);
  });

  it('serves a route without hostnames on a listener without hostname on the catch-all server, matching / by default', () => {
    const t = translate({ httpRoutes: [httpRoute('web', { rules: [{ backendRefs: [{ name: 'web', port: 80 }] }] })] });
    expect(routeTable(t)).toEqual([['', 'prefix', '/', 1, 'default/web:80']]);
  });

  it('drops a rule with a bad path alone, naming the field, and says PartiallyInvalid with "Dropped Rule"', () => {
    const t = translate({
      httpRoutes: [httpRoute('web', { rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/ok' } }, { path: { type: 'Exact', value: '/a/../b' } }], backendRefs: [{ name: 'web', port: 80 }] },
        httpRule('/fine', 'web'),
        httpRule('/(unclosed', 'web', 80, 'RegularExpression'),
      ] })],
    });
    expect(routeTable(t)!.map((r) => r[2])).toEqual(['/fine', '/fine/']);
    expect(parentConditions(t)).toEqual({ Accepted: ['True', 'Accepted'], PartiallyInvalid: ['True', 'UnsupportedValue'], ResolvedRefs: ['True', 'ResolvedRefs'] });
    const partial = parentCondition(t, 'PartiallyInvalid').message;
    expect(partial).toMatch(/^Dropped Rule\(s\): spec\.rules\[0\]\.matches\[1\]\.path\.value: "\/a\/\.\.\/b" must not contain "\/\.\.\/"/);
    expect(partial).toContain('spec.rules[2].matches[0].path.value: "/(unclosed" is not a regular expression');
    expect(t.diagnostics.map((d) => d.message)).toEqual([`HTTPRoute default/web: ${partial}`]);
  });

  it('reports what the model cannot express yet and serves none of the rules using it', () => {
    const t = translate({
      httpRoutes: [httpRoute('web', { rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/u' } }], filters: [{ type: 'RequestMirror' }], backendRefs: [{ name: 'web', port: 80 }] },
        httpRule('/t', 'web', 80, 'PathPrefix', { retry: { attempts: 2 } }),
        { matches: [{ path: { value: '/r' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https' } }, { type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'x-a', value: '1' }] } }] },
        { matches: [{ path: { value: '/zero' } }], backendRefs: [{ name: 'web', port: 80, weight: 90 }, { name: 'api', port: 80, weight: 0 }] },
      ] })],
    });
    expect(routeTable(t)!.map((r) => r[2])).toEqual(['/zero', '/zero/']);
    expect(parentCondition(t, 'PartiallyInvalid').message).toBe('Dropped Rule(s): '
      + 'spec.rules[0].filters: RequestMirror not supported yet; '
      + 'spec.rules[1].retry: not supported yet; '
      + 'spec.rules[2].filters (a header modifier with RequestRedirect): not supported yet');
  });

  describe('matches beyond the path, weights and header modifiers', () => {
    const routesOf = (rules: object[]) => translate({ httpRoutes: [httpRoute('web', { hostnames: ['web.example.com'], rules: rules as never })] });

    it('carries headers (names in lower case, Exact by default), query parameters and the method as the route\'s conditions', () => {
      const t = routesOf([{ matches: [
        { path: { type: 'Exact', value: '/a' }, method: 'POST', headers: [{ name: 'X-Canary', value: 'yes' }, { type: 'RegularExpression', name: 'x-version', value: 'v[12]' }, { name: 'x-canary', value: 'ignored: a later equivalent name' }] },
        { queryParams: [{ name: 'Debug', value: '1' }] },
      ], backendRefs: [{ name: 'web', port: 80 }] }]);
      expect(t.intents[0]!.routes.map((r) => [r.match, r.path, r.conditions])).toEqual([
        ['exact', '/a', { method: 'POST', headers: [{ name: 'x-canary', match: 'exact', value: 'yes' }, { name: 'x-version', match: 'regex', value: 'v[12]' }], queryParams: [] }],
        ['prefix', '/', { headers: [], queryParams: [{ name: 'Debug', match: 'exact', value: '1' }] }],
      ]);
      expect(parentConditions(t)).toEqual({ Accepted: ['True', 'Accepted'], ResolvedRefs: ['True', 'ResolvedRefs'] });
    });

    it('keeps weighted backendRefs with their weights (weight 0 left out) and the header modifiers as edits', () => {
      const t = routesOf([{
        matches: [{ path: { type: 'Exact', value: '/w' } }],
        filters: [
          { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Env', value: 'canary' }], add: [{ name: 'x-trace', value: 'a,b' }], remove: ['X-Secret'] } },
          { type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'cache-control', value: 'no-store' }] } },
        ],
        backendRefs: [{ name: 'web', port: 80, weight: 90 }, { name: 'api', port: 8080, weight: 10 }, { name: 'off', port: 80, weight: 0 }],
      }]);
      const route = t.intents[0]!.routes[0]!;
      expect(route.backends).toEqual([{ backend: { namespace: 'default', service: 'web', port: '80' }, weight: 90 }, { backend: { namespace: 'default', service: 'api', port: '8080' }, weight: 10 }]);
      expect(route.backend).toEqual(route.backends![0]!.backend);
      expect(route.requestHeaders).toEqual({ set: [{ name: 'X-Env', value: 'canary' }], add: [{ name: 'x-trace', value: 'a,b' }], remove: ['x-secret'] });
      expect(route.responseHeaders).toEqual({ set: [{ name: 'cache-control', value: 'no-store' }], add: [], remove: [] });
      expect(route.conditions).toBeUndefined();
    });

    it('rewrites the path (whole, or the prefix each PathPrefix match matched) and the host, and times each attempt', () => {
      const t = routesOf([
        { matches: [{ path: { value: '/strip/' } }, { path: { value: '/' } }], filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 'internal.example.com', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v2' } } }],
          backendRefs: [{ name: 'web', port: 80 }], timeouts: { request: '2s', backendRequest: '500ms' } },
        { matches: [{ path: { type: 'Exact', value: '/old' } }], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplaceFullPath', replaceFullPath: '/new' } } }], backendRefs: [{ name: 'web', port: 80 }], timeouts: { request: '0s' } },
      ]);
      expect(t.intents[0]!.routes.map((r) => [r.match, r.path, r.rewrite, r.timeoutMs])).toEqual([
        ['exact', '/strip', { host: 'internal.example.com', path: { prefix: '/strip', replacement: '/v2' } }, 500],
        ['prefix', '/strip/', { host: 'internal.example.com', path: { prefix: '/strip', replacement: '/v2' } }, 500],
        ['prefix', '/', { host: 'internal.example.com', path: { prefix: '', replacement: '/v2' } }, 500],
        ['exact', '/old', { path: { full: '/new' } }, undefined],
      ]);
    });

    it('refuses a ReplacePrefixMatch without a PathPrefix match, a rewrite with a redirect, and a bad duration, naming the field', () => {
      const t = routesOf([
        { matches: [{ path: { type: 'Exact', value: '/a' } }], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/b' } } }], backendRefs: [{ name: 'web', port: 80 }] },
        { filters: [{ type: 'URLRewrite', urlRewrite: { hostname: '*.example.com' } }, { type: 'RequestRedirect', requestRedirect: {} }], backendRefs: [{ name: 'web', port: 80 }] },
        { timeouts: { request: '1.5s' }, backendRefs: [{ name: 'web', port: 80 }] },
      ]);
      const refused = t.routes[0]!.refused.join('\n');
      expect(refused).toContain('spec.rules[0].filters[0].urlRewrite.path: ReplacePrefixMatch needs a PathPrefix match, and spec.rules[0].matches[0].path is Exact');
      expect(refused).toContain('spec.rules[1].filters: RequestRedirect and URLRewrite cannot be combined');
      expect(refused).toContain('spec.rules[1].filters[0].urlRewrite.hostname: "*.example.com" must not be a wildcard');
      expect(refused).toContain('spec.rules[2].timeouts.request: "1.5s" is not a duration');
    });

    it('refuses bad header names, values and regular expressions, unknown methods and a filter type given twice, naming the field', () => {
      const t = routesOf([
        { matches: [{ headers: [{ name: 'x canary', value: '1' }] }], backendRefs: [{ name: 'web', port: 80 }] },
        { matches: [{ queryParams: [{ type: 'RegularExpression', name: 'q', value: '(open' }] }], backendRefs: [{ name: 'web', port: 80 }] },
        { matches: [{ method: 'BREW' }], backendRefs: [{ name: 'web', port: 80 }] },
        { filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-a', value: 'line\r\nbreak' }] } }], backendRefs: [{ name: 'web', port: 80 }] },
        { filters: [{ type: 'ResponseHeaderModifier', responseHeaderModifier: {} }, { type: 'ResponseHeaderModifier', responseHeaderModifier: {} }], backendRefs: [{ name: 'web', port: 80 }] },
      ]);
      const refused = t.routes[0]!.refused.join('\n');
      expect(refused).toContain('spec.rules[0].matches[0].headers[0].name: "x canary" is not an HTTP header name');
      expect(refused).toContain('spec.rules[1].matches[0].queryParams[0].value: "(open" is not a regular expression');
      expect(refused).toContain('spec.rules[2].matches[0].method: "BREW" is not one of GET, HEAD');
      expect(refused).toContain('spec.rules[3].filters[0].requestHeaderModifier.set[0].value: "line\\r\\nbreak" must not hold control characters');
      expect(refused).toContain('spec.rules[4].filters: more than one ResponseHeaderModifier');
      expect(t.intents).toEqual([]);
    });
  });

  it('refuses a route whose every rule uses an unsupported filter: Accepted False IncompatibleFilters, no intent', () => {
    const t = translate({ httpRoutes: [httpRoute('web', { rules: [httpRule('/', 'web', 80, 'PathPrefix', { filters: [{ type: 'RequestRedirect' }, { type: 'RequestMirror' }] })] })] });
    expect(t.intents).toEqual([]);
    expect(parentConditions(t)).toEqual({ Accepted: ['False', 'IncompatibleFilters'], ResolvedRefs: ['True', 'ResolvedRefs'] });
    expect(parentCondition(t, 'Accepted').message).toBe('HTTPRoute default/web: no rule can be served: spec.rules[0].filters: RequestMirror not supported yet');
  });

  describe('RequestRedirect', () => {
    const redirecting = (requestRedirect: object, listeners = [httpListener('http')], extra: object = {}) => translate({
      gateways: [gateway('gw', listeners)],
      httpRoutes: [httpRoute('web', { hostnames: ['web.example.com'], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/old' } }], filters: [{ type: 'RequestRedirect', requestRedirect }], ...extra }] })],
    }, { ...OPTIONS, ports: { http: listeners[0]!.port, https: 443 } });
    const redirects = (t: GatewayTranslation) => t.intents[0]?.routes.map((r) => `${r.match} ${r.path} -> ${r.redirect?.code} ${r.redirect?.url}`);

    it('answers HTTP with HTTPS (the usual pattern): the scheme\'s well-known port is left out, host, path and query kept', () => {
      const t = redirecting({ scheme: 'https', statusCode: 301 });
      expect(redirects(t)).toEqual(['exact /old -> 301 https://$host$request_uri', 'prefix /old/ -> 301 https://$host$request_uri']);
      expect(parentConditions(t)).toEqual({ Accepted: ['True', 'Accepted'], ResolvedRefs: ['True', 'ResolvedRefs'] });
    });

    it('sets host, port and the full path as asked; 302 by default; without scheme or port the listener\'s port, unless well known', () => {
      expect(redirects(redirecting({ hostname: 'new.example.com', port: 8443, path: { type: 'ReplaceFullPath', replaceFullPath: '/new' } }))?.[0])
        .toBe('exact /old -> 302 $scheme://new.example.com:8443/new$is_args$args');
      expect(redirects(redirecting({ hostname: 'new.example.com' }, [{ ...httpListener('http'), port: 8080 }]))?.[0]).toBe('exact /old -> 302 $scheme://new.example.com:8080$request_uri');
      expect(redirects(redirecting({ scheme: 'http', port: 80 }))?.[0]).toBe('exact /old -> 302 http://$host$request_uri');
    });

    it('does not judge the backendRefs of a redirecting rule: a missing Service is no BackendNotFound', () => {
      const t = redirecting({ scheme: 'https' }, [httpListener('http')], { backendRefs: [{ name: 'missing', port: 80 }] });
      expect(parentConditions(t).ResolvedRefs).toEqual(['True', 'ResolvedRefs']);
      expect(redirects(t)?.length).toBe(2);
    });

    it('refuses values the schema forbids (a manifest file is not checked), naming the field', () => {
      const t = redirecting({ scheme: 'ftp', hostname: '*.example.com', statusCode: 305 });
      expect(t.intents).toEqual([]);
      const message = 'spec.rules[0].filters[0].requestRedirect.scheme: "ftp" is not http or https; '
        + 'spec.rules[0].filters[0].requestRedirect.hostname: "*.example.com" must not be a wildcard; '
        + 'spec.rules[0].filters[0].requestRedirect.statusCode: 305 is not 301, 302, 303, 307 or 308';
      expect(parentCondition(t, 'Accepted').message).toBe(`HTTPRoute default/web: no rule can be served: ${message}`);
      expect(t.routes[0]?.refused).toEqual([`HTTPRoute default/web: ${message}`]);
      const badType = redirecting({ path: { type: 'ReplaceEverything' } });
      expect(badType.routes[0]?.refused).toEqual(['HTTPRoute default/web: spec.rules[0].filters[0].requestRedirect.path.type: "ReplaceEverything" is not ReplaceFullPath or ReplacePrefixMatch']);
    });

    it('has the data plane build a redirect that replaces the matched prefix, or that is one branch among a path\'s matches', () => {
      const prefix = redirecting({ scheme: 'https', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' } });
      expect(prefix.intents[0]!.routes.map((r) => [r.match, r.path, r.redirect, r.redirectTo])).toEqual([
        ['exact', '/old', undefined, { code: 302, scheme: 'https', port: '', path: { prefix: '/old', replacement: '/new' } }],
        ['prefix', '/old/', undefined, { code: 302, scheme: 'https', port: '', path: { prefix: '/old', replacement: '/new' } }],
      ]);
      const conditional = translate({
        gateways: [gateway('gw', [httpListener('http')])],
        httpRoutes: [httpRoute('web', { hostnames: ['web.example.com'], rules: [{ matches: [{ path: { type: 'Exact', value: '/a' }, headers: [{ name: 'x-move', value: '1' }] }], filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'moved.example.com', statusCode: 301 } }] }] })],
      });
      expect(conditional.intents[0]!.routes[0]!.redirectTo).toEqual({ code: 301, host: 'moved.example.com', port: '' });
      const exactPrefix = redirecting({ path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/x' } }, [httpListener('http')], { matches: [{ path: { type: 'Exact', value: '/old' } }] });
      expect(exactPrefix.routes[0]?.refused).toEqual(['HTTPRoute default/web: spec.rules[0].filters[0].requestRedirect.path: ReplacePrefixMatch needs a PathPrefix match, and spec.rules[0].matches[0].path is Exact']);
    });

    it('renders as NGINX return with the URL\'s variables', () => {
      const t = redirecting({ scheme: 'https', statusCode: 301 });
      const { model, diagnostics } = buildModel({ intents: t.intents, services: new Map(), endpointSlices: new Map(), certificates: new Map(), caBundles: new Map(), defaultPolicy: defaultPolicy(BUILTIN_TLS_DEFAULTS, CAPABILITIES), defaultCertificates: [] });
      expect(diagnostics).toEqual([]);
      const location = model.servers.find((x) => x.host === 'web.example.com')?.locations.find((l) => l.path === '/old');
      expect(location?.action).toEqual({ kind: 'redirect', code: 301, url: 'https://$host$request_uri' });
    });
  });

  it('routes to Services only: another kind is ResolvedRefs False InvalidKind, and its share of the rule\'s requests answers 500', () => {
    const t = translate({ httpRoutes: [httpRoute('web', { rules: [
      { backendRefs: [{ group: 'example.com', kind: 'Bucket', name: 'assets' }] },
      { matches: [{ path: { value: '/mixed' } }], backendRefs: [{ name: 'api', port: 80, weight: 3 }, { group: 'example.com', kind: 'Bucket', name: 'assets' }] },
      httpRule('/api', 'api'),
    ] })] });
    expect(routeTable(t)!.map((r) => r[2])).toEqual(['/', '/mixed', '/mixed/', '/api', '/api/']);
    const [whole, mixed] = [t.intents[0]!.routes[0]!, t.intents[0]!.routes[1]!];
    expect(whole.backends).toEqual([{ backend: { namespace: 'default', service: '', port: '' }, weight: 1, refused: true }]);
    expect(mixed.backends?.map((b) => [b.backend.service, b.weight, b.refused ?? false])).toEqual([['api', 3, false], ['', 1, true]]);
    expect(parentConditions(t)).toEqual({ Accepted: ['True', 'Accepted'], ResolvedRefs: ['False', 'InvalidKind'] });
    expect(parentCondition(t, 'ResolvedRefs').message).toBe('HTTPRoute default/web: '
      + 'spec.rules[0].backendRefs[0]: example.com/Bucket is not a Service (the kind QubeSec routes to; its share of requests answers 500); '
      + 'spec.rules[1].backendRefs[1]: example.com/Bucket is not a Service (the kind QubeSec routes to; its share of requests answers 500)');
    const { model } = buildModel({ intents: t.intents, services: new Map([['default/api', service('api', [{ port: 80 }])]]), endpointSlices: new Map(), certificates: new Map(), caBundles: new Map(), defaultPolicy: defaultPolicy(BUILTIN_TLS_DEFAULTS, CAPABILITIES), defaultCertificates: [] });
    const location = model.servers[0]!.locations.find((l) => l.path === '/mixed')!;
    expect(location.action.kind === 'proxy' && location.action.branches?.[0]?.backends).toEqual([{ upstream: 'default_api_80', weight: 3 }, { upstream: '', weight: 1 }]);
  });

  it('refuses a backendRef to a missing Service (its share answers 500, as the spec asks) and says BackendNotFound', () => {
    const t = translate({ httpRoutes: [httpRoute('web', { rules: [httpRule('/', 'gone')] })] });
    expect(t.intents[0]!.routes.map((r) => r.backends)).toEqual([[{ backend: { namespace: 'default', service: '', port: '' }, weight: 1, refused: true }]]);
    expect(parentConditions(t)).toEqual({ Accepted: ['True', 'Accepted'], ResolvedRefs: ['False', 'BackendNotFound'] });
  });

  it('answers 500 for a rule with no backendRef of weight above 0, and accepts it', () => {
    const refused = [{ backend: { namespace: 'default', service: '', port: '' }, weight: 1, refused: true }];
    for (const backendRefs of [[], [{ name: 'api', port: 80, weight: 0 }]]) {
      const t = translate({ httpRoutes: [httpRoute('web', { rules: [{ matches: [{ path: { value: '/none' } }], backendRefs }] })] });
      expect(t.intents[0]!.routes.map((r) => [r.path, r.backends])).toEqual([['/none', refused], ['/none/', refused]]);
      expect(parentConditions(t)).toEqual({ Accepted: ['True', 'Accepted'], ResolvedRefs: ['True', 'ResolvedRefs'] });
    }
  });

  it('needs a ReferenceGrant in the Service\'s namespace for a cross-namespace backendRef', () => {
    const rules = [httpRule('/', 'shared')];
    rules[0]!.backendRefs![0]!.namespace = 'backends';
    const routes = [httpRoute('web', { rules })];
    const without = translate({ httpRoutes: routes });
    expect(without.intents[0]!.routes.map((r) => r.backends)).toEqual([[{ backend: { namespace: 'backends', service: '', port: '' }, weight: 1, refused: true }]]);
    expect(parentConditions(without)).toEqual({ Accepted: ['True', 'Accepted'], ResolvedRefs: ['False', 'RefNotPermitted'] });
    expect(parentCondition(without, 'ResolvedRefs').message).toBe('HTTPRoute default/web: spec.rules[0].backendRefs[0]: Service backends/shared is in another namespace and no ReferenceGrant there allows it (its share of requests answers 500)');

    const fromRoutes = [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'default' }];
    const grants = {
      elsewhere: referenceGrant('allow', 'default', fromRoutes, [{ group: '', kind: 'Service' }]),
      otherName: referenceGrant('allow', 'backends', fromRoutes, [{ group: '', kind: 'Service', name: 'private' }]),
      otherSource: referenceGrant('allow', 'backends', [{ group: 'gateway.networking.k8s.io', kind: 'GRPCRoute', namespace: 'default' }], [{ group: '', kind: 'Service' }]),
      byName: referenceGrant('allow', 'backends', fromRoutes, [{ group: '', kind: 'Service', name: 'shared' }]),
      all: referenceGrant('allow', 'backends', fromRoutes, [{ group: '', kind: 'Service' }]),
    };
    for (const grant of [grants.elsewhere, grants.otherName, grants.otherSource]) {
      expect(parentConditions(translate({ httpRoutes: routes, referenceGrants: [grant] })).ResolvedRefs).toEqual(['False', 'RefNotPermitted']);
    }
    for (const grant of [grants.byName, grants.all]) {
      const t = translate({ httpRoutes: routes, referenceGrants: [grant] });
      expect(parentConditions(t).ResolvedRefs).toEqual(['True', 'ResolvedRefs']);
      expect(routeTable(t)).toEqual([['', 'prefix', '/', 1, 'backends/shared:80']]);
    }
  });
});

describe('hostnames', () => {
  // The examples of the HTTPRoute spec.hostnames documentation.
  it.each([
    ['test.example.com', [], ['test.example.com']],
    ['test.example.com', ['test.example.com'], ['test.example.com']],
    ['test.example.com', ['*.example.com'], ['test.example.com']],
    ['test.example.com', ['other.example.com', '*.example.net'], []],
    ['*.example.com', [], ['*.example.com']],
    ['*.example.com', ['*.example.com'], ['*.example.com']],
    ['*.example.com', ['test.example.com'], ['test.example.com']],
    ['*.example.com', ['foo.test.example.com'], ['foo.test.example.com']],
    ['*.example.com', ['*.test.example.com'], ['*.test.example.com']],
    ['*.test.example.com', ['*.example.com'], ['*.test.example.com']],
    ['*.example.com', ['example.com'], []],
    ['*.example.com', ['test.example.net'], []],
    ['*.example.com', ['test.example.com', 'test.example.net'], ['test.example.com']],
    [undefined, ['a.example.com', 'b.example.com'], ['a.example.com', 'b.example.com']],
    [undefined, [], ['']],
  ])('listener %s and route %j intersect in %j', (listener, route, expected) => {
    expect(intersect(listener, route)).toEqual(expected);
  });

  it('says NoMatchingListenerHostname when no hostname of the route matches a listener', () => {
    const t = translate({
      gateways: [gateway('gw', [httpListener('http', '*.example.com')])],
      httpRoutes: [httpRoute('web', { hostnames: ['example.com', 'test.example.net'], rules: [httpRule('/', 'web')] })],
    });
    expect(t.intents).toEqual([]);
    expect(parentConditions(t).Accepted).toEqual(['False', 'NoMatchingListenerHostname']);
    expect(t.gateways[0]!.listeners[0]!.attachedRoutes).toBe(1);
  });

  it('serves a route on the union of what its listeners give it', () => {
    const t = translate({
      gateways: [gateway('gw', [httpListener('a', 'a.example.com'), httpListener('wild', '*.example.org')])],
      httpRoutes: [httpRoute('web', { hostnames: ['a.example.com', 'x.example.org', 'other.example.net'], rules: [httpRule('/', 'web')] })],
    });
    expect(routeTable(t)!.map((r) => r[0])).toEqual(['a.example.com', 'x.example.org']);
  });
});

describe('parentRefs and allowedRoutes', () => {
  it('says NoMatchingParent for a sectionName or port no listener has', () => {
    for (const parentRef of [{ name: 'gw', sectionName: 'nope' }, { name: 'gw', port: 8080 }]) {
      const t = translate({ httpRoutes: [httpRoute('web', { parentRefs: [parentRef], rules: [httpRule('/', 'web')] })] });
      expect(parentConditions(t).Accepted).toEqual(['False', 'NoMatchingParent']);
      expect(t.intents).toEqual([]);
    }
    const named = translate({
      gateways: [gateway('gw', [httpListener('a', 'a.example.com'), httpListener('b', 'b.example.com')])],
      httpRoutes: [httpRoute('web', { parentRefs: [{ name: 'gw', sectionName: 'b' }], rules: [httpRule('/', 'web')] })],
    });
    expect(routeTable(named)!.map((r) => r[0])).toEqual(['b.example.com']);
    expect(named.gateways[0]!.listeners.map((l) => l.attachedRoutes)).toEqual([0, 1]);
    const twice = translate({
      gateways: [gateway('gw', [httpListener('a', 'a.example.com'), httpListener('b', 'b.example.com')])],
      httpRoutes: [httpRoute('web', { parentRefs: [{ name: 'gw' }, { name: 'gw', sectionName: 'b' }], rules: [httpRule('/', 'web')] })],
    });
    expect(twice.gateways[0]!.listeners.map((l) => l.attachedRoutes)).toEqual([1, 1]);
    expect(twice.routes[0]!.parents.map((p) => p.parentRef.sectionName)).toEqual([undefined, 'b']);
  });

  it('allows routes of the Gateway\'s namespace by default, all with All, and selected namespaces with Selector', () => {
    const routeIn = (namespace: string) => httpRoute(`web-${namespace}`, { parentRefs: [{ name: 'gw', namespace: 'default' }], rules: [httpRule('/', 'web')] }, { namespace });
    const routes = ['default', 'team-a', 'team-b'].map(routeIn);
    const accepted = (t: GatewayTranslation) => t.routes.map((r) => [r.ref.namespace, r.parents[0]!.conditions[0]!.status, r.parents[0]!.conditions[0]!.reason]);
    expect(accepted(translate({ httpRoutes: routes }))).toEqual([['default', 'True', 'Accepted'], ['team-a', 'False', 'NotAllowedByListeners'], ['team-b', 'False', 'NotAllowedByListeners']]);
    const all = translate({ gateways: [gateway('gw', [httpListener('http', undefined, { namespaces: { from: 'All' } })])], httpRoutes: routes });
    expect(accepted(all).map((r) => r[1])).toEqual(['True', 'True', 'True']);
    expect(all.intents.map((i) => i.routes[0]!.backend.namespace)).toEqual(['default', 'team-a', 'team-b']);
    const byLabels = translate({ gateways: [gateway('gw', [httpListener('http', undefined, { namespaces: { from: 'Selector', selector: { matchLabels: { team: 'a' } } } })])], httpRoutes: routes });
    expect(accepted(byLabels).map((r) => r[1])).toEqual(['False', 'True', 'False']);
    const byExpression = translate({ gateways: [gateway('gw', [httpListener('http', undefined, { namespaces: { from: 'Selector', selector: { matchExpressions: [{ key: 'team', operator: 'In', values: ['a', 'b'] }, { key: 'env', operator: 'DoesNotExist' }] } } })])], httpRoutes: routes });
    expect(accepted(byExpression).map((r) => r[1])).toEqual(['False', 'False', 'True']);
    expect(byExpression.gateways[0]!.listeners[0]!.attachedRoutes).toBe(1);
  });

  it('lists the kinds a listener allows of HTTPRoute and GRPCRoute among supportedKinds, says InvalidRouteKinds for others, and attaches each route kind only where allowed', () => {
    const t = translate({
      gateways: [gateway('gw', [
        httpListener('grpc-only', 'g.example.com', { kinds: [{ kind: 'GRPCRoute' }] }),
        httpListener('mixed', 'm.example.com', { kinds: [{ kind: 'HTTPRoute' }, { kind: 'TCPRoute' }] }),
      ])],
      httpRoutes: [httpRoute('web', { rules: [httpRule('/', 'web')] })],
      grpcRoutes: [grpcRoute('calls', { rules: [grpcRule('echo.Echo', undefined, 'api')] })],
    });
    const [grpcOnly, mixed] = t.gateways[0]!.listeners;
    expect(grpcOnly!.supportedKinds).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'GRPCRoute' }]);
    expect(mixed!.supportedKinds).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' }]);
    expect(grpcOnly!.attachedRoutes).toBe(1);
    expect(mixed!.attachedRoutes).toBe(1);
    expect(listenerConditions(t, 'grpc-only').ResolvedRefs).toEqual(['True', 'ResolvedRefs']);
    expect(listenerConditions(t, 'mixed').ResolvedRefs).toEqual(['False', 'InvalidRouteKinds']);
    expect(routeTable(t)!.map((r) => r[0])).toEqual(['m.example.com']);
    expect(new Set(routeTable(t, 'calls')!.map((r) => r[0]))).toEqual(new Set(['g.example.com']));
  });
});

describe('listeners', () => {
  it('puts an HTTPS listener\'s certificateRefs on the route\'s hosts, ML-DSA and ECDSA side by side, into the model', () => {
    const t = translate({
      gateways: [gateway('gw', [httpsListener('https', '*.pq.example.com', ['pq-mldsa', 'pq-ecdsa'])])],
      httpRoutes: [httpRoute('web', { hostnames: ['www.pq.example.com'], rules: [httpRule('/', 'web')] })],
    });
    expect(t.intents[0]!.tls).toEqual([{ hosts: ['www.pq.example.com'], secret: 'default/pq-mldsa' }, { hosts: ['www.pq.example.com'], secret: 'default/pq-ecdsa' }]);
    expect(t.intents[0]!.policy).toEqual(defaultPolicy(BUILTIN_TLS_DEFAULTS, CAPABILITIES));
    expect(t.intents[0]!.policyFromAnnotations).toBe(false);
    const { model, diagnostics } = buildModel({
      intents: t.intents,
      services: new Map([['default/web', service('web', [{ name: 'http', port: 80 }])]]),
      endpointSlices: new Map([['default/web', [endpointSlice('web', { name: 'http', port: 8080 }, [{ ip: '198.18.0.10' }])]]]),
      certificates: CERTIFICATES,
      caBundles: new Map(),
      defaultPolicy: defaultPolicy(BUILTIN_TLS_DEFAULTS, CAPABILITIES),
      defaultCertificates: [],
    });
    expect(diagnostics).toEqual([]);
    const server = model.servers.find((s) => s.host === 'www.pq.example.com')!;
    expect(server.tls!.certificates.map((c) => [c.source, c.keyAlgorithm])).toEqual([['default/pq-mldsa', 'ml-dsa-65'], ['default/pq-ecdsa', 'ec']]);
    expect(server.locations).toEqual([expect.objectContaining({ match: 'prefix', path: '/', ingress: expect.objectContaining({ kind: 'HTTPRoute', name: 'web' }), action: expect.objectContaining({ kind: 'proxy', upstream: 'default_web_80' }) })]);
    expect(model.upstreams).toEqual([expect.objectContaining({ name: 'default_web_80', endpoints: [{ address: '198.18.0.10', port: 8080 }] })]);
  });

  it('needs a ReferenceGrant for a Secret in another namespace: RefNotPermitted without, served with', () => {
    const listeners = [httpsListener('https', 'shared.example.com', [{ kind: 'Secret', name: 'shared', namespace: 'certs' }])];
    const routes = [httpRoute('web', { rules: [httpRule('/', 'web')] })];
    const without = translate({ gateways: [gateway('gw', listeners)], httpRoutes: routes });
    expect(listenerConditions(without, 'https')).toEqual({ Accepted: ['True', 'Accepted'], ResolvedRefs: ['False', 'RefNotPermitted'], Conflicted: ['False', 'NoConflicts'] });
    // No usable certificate: the listener serves nothing rather than a default certificate or plain text.
    expect(without.intents).toEqual([]);
    expect(parentConditions(without).Accepted).toEqual(['False', 'NoMatchingParent']);
    const grant = referenceGrant('gateways-may-read', 'certs', [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'default' }], [{ group: '', kind: 'Secret', name: 'shared' }]);
    const granted = translate({ gateways: [gateway('gw', listeners)], httpRoutes: routes, referenceGrants: [grant] });
    expect(listenerConditions(granted, 'https').ResolvedRefs).toEqual(['True', 'ResolvedRefs']);
    expect(granted.intents[0]!.tls).toEqual([{ hosts: ['shared.example.com'], secret: 'certs/shared' }]);
  });

  it('says InvalidCertificateRef for a missing Secret or another kind, serving the certificates that are good', () => {
    const t = translate({
      gateways: [gateway('gw', [httpsListener('https', 'pq.example.com', ['pq-mldsa', 'missing', { group: 'example.com', kind: 'Vault', name: 'v' }])])],
      httpRoutes: [httpRoute('web', { rules: [httpRule('/', 'web')] })],
    });
    expect(listenerConditions(t, 'https').ResolvedRefs).toEqual(['False', 'InvalidCertificateRef']);
    const message = t.gateways[0]!.listeners[0]!.conditions.find((c) => c.type === 'ResolvedRefs')!.message;
    expect(message).toBe('Gateway default/gw: spec.listeners[0].tls.certificateRefs[1]: Secret default/missing is missing or holds no valid certificate and key; '
      + 'Gateway default/gw: spec.listeners[0].tls.certificateRefs[2]: example.com/Vault is not a Secret');
    expect(t.intents[0]!.tls).toEqual([{ hosts: ['pq.example.com'], secret: 'default/pq-mldsa' }]);
  });

  it('keeps a Gateway whose only listener lacks its Secret accepted, the listener serving nothing until the Secret is good', () => {
    const t = translate({
      gateways: [gateway('gw', [httpsListener('https', 'pq.example.com', ['not-yet'])])],
      httpRoutes: [httpRoute('web', { rules: [httpRule('/', 'web')] })],
    });
    expect(t.gateways[0]!.conditions[0]).toEqual(expect.objectContaining({ status: 'True', reason: 'Accepted' }));
    expect(listenerConditions(t, 'https')).toEqual({ Accepted: ['True', 'Accepted'], ResolvedRefs: ['False', 'InvalidCertificateRef'], Conflicted: ['False', 'NoConflicts'] });
    expect(t.intents).toEqual([]);
    expect(parentCondition(t, 'Accepted').message).toBe('HTTPRoute default/web: the listeners it names (https) are not accepted or have no usable certificate');
  });

  it('reads tls.options with the Ingress annotations\' parser, and nginx.org/ssl-ecdh-curve as tls-groups', () => {
    const strict = translate({
      gateways: [gateway('gw', [httpsListener('https', 'pq.example.com', ['pq-mldsa'], { 'qubesec.io/pq-mode': 'strict', 'qubesec.io/certificate-preference': 'post-quantum', 'example.com/other': 'ignored' })])],
      httpRoutes: [httpRoute('web', { rules: [httpRule('/', 'web')] })],
    });
    const fromAnnotations = translateIngress(ingress('same', { rules: [route('pq.example.com', '/', 'Prefix', 'web')] }, { annotations: { 'qubesec.io/pq-mode': 'strict', 'qubesec.io/certificate-preference': 'post-quantum' } }), BUILTIN_TLS_DEFAULTS, CAPABILITIES);
    expect(strict.intents[0]!.policy).toEqual(fromAnnotations.intent!.policy);
    expect(strict.intents[0]!.policy.groups).toEqual(GROUPS_BY_MODE.strict);
    expect(strict.intents[0]!.policyFromAnnotations).toBe(true);

    const ngf = translate({
      gateways: [gateway('gw', [httpsListener('https', 'pq.example.com', ['pq-mldsa'], { 'nginx.org/ssl-ecdh-curve': 'X25519MLKEM768:x25519' })])],
      httpRoutes: [httpRoute('web', { rules: [httpRule('/', 'web')] })],
    });
    expect(ngf.intents[0]!.policy.groups).toEqual([['X25519MLKEM768'], ['x25519']]);
  });

  it.each([
    [{ 'qubesec.io/pq-mode': 'fast' }, 'Gateway default/gw: spec.listeners[0].tls.options[qubesec.io/pq-mode]: "fast" is not one of hybrid, strict, classical'],
    [{ 'qubesec.io/pq-mode': 'strict', 'qubesec.io/tls-min-version': '1.2' }, 'Gateway default/gw: spec.listeners[0].tls.options[qubesec.io/tls-min-version]: 1.2 cannot go with pq-mode strict (ML-KEM groups exist only in TLS 1.3)'],
    [{ 'nginx.org/ssl-ecdh-curve': 'X448MLKEM' }, 'Gateway default/gw: spec.listeners[0].tls.options[nginx.org/ssl-ecdh-curve]: group "X448MLKEM" is not supported by the data plane (OpenSSL 3.5.9)'],
    [{ 'nginx.org/ssl-ecdh-curve': 'x25519', 'qubesec.io/tls-groups': 'X25519MLKEM768' }, 'Gateway default/gw: spec.listeners[0].tls.options[nginx.org/ssl-ecdh-curve]: set it or qubesec.io/tls-groups, not both'],
    [{ 'qubesec.io/pq-mod': 'strict' }, 'Gateway default/gw: spec.listeners[0].tls.options[qubesec.io/pq-mod]: not a QubeSec listener option (qubesec.io/pq-mode, qubesec.io/tls-groups, qubesec.io/tls-min-version, qubesec.io/certificate-preference)'],
  ])('refuses the listener alone for tls.options %j', (options, message) => {
    const t = translate({
      gateways: [gateway('gw', [httpsListener('https', 'pq.example.com', ['pq-mldsa'], options), httpListener('http', 'pq.example.com')])],
      httpRoutes: [httpRoute('web', { rules: [httpRule('/', 'web')] })],
    });
    const accepted = t.gateways[0]!.listeners[0]!.conditions.find((c) => c.type === 'Accepted')!;
    expect([accepted.status, accepted.reason, accepted.message]).toEqual(['False', 'UnsupportedValue', message]);
    expect(t.gateways[0]!.conditions[0]).toEqual(expect.objectContaining({ status: 'True', reason: 'ListenersNotValid' }));
    // The HTTP listener still serves the route, without TLS.
    expect(t.intents[0]!.tls).toEqual([]);
    expect(t.diagnostics).toContainEqual(expect.objectContaining({ object: expect.objectContaining({ kind: 'Gateway', name: 'gw' }), reason: 'UnsupportedValue', message }));
  });

  it('refuses indistinct listeners, all of them: HostnameConflict and ProtocolConflict', () => {
    const t = translate({
      gateways: [gateway('gw', [httpListener('one', 'a.example.com'), httpListener('two', 'a.example.com'), httpListener('other', 'b.example.com')], { generation: 3 })],
      httpRoutes: [httpRoute('web', { rules: [httpRule('/', 'web')] })],
    });
    expect(listenerConditions(t, 'one')).toEqual({ Accepted: ['False', 'HostnameConflict'], ResolvedRefs: ['True', 'ResolvedRefs'], Conflicted: ['True', 'HostnameConflict'] });
    expect(listenerConditions(t, 'two').Conflicted).toEqual(['True', 'HostnameConflict']);
    expect(listenerConditions(t, 'other').Conflicted).toEqual(['False', 'NoConflicts']);
    expect(t.gateways[0]!.conditions).toEqual([{ type: 'Accepted', status: 'True', reason: 'ListenersNotValid', message: 'Gateway default/gw: listeners one, two are not valid; the others are accepted', observedGeneration: 3 }]);
    expect(routeTable(t)!.map((r) => r[0])).toEqual(['b.example.com']);

    const samePort = translate({ gateways: [gateway('gw', [httpListener('plain'), { ...httpsListener('tls', undefined, ['pq-mldsa']), port: 80 }])] }, { ...OPTIONS, ports: { http: 80, https: 80 } });
    expect(listenerConditions(samePort, 'plain').Conflicted).toEqual(['True', 'ProtocolConflict']);
    expect(listenerConditions(samePort, 'tls').Conflicted).toEqual(['True', 'ProtocolConflict']);
    expect(samePort.gateways[0]!.conditions[0]).toEqual(expect.objectContaining({ status: 'False', reason: 'ListenersNotValid' }));
  });

  it('refuses protocols and ports the data plane does not serve, and requested addresses', () => {
    const t = translate({ gateways: [gateway('gw', [
      { name: 'udp', port: 443, protocol: 'UDP' },
      { name: 'odd-port', port: 8080, protocol: 'HTTP' },
      httpListener('http'),
    ])] });
    expect(listenerConditions(t, 'udp').Accepted).toEqual(['False', 'UnsupportedProtocol']);
    // No route kind on a protocol QubeSec does not serve (the spec), and no InvalidRouteKinds for it either.
    expect(t.gateways[0]!.listeners.find((l) => l.name === 'udp')!.supportedKinds).toEqual([]);
    expect(listenerConditions(t, 'udp').ResolvedRefs).toEqual(['True', 'ResolvedRefs']);
    expect(listenerConditions(t, 'odd-port').Accepted).toEqual(['False', 'PortUnavailable']);
    expect(listenerConditions(t, 'http').Accepted).toEqual(['True', 'Accepted']);
    const withAddress = gateway('gw', [httpListener('http')]);
    withAddress.spec.addresses = [{ type: 'IPAddress', value: '198.18.0.1' }];
    const addressed = translate({ gateways: [withAddress], httpRoutes: [httpRoute('web', { rules: [httpRule('/', 'web')] })] });
    expect(addressed.gateways[0]!.conditions[0]).toEqual(expect.objectContaining({ status: 'False', reason: 'UnsupportedAddress' }));
    expect(addressed.intents).toEqual([]);
  });
});

describe('precedence between routes (through buildModel)', () => {
  const build = (routes: HTTPRoute[], extraIntents: ReturnType<typeof translateIngress>['intent'][] = []) => {
    const t = translate({ httpRoutes: routes });
    return buildModel({
      intents: [...t.intents, ...extraIntents.map((i) => i!)],
      services: new Map(['web', 'api'].map((name) => [`default/${name}`, service(name, [{ port: 80 }])])),
      endpointSlices: new Map(),
      certificates: new Map(),
      caBundles: new Map(),
      defaultPolicy: defaultPolicy(BUILTIN_TLS_DEFAULTS, CAPABILITIES),
      defaultCertificates: [],
    });
  };
  const owners = (result: ReturnType<typeof build>, host = 'a.example.com') => result.model.servers.find((s) => s.host === host)!.locations.map((l) => [l.match, l.path, l.ingress.name]);

  it('gives a host and path both routes claim to the oldest, then to the first by namespace/name', () => {
    const older = httpRoute('zeta', { hostnames: ['a.example.com'], rules: [httpRule('/api', 'web')] }, { created: '2026-01-01T00:00:00Z' });
    const newer = httpRoute('alpha', { hostnames: ['a.example.com'], rules: [httpRule('/api', 'api')] }, { created: '2026-02-01T00:00:00Z' });
    expect(owners(build([newer, older]))).toEqual([['exact', '/api', 'zeta'], ['prefix', '/api/', 'zeta']]);
    const tied = httpRoute('alpha', { hostnames: ['a.example.com'], rules: [httpRule('/api', 'api')] }, { created: '2026-01-01T00:00:00Z' });
    const result = build([older, tied]);
    expect(owners(result)).toEqual([['exact', '/api', 'alpha'], ['prefix', '/api/', 'alpha']]);
    expect(result.diagnostics.filter((d) => d.reason === 'Conflict').map((d) => [d.object.kind, d.object.name])).toEqual([['HTTPRoute', 'zeta'], ['HTTPRoute', 'zeta']]);
  });

  it('lets an Exact match beat an older route\'s PathPrefix, and the first rule of a route beat a later one, without conflict', () => {
    const prefix = httpRoute('prefix', { hostnames: ['a.example.com'], rules: [httpRule('/api', 'web')] }, { created: '2026-01-01T00:00:00Z' });
    const exact = httpRoute('exact', { hostnames: ['a.example.com'], rules: [httpRule('/api', 'api', 80, 'Exact')] }, { created: '2026-03-01T00:00:00Z' });
    const twice = httpRoute('twice', { hostnames: ['a.example.com'], rules: [httpRule('/b', 'web'), httpRule('/b', 'api')] });
    const result = build([prefix, exact, twice]);
    expect(owners(result)).toEqual([['exact', '/api', 'exact'], ['prefix', '/api/', 'prefix'], ['exact', '/b', 'twice'], ['prefix', '/b/', 'twice']]);
    expect(result.model.servers.find((s) => s.host === 'a.example.com')!.locations.filter((l) => l.path.startsWith('/b')).map((l) => l.action.kind === 'proxy' && l.action.upstream)).toEqual(['default_web_80', 'default_web_80']);
    expect(result.diagnostics).toEqual([]);
  });

  it('keeps an HTTPRoute and an Ingress of the same name apart, the older winning a path both claim', () => {
    const httpRouteWeb = httpRoute('web', { hostnames: ['a.example.com'], rules: [httpRule('/api', 'api')] }, { created: '2026-03-01T00:00:00Z' });
    const ingressWeb = translateIngress(ingress('web', { rules: [route('a.example.com', '/api', 'Prefix', 'web'), route('a.example.com', '/', 'Prefix', 'web')] }, { created: '2026-01-01T00:00:00Z' }), BUILTIN_TLS_DEFAULTS, CAPABILITIES).intent;
    const result = build([httpRouteWeb], [ingressWeb]);
    expect(owners(result).map(([, path, , ]) => path)).toEqual(['/', '/api', '/api/']);
    expect(result.model.servers.find((s) => s.host === 'a.example.com')!.locations.map((l) => l.ingress.kind)).toEqual(['Ingress', 'Ingress', 'Ingress']);
    expect(result.diagnostics.map((d) => d.message)).toEqual([
      'HTTPRoute default/web: spec.rules[0].matches[0] (a.example.com exact /api) is already served by Ingress default/web, which is older',
      'HTTPRoute default/web: spec.rules[0].matches[0] (a.example.com prefix /api/) is already served by Ingress default/web, which is older',
    ]);
  });

  it('one bad route fails alone', () => {
    const bad = httpRoute('bad', { hostnames: ['a.example.com'], rules: [httpRule('/x;', 'web')] });
    const good = httpRoute('good', { hostnames: ['a.example.com'], rules: [httpRule('/', 'web')] });
    const t = translate({ httpRoutes: [bad, good] });
    expect(t.intents.map((i) => i.ref.name)).toEqual(['good']);
    expect(parentConditions(t, 'bad').Accepted).toEqual(['False', 'UnsupportedValue']);
    expect(parentCondition(t, 'Accepted', 'bad').message).toMatch(/^HTTPRoute default\/bad: no rule can be served: spec\.rules\[0\]\.matches\[0\]\.path\.value: "\/x;" must start with "\/"/);
    expect(parentConditions(t, 'good').Accepted).toEqual(['True', 'Accepted']);
  });

  describe('routes that differ in matches beyond the path share one location, as branches in the spec\'s order', () => {
    const branchesOf = (result: ReturnType<typeof build>, path: string, match = 'exact') => {
      const location = result.model.servers.find((s) => s.host === 'a.example.com')!.locations.find((l) => l.path === path && l.match === match)!;
      if (location.action.kind !== 'proxy') throw new Error(`location ${path} does not proxy`);
      return location.action.branches?.map((b) => [b.conditions.method ?? '', b.conditions.headers.map((h) => h.name).join('+'), b.conditions.queryParams.map((q) => q.name).join('+'), b.backends.map((x) => `${x.upstream}*${x.weight}`).join(' ')]);
    };

    it('orders a method match first, then more headers, then more query parameters, then older routes; a plain path last', () => {
      const plain = httpRoute('plain', { hostnames: ['a.example.com'], rules: [httpRule('/a', 'web', 80, 'Exact')] }, { created: '2026-01-01T00:00:00Z' });
      const matching = httpRoute('matching', { hostnames: ['a.example.com'], rules: [
        { matches: [{ path: { type: 'Exact', value: '/a' }, queryParams: [{ name: 'q', value: '1' }, { name: 'r', value: '2' }] }], backendRefs: [{ name: 'api', port: 80 }] },
        { matches: [{ path: { type: 'Exact', value: '/a' }, headers: [{ name: 'x-one', value: '1' }] }], backendRefs: [{ name: 'api', port: 80 }] },
        { matches: [{ path: { type: 'Exact', value: '/a' }, method: 'POST' }], backendRefs: [{ name: 'web', port: 80, weight: 3 }, { name: 'api', port: 80, weight: 1 }] },
      ] }, { created: '2026-02-01T00:00:00Z' });
      const result = build([matching, plain]);
      expect(result.diagnostics).toEqual([]);
      expect(branchesOf(result, '/a')).toEqual([
        ['POST', '', '', 'default_web_80*3 default_api_80*1'],
        ['', 'x-one', '', 'default_api_80*1'],
        ['', '', 'q+r', 'default_api_80*1'],
        ['', '', '', 'default_web_80*1'],
      ]);
      expect(result.model.upstreams.map((u) => u.name)).toEqual(['default_api_80', 'default_web_80']);
    });

    it('lets an Exact path beat a PathPrefix\'s header match there, and a route without branches keep its plain location', () => {
      const exact = httpRoute('exact', { hostnames: ['a.example.com'], rules: [httpRule('/a', 'web', 80, 'Exact')] }, { created: '2026-03-01T00:00:00Z' });
      const prefix = httpRoute('prefix', { hostnames: ['a.example.com'], rules: [{ matches: [{ path: { value: '/a' }, headers: [{ name: 'x-one', value: '1' }] }], backendRefs: [{ name: 'api', port: 80 }] }] }, { created: '2026-01-01T00:00:00Z' });
      const result = build([exact, prefix]);
      expect(result.diagnostics).toEqual([]);
      expect(branchesOf(result, '/a')).toEqual([['', '', '', 'default_web_80*1'], ['', 'x-one', '', 'default_api_80*1']]);
      expect(branchesOf(result, '/a/', 'prefix')).toEqual([['', 'x-one', '', 'default_api_80*1']]);
      const plainOnly = build([exact]);
      expect(branchesOf(plainOnly, '/a')).toBeUndefined();
    });

    it('makes a redirect that shares a path with routes that have conditions the last branch, built in Lua', () => {
      const redirecting = httpRoute('redirecting', { hostnames: ['a.example.com'], rules: [{ matches: [{ path: { type: 'Exact', value: '/a' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https' } }] }] }, { created: '2026-01-01T00:00:00Z' });
      const matching = httpRoute('matching', { hostnames: ['a.example.com'], rules: [{ matches: [{ path: { type: 'Exact', value: '/a' }, headers: [{ name: 'x-one', value: '1' }] }], backendRefs: [{ name: 'web', port: 80 }] }] }, { created: '2026-02-01T00:00:00Z' });
      const result = build([redirecting, matching]);
      expect(result.diagnostics).toEqual([]);
      expect(branchesOf(result, '/a')).toEqual([['', 'x-one', '', 'default_web_80*1'], ['', '', '', '']]);
      const location = result.model.servers.find((s) => s.host === 'a.example.com')!.locations[0]!;
      expect(location.action.kind === 'proxy' && location.action.branches?.[1]?.redirect).toEqual({ code: 302, scheme: 'https', port: '' });
      // Alone on its path it stays an NGINX return.
      expect(build([redirecting]).model.servers.find((s) => s.host === 'a.example.com')!.locations[0]!.action).toEqual({ kind: 'redirect', code: 302, url: 'https://$host$request_uri' });
    });

    it('gives equal conditions to the older route, and refuses to mix in an Ingress whose proxy settings differ, with Conflicts', () => {
      const older = httpRoute('older', { hostnames: ['a.example.com'], rules: [{ matches: [{ path: { value: '/api' }, headers: [{ name: 'x-one', value: '1' }] }], backendRefs: [{ name: 'web', port: 80 }] }] }, { created: '2026-01-01T00:00:00Z' });
      const newer = httpRoute('newer', { hostnames: ['a.example.com'], rules: [{ matches: [{ path: { value: '/api' }, headers: [{ name: 'X-One', value: '1' }] }], backendRefs: [{ name: 'api', port: 80 }] }] }, { created: '2026-02-01T00:00:00Z' });
      const tuned = translateIngress(ingress('tuned', { rules: [route('a.example.com', '/api', 'Prefix', 'web')] }, { created: '2025-01-01T00:00:00Z', annotations: { 'nginx.ingress.kubernetes.io/proxy-body-size': '1m' } }), BUILTIN_TLS_DEFAULTS, CAPABILITIES).intent;
      const result = build([older, newer], [tuned]);
      expect(branchesOf(result, '/api/', 'prefix')).toEqual([['', 'x-one', '', 'default_web_80*1']]);
      expect(result.diagnostics.filter((d) => d.reason === 'Conflict').map((d) => d.message).sort()).toEqual([
        'HTTPRoute default/newer: spec.rules[0].matches[0] (a.example.com exact /api) is already served with the same conditions by HTTPRoute default/older, which is older',
        'HTTPRoute default/newer: spec.rules[0].matches[0] (a.example.com prefix /api/) is already served with the same conditions by HTTPRoute default/older, which is older',
        'Ingress default/tuned: spec.rules[0].http.paths[0] (a.example.com exact /api) shares its path with HTTPRoute default/older, whose proxy settings differ; it is not served',
        'Ingress default/tuned: spec.rules[0].http.paths[0] (a.example.com prefix /api/) shares its path with HTTPRoute default/older, whose proxy settings differ; it is not served',
      ]);
    });
  });
});

describe('GRPCRoute -> IngressIntent', () => {
  const grpcTable = (t: GatewayTranslation, name = 'calls') => t.intents.find((i) => i.ref.kind === 'GRPCRoute' && i.ref.name === name)?.routes.map((r) => [r.host, r.match, r.path, r.conditions?.headers.map((h) => `${h.name}=${h.value}`) ?? []]);

  it('serves method matches as the paths of their calls (/service/method), headers as conditions, gRPC to the pods', () => {
    const t = translate({
      gateways: [gateway('gw', [httpsListener('https', '*.pq.example.com', ['pq-mldsa'])])],
      grpcRoutes: [grpcRoute('calls', { hostnames: ['rpc.pq.example.com'], rules: [
        grpcRule('echo.Echo', 'Say', 'api'),
        grpcRule('echo.Echo', undefined, 'web'),
        grpcRule(undefined, 'Health', 'web'),
        { matches: [{ method: { type: 'RegularExpression', service: 'echo\\.v[0-9]+\\.Echo', method: 'Say.*' }, headers: [{ name: 'X-Version', value: '2' }] }], backendRefs: [{ name: 'api', port: 80 }] },
        { backendRefs: [{ name: 'web', port: 80 }] },
      ] })],
    });
    expect(grpcTable(t)).toEqual([
      ['rpc.pq.example.com', 'exact', '/echo.Echo/Say', []],
      // A PathPrefix's implied exact path: no gRPC call has it, so it changes nothing.
      ['rpc.pq.example.com', 'exact', '/echo.Echo', []],
      ['rpc.pq.example.com', 'prefix', '/echo.Echo/', []],
      ['rpc.pq.example.com', 'regex', '^(?:/[^/]+/Health)$', []],
      ['rpc.pq.example.com', 'regex', '^(?:/(?:echo\\.v[0-9]+\\.Echo)/(?:Say.*))$', ['x-version=2']],
      ['rpc.pq.example.com', 'prefix', '/', []],
    ]);
    const intent = t.intents.find((i) => i.ref.kind === 'GRPCRoute')!;
    expect(intent.proxy.protocol).toBe('GRPC');
    expect(intent.tls).toEqual([{ hosts: ['rpc.pq.example.com'], secret: 'default/pq-mldsa' }]);
    const status = t.routes.find((r) => r.ref.kind === 'GRPCRoute')!;
    expect(status.parents[0]!.conditions.map((c) => [c.type, c.status, c.reason])).toEqual([['Accepted', 'True', 'Accepted'], ['ResolvedRefs', 'True', 'ResolvedRefs']]);

    // Through the model: the locations proxy with grpc_pass's protocol.
    const { model } = buildModel({ intents: t.intents, services: new Map([['default/api', service('api', [{ port: 80 }])], ['default/web', service('web', [{ port: 80 }])]]), endpointSlices: new Map(), certificates: CERTIFICATES, caBundles: new Map(), defaultPolicy: defaultPolicy(BUILTIN_TLS_DEFAULTS, CAPABILITIES), defaultCertificates: [] });
    const location = model.servers.find((x) => x.host === 'rpc.pq.example.com')!.locations.find((l) => l.path === '/echo.Echo/Say')!;
    expect(location.action.kind === 'proxy' && location.action.protocol).toBe('GRPC');
  });

  it('refuses bad method matches and filters a GRPCRoute cannot have, naming the field; a filter not served yet drops the rule alone', () => {
    const t = translate({ grpcRoutes: [grpcRoute('calls', { rules: [
      { matches: [{ method: { service: 'echo/Echo', method: 'Say' } }], backendRefs: [{ name: 'api', port: 80 }] },
      { matches: [{ method: {} }], backendRefs: [{ name: 'api', port: 80 }] },
      { matches: [{ method: { type: 'Prefix', service: 'echo.Echo' } }], backendRefs: [{ name: 'api', port: 80 }] },
      { filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 'x.example.com' } }], backendRefs: [{ name: 'api', port: 80 }] },
      { filters: [{ type: 'RequestMirror' }], backendRefs: [{ name: 'api', port: 80 }] },
      grpcRule('echo.Echo', 'Say', 'api'),
    ] })] });
    expect(t.routes[0]!.refused).toEqual([
      'GRPCRoute default/calls: spec.rules[0].matches[0].method.service: "echo/Echo" is not a gRPC service name (such as helloworld.Greeter)',
      'GRPCRoute default/calls: spec.rules[1].matches[0].method: needs a service, a method or both',
      'GRPCRoute default/calls: spec.rules[2].matches[0].method.type: "Prefix" is not Exact or RegularExpression',
      'GRPCRoute default/calls: spec.rules[3].filters[0].type: "URLRewrite" is not a GRPCRoute filter (RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, ExtensionRef)',
    ]);
    expect(parentConditions(t, 'calls').PartiallyInvalid).toEqual(['True', 'UnsupportedValue']);
    expect(parentCondition(t, 'PartiallyInvalid', 'calls').message).toContain('spec.rules[4].filters: RequestMirror not supported yet');
    expect(grpcTable(t)).toEqual([['', 'exact', '/echo.Echo/Say', []]]);
  });

  it('needs a ReferenceGrant from GRPCRoutes for a cross-namespace backendRef: one from HTTPRoutes does not do', () => {
    const routes = [grpcRoute('calls', { rules: [{ backendRefs: [{ name: 'shared', namespace: 'backends', port: 80 }] }] })];
    const forHttp = referenceGrant('http', 'backends', [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'default' }], [{ group: '', kind: 'Service' }]);
    const forGrpc = referenceGrant('grpc', 'backends', [{ group: 'gateway.networking.k8s.io', kind: 'GRPCRoute', namespace: 'default' }], [{ group: '', kind: 'Service' }]);
    expect(parentConditions(translate({ grpcRoutes: routes, referenceGrants: [forHttp] }), 'calls').ResolvedRefs).toEqual(['False', 'RefNotPermitted']);
    expect(parentConditions(translate({ grpcRoutes: routes, referenceGrants: [forGrpc] }), 'calls').ResolvedRefs).toEqual(['True', 'ResolvedRefs']);
  });

  it('accepts one of an HTTPRoute and a GRPCRoute whose hostnames intersect on a listener, the older; the other keeps only the listeners without the conflict', () => {
    const listeners = [httpListener('a', 'a.example.com'), httpListener('wild', '*.example.com')];
    const web = httpRoute('web', { parentRefs: [{ name: 'gw', sectionName: 'a' }], rules: [httpRule('/', 'web')] }, { created: '2026-01-01T00:00:00Z' });
    const calls = (created: string, parentRefs = [{ name: 'gw' }]) => grpcRoute('calls', { parentRefs, hostnames: ['a.example.com', 'b.example.com'], rules: [grpcRule('echo.Echo', undefined, 'api')] }, { created });

    // Newer: loses listener a, keeps the wildcard listener's hosts, and stays accepted there.
    const newer = translate({ gateways: [gateway('gw', listeners)], httpRoutes: [web], grpcRoutes: [calls('2026-02-01T00:00:00Z')] });
    expect(parentConditions(newer, 'calls').Accepted).toEqual(['True', 'Accepted']);
    expect(new Set(grpcTable(newer)!.map((r) => r[0]))).toEqual(new Set(['a.example.com', 'b.example.com']));
    expect(routeTable(newer)!.map((r) => r[0])).toEqual(['a.example.com']);

    // Newer and on listener a alone: not accepted, no intent; the HTTPRoute serves.
    const alone = translate({ gateways: [gateway('gw', listeners)], httpRoutes: [web], grpcRoutes: [calls('2026-02-01T00:00:00Z', [{ name: 'gw', sectionName: 'a' }] as never)] });
    expect(parentConditions(alone, 'calls').Accepted).toEqual(['False', 'HostnameConflict']);
    expect(parentCondition(alone, 'Accepted', 'calls').message).toBe('GRPCRoute default/calls: HTTPRoute default/web, older, serves intersecting hostnames on the same listeners (the spec accepts one of the two)');
    expect(grpcTable(alone)).toBeUndefined();
    expect(alone.diagnostics).toContainEqual(expect.objectContaining({ object: expect.objectContaining({ kind: 'GRPCRoute', name: 'calls' }), reason: 'HostnameConflict' }));

    // Older: the HTTPRoute loses instead.
    const older = translate({ gateways: [gateway('gw', listeners)], httpRoutes: [web], grpcRoutes: [calls('2025-12-01T00:00:00Z', [{ name: 'gw', sectionName: 'a' }] as never)] });
    expect(parentConditions(older).Accepted).toEqual(['False', 'HostnameConflict']);
    expect(parentConditions(older, 'calls').Accepted).toEqual(['True', 'Accepted']);
    expect(routeTable(older)).toBeUndefined();

    // Hostnames apart: both served.
    const apart = translate({ gateways: [gateway('gw', listeners)], httpRoutes: [httpRoute('web', { hostnames: ['c.example.com'], parentRefs: [{ name: 'gw', sectionName: 'wild' }], rules: [httpRule('/', 'web')] })], grpcRoutes: [calls('2026-02-01T00:00:00Z', [{ name: 'gw', sectionName: 'wild' }] as never)] });
    expect([parentConditions(apart).Accepted, parentConditions(apart, 'calls').Accepted]).toEqual([['True', 'Accepted'], ['True', 'Accepted']]);
  });
});

describe('BackendTLSPolicy', () => {
  const CA_PEM = testPem('mldsa-ca.crt');
  const checkedCas = (...configMaps: V1ConfigMap[]) => new Map(configMaps.map((c) => [`${c.metadata!.namespace}/${c.metadata!.name}`, checkCaConfigMap(c, NOW)]));
  const services = servicesByKey(['default/web', 'default/api']);
  services.set('default/pods', service('pods', [{ name: 'plain', port: 80 }, { name: 'https', port: 443 }]));
  const withPolicies = (policies: BackendTLSPolicy[], rules: HTTPRouteRule[] = [httpRule('/', 'web')], cas = checkedCas(caConfigMap('ca', CA_PEM))) =>
    translate({ httpRoutes: [httpRoute('web', { hostnames: ['web.example.com'], rules })], backendTlsPolicies: policies, caConfigMaps: cas, services });
  const modelOf = (t: GatewayTranslation) => buildModel({ intents: t.intents, services, endpointSlices: new Map(), certificates: new Map(), caBundles: new Map(), defaultPolicy: defaultPolicy(BUILTIN_TLS_DEFAULTS, CAPABILITIES), defaultCertificates: [] });
  const policyConditions = (t: GatewayTranslation, name: string) => {
    const status = t.policies.find((p) => p.ref.name === name);
    return status?.ancestors.map((a) => [`${a.ancestorRef.kind} ${a.ancestorRef.namespace}/${a.ancestorRef.name}`, a.controllerName, Object.fromEntries(a.conditions.map((c) => [c.type, `${c.status}/${c.reason}`]))]);
  };
  const actionAt = (t: GatewayTranslation, path: string) => modelOf(t).model.servers.find((s) => s.host === 'web.example.com')!.locations.find((l) => l.path === path)!.action;

  it('verifies the pods against the ConfigMap\'s CA for the policy\'s hostname, sent as SNI, with the route\'s hybrid groups; the Gateway is its ancestor', () => {
    const t = withPolicies([backendTlsPolicy('web-tls', 'web')]);
    const backendTls = t.intents[0]!.routes[0]!.backendTls;
    expect(backendTls).toEqual({ serverName: 'pods.example.com', ca: expect.objectContaining({ source: 'default/ca' }) });
    expect(policyConditions(t, 'web-tls')).toEqual([['Gateway default/gw', GATEWAY_CONTROLLER_NAME, { Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' }]]);
    expect(parentConditions(t)).toEqual({ Accepted: ['True', 'Accepted'], ResolvedRefs: ['True', 'ResolvedRefs'] });

    const action = actionAt(t, '/');
    if (action.kind !== 'proxy') throw new Error(`expected a proxy, got ${action.kind}`);
    expect(action.protocol).toBe('HTTPS');
    expect(action.tls).toEqual({ policy: t.intents[0]!.policy, serverName: 'pods.example.com', sendServerName: true, verify: { ca: expect.objectContaining({ source: 'default/ca', pem: expect.stringContaining('BEGIN CERTIFICATE') }), depth: 4 } });
    expect(action.tls!.policy.groups[0]![0]).toBe('X25519MLKEM768');
    const config = inlined(render(modelOf(t).model, RENDER_SETTINGS));
    expect(config).toMatch(/proxy_ssl_name pods\.example\.com;\n\s+proxy_ssl_session_reuse on;\n\s+proxy_ssl_verify on;\n\s+proxy_ssl_verify_depth 4;\n\s+proxy_ssl_trusted_certificate \/run\/qubesec\/certs\/ca-[0-9a-f]{64}\.pem;/);
    expect(config).toContain('proxy_ssl_server_name on;');
    expect(config).toContain('proxy_pass https://');
  });

  it('applies a policy naming the port (sectionName) before one naming the Service alone; others of one target are Conflicted, the oldest applying', () => {
    const rules = [httpRule('/tls', 'pods', 443), httpRule('/plain', 'pods', 80)];
    const t = withPolicies([
      backendTlsPolicy('whole', 'pods', { hostname: 'whole.example.com' }),
      backendTlsPolicy('https-port', 'pods', { hostname: 'port.example.com' }, { sectionName: 'https', created: '2026-02-01T00:00:00Z' }),
      backendTlsPolicy('https-port-older', 'pods', { hostname: 'older.example.com' }, { sectionName: 'https', created: '2025-12-01T00:00:00Z' }),
      backendTlsPolicy('no-such-port', 'pods', { hostname: 'nothing.example.com' }, { sectionName: 'grpc' }),
    ], rules);
    const tlsOf = (path: string) => t.intents[0]!.routes.find((r) => r.path === path)!.backendTls;
    expect(tlsOf('/tls')).toEqual(expect.objectContaining({ serverName: 'older.example.com' }));
    expect(tlsOf('/plain')).toEqual(expect.objectContaining({ serverName: 'whole.example.com' }));
    expect(policyConditions(t, 'https-port-older')?.[0]?.[2]).toEqual({ Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' });
    expect(policyConditions(t, 'whole')?.[0]?.[2]).toEqual({ Accepted: 'True/Accepted', ResolvedRefs: 'True/ResolvedRefs' });
    expect(policyConditions(t, 'https-port')?.[0]?.[2]).toEqual({ Accepted: 'False/Conflicted', ResolvedRefs: 'True/ResolvedRefs' });
    expect(t.policies.find((p) => p.ref.name === 'https-port')!.ancestors[0]!.conditions[0]!.message).toBe('BackendTLSPolicy default/https-port: BackendTLSPolicy default/https-port-older targets the same Service and section and is older; it applies');
    // A policy no backend of our routes reaches has no status of ours.
    expect(policyConditions(t, 'no-such-port')).toBeUndefined();
    // A route without a policy stays plain.
    expect(withPolicies([]).intents[0]!.routes[0]!.backendTls).toBeUndefined();
    // A policy from a manifest file (no creationTimestamp) counts as the newest.
    const fromFile = backendTlsPolicy('a-from-file', 'web', { hostname: 'file.example.com' });
    delete fromFile.metadata.creationTimestamp;
    const stored = withPolicies([fromFile, backendTlsPolicy('z-stored', 'web', { hostname: 'stored.example.com' })]);
    expect(stored.intents[0]!.routes[0]!.backendTls).toEqual(expect.objectContaining({ serverName: 'stored.example.com' }));
  });

  it('fails the backend closed (503) when its policy cannot be honoured, with the spec\'s reasons', () => {
    const missing = withPolicies([backendTlsPolicy('missing', 'web', { caCertificateRefs: [{ group: '', kind: 'ConfigMap', name: 'nowhere' }] })]);
    expect(policyConditions(missing, 'missing')?.[0]?.[2]).toEqual({ Accepted: 'False/NoValidCACertificate', ResolvedRefs: 'False/InvalidCACertificateRef' });
    expect(missing.policies[0]!.ancestors[0]!.conditions[1]!.message).toBe('BackendTLSPolicy default/missing: spec.validation.caCertificateRefs[0]: ConfigMap default/nowhere not found');
    expect(actionAt(missing, '/')).toEqual({ kind: 'unavailable', reason: 'BackendTLSPolicy default/missing: spec.validation.caCertificateRefs[0]: ConfigMap default/nowhere not found' });
    expect(missing.diagnostics).toContainEqual(expect.objectContaining({ object: expect.objectContaining({ kind: 'BackendTLSPolicy', name: 'missing' }), reason: 'NoValidCACertificate' }));
    // The route itself stays accepted with its references resolved: the policy is what is wrong.
    expect(parentConditions(missing)).toEqual({ Accepted: ['True', 'Accepted'], ResolvedRefs: ['True', 'ResolvedRefs'] });

    const empty = withPolicies([backendTlsPolicy('empty', 'web', { caCertificateRefs: [{ group: '', kind: 'ConfigMap', name: 'empty' }] })], undefined, checkedCas({ metadata: { name: 'empty', namespace: 'default' }, data: {} }));
    expect(empty.policies[0]!.ancestors[0]!.conditions[1]).toMatchObject({ status: 'False', reason: 'InvalidCACertificateRef', message: 'BackendTLSPolicy default/empty: spec.validation.caCertificateRefs[0]: ConfigMap default/empty: data.ca.crt is required (the CA certificates to verify with)' });
    expect(actionAt(empty, '/').kind).toBe('unavailable');

    const wrongKind = withPolicies([backendTlsPolicy('kind', 'web', { caCertificateRefs: [{ group: '', kind: 'Secret', name: 'ca' }] })]);
    expect(policyConditions(wrongKind, 'kind')?.[0]?.[2]).toEqual({ Accepted: 'False/NoValidCACertificate', ResolvedRefs: 'False/InvalidKind' });
    expect(actionAt(wrongKind, '/').kind).toBe('unavailable');

    const sans = withPolicies([backendTlsPolicy('sans', 'web', { subjectAltNames: [{ type: 'Hostname', hostname: 'other.example.com' }] })]);
    expect(policyConditions(sans, 'sans')?.[0]?.[2]).toEqual({ Accepted: 'False/Invalid', ResolvedRefs: 'True/ResolvedRefs' });
    expect(actionAt(sans, '/').kind).toBe('unavailable');
    const wildcard = withPolicies([backendTlsPolicy('wild', 'web', { hostname: '*.example.com' })]);
    expect(wildcard.policies[0]!.ancestors[0]!.conditions[0]!.message).toBe('BackendTLSPolicy default/wild: spec.validation.hostname: "*.example.com" is a wildcard (the spec asks for a precise hostname)');
    const unknownSet = withPolicies([backendTlsPolicy('set', 'web', { wellKnownCACertificates: 'example.com/corporate' })]);
    expect(policyConditions(unknownSet, 'set')?.[0]?.[2]).toEqual({ Accepted: 'False/Invalid', ResolvedRefs: 'True/ResolvedRefs' });
  });

  it('verifies against the data plane\'s system CAs for wellKnownCACertificates: System, and joins the bundles of several ConfigMaps', () => {
    const system = withPolicies([backendTlsPolicy('system', 'web', { wellKnownCACertificates: 'System' })]);
    expect(system.intents[0]!.routes[0]!.backendTls).toEqual({ serverName: 'pods.example.com', ca: SYSTEM_CAS });
    expect(inlined(render(modelOf(system).model, RENDER_SETTINGS))).toContain('proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;');

    const two = withPolicies([backendTlsPolicy('two', 'web', { caCertificateRefs: [{ group: '', kind: 'ConfigMap', name: 'ca' }, { group: '', kind: 'ConfigMap', name: 'ca-2' }] })], undefined, checkedCas(caConfigMap('ca', CA_PEM), caConfigMap('ca-2', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')));
    // One reference that does not parse fails the backend closed though the other is good.
    expect(policyConditions(two, 'two')?.[0]?.[2]).toEqual({ Accepted: 'True/Accepted', ResolvedRefs: 'False/InvalidCACertificateRef' });
    expect(actionAt(two, '/').kind).toBe('unavailable');
    const joined = withPolicies([backendTlsPolicy('two', 'web', { caCertificateRefs: [{ group: '', kind: 'ConfigMap', name: 'ca' }, { group: '', kind: 'ConfigMap', name: 'ca-2' }] })], undefined, checkedCas(caConfigMap('ca', CA_PEM), caConfigMap('ca-2', CA_PEM)));
    const ca = joined.intents[0]!.routes[0]!.backendTls as { ca: CaBundle };
    expect(ca.ca.source).toBe('default/ca,default/ca-2');
    expect(ca.ca.pem.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
  });

  it('keeps TLS and plain pods apart: a rule whose backends differ in policy is dropped, routes sharing a path with another policy are not served there, and the upstreams differ', () => {
    const mixed = withPolicies([backendTlsPolicy('web-tls', 'web')], [{ ...httpRule('/', 'web'), backendRefs: [{ name: 'web', port: 80, weight: 1 }, { name: 'api', port: 80, weight: 1 }] }, httpRule('/api', 'api')]);
    expect(parentConditions(mixed)).toEqual({ Accepted: ['True', 'Accepted'], PartiallyInvalid: ['True', 'UnsupportedValue'], ResolvedRefs: ['True', 'ResolvedRefs'] });
    expect(parentCondition(mixed, 'PartiallyInvalid').message).toBe('Dropped Rule(s): spec.rules[0].backendRefs: their Services differ in BackendTLSPolicy (a rule has one TLS setting to its pods): not supported yet');
    expect(policyConditions(mixed, 'web-tls')).toBeUndefined();

    const shared = translate({
      httpRoutes: [
        httpRoute('web', { hostnames: ['web.example.com'], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [{ name: 'x-tls', value: '1' }] }], backendRefs: [{ name: 'web', port: 80 }] }] }, { created: '2026-01-01T00:00:00Z' }),
        httpRoute('plain', { hostnames: ['web.example.com'], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/' }, headers: [{ name: 'x-plain', value: '1' }] }], backendRefs: [{ name: 'api', port: 80 }] }] }, { created: '2026-02-01T00:00:00Z' }),
      ],
      backendTlsPolicies: [backendTlsPolicy('web-tls', 'web')], caConfigMaps: checkedCas(caConfigMap('ca', CA_PEM)), services,
    });
    const built = modelOf(shared);
    expect(built.diagnostics).toContainEqual(expect.objectContaining({ object: expect.objectContaining({ kind: 'HTTPRoute', name: 'plain' }), reason: 'Conflict' }));
    const location = built.model.servers.find((s) => s.host === 'web.example.com')!.locations.find((l) => l.path === '/')!;
    expect(location.action.kind === 'proxy' && location.action.branches?.map((b) => b.conditions.headers[0]!.name)).toEqual(['x-tls']);

    const both = modelOf(withPolicies([backendTlsPolicy('web-tls', 'web')], [httpRule('/tls', 'web')]));
    const plainToo = modelOf(translate({ httpRoutes: [httpRoute('web', { hostnames: ['web.example.com'], rules: [httpRule('/tls', 'web')] }), httpRoute('other', { hostnames: ['other.example.com'], rules: [httpRule('/', 'web')] })], backendTlsPolicies: [], services }));
    expect(both.model.upstreams.map((u) => u.name)).toEqual([expect.stringMatching(/^default_web_80_tls_[0-9a-f]{12}$/)]);
    expect(plainToo.model.upstreams.map((u) => u.name)).toEqual(['default_web_80']);
  });

  it('speaks gRPC over TLS (grpcs) to a GRPCRoute\'s pods under a policy', () => {
    const t = translate({ grpcRoutes: [grpcRoute('calls', { hostnames: ['web.example.com'], rules: [grpcRule('echo.Echo', undefined, 'web')] })], backendTlsPolicies: [backendTlsPolicy('web-tls', 'web')], caConfigMaps: checkedCas(caConfigMap('ca', CA_PEM)), services });
    const action = modelOf(t).model.servers.find((s) => s.host === 'web.example.com')!.locations[0]!.action;
    expect(action.kind === 'proxy' && [action.protocol, action.tls?.serverName]).toEqual(['GRPCS', 'pods.example.com']);
    expect(inlined(render(modelOf(t).model, RENDER_SETTINGS))).toContain('grpc_pass grpcs://');
  });
});

describe('TLSRoute (passthrough)', () => {
  const services = servicesByKey(['default/web', 'default/api']);
  services.set('default/pods', service('pods', [{ name: 'https', port: 443 }]));
  const gw = () => gateway('gw', [tlsListener('pass', '*.pass.example.com'), httpsListener('https', '*.pq.example.com', ['pq-mldsa'])]);
  const withRoutes = (tlsRoutes: TLSRoute[], extra: Partial<GatewaySnapshot> = {}) => translate({ gateways: [gw()], tlsRoutes, services, ...extra });
  const slices = new Map([['default/pods', [endpointSlice('pods', { name: 'https', port: 8443 }, [{ ip: '198.18.0.20' }, { ip: '198.18.0.21' }])]]]);
  const modelOf = (t: GatewayTranslation) => buildModel({ intents: t.intents, services, endpointSlices: slices, certificates: CERTIFICATES, caBundles: new Map(), defaultPolicy: defaultPolicy(BUILTIN_TLS_DEFAULTS, CAPABILITIES), defaultCertificates: [] });

  it('passes a TLS listener\'s SNI names through to the Service, beside an HTTPS listener on the same port; statuses as the spec says', () => {
    const t = withRoutes([tlsRoute('pass', ['db.pass.example.com', 'db.other.example.com'], 'pods')]);
    expect(listenerConditions(t, 'pass')).toEqual({ Accepted: ['True', 'Accepted'], ResolvedRefs: ['True', 'ResolvedRefs'], Conflicted: ['False', 'NoConflicts'] });
    expect(t.gateways[0]!.listeners.map((l) => [l.name, l.supportedKinds.map((k) => k.kind), l.attachedRoutes])).toEqual([['pass', ['TLSRoute'], 1], ['https', ['HTTPRoute', 'GRPCRoute'], 0]]);
    expect(parentConditions(t, 'pass')).toEqual({ Accepted: ['True', 'Accepted'], ResolvedRefs: ['True', 'ResolvedRefs'] });
    const intent = t.intents.find((i) => i.ref.kind === 'TLSRoute')!;
    expect(intent.passthrough).toEqual({ hosts: ['db.pass.example.com'], backends: [{ backend: { namespace: 'default', service: 'pods', port: '443' }, weight: 1 }] });
    expect(intent.routes).toEqual([]);

    const { model, diagnostics } = modelOf(t);
    expect(diagnostics).toEqual([]);
    const server = model.servers.find((s) => s.host === 'db.pass.example.com')!;
    expect(server).toEqual({ host: 'db.pass.example.com', locations: [], passthrough: { backends: [{ upstream: 'default_pods_443', weight: 1 }] } });
    expect(model.upstreams.find((u) => u.name === 'default_pods_443')?.endpoints).toEqual([{ address: '198.18.0.20', port: 8443 }, { address: '198.18.0.21', port: 8443 }]);

    const config = inlined(render(model, RENDER_SETTINGS));
    const socket = /db\.pass\.example\.com unix:(\/run\/qubesec\/sockets\/passthrough-[0-9a-f]{16}\.sock);/.exec(config)?.[1];
    expect(socket).toBeDefined();
    expect(config).toContain(`listen unix:${socket} proxy_protocol;`);
    expect(config).toMatch(/upstream qubesec_passthrough_[0-9a-f]{16} \{\n\s+server 198\.18\.0\.20:8443 weight=60;\n\s+server 198\.18\.0\.21:8443 weight=60;\n\s+\}/);
    // The HTTPS listener's hosts now come through the stream block's default, on the policy's socket.
    expect(config).toMatch(/default unix:\/run\/qubesec\/sockets\/tls-[0-9a-f]{16}\.sock;/);
    expect(config).not.toMatch(/server_name db\.pass\.example\.com;/);
  });

  it('rejects the share of connections of a missing or refused backend, by weight, and reloads for endpoint changes', () => {
    const route = tlsRoute('pass', ['db.pass.example.com'], 'pods');
    route.spec.rules![0]!.backendRefs = [{ name: 'pods', port: 443, weight: 3 }, { name: 'gone', port: 443, weight: 1 }, { group: 'example.com', kind: 'Bucket', name: 'x', weight: 1 }];
    const t = withRoutes([route]);
    expect(parentConditions(t, 'pass')).toEqual({ Accepted: ['True', 'Accepted'], ResolvedRefs: ['False', 'BackendNotFound'] });
    const { model } = modelOf(t);
    const config = inlined(render(model, RENDER_SETTINGS));
    expect(config).toMatch(/server 198\.18\.0\.20:8443 weight=180;\n\s+server 198\.18\.0\.21:8443 weight=180;\n\s+server unix:\/run\/qubesec\/sockets\/rejected\.sock weight=120 max_fails=0;\n\s+server unix:\/run\/qubesec\/sockets\/rejected\.sock weight=120 max_fails=0;/);
    expect(config).toContain('proxy_next_upstream off;');

    // No Lua balancer in the stream block: the endpoints are in the configuration, whose hash sees them.
    const moved = { ...model, upstreams: model.upstreams.map((u) => ({ ...u, endpoints: [{ address: '198.18.0.22', port: 8443 }] })) };
    expect(configurationHash(moved)).not.toBe(configurationHash(model));
    const plain = modelOf(translate({ httpRoutes: [httpRoute('web', { rules: [httpRule('/', 'pods', 443)] })], services }));
    expect(configurationHash({ ...plain.model, upstreams: plain.model.upstreams.map((u) => ({ ...u, endpoints: [] })) })).toBe(configurationHash(plain.model));
  });

  it('refuses what passthrough cannot do, each alone: no hostnames, a Terminate TLS listener, another port; an HTTPRoute for a passed-through host is not served there', () => {
    const none = withRoutes([tlsRoute('pass', [], 'pods')]);
    expect(parentConditions(none, 'pass').Accepted).toEqual(['False', 'UnsupportedValue']);
    expect(parentCondition(none, 'Accepted', 'pass').message).toBe('TLSRoute default/pass: spec.hostnames: a TLSRoute needs at least one (the SNI names it takes)');

    const terminate = translate({ gateways: [gateway('gw', [{ ...tlsListener('pass'), tls: { mode: 'Terminate', certificateRefs: [{ name: 'pq-mldsa' }] } }, { ...tlsListener('elsewhere'), port: 8443 }])], tlsRoutes: [tlsRoute('pass', ['db.pass.example.com'], 'pods')], services });
    expect(listenerConditions(terminate, 'pass').Accepted).toEqual(['False', 'UnsupportedValue']);
    expect(listenerConditions(terminate, 'elsewhere').Accepted).toEqual(['False', 'PortUnavailable']);
    expect(terminate.intents).toEqual([]);

    // An HTTPRoute does not attach to a TLS listener, nor a TLSRoute to an HTTPS one.
    const crossed = translate({ gateways: [gw()], httpRoutes: [httpRoute('web', { parentRefs: [{ name: 'gw', sectionName: 'pass' }], hostnames: ['web.pass.example.com'], rules: [httpRule('/', 'web')] })], tlsRoutes: [tlsRoute('pass', ['db.pq.example.com'], 'pods', 443)].map((r) => ({ ...r, spec: { ...r.spec, parentRefs: [{ name: 'gw', sectionName: 'https' }] } })), services });
    expect(parentConditions(crossed).Accepted).toEqual(['False', 'NotAllowedByListeners']);
    expect(parentConditions(crossed, 'pass').Accepted).toEqual(['False', 'NotAllowedByListeners']);

    // A TLS and an HTTPS listener for one hostname on one port: both Conflicted (SNI cannot tell them apart).
    const clash = translate({ gateways: [gateway('gw', [tlsListener('pass', 'db.example.com'), httpsListener('https', 'db.example.com', ['pq-mldsa'])])], services });
    expect(listenerConditions(clash, 'pass').Conflicted).toEqual(['True', 'HostnameConflict']);
    expect(listenerConditions(clash, 'https').Conflicted).toEqual(['True', 'HostnameConflict']);

    // Passthrough wins the host: an HTTPRoute for it through another listener is not served for it.
    const both = translate({ gateways: [gateway('gw', [tlsListener('pass'), httpListener('http')])], httpRoutes: [httpRoute('web', { parentRefs: [{ name: 'gw', sectionName: 'http' }], hostnames: ['db.pass.example.com'], rules: [httpRule('/', 'web')] })], tlsRoutes: [tlsRoute('pass', ['db.pass.example.com'], 'pods')], services });
    const built = modelOf(both);
    expect(built.model.servers.find((s) => s.host === 'db.pass.example.com')?.passthrough).toBeDefined();
    expect(built.diagnostics).toContainEqual(expect.objectContaining({ object: expect.objectContaining({ kind: 'HTTPRoute', name: 'web' }), reason: 'Conflict', message: 'HTTPRoute default/web: host db.pass.example.com is passed through (TLS, by SNI) to TLSRoute default/pass, which is a TLSRoute; it is not served for that host' }));
  });
});
