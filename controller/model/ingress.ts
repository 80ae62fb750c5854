// Ingress -> IngressIntent: a pure translation of one Ingress and its annotations, with every field checked.
// An Ingress with errors yields no intent; the reconciler then keeps serving its last good one.
import type { V1Ingress, V1IngressBackend } from '@kubernetes/client-node';
import { ANNOTATION_PREFIX, parseSettings, reviewAnnotationKeys, type IngressSettings } from './annotations.js';
import { checkExactOrPrefixPath, checkHost, checkNamespaceName, checkObjectName, checkPath, checkPortName, checkPortNumber, checkRegexPath, checkServiceName, quote } from './names.js';
import { parseProxyAnnotations, type ProxySettings } from './proxy-annotations.js';
import { certificateChoice, classifyGroup, groupsForMode, protocolsFrom, strictOrder, type Capabilities, type TlsDefaults } from './pq.js';
import type { BackendTls, Diagnostic, HeaderEdits, ObjectRef, PathMatch, RedirectTarget, RequestConditions, TlsPolicy, UrlRewrite } from './types.js';

export interface BackendRef {
  namespace: string;
  service: string;
  /** Port name or number as written in the Ingress. */
  port: string;
}

export interface IntentRoute {
  /** '' for rules without host: they go to the catch-all server. */
  host: string;
  match: PathMatch;
  path: string;
  /** Lower wins when two routes claim the same match and path: an explicit Exact path beats Prefix's implied one. */
  precedence: number;
  /** Where in the Ingress the route was written, for messages. */
  field: string;
  backend: BackendRef;
  /** Answers with a redirect instead of proxying (app-root). */
  redirect?: { code: number; url: string };
  /** Gateway API: what the request must also have; routes that differ only in these share a location. */
  conditions?: RequestConditions;
  /** Gateway API weighted backendRefs (`backend` is the first): each request goes to one, drawn by weight; a refused one answers 500. */
  backends?: { backend: BackendRef; weight: number; refused?: true }[];
  requestHeaders?: HeaderEdits;
  responseHeaders?: HeaderEdits;
  rewrite?: UrlRewrite;
  timeoutMs?: number;
  /** A redirect the data plane builds per request (a prefix replacement, or one branch among others). */
  redirectTo?: RedirectTarget;
  /** Gateway API: the BackendTLSPolicy of the route's backends (all of them alike): TLS to the pods instead of the intent's protocol. */
  backendTls?: BackendTls;
}

export interface IngressIntent {
  ref: ObjectRef;
  /** creationTimestamp: the oldest Ingress wins conflicts, as in ingress-nginx. */
  created: string;
  policy: TlsPolicy;
  /** Whether the Ingress set its TLS policy itself (only then can it conflict with another's). */
  policyFromAnnotations: boolean;
  routes: IntentRoute[];
  tls: { hosts: string[]; secret: string }[];
  proxy: ProxySettings;
  /** Gateway API TLSRoute: its hosts' TLS connections passed on to the backends, still encrypted (routes and tls are empty). */
  passthrough?: { hosts: string[]; backends: { backend: BackendRef; weight: number; refused?: true }[] };
}

export interface IngressTranslation {
  intent?: IngressIntent;
  diagnostics: Diagnostic[];
}

export const PRECEDENCE = { appRoot: -1, exact: 0, pathPrefix: 1, implied: 2 } as const;

/** Reason of the diagnostics that say why an Ingress yields no intent. */
export const REJECTED = 'Rejected';

export function ingressRef(ingress: V1Ingress): ObjectRef {
  return {
    kind: 'Ingress',
    namespace: ingress.metadata?.namespace ?? 'default',
    name: ingress.metadata?.name ?? '',
    uid: ingress.metadata?.uid,
  };
}

