import { buildModel } from '../model/build.js';
import { checkTlsSecret } from '../model/certificates.js';
import { GATEWAY_CONTROLLER_NAME, translateGateways } from '../model/gateway.js';
import { translateIngress, type IngressIntent } from '../model/ingress.js';
import { BUILTIN_TLS_DEFAULTS, defaultPolicy } from '../model/pq.js';
import { ANNOTATION_CASES } from '../model/proxy-annotations.cases.js';
import { INGRESS_NGINX_PREFIX } from '../model/proxy-annotations.js';
import { CAPABILITIES, gatewayClass, ingress, route, service, tlsSecret } from '../model/testing.js';
import type { CertificatePair, Model } from '../model/types.js';
import { ANNOTATION_MIGRATION, migrateIngresses, type Migration } from './gateway-api.js';

const NOW = new Date('2026-11-28T00:00:00Z');
const OPTIONS = { gatewayName: 'qubesec', gatewayClassName: 'qubesec', defaults: BUILTIN_TLS_DEFAULTS, capabilities: CAPABILITIES };
const SERVICES = new Map([['default/web', service('web', [{ name: 'http', port: 80 }])], ['default/api', service('api', [{ port: 8080 }])]]);

function pair(name: string, file: string): CertificatePair {
  const checked = checkTlsSecret(tlsSecret(name, file), NOW);
  if ('error' in checked) throw new Error(checked.error);
  return checked.pair;
}
const CERTIFICATES = new Map([['default/pq-mldsa', pair('pq-mldsa', 'mldsa65')], ['default/pq-ecdsa', pair('pq-ecdsa', 'ecdsa')]]);

const dual = (hosts: string[]) => ({ tls: [{ hosts, secretName: 'pq-mldsa' }, { hosts, secretName: 'pq-ecdsa' }] });
const migrate = (ingresses: Parameters<typeof migrateIngresses>[0]) => migrateIngresses(ingresses, SERVICES, OPTIONS);

/**
 * What a model serves: per host, each location's match, path and Service port (by number: an upstream is named by the
 * port as written), and the host's certificates and pq-mode.
 */
function served(model: Model) {
  const target = (name: string) => {
    const { namespace, name: service, port } = model.upstreams.find((u) => u.name === name)!.service;
    const number = SERVICES.get(`${namespace}/${service}`)?.spec?.ports?.find((p) => p.name === port || String(p.port) === port)?.port;
    return `${namespace}/${service}:${number}`;
  };
  return model.servers.filter((s) => s.host !== '' || s.locations.length > 0).map((s) => ({
    host: s.host,
    certificates: s.tls?.certificates.map((c) => c.source) ?? [],
    policy: s.tls?.policy.pqMode,
    locations: s.locations.map((l) => `${l.match} ${l.path} ${l.action.kind === 'proxy' ? target(l.action.upstream) : l.action.kind}`),
  }));
}
const modelOf = (intents: IngressIntent[]) => buildModel({
  intents, services: SERVICES, endpointSlices: new Map(), certificates: CERTIFICATES, caBundles: new Map(),
  defaultPolicy: defaultPolicy(BUILTIN_TLS_DEFAULTS, CAPABILITIES), defaultCertificates: [],
}).model;
function servedByMigration(migration: Migration) {
  const t = translateGateways({
    gatewayClasses: [gatewayClass()], gateways: migration.gateways, httpRoutes: migration.httpRoutes, grpcRoutes: [], tlsRoutes: [], referenceGrants: [], backendTlsPolicies: [],
    namespaceLabels: new Map([['default', {}]]), services: SERVICES, certificates: CERTIFICATES, caConfigMaps: new Map(),
  }, { controllerName: GATEWAY_CONTROLLER_NAME, defaults: BUILTIN_TLS_DEFAULTS, capabilities: CAPABILITIES, ports: { http: 80, https: 443 } });
  expect(t.routes.flatMap((r) => r.parents.flatMap((p) => p.conditions.filter((c) => c.status === 'False').map((c) => c.message)))).toEqual([]);
  return served(modelOf(t.intents));
}
const servedByIngresses = (ingresses: Parameters<typeof migrateIngresses>[0]) => served(modelOf(ingresses.map((i) => translateIngress(i, BUILTIN_TLS_DEFAULTS, CAPABILITIES).intent!)));

