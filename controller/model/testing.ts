// Builders for unit tests: Kubernetes objects as plain data, and the test certificates in controller/testdata.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1ConfigMap, V1EndpointSlice, V1Ingress, V1Secret, V1Service } from '@kubernetes/client-node';
import { PROJECT_ROOT } from '../project.js';
import type { BackendTLSPolicy, GRPCRoute, GRPCRouteRule, Gateway, GatewayClass, HTTPRoute, HTTPRouteRule, Listener, ReferenceGrant, SecretObjectReference, TLSRoute } from './gateway-api.js';
import { OPENSSL_3_5_CAPABILITIES, type Capabilities } from './pq.js';
import type { Location, ObjectRef, PathMatch } from './types.js';

export const CAPABILITIES: Capabilities = OPENSSL_3_5_CAPABILITIES;

export function ingress(name: string, spec: V1Ingress['spec'], extra: { annotations?: Record<string, string>; created?: string; namespace?: string } = {}): V1Ingress {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: {
      name,
      namespace: extra.namespace ?? 'default',
      uid: `uid-${name}`,
      annotations: extra.annotations,
      creationTimestamp: new Date(extra.created ?? '2026-01-01T00:00:00Z'),
    },
    spec: { ingressClassName: 'qubesec', ...spec },
  };
}

export function route(host: string, path: string, pathType: string, service: string, port: number | string = 80) {
  return {
    host,
    http: {
      paths: [{ path, pathType, backend: { service: { name: service, port: typeof port === 'number' ? { number: port } : { name: port } } } }],
    },
  };
}

export function service(name: string, ports: { name?: string; port: number }[], namespace = 'default'): V1Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { ports } };
}

/** Services by namespace/name, each with port 80: what Gateway API translation looks up. */
export function servicesByKey(keys: string[]): Map<string, V1Service> {
  return new Map(keys.map((key) => [key, service(key.split('/')[1]!, [{ port: 80 }], key.split('/')[0])]));
}