/** `hasDefaultBackend`: the controller has --default-backend-service, which custom-http-errors can fall back on. */
export function translateIngress(ingress: V1Ingress, defaults: TlsDefaults, capabilities: Capabilities, hasDefaultBackend = false): IngressTranslation {
  const ref = ingressRef(ingress);
  const errors: string[] = [];
  const diagnostics: Diagnostic[] = [];
  // Both name zones of nginx.conf; the API server checks them, a manifest file does not.
  const nameError = checkObjectName(ref.name);
  if (nameError) errors.push(`metadata.name: ${quote(ref.name)} ${nameError}`);
  const namespaceError = checkNamespaceName(ref.namespace);
  if (namespaceError) errors.push(`metadata.namespace: ${quote(ref.namespace)} ${namespaceError}`);

  const annotations = ingress.metadata?.annotations;
  const keys = reviewAnnotationKeys(annotations);
  errors.push(...keys.errors);
  for (const key of keys.unknown) {
    diagnostics.push(warning(ref, 'UnknownAnnotation', `annotation ${key} is not known to QubeSec and has no effect`));
  }
  const tlsSettings = parseSettings(annotations, capabilities);
  errors.push(...tlsSettings.errors);
  const settings = tlsSettings.settings;
  const proxy = parseProxyAnnotations(annotations, ref.namespace, hasDefaultBackend);
  errors.push(...proxy.errors);
  for (const message of proxy.warnings) diagnostics.push(warning(ref, 'IneffectiveAnnotation', message));
  const tlsPolicy = policyFromSettings(settings, defaults, capabilities);
  errors.push(...tlsPolicy.errors);
  if (tlsPolicy.policy.pqMode === 'classical') {
    diagnostics.push({ object: ref, type: 'Normal', reason: 'ClassicalKeyExchange', message: 'pq-mode classical: hosts of this Ingress offer no post-quantum key exchange' });
  }

  const routes: IntentRoute[] = [];
  const backendOf = (backend: V1IngressBackend | undefined, field: string): BackendRef | undefined => {
    const service = backend?.service;
    if (!service) {
      errors.push(`${field}.service: is required (resource backends are not supported)`);
      return undefined;
    }
    const nameError = checkServiceName(service.name);
    if (nameError) errors.push(`${field}.service.name: ${quote(service.name)} ${nameError}`);
    const port = service.port;
    let portText: string | undefined;
    if (port?.number !== undefined) {
      const e = checkPortNumber(port.number);
      if (e) errors.push(`${field}.service.port.number: ${port.number} ${e}`);
      portText = String(port.number);
    } else if (port?.name !== undefined) {
      const e = checkPortName(port.name);
      if (e) errors.push(`${field}.service.port.name: ${quote(port.name)} ${e}`);
      portText = port.name;
    } else {
      errors.push(`${field}.service.port: needs a name or a number`);
    }
    return nameError || portText === undefined ? undefined : { namespace: ref.namespace, service: service.name, port: portText };
  };

  const ruleHosts: string[] = [];
  (ingress.spec?.rules ?? []).forEach((rule, i) => {
    const host = rule.host ?? '';
    if (host !== '') {
      const e = checkHost(host);
      if (e) errors.push(`spec.rules[${i}].host: ${quote(host)} ${e}`);
      else if (!ruleHosts.includes(host)) ruleHosts.push(host);
    }
    (rule.http?.paths ?? []).forEach((p, j) => {
      const field = pathField(i, j);
      const path = p.path ?? '/';
      const pathError = (proxy.settings.regex ? checkRegexPath(path) : checkPath(path))
        ?? (p.pathType === 'Exact' || p.pathType === 'Prefix' ? checkExactOrPrefixPath(path) : undefined);
      if (pathError) errors.push(`${field}.path: ${quote(path)} ${pathError}`);
      const backend = backendOf(p.backend, `${field}.backend`);
      if (pathError || !backend) return;
      if (proxy.settings.regex) {
        // As ingress-nginx: the path is a regular expression anchored at the start; Exact anchors the end too, unless
        // the path already ends in the anchor ("$$" would be no regular expression NGINX could take).
        const pattern = p.pathType === 'Exact' && !path.endsWith('$') ? `^${path}$` : `^${path}`;
        routes.push({ host, match: 'regex', path: pattern, precedence: PRECEDENCE.pathPrefix, field, backend });
        return;
      }
      switch (p.pathType) {
        case 'Exact':
          routes.push({ host, match: 'exact', path, precedence: PRECEDENCE.exact, field, backend });
          break;
        case 'Prefix':
          routes.push(...prefixRoutes(host, path, field, backend));
          break;
        case 'ImplementationSpecific':
          // As ingress-nginx: a plain string prefix (no element-wise matching, no regex).
          routes.push({ host, match: 'prefix', path, precedence: PRECEDENCE.pathPrefix, field, backend });
          break;
        default:
          errors.push(`${field}.pathType: ${quote(String(p.pathType))} is not Exact, Prefix or ImplementationSpecific`);
      }
    });
  });

  if (ingress.spec?.defaultBackend) {
    const backend = backendOf(ingress.spec.defaultBackend, 'spec.defaultBackend');
    if (backend) {
      // Serves what no rule of this Ingress matches: on the catch-all server and on each of its hosts.
      for (const host of ['', ...ruleHosts]) {
        routes.push({ host, match: 'prefix', path: '/', precedence: PRECEDENCE.implied, field: 'spec.defaultBackend', backend });
      }
    }
  }

  if (proxy.settings.appRoot !== undefined) {
    for (const { host, backend } of [...new Map(routes.map((r) => [r.host, r])).values()]) {
      routes.push({ host, match: 'exact', path: '/', precedence: PRECEDENCE.appRoot, field: 'metadata.annotations', backend, redirect: { code: 302, url: proxy.settings.appRoot } });
    }
  }

  const tls: IngressIntent['tls'] = [];
  (ingress.spec?.tls ?? []).forEach((entry, i) => {
    const secret = entry.secretName ?? '';
    const e = checkObjectName(secret);
    if (e) {
      errors.push(`spec.tls[${i}].secretName: ${quote(secret)} ${e}`);
      return;
    }
    const hosts = entry.hosts && entry.hosts.length > 0 ? entry.hosts : ruleHosts;
    hosts.forEach((host, k) => {
      const he = checkHost(host);
      if (he) errors.push(`spec.tls[${i}].hosts[${k}]: ${quote(host)} ${he}`);
    });
    tls.push({ hosts: compact(hosts.filter((h) => checkHost(h) === undefined)), secret: `${ref.namespace}/${secret}` });
  });
  if (proxy.settings.clientAuth && tls.length === 0) {
    errors.push('client certificate authentication (auth-tls-*) needs spec.tls: client certificates exist only in TLS');
  }

  if (errors.length > 0) {
    return {
      diagnostics: [
        ...diagnostics,
        ...errors.map((message) => warning(ref, REJECTED, `Ingress ${ref.namespace}/${ref.name}: ${message}`)),
      ],
    };
  }
  return {
    intent: {
      ref,
      created: ingress.metadata?.creationTimestamp ? new Date(ingress.metadata.creationTimestamp).toISOString() : '',
      policy: tlsPolicy.policy,
      policyFromAnnotations: Object.keys(settings).length > 0,
      routes: compact(routes),
      tls: compact(tls),
      proxy: proxy.settings,
    },
    diagnostics,
  };
}

