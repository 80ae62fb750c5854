// Ingresses -> Gateway API objects that serve the same on QubeSec (`qubesec migrate`), as ingress2gateway does for
// ingress-nginx. Pure: the Ingresses and Services in, the Gateways, HTTPRoutes and notes out. Each Ingress goes through
// the controller's own translation first, so one the controller refuses is refused here too, alone.
import type { V1HTTPIngressPath, V1Ingress, V1Service } from '@kubernetes/client-node';
import { CERTIFICATE_ANNOTATIONS, TLS_ANNOTATION_KEYS } from '../model/annotations.js';
import type { Gateway, HTTPBackendRef, HTTPRoute, HTTPRouteFilter, HTTPRouteRule, HTTPURLRewrite, Listener } from '../model/gateway-api.js';
import { translateIngress, type IngressIntent } from '../model/ingress.js';
import type { Capabilities, TlsDefaults } from '../model/pq.js';
import { INGRESS_NGINX_PREFIX } from '../model/proxy-annotations.js';

export interface MigrateOptions {
  /** Name of the Gateway made in each namespace with Ingresses. */
  gatewayName: string;
  gatewayClassName: string;
  defaults: TlsDefaults;
  capabilities: Capabilities;
}

export interface Migration {
  gateways: Gateway[];
  httpRoutes: HTTPRoute[];
  /** What did not carry over, each naming the Ingress and the annotation or field. */
  notes: string[];
}


/**
 * How each ingress-nginx annotation QubeSec reads carries over: 'mapped' (into a filter, a match or the listeners),
 * or why not. Every annotation of the annotation corpus has a row (migrate/gateway-api.test.ts).
 */
export const ANNOTATION_MIGRATION: Record<string, 'mapped' | string> = {
  'rewrite-target': 'mapped',
  'use-regex': 'mapped',
  'ssl-redirect': 'mapped',
  'force-ssl-redirect': 'a redirect of plain HTTP for a host without TLS has no listener to send it to; give the host an HTTPS listener',
  'backend-protocol': 'TLS to the pods is a BackendTLSPolicy with its CA in a ConfigMap (docs/gateway-api.md), which migrate does not print yet; for gRPC write a GRPCRoute, which it does not print either',
  'proxy-body-size': 'request size limits have no Gateway API field',
  'proxy-buffer-size': 'buffer sizes have no Gateway API field',
  'proxy-connect-timeout': 'mapped',
  'proxy-read-timeout': 'mapped',
  'proxy-send-timeout': 'mapped',
  'allowlist-source-range': 'source address allowlists have no Gateway API field; keep this host on its Ingress',
  'whitelist-source-range': 'source address allowlists have no Gateway API field; keep this host on its Ingress',
  'denylist-source-range': 'source address denylists have no Gateway API field; keep this host on its Ingress',
  'limit-rps': 'rate limits have no Gateway API field; keep this host on its Ingress',
  'limit-burst-multiplier': 'rate limits have no Gateway API field; keep this host on its Ingress',
  'limit-connections': 'connection limits have no Gateway API field; keep this host on its Ingress',
  'enable-cors': 'the CORS filter is not in the standard channel QubeSec serves',
  'cors-allow-origin': 'the CORS filter is not in the standard channel QubeSec serves',
  'cors-allow-methods': 'the CORS filter is not in the standard channel QubeSec serves',
  'cors-allow-headers': 'the CORS filter is not in the standard channel QubeSec serves',
  'cors-expose-headers': 'the CORS filter is not in the standard channel QubeSec serves',
  'cors-allow-credentials': 'the CORS filter is not in the standard channel QubeSec serves',
  'cors-max-age': 'the CORS filter is not in the standard channel QubeSec serves',
  affinity: 'session persistence (sessionPersistence) is not served by QubeSec yet',
  'session-cookie-name': 'session persistence (sessionPersistence) is not served by QubeSec yet',
  'app-root': 'mapped',
  'permanent-redirect': 'mapped',
  'permanent-redirect-code': 'mapped',
  'temporal-redirect': 'mapped',
  'temporal-redirect-code': 'mapped',
  'default-backend': 'a per-Ingress fallback Service has no Gateway API field',
  'custom-http-errors': 'custom error pages have no Gateway API field',
  'upstream-vhost': 'mapped',
  'x-forwarded-prefix': 'mapped',
  'auth-tls-secret': 'client certificate checks are not in the standard channel QubeSec serves; keep this host on its Ingress',
  'auth-tls-verify-client': 'client certificate checks are not in the standard channel QubeSec serves; keep this host on its Ingress',
  'auth-tls-verify-depth': 'client certificate checks are not in the standard channel QubeSec serves; keep this host on its Ingress',
  'auth-tls-pass-certificate-to-upstream': 'client certificate checks are not in the standard channel QubeSec serves; keep this host on its Ingress',
  'proxy-ssl-secret': 'TLS to the pods is a BackendTLSPolicy with its CA in a ConfigMap (docs/gateway-api.md), which migrate does not print yet',
  'proxy-ssl-verify': 'TLS to the pods is a BackendTLSPolicy with its CA in a ConfigMap (docs/gateway-api.md), which migrate does not print yet',
  'proxy-ssl-name': 'TLS to the pods is a BackendTLSPolicy with its CA in a ConfigMap (docs/gateway-api.md), which migrate does not print yet',
  'proxy-ssl-verify-depth': 'TLS to the pods is a BackendTLSPolicy with its CA in a ConfigMap (docs/gateway-api.md), which migrate does not print yet',
  'proxy-ssl-server-name': 'TLS to the pods is a BackendTLSPolicy with its CA in a ConfigMap (docs/gateway-api.md), which migrate does not print yet',
};