describe('qubesec migrate: Ingresses -> Gateway and HTTPRoutes', () => {
  it('gives each TLS host an HTTPS listener with its ML-DSA and ECDSA Secrets and its qubesec.io TLS annotations as options', () => {
    const m = migrate([ingress('shop', { ...dual(['shop.example.com']), rules: [route('shop.example.com', '/', 'Prefix', 'web', 'http'), route('shop.example.com', '/api', 'Exact', 'api', 8080)] }, { annotations: { 'qubesec.io/pq-mode': 'strict' } })]);
    expect(m.notes).toEqual([]);
    expect(m.gateways).toEqual([{
      apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'qubesec', namespace: 'default' },
      spec: { gatewayClassName: 'qubesec', listeners: [
        { name: 'http', port: 80, protocol: 'HTTP' },
        { name: 'https-shop.example.com', port: 443, protocol: 'HTTPS', hostname: 'shop.example.com', tls: { mode: 'Terminate', certificateRefs: [{ kind: 'Secret', name: 'pq-mldsa' }, { kind: 'Secret', name: 'pq-ecdsa' }], options: { 'qubesec.io/pq-mode': 'strict' } } },
      ] },
    }]);
    expect(m.httpRoutes.map((r) => [r.metadata.name, r.spec.parentRefs, r.spec.hostnames, r.spec.rules!.map((x) => [x.matches![0]!.path, x.backendRefs])])).toEqual([[
      'shop-shop.example.com', [{ name: 'qubesec', sectionName: 'https-shop.example.com' }], ['shop.example.com'],
      [[{ type: 'PathPrefix', value: '/' }, [{ name: 'web', port: 80 }]], [{ type: 'Exact', value: '/api' }, [{ name: 'api', port: 8080 }]]],
    ]]);
  });

  it('serves on QubeSec what the Ingresses served: the same hosts, paths, upstreams, certificates and policy', () => {
    const ingresses = [
      ingress('shop', { ...dual(['shop.example.com']), rules: [route('shop.example.com', '/', 'Prefix', 'web', 'http'), route('shop.example.com', '/api', 'Exact', 'api', 8080)] }, { annotations: { 'qubesec.io/pq-mode': 'strict' } }),
      ingress('plain', { rules: [route('plain.example.com', '/docs', 'Prefix', 'web', 80)] }),
      ingress('stripped', { rules: [route('strip.example.com', '/app(/|$)(.*)', 'ImplementationSpecific', 'web', 80)] }, { annotations: { [`${INGRESS_NGINX_PREFIX}rewrite-target`]: '/$2' } }),
      ingress('moved', { rules: [route('old.example.com', '/', 'Prefix', 'web', 80)] }, { annotations: { [`${INGRESS_NGINX_PREFIX}permanent-redirect`]: 'https://new.example.com/landing' } }),
    ];
    const m = migrate(ingresses);
    expect(m.notes).toEqual([]);
    const byIngress = servedByIngresses(ingresses.slice(0, 2));
    const byRoutes = servedByMigration(m);
    expect(byRoutes.filter((s) => s.host === 'shop.example.com' || s.host === 'plain.example.com')).toEqual(byIngress.filter((s) => s.host !== ''));
    // The rewrite and the redirect are Gateway API filters, which the Ingress model spells differently: checked as routes.
    const stripped = m.httpRoutes.find((r) => r.metadata.name === 'stripped-strip.example.com')!;
    expect(stripped.spec.rules).toEqual([{ matches: [{ path: { type: 'PathPrefix', value: '/app' } }], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } }], backendRefs: [{ name: 'web', port: 80 }] }]);
    const moved = m.httpRoutes.find((r) => r.metadata.name === 'moved-old.example.com')!;
    expect(moved.spec.rules![0]!.filters).toEqual([{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', hostname: 'new.example.com', path: { type: 'ReplaceFullPath', replaceFullPath: '/landing' }, statusCode: 301 } }]);
  });

  it('has a row for every annotation of the corpus, and either carries it over or says why not, naming the Ingress and the annotation', () => {
    const plain = () => ingress('web', { ...dual(['pq.example.com']), rules: [route('pq.example.com', '/app', 'Prefix', 'web', 'http')] });
    const baseline = JSON.stringify(migrate([plain()]));
    for (const [name, { annotations }] of Object.entries(ANNOTATION_CASES)) {
      const keys = Object.keys(annotations).filter((k) => k.startsWith(INGRESS_NGINX_PREFIX)).map((k) => k.slice(INGRESS_NGINX_PREFIX.length));
      for (const key of keys) expect([name, key, ANNOTATION_MIGRATION[key]]).toEqual([name, key, expect.any(String)]);
      const m = migrate([{ ...plain(), metadata: { ...plain().metadata, annotations } }]);
      const carried = JSON.stringify(m) !== baseline;
      const noted = m.notes.some((n) => n.startsWith('Ingress default/web: ') && keys.some((k) => n.includes(k)));
      expect([name, carried || noted]).toEqual([name, true]);
      if (keys.every((k) => ANNOTATION_MIGRATION[k] !== 'mapped')) expect([name, noted]).toEqual([name, true]);
    }
  });

  it('tells that the PKI\'s Certificates go with the Ingress', () => {
    const m = migrate([ingress('issued', { ...dual(['i.example.com']), rules: [route('i.example.com', '/', 'Prefix', 'web', 80)] }, { annotations: { 'qubesec.io/cluster-issuer': 'qubesec-ca' } })]);
    expect(m.notes).toEqual([expect.stringMatching(/^Ingress default\/issued: annotations qubesec.io\/cluster-issuer: the PKI issues this Ingress's Secrets from them/)]);
    expect(m.httpRoutes).toHaveLength(1);
  });

  it('says that ImplementationSpecific paths become PathPrefix, which matches whole path elements', () => {
    const m = migrate([ingress('docs', { rules: [route('d.example.com', '/docs', 'ImplementationSpecific', 'web', 80)] })]);
    expect(m.httpRoutes[0]!.spec.rules![0]!.matches).toEqual([{ path: { type: 'PathPrefix', value: '/docs' } }]);
    expect(m.notes).toEqual(['Ingress default/docs: spec.rules[0].http.paths[0]: pathType ImplementationSpecific becomes PathPrefix, which matches whole path elements ("/docs" no longer matches "/docsx")']);
  });

  it('carries timeouts, upstream-vhost and x-forwarded-prefix into the rule, and resolves a Service port name to its number', () => {
    const m = migrate([ingress('tuned', { rules: [route('t.example.com', '/', 'Prefix', 'web', 'http')] }, { annotations: {
      [`${INGRESS_NGINX_PREFIX}proxy-read-timeout`]: '120', [`${INGRESS_NGINX_PREFIX}proxy-connect-timeout`]: '5',
      [`${INGRESS_NGINX_PREFIX}upstream-vhost`]: 'internal.example.com', [`${INGRESS_NGINX_PREFIX}x-forwarded-prefix`]: '/t',
    } })]);
    expect(m.httpRoutes[0]!.spec.rules).toEqual([{
      matches: [{ path: { type: 'PathPrefix', value: '/' } }],
      filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 'internal.example.com' } }, { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Forwarded-Prefix', value: '/t' }] } }],
      backendRefs: [{ name: 'web', port: 80 }],
      timeouts: { backendRequest: '120s' },
    }]);
    expect(m.httpRoutes[0]!.spec.parentRefs).toEqual([{ name: 'qubesec', sectionName: 'http' }]);
  });

  it('leaves out what the controller refuses and what cannot be said, each alone, with a note', () => {
    const m = migrate([
      ingress('bad', { rules: [route('bad.example.com', '/x;', 'Prefix', 'web', 80)] }),
      ingress('unnamed-port', { rules: [route('u.example.com', '/', 'Prefix', 'web', 'grpc'), route('u.example.com', '/ok', 'Prefix', 'web', 'http')] }),
      ingress('good', { rules: [route('good.example.com', '/', 'Prefix', 'api', 8080)] }),
    ]);
    expect(m.httpRoutes.map((r) => r.metadata.name)).toEqual(['good-good.example.com', 'unnamed-port-u.example.com']);
    expect(m.httpRoutes[1]!.spec.rules!.map((r) => r.matches![0]!.path!.value)).toEqual(['/ok']);
    expect(m.notes).toEqual([
      expect.stringMatching(/^Ingress default\/bad: not migrated, as the controller does not serve it: .*"\/x;"/),
      'Ingress default/unnamed-port: spec.rules[0].http.paths[0].backend: Service default/web has no port named grpc to give a backendRef a number; not carried over',
    ]);
  });
});