/**
 * The TLS policy that settings (an Ingress's annotations, a Gateway listener's tls.options) ask for over the defaults,
 * with the checks pq-mode makes of the groups and versions. `describe` names a setting's key (tls-groups, ...) in errors.
 */
export function policyFromSettings(settings: IngressSettings, defaults: TlsDefaults, capabilities: Capabilities, describe = (key: string) => `annotation ${ANNOTATION_PREFIX}${key}`): { policy: TlsPolicy; errors: string[] } {
  const errors: string[] = [];
  const pqMode = settings.pqMode ?? defaults.pqMode;
  const groupTiers = settings.tlsGroups ? strictOrder(settings.tlsGroups) : groupsForMode(pqMode, defaults, capabilities);
  const groups = groupTiers.flat();
  const minVersion = settings.tlsMinVersion ?? (pqMode === 'strict' ? 'TLSv1.3' : defaults.minVersion);
  if (pqMode === 'strict') {
    const classical = groups.filter((g) => classifyGroup(g) === 'classical');
    if (classical.length > 0) {
      errors.push(`${describe('tls-groups')}: ${classical.join(', ')} is not ML-KEM-based, which pq-mode strict forbids`);
    }
    if (groups.length === 0) {
      errors.push(`${describe('pq-mode')}: strict needs ML-KEM groups and the data plane (OpenSSL ${capabilities.opensslVersion}) has none`);
    }
    if (minVersion === 'TLSv1.2') {
      errors.push(`${describe('tls-min-version')}: 1.2 cannot go with pq-mode strict (ML-KEM groups exist only in TLS 1.3)`);
    }
  }
  if (pqMode === 'classical') {
    const pq = groups.filter((g) => classifyGroup(g) !== 'classical');
    if (pq.length > 0) errors.push(`${describe('tls-groups')}: ${pq.join(', ')} is ML-KEM-based, which pq-mode classical excludes`);
  }
  if (groups.length === 0) errors.push('no TLS group of this policy is supported by the data plane');
  const policy = shared({ pqMode, groups: groupTiers, protocols: protocolsFrom(minVersion), ...certificateChoice(settings.certificatePreference ?? defaults.certificatePreference, capabilities) });
  return { policy, errors };
}

/**
 * Kubernetes Prefix matching is element-wise: /foo matches /foo and /foo/bar but not /foobar, and a trailing slash is
 * ignored. As string matchers that is the exact path plus the prefix path + '/'.
 */
export function prefixRoutes(host: string, path: string, field: string, backend: BackendRef): IntentRoute[] {
  const trimmed = path.replace(/\/+$/, '');
  if (trimmed === '') return [{ host, match: 'prefix', path: '/', precedence: PRECEDENCE.pathPrefix, field, backend }];
  return [
    { host, match: 'exact', path: trimmed, precedence: PRECEDENCE.implied, field, backend },
    { host, match: 'prefix', path: `${trimmed}/`, precedence: PRECEDENCE.pathPrefix, field, backend },
  ];
}

export function warning(object: ObjectRef, reason: string, message: string): Diagnostic {
  return { object, type: 'Warning', reason, message };
}

/** One string per rule and path index for every route that names it: 10,000 Ingresses hold one copy, not 40,000. */
const pathFields: string[][] = [];

function pathField(rule: number, path: number): string {
  const ofRule = (pathFields[rule] ??= []);
  return (ofRule[path] ??= `spec.rules[${rule}].http.paths[${path}]`);
}

/** An array built by push keeps room to grow (17 slots for 1 item); a copy has just its items. For what is kept. */
function compact<T>(items: T[]): T[] {
  return items.slice();
}

/**
 * Equal TLS policies as one object: thousands of Ingresses share a handful. Bounded: past a thousand distinct ones
 * (annotations with many values) it starts again, which only costs memory what it saved.
 */
const sharedPolicies = new Map<string, TlsPolicy>();

function shared(policy: TlsPolicy): TlsPolicy {
  const key = JSON.stringify(policy);
  const held = sharedPolicies.get(key);
  if (held) return held;
  if (sharedPolicies.size >= 1000) sharedPolicies.clear();
  sharedPolicies.set(key, policy);
  return policy;
}