/** ingress-nginx's usual rewrite: everything after the prefix, as the prefix's replacement by "/". */
const STRIP_PREFIX = /^(\/[^()$]*?)\/?\(\/\|\$\)\(\.\*\)$/;

export function migrateIngresses(ingresses: readonly V1Ingress[], services: ReadonlyMap<string, V1Service>, options: MigrateOptions): Migration {
  const notes: string[] = [];
  const httpRoutes: HTTPRoute[] = [];
  /** Per namespace, its HTTPS listeners by host, the first Ingress (the oldest) setting their options. */
  const listenersByNamespace = new Map<string, Map<string, { listener: Listener; from: string }>>();
  const created = (i: V1Ingress) => new Date(i.metadata?.creationTimestamp ?? 0).getTime();
  const oldestFirst = [...ingresses].sort((a, b) => created(a) - created(b) || keyOf(a).localeCompare(keyOf(b)));
  for (const ingress of oldestFirst) {
    const title = `Ingress ${keyOf(ingress)}`;
    const translated = translateIngress(ingress, options.defaults, options.capabilities);
    if (!translated.intent) {
      notes.push(`${title}: not migrated, as the controller does not serve it: ${translated.diagnostics.map((d) => d.message).join('; ')}`);
      continue;
    }
    const intent = translated.intent;
    const namespace = intent.ref.namespace;
    const annotations = ingress.metadata?.annotations ?? {};
    for (const key of Object.keys(annotations)) {
      if (!key.startsWith(INGRESS_NGINX_PREFIX)) continue;
      const how = ANNOTATION_MIGRATION[key.slice(INGRESS_NGINX_PREFIX.length)];
      if (how !== undefined && how !== 'mapped') notes.push(`${title}: annotation ${key} not carried over: ${how}`);
    }
    const pki = Object.values(CERTIFICATE_ANNOTATIONS).filter((key) => annotations[key] !== undefined);
    if (pki.length > 0) {
      notes.push(`${title}: annotations ${pki.join(', ')}: the PKI issues this Ingress's Secrets from them, and its Certificates go with the Ingress; create Certificates of your own (docs/pki.md) before deleting it`);
    }
    const listeners = listenersByNamespace.get(namespace) ?? new Map<string, { listener: Listener; from: string }>();
    listenersByNamespace.set(namespace, listeners);
    // The TLS annotations become the host's listener's tls.options under the same keys (docs/gateway-api.md).
    const tlsOptions = Object.fromEntries(TLS_ANNOTATION_KEYS.filter((k) => annotations[k] !== undefined).map((k) => [k, annotations[k]!]));
    for (const tls of ingress.spec?.tls ?? []) {
      for (const host of tls.hosts ?? []) {
        const held = listeners.get(host);
        const secret = tls.secretName;
        if (!held) {
          listeners.set(host, { from: title, listener: { name: listenerName(host), port: 443, protocol: 'HTTPS', hostname: host, tls: { mode: 'Terminate', certificateRefs: secret ? [{ kind: 'Secret', name: secret }] : [], ...(Object.keys(tlsOptions).length > 0 ? { options: tlsOptions } : {}) } } });
          continue;
        }
        const refs = held.listener.tls!.certificateRefs!;
        if (secret && !refs.some((r) => r.name === secret)) refs.push({ kind: 'Secret', name: secret });
        if (JSON.stringify(held.listener.tls!.options ?? {}) !== JSON.stringify(tlsOptions) && held.from !== title) {
          notes.push(`${title}: host ${host} takes the listener options of ${held.from}, which is older; its own qubesec.io TLS annotations are not carried over`);
        }
      }
    }
    httpRoutes.push(...routesOf(ingress, intent, services, options.gatewayName, notes));
  }
  const gateways: Gateway[] = [...listenersByNamespace].filter(([namespace]) => httpRoutes.some((r) => r.metadata.namespace === namespace)).map(([namespace, listeners]) => ({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: options.gatewayName, namespace },
    spec: { gatewayClassName: options.gatewayClassName, listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }, ...[...listeners.values()].map((l) => l.listener)] },
  }));
  return { gateways, httpRoutes, notes };
}