export function endpointSlice(serviceName: string, port: { name?: string; port: number }, endpoints: { ip: string; ready?: boolean }[], namespace = 'default'): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${serviceName}-abc`, namespace, labels: { 'kubernetes.io/service-name': serviceName } },
    addressType: 'IPv4',
    ports: [port],
    endpoints: endpoints.map((e) => ({ addresses: [e.ip], conditions: e.ready === undefined ? {} : { ready: e.ready } })),
  };
}

export function testPem(name: string): string {
  return readFileSync(join(PROJECT_ROOT, 'controller', 'testdata', name), 'utf8');
}

export function tlsSecret(name: string, pair: string, namespace = 'default', keyPair = pair): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { name, namespace },
    data: {
      'tls.crt': Buffer.from(testPem(`${pair}.crt`)).toString('base64'),
      'tls.key': Buffer.from(testPem(`${keyPair}.key`)).toString('base64'),
    },
  };
}

/** A plain proxying location, as an Ingress without annotations gives. */
export function proxyLocation(match: PathMatch, path: string, upstream: string, ingress: ObjectRef): Location {
  return {
    match,
    path,
    ingress,
    action: { kind: 'proxy', upstream, protocol: 'HTTP', tuning: {} },
    policy: { httpsRedirect: false, deny: [], allow: [] },
  };
}

/** mulberry32: a small seeded generator, so that a failing random sequence can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Gateway API objects as the API server serves them: the unit tests' fixtures, which e2e/gateway-crds applies too. */
export const GATEWAY_FIXTURE_CREATED = '2026-01-01T00:00:00Z';

export function gatewayClass(name = 'qubesec', controllerName = 'qubesec.io/gateway-controller'): GatewayClass {
  return { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name, generation: 1 }, spec: { controllerName } };
}

export function httpListener(name = 'http', hostname?: string, allowedRoutes?: Listener['allowedRoutes']): Listener {
  return { name, port: 80, protocol: 'HTTP', ...(hostname === undefined ? {} : { hostname }), ...(allowedRoutes ? { allowedRoutes } : {}) };
}

export function httpsListener(name: string, hostname: string | undefined, secrets: (string | SecretObjectReference)[], options?: Record<string, string>): Listener {
  const certificateRefs = secrets.map((s) => (typeof s === 'string' ? { kind: 'Secret', name: s } : s));
  return { name, port: 443, protocol: 'HTTPS', ...(hostname === undefined ? {} : { hostname }), tls: { mode: 'Terminate', certificateRefs, ...(options ? { options } : {}) } };
}

/** A TLS listener on the HTTPS port that passes connections through by SNI. */
export function tlsListener(name: string, hostname?: string): Listener {
  return { name, port: 443, protocol: 'TLS', ...(hostname === undefined ? {} : { hostname }), tls: { mode: 'Passthrough' } };
}

export function gateway(name: string, listeners: Listener[], extra: { namespace?: string; className?: string; generation?: number } = {}): Gateway {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace: extra.namespace ?? 'default', generation: extra.generation ?? 1, creationTimestamp: GATEWAY_FIXTURE_CREATED },
    spec: { gatewayClassName: extra.className ?? 'qubesec', listeners },
  };
}

/** One rule: a path match (PathPrefix by default) to one Service port. */
export function httpRule(path: string, serviceName: string, port = 80, type = 'PathPrefix', extra: Partial<HTTPRouteRule> = {}): HTTPRouteRule {
  return { matches: [{ path: { type, value: path } }], backendRefs: [{ name: serviceName, port }], ...extra };
}

type RouteExtra = { namespace?: string; created?: string; generation?: number };

function routeObject<K extends 'HTTPRoute' | 'GRPCRoute' | 'TLSRoute', S>(kind: K, name: string, spec: S, extra: RouteExtra) {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind,
    metadata: { name, namespace: extra.namespace ?? 'default', uid: `uid-${name}`, generation: extra.generation ?? 1, creationTimestamp: extra.created ?? GATEWAY_FIXTURE_CREATED },
    spec: { parentRefs: [{ name: 'gw' }], ...spec },
  };
}

export function httpRoute(name: string, spec: Partial<HTTPRoute['spec']>, extra: RouteExtra = {}): HTTPRoute {
  return routeObject('HTTPRoute', name, spec, extra);
}

export function grpcRoute(name: string, spec: Partial<GRPCRoute['spec']>, extra: RouteExtra = {}): GRPCRoute {
  return routeObject('GRPCRoute', name, spec, extra);
}

/** A TLSRoute passing `hostnames` through to Service `serviceName`'s port. */
export function tlsRoute(name: string, hostnames: string[], serviceName: string, port = 443, extra: RouteExtra = {}): TLSRoute {
  return routeObject('TLSRoute', name, { hostnames, rules: [{ backendRefs: [{ name: serviceName, port }] }] }, extra);
}

/** One GRPCRoute rule: calls of `service` (and `method`) to one Service port. */
export function grpcRule(service: string | undefined, method: string | undefined, serviceName: string, port = 80): GRPCRouteRule {
  return { matches: [{ method: { ...(service ? { service } : {}), ...(method ? { method } : {}) } }], backendRefs: [{ name: serviceName, port }] };
}

export function referenceGrant(name: string, namespace: string, from: ReferenceGrant['spec']['from'], to: ReferenceGrant['spec']['to']): ReferenceGrant {
  return { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'ReferenceGrant', metadata: { name, namespace }, spec: { from, to } };
}

/** A BackendTLSPolicy on Service `service` (and its port named `sectionName`): verified against ConfigMap `ca`'s ca.crt for `hostname`. */
export function backendTlsPolicy(name: string, service: string, validation: Partial<BackendTLSPolicy['spec']['validation']> = {}, extra: { sectionName?: string; created?: string; namespace?: string } = {}): BackendTLSPolicy {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'BackendTLSPolicy',
    metadata: { name, namespace: extra.namespace ?? 'default', generation: 1, creationTimestamp: extra.created ?? GATEWAY_FIXTURE_CREATED },
    spec: {
      targetRefs: [{ group: '', kind: 'Service', name: service, ...(extra.sectionName ? { sectionName: extra.sectionName } : {}) }],
      validation: { hostname: 'pods.example.com', ...(validation.wellKnownCACertificates ? {} : { caCertificateRefs: [{ group: '', kind: 'ConfigMap', name: 'ca' }] }), ...validation },
    },
  };
}

/** A ConfigMap with CA certificates in ca.crt, as BackendTLSPolicies name them. */
export function caConfigMap(name: string, pem: string, namespace = 'default'): V1ConfigMap {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data: { 'ca.crt': pem } };
}