/** One HTTPRoute per host of the Ingress (the host's rules and, for a TLS host, its listener). */
function routesOf(ingress: V1Ingress, intent: IngressIntent, services: ReadonlyMap<string, V1Service>, gatewayName: string, notes: string[]): HTTPRoute[] {
  const title = `Ingress ${keyOf(ingress)}`;
  const namespace = intent.ref.namespace;
  const proxy = intent.proxy;
  const tlsHosts = new Set((ingress.spec?.tls ?? []).flatMap((t) => t.hosts ?? []));
  const byHost = new Map<string, { field: string; path: V1HTTPIngressPath }[]>();
  (ingress.spec?.rules ?? []).forEach((rule, i) => {
    const list = byHost.get(rule.host ?? '') ?? [];
    (rule.http?.paths ?? []).forEach((path, j) => list.push({ field: `spec.rules[${i}].http.paths[${j}]`, path }));
    byHost.set(rule.host ?? '', list);
  });
  if (ingress.spec?.defaultBackend) {
    const list = byHost.get('') ?? [];
    list.push({ field: 'spec.defaultBackend', path: { path: '/', pathType: 'Prefix', backend: ingress.spec.defaultBackend } });
    byHost.set('', list);
  }
  const timeout = [proxy.tuning.connectTimeout, proxy.tuning.readTimeout, proxy.tuning.sendTimeout].filter((t): t is number => t !== undefined);
  const routes: HTTPRoute[] = [];
  for (const [host, paths] of byHost) {
    const tls = tlsHosts.has(host);
    // On QubeSec a route on HTTPS listeners only has its hosts' plain HTTP redirected (308), as ssl-redirect does.
    const parentRefs = tls ? [{ name: gatewayName, sectionName: listenerName(host) }, ...(proxy.httpsRedirect === 'never' ? [{ name: gatewayName, sectionName: 'http' }] : [])] : [{ name: gatewayName, sectionName: 'http' }];
    const rules: HTTPRouteRule[] = [];
    if (proxy.appRoot) rules.push({ matches: [{ path: { type: 'Exact', value: '/' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplaceFullPath', replaceFullPath: proxy.appRoot }, statusCode: 302 } }] });
    for (const { field, path } of paths) {
      const value = path.path ?? '/';
      const at = `${title}: ${field}`;
      let match: { type: string; value: string };
      const filters: HTTPRouteFilter[] = [];
      const urlRewrite: HTTPURLRewrite = proxy.upstreamHost ? { hostname: proxy.upstreamHost } : {};
      if (proxy.rewrite !== undefined) {
        // Only "everything after the prefix" has a URLRewrite equivalent (ReplacePrefixMatch "/").
        const strip = proxy.rewrite === '/$2' ? STRIP_PREFIX.exec(value) : null;
        if (!strip) {
          notes.push(`${at}: not carried over: rewrite-target ${JSON.stringify(proxy.rewrite)} on path ${JSON.stringify(value)} has a URLRewrite equivalent only as "/$2" after a path "/prefix(/|$)(.*)"`);
          continue;
        }
        match = { type: 'PathPrefix', value: strip[1] || '/' };
        urlRewrite.path = { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' };
      } else if (proxy.regex) {
        // ingress-nginx anchors a regular expression at the start only; Gateway API's must match the whole path.
        match = { type: 'RegularExpression', value: `${value}.*` };
      } else {
        match = { type: path.pathType === 'Exact' ? 'Exact' : 'PathPrefix', value };
        if (path.pathType === 'ImplementationSpecific') notes.push(`${at}: pathType ImplementationSpecific becomes PathPrefix, which matches whole path elements (${JSON.stringify(value)} no longer matches ${JSON.stringify(`${value.replace(/\/$/, '')}x`)})`);
      }
      if (proxy.redirect) {
        rules.push({ matches: [{ path: match }], filters: [redirectFilter(proxy.redirect)] });
        continue;
      }
      const backendRef = backendRefOf(path, namespace, services, `${at}.backend`, notes);
      if (!backendRef) continue;
      if (Object.keys(urlRewrite).length > 0) filters.push({ type: 'URLRewrite', urlRewrite });
      if (proxy.forwardedPrefix) filters.push({ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Forwarded-Prefix', value: proxy.forwardedPrefix }] } });
      rules.push({
        matches: [{ path: match }],
        ...(filters.length > 0 ? { filters } : {}),
        backendRefs: [backendRef],
        // QubeSec times each read of an attempt by it, as proxy_read_timeout does: the longest keeps every limit.
        ...(timeout.length > 0 ? { timeouts: { backendRequest: `${Math.max(...timeout)}s` } } : {}),
      });
    }
    if (rules.length === 0) continue;
    const name = host === '' ? (ingress.metadata?.name ?? '') : `${ingress.metadata?.name}-${host.replace('*', 'wildcard')}`.slice(0, 253);
    routes.push({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name, namespace },
      spec: { parentRefs, ...(host === '' ? {} : { hostnames: [host] }), rules },
    });
  }
  return routes;
}

function redirectFilter(redirect: { code: number; url: string }): HTTPRouteFilter {
  const url = new URL(redirect.url);
  const port = url.port === '' ? undefined : Number(url.port);
  return {
    type: 'RequestRedirect',
    requestRedirect: {
      scheme: url.protocol.slice(0, -1),
      hostname: url.hostname,
      ...(port === undefined ? {} : { port }),
      path: { type: 'ReplaceFullPath', replaceFullPath: url.pathname },
      statusCode: [301, 302, 303, 307, 308].includes(redirect.code) ? redirect.code : 302,
    },
  };
}

/** A Service backend with its port as a number (Gateway API names ports by number): a port name is looked up. */
function backendRefOf(path: V1HTTPIngressPath, namespace: string, services: ReadonlyMap<string, V1Service>, at: string, notes: string[]): HTTPBackendRef | undefined {
  const service = path.backend.service;
  if (!service) {
    notes.push(`${at}: a resource backend has no Gateway API equivalent; not carried over`);
    return undefined;
  }
  if (service.port?.number !== undefined) return { name: service.name, port: service.port.number };
  const named = services.get(`${namespace}/${service.name}`)?.spec?.ports?.find((p) => p.name === service.port?.name);
  if (!named) {
    notes.push(`${at}: Service ${namespace}/${service.name} has no port named ${service.port?.name ?? '(none)'} to give a backendRef a number; not carried over`);
    return undefined;
  }
  return { name: service.name, port: named.port };
}

/** A listener name (a DNS subdomain) per host: "*." becomes "wildcard.". */
function listenerName(host: string): string {
  return `https-${host.replace('*', 'wildcard')}`.slice(0, 253);
}

function keyOf(ingress: V1Ingress): string {
  return `${ingress.metadata?.namespace ?? 'default'}/${ingress.metadata?.name ?? ''}`;
}
