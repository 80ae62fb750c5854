// Gateway API -> IngressIntent: the GatewayClasses, Gateways, HTTPRoutes and ReferenceGrants of a snapshot become the
// same intents Ingresses do (one per HTTPRoute), so the model, rendering and data plane are the Ingress pipeline's;
// and the status the spec asks of each object. Pure: no I/O, the same snapshot gives the same result.
// All of a controller's Gateways share one data plane: listener conflicts are judged within a Gateway, and routes of
// different Gateways for one host merge by the routes' precedence, as Ingresses do (docs/gateway-api.md).
import type { V1Service } from '@kubernetes/client-node';
import { ANNOTATION_PREFIX, parseSettings, type IngressSettings } from './annotations.js';
import { joinCaBundles, type CheckedCa } from './certificates.js';
import { GATEWAY_GROUP, type BackendTLSPolicy, type Gateway, type HTTPBackendRef, type GatewayClass, type GatewayCondition, type GRPCMethodMatch, type GRPCRoute, type GRPCRouteRule, type HTTPHeaderFilter, type HTTPPathMatch, type HTTPRequestRedirect, type HTTPRoute, type HTTPRouteMatch, type HTTPRouteRule, type HTTPURLRewrite, type LabelSelector, type Listener, type ParentReference, type ReferenceGrant, type RouteGroupKind, type TLSRoute } from './gateway-api.js';
import { PRECEDENCE, policyFromSettings, prefixRoutes, warning, type BackendRef, type IngressIntent, type IntentRoute } from './ingress.js';
import { checkExactOrPrefixPath, checkHeaderName, checkHeaderValue, checkHost, checkNamespaceName, checkObjectName, checkPath, checkPortNumber, checkRegexPath, checkServiceName, checkValueRegex, quote } from './names.js';
import type { Capabilities, TlsDefaults } from './pq.js';
import { parseProxyAnnotations } from './proxy-annotations.js';
import { SYSTEM_CAS, type BackendTls, type CaBundle, type Diagnostic, type HeaderEdits, type ObjectRef, type RequestConditions, type TlsPolicy, type UrlRewrite, type ValueMatch } from './types.js';

/** The controllerName of QubeSec's GatewayClasses. */
export const GATEWAY_CONTROLLER_NAME = 'qubesec.io/gateway-controller';

/** NGINX Gateway Fabric's listener option for the key-exchange groups: read as qubesec.io/tls-groups. */
export const NGF_ECDH_CURVE_OPTION = 'nginx.org/ssl-ecdh-curve';

/** The Gateway API objects of one snapshot, with what the translation needs to judge references. */
export interface GatewaySnapshot {
  gatewayClasses: readonly GatewayClass[];
  gateways: readonly Gateway[];
  httpRoutes: readonly HTTPRoute[];
  grpcRoutes: readonly GRPCRoute[];
  tlsRoutes: readonly TLSRoute[];
  referenceGrants: readonly ReferenceGrant[];
  backendTlsPolicies: readonly BackendTLSPolicy[];
  /** Labels of each Namespace, by name: allowedRoutes namespace selectors read them. */
  namespaceLabels: ReadonlyMap<string, Readonly<Record<string, string>>>;
  /** The Services by namespace/name: a backendRef to another is BackendNotFound (its share answers 500); ports by name for BackendTLSPolicy sectionNames. */
  services: ReadonlyMap<string, V1Service>;
  /** The ca.crt of each ConfigMap that exists (namespace/name), checked: BackendTLSPolicy's caCertificateRefs. */
  caConfigMaps: { get(key: string): CheckedCa | undefined };
  /** namespace/name of the Secrets with a usable certificate pair: a ref to another is InvalidCertificateRef. */
  certificates: { has(key: string): boolean };
}

export interface GatewayOptions {
  controllerName: string;
  defaults: TlsDefaults;
  capabilities: Capabilities;
  /** The ports the data plane serves HTTP and HTTPS on: a listener on another is PortUnavailable. */
  ports: { http: number; https: number };
}

export interface ListenerStatusDraft {
  name: string;
  supportedKinds: { group: string; kind: string }[];
  attachedRoutes: number;
  /** Accepted, ResolvedRefs, Conflicted; Programmed is the caller's, once the data plane has the model. */
  conditions: GatewayCondition[];
  /** Not accepted for what QubeSec does not serve yet, not for a value it refuses: admission warns, and allows. */
  notServedYet?: true;
}

export interface GatewayStatusDraft {
  ref: ObjectRef;
  /** Accepted; Programmed is the caller's. */
  conditions: GatewayCondition[];
  listeners: ListenerStatusDraft[];
}

export interface RouteParentStatusDraft {
  parentRef: ParentReference;
  controllerName: string;
  conditions: GatewayCondition[];
}

export interface PolicyStatusDraft {
  ref: ObjectRef;
  ancestors: { ancestorRef: ParentReference; controllerName: string; conditions: GatewayCondition[] }[];
}

export interface GatewayTranslation {
  /** One per route attached to at least one listener and with at least one rule served; ref.kind is the route's kind. */
  intents: IngressIntent[];
  gatewayClasses: { ref: ObjectRef; conditions: GatewayCondition[] }[];
  gateways: GatewayStatusDraft[];
  /** Per HTTPRoute and GRPCRoute that names one of our Gateways: a status for each such parentRef. */
  routes: { ref: ObjectRef & { kind: RouteKind }; parents: RouteParentStatusDraft[]; refused: string[] }[];
  /** Per BackendTLSPolicy applying to a backend of a route of our Gateways: its conditions for each such Gateway. */
  policies: PolicyStatusDraft[];
  diagnostics: Diagnostic[];
}

/** The route kinds an HTTP or HTTPS listener takes when its allowedRoutes.kinds names none. */
const ROUTE_KINDS: readonly { group: string; kind: RouteKind }[] = [{ group: GATEWAY_GROUP, kind: 'HTTPRoute' }, { group: GATEWAY_GROUP, kind: 'GRPCRoute' }];

/** The route kinds a TLS (Passthrough) listener takes. */
const TLS_ROUTE_KINDS: readonly { group: string; kind: RouteKind }[] = [{ group: GATEWAY_GROUP, kind: 'TLSRoute' }];

/** A listener as the translation judged it. */
interface ListenerView {
  gateway: Gateway;
  gatewayRef: ObjectRef;
  listener: Listener;
  index: number;
  /** Accepted and not conflicted: routes may attach. */
  usable: boolean;
  /** HTTPS: the Secrets (namespace/name) whose pairs are served; an HTTPS listener without one takes no route. */
  secrets: string[];
  policy?: TlsPolicy;
  policyFromOptions: boolean;
  status: ListenerStatusDraft;
}

export function translateGateways(snapshot: GatewaySnapshot, options: GatewayOptions): GatewayTranslation {
  const result: GatewayTranslation = { intents: [], gatewayClasses: [], gateways: [], routes: [], policies: [], diagnostics: [] };
  const accepted = new Set<string>();
  const ours = new Set<string>();
  for (const gatewayClass of snapshot.gatewayClasses) {
    if (gatewayClass.spec?.controllerName !== options.controllerName) continue;
    const name = gatewayClass.metadata.name ?? '';
    ours.add(name);
    const generation = gatewayClass.metadata.generation;
    const ref: ObjectRef = { kind: 'GatewayClass', namespace: '', name, uid: gatewayClass.metadata.uid };
    if (gatewayClass.spec.parametersRef) {
      const message = `GatewayClass ${name}: spec.parametersRef: QubeSec takes no parameters (its settings are flags and listener tls.options)`;
      result.gatewayClasses.push({ ref, conditions: [condition('Accepted', 'False', 'InvalidParameters', message, generation)] });
      result.diagnostics.push(warning(ref, 'InvalidParameters', message));
      continue;
    }
    accepted.add(name);
    result.gatewayClasses.push({ ref, conditions: [condition('Accepted', 'True', 'Accepted', `accepted by ${options.controllerName}`, generation)] });
  }

  const grants = new ReferenceGrants(snapshot.referenceGrants);
  const policies = new BackendTlsPolicies(snapshot);
  const gateways = new Map<string, { status: GatewayStatusDraft; listeners: ListenerView[] }>();
  for (const gateway of snapshot.gateways) {
    if (!ours.has(gateway.spec?.gatewayClassName ?? '')) continue;
    const judged = unreadable(gateway, 'Gateway', result.diagnostics, () => judgeGateway(gateway, accepted.has(gateway.spec.gatewayClassName), grants, snapshot, options));
    if (!judged) continue;
    gateways.set(`${judged.status.ref.namespace}/${judged.status.ref.name}`, judged);
    result.gateways.push(judged.status);
    result.diagnostics.push(...judged.diagnostics);
  }

  const judged: JudgedRoute[] = [];
  const judge = (route: HTTPRoute | GRPCRoute | TLSRoute, kind: RouteKind) => {
    const one = unreadable(route, kind, result.diagnostics, () => judgeRoute(route, kind, gateways, grants, policies, snapshot, options));
    if (one) judged.push(one);
  };
  for (const route of snapshot.httpRoutes) judge(route, 'HTTPRoute');
  for (const route of snapshot.grpcRoutes) judge(route, 'GRPCRoute');
  for (const route of snapshot.tlsRoutes) judge(route, 'TLSRoute');
  settleKindConflicts(judged);
  for (const route of judged) {
    result.routes.push({ ref: route.ref, parents: route.parents, refused: route.refused });
    const { intent, diagnostics } = routeIntent(route, options);
    if (intent) result.intents.push(intent);
    result.diagnostics.push(...diagnostics);
  }
  result.policies = policies.statuses(options.controllerName);
  for (const policy of result.policies) {
    for (const c of policy.ancestors[0]!.conditions) {
      if (c.status === 'False') result.diagnostics.push(warning(policy.ref, c.reason, c.message));
    }
  }
  return result;
}

/**
 * `read()` of one object, or undefined with a Warning when its fields are not of the schema's types: the API server
 * checks them, a manifest file may not, and one such object must fail alone.
 */
function unreadable<T>(object: Gateway | HTTPRoute | GRPCRoute | TLSRoute, kind: 'Gateway' | RouteKind, diagnostics: Diagnostic[], read: () => T): T | undefined {
  try {
    return read();
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    const ref: ObjectRef = { kind, namespace: object.metadata?.namespace ?? 'default', name: object.metadata?.name ?? '', uid: object.metadata?.uid };
    diagnostics.push(warning(ref, 'Invalid', `${kind} ${ref.namespace}/${ref.name}: its fields do not follow the Gateway API schema (${err.message}); it is not served`));
    return undefined;
  }
}

function judgeGateway(gateway: Gateway, classAccepted: boolean, grants: ReferenceGrants, snapshot: GatewaySnapshot, options: GatewayOptions) {
  const namespace = gateway.metadata.namespace ?? 'default';
  const ref: ObjectRef = { kind: 'Gateway', namespace, name: gateway.metadata.name ?? '', uid: gateway.metadata.uid };
  const generation = gateway.metadata.generation;
  const diagnostics: Diagnostic[] = [];
  const views: ListenerView[] = gateway.spec.listeners.map((listener, index) => judgeListener(gateway, ref, listener, index, grants, snapshot, options));

  // Listeners must be distinct: one protocol per port (HTTPS and TLS both are TLS: SNI tells them apart), and one
  // listener per port, protocol and hostname. All indistinct ones are refused; the spec forbids picking a winner.
  const candidates = views.filter(isAccepted);
  const family = (protocol: string) => (protocol === 'TLS' ? 'HTTPS' : protocol);
  for (const view of candidates) {
    const { port, protocol, hostname } = view.listener;
    const samePort = candidates.filter((o) => o !== view && o.listener.port === port);
    const protocolClash = samePort.find((o) => family(o.listener.protocol) !== family(protocol));
    const hostnameClash = samePort.find((o) => family(o.listener.protocol) === family(protocol) && (o.listener.hostname ?? '') === (hostname ?? ''));
    const clash = protocolClash ? { reason: 'ProtocolConflict', other: protocolClash, what: `protocol ${protocolClash.listener.protocol} on port ${port}` }
      : hostnameClash ? { reason: 'HostnameConflict', other: hostnameClash, what: `hostname ${hostname ?? '(any)'} on port ${port}` }
        : undefined;
    if (!clash) continue;
    view.usable = false;
    const message = `Gateway ${name(ref)}: spec.listeners[${view.index}] (${view.listener.name}) conflicts with listener ${clash.other.listener.name} (${clash.what}); neither is served`;
    setCondition(view.status, condition('Conflicted', 'True', clash.reason, message, generation));
    setCondition(view.status, condition('Accepted', 'False', clash.reason, message, generation));
  }
  const told = new Set<string>();
  for (const view of views) {
    if (!view.status.conditions.some((c) => c.type === 'Conflicted')) setCondition(view.status, condition('Conflicted', 'False', 'NoConflicts', 'no conflicts', generation));
    for (const c of view.status.conditions) {
      const problem = c.type === 'Conflicted' ? c.status === 'True' : c.status === 'False';
      if (problem && !told.has(c.message)) {
        told.add(c.message);
        diagnostics.push(warning(ref, c.reason, c.message));
      }
    }
  }

  let gatewayCondition: GatewayCondition;
  const invalid = views.filter((v) => !isAccepted(v)).map((v) => v.listener.name);
  if (!classAccepted) {
    gatewayCondition = condition('Accepted', 'False', 'InvalidParameters', `Gateway ${name(ref)}: GatewayClass ${gateway.spec.gatewayClassName} is not accepted`, generation);
  } else if ((gateway.spec.addresses ?? []).length > 0) {
    gatewayCondition = condition('Accepted', 'False', 'UnsupportedAddress', `Gateway ${name(ref)}: spec.addresses: QubeSec's data plane takes its addresses from its Service; requested addresses are not supported yet`, generation);
  } else if (invalid.length === views.length) {
    gatewayCondition = condition('Accepted', 'False', 'ListenersNotValid', `Gateway ${name(ref)}: no listener is valid (${invalid.join(', ')})`, generation);
  } else if (invalid.length > 0) {
    gatewayCondition = condition('Accepted', 'True', 'ListenersNotValid', `Gateway ${name(ref)}: listeners ${invalid.join(', ')} are not valid; the others are accepted`, generation);
  } else {
    gatewayCondition = condition('Accepted', 'True', 'Accepted', `accepted by ${options.controllerName}`, generation);
  }
  if (gatewayCondition.status === 'False') {
    diagnostics.push(warning(ref, gatewayCondition.reason, gatewayCondition.message));
    for (const view of views) view.usable = false;
  }
  return { status: { ref, conditions: [gatewayCondition], listeners: views.map((v) => v.status) }, listeners: views, diagnostics };
}

function judgeListener(gateway: Gateway, gatewayRef: ObjectRef, listener: Listener, index: number, grants: ReferenceGrants, snapshot: GatewaySnapshot, options: GatewayOptions): ListenerView {
  const generation = gateway.metadata.generation;
  const field = `Gateway ${name(gatewayRef)}: spec.listeners[${index}]`;
  const status: ListenerStatusDraft = { name: listener.name, supportedKinds: [], attachedRoutes: 0, conditions: [] };
  const view: ListenerView = { gateway, gatewayRef, listener, index, usable: false, secrets: [], policyFromOptions: false, status };
  const refused = (reason: string, message: string) => setCondition(status, condition('Accepted', 'False', reason, `${field}${message}`, generation));

  // Kinds: HTTPRoute and GRPCRoute on HTTP and HTTPS listeners, TLSRoute on TLS ones, none on a protocol QubeSec does
  // not serve; others are named in ResolvedRefs.
  const kinds = listener.protocol === 'TLS' ? TLS_ROUTE_KINDS : listener.protocol === 'HTTP' || listener.protocol === 'HTTPS' ? ROUTE_KINDS : [];
  const wanted: readonly RouteGroupKind[] = listener.allowedRoutes?.kinds?.length ? listener.allowedRoutes.kinds : kinds;
  const servedKind = (k: RouteGroupKind) => kinds.find((r) => r.kind === k.kind && r.group === (k.group ?? GATEWAY_GROUP));
  const unsupportedKinds = wanted.filter((k) => !servedKind(k));
  status.supportedKinds = kinds.filter((r) => wanted.some((k) => servedKind(k) === r)).map((r) => ({ ...r }));
  const refProblems: { reason: string; message: string }[] = [];
  if (unsupportedKinds.length > 0 && kinds.length > 0) {
    refProblems.push({ reason: 'InvalidRouteKinds', message: `${field}.allowedRoutes.kinds: ${unsupportedKinds.map((k) => `${k.group ?? GATEWAY_GROUP}/${k.kind}`).join(', ')} not supported (QubeSec serves ${kinds.map((r) => r.kind).join(' and ')} on ${listener.protocol} listeners)` });
  }

  // TLS passthrough shares the HTTPS port: SNI picks passthrough or termination before any handshake.
  const port = listener.protocol === 'HTTP' ? options.ports.http : options.ports.https;
  if (listener.protocol !== 'HTTP' && listener.protocol !== 'HTTPS' && listener.protocol !== 'TLS') {
    refused('UnsupportedProtocol', `.protocol: ${quote(listener.protocol)} is not supported yet (HTTP, HTTPS and TLS are)`);
  } else if (listener.port !== port) {
    refused('PortUnavailable', `.port: the data plane serves ${listener.protocol} on port ${port}, not ${listener.port}`);
  } else if (listener.hostname !== undefined && checkHost(listener.hostname)) {
    refused('UnsupportedValue', `.hostname: ${quote(listener.hostname)} ${checkHost(listener.hostname)}`);
  } else if (listener.protocol === 'TLS') {
    if ((listener.tls?.mode ?? 'Terminate') !== 'Passthrough') {
      refused('UnsupportedValue', '.tls.mode: a TLS listener serves Passthrough; Terminate (TLSRoute to plain backends) is not supported yet');
      status.notServedYet = true;
    }
  } else if (listener.protocol === 'HTTPS') {
    const tls = listener.tls;
    if (!tls || (tls.mode ?? 'Terminate') !== 'Terminate') {
      refused('UnsupportedValue', '.tls.mode: HTTPS needs mode Terminate with certificateRefs (Passthrough is for TLS listeners)');
    } else {
      const tlsOptions = listenerPolicy(tls.options, field, options);
      if (tlsOptions.errors.length > 0) {
        setCondition(status, condition('Accepted', 'False', 'UnsupportedValue', tlsOptions.errors.join('; '), generation));
      } else {
        view.policy = tlsOptions.policy;
        view.policyFromOptions = tlsOptions.fromOptions;
        const namespace = gatewayRef.namespace;
        (tls.certificateRefs ?? []).forEach((certificateRef, i) => {
          const at = `${field}.tls.certificateRefs[${i}]`;
          if ((certificateRef.group ?? '') !== '' || (certificateRef.kind ?? 'Secret') !== 'Secret') {
            refProblems.push({ reason: 'InvalidCertificateRef', message: `${at}: ${certificateRef.group ?? ''}/${certificateRef.kind} is not a Secret` });
            return;
          }
          const target = certificateRef.namespace ?? namespace;
          if (target !== namespace && !grants.permits({ group: GATEWAY_GROUP, kind: 'Gateway', namespace }, { group: '', kind: 'Secret', namespace: target, name: certificateRef.name })) {
            refProblems.push({ reason: 'RefNotPermitted', message: `${at}: Secret ${target}/${certificateRef.name} is in another namespace and no ReferenceGrant there allows it` });
            return;
          }
          const key = `${target}/${certificateRef.name}`;
          if (!snapshot.certificates.has(key)) {
            refProblems.push({ reason: 'InvalidCertificateRef', message: `${at}: Secret ${key} is missing or holds no valid certificate and key` });
            return;
          }
          if (!view.secrets.includes(key)) view.secrets.push(key);
        });
        if (view.secrets.length === 0 && refProblems.every((p) => p.reason === 'InvalidRouteKinds')) {
          refProblems.push({ reason: 'InvalidCertificateRef', message: `${field}.tls.certificateRefs: an HTTPS listener needs at least one certificate` });
        }
      }
    }
  } else if (listener.tls) {
    refused('UnsupportedValue', '.tls: an HTTP listener has no TLS');
  }

  if (!status.conditions.some((c) => c.type === 'Accepted')) {
    setCondition(status, condition('Accepted', 'True', 'Accepted', 'accepted', generation));
    // An HTTPS listener whose every certificate is unusable serves nothing: no plain text, no default certificate.
    view.usable = status.supportedKinds.length > 0 && (listener.protocol !== 'HTTPS' || view.secrets.length > 0);
  }
  // RefNotPermitted before InvalidCertificateRef before InvalidRouteKinds: the one a user must act on first.
  const order = ['RefNotPermitted', 'InvalidCertificateRef', 'InvalidRouteKinds'];
  const first = [...refProblems].sort((a, b) => order.indexOf(a.reason) - order.indexOf(b.reason))[0];
  setCondition(status, first
    ? condition('ResolvedRefs', 'False', first.reason, refProblems.map((p) => p.message).join('; '), generation)
    : condition('ResolvedRefs', 'True', 'ResolvedRefs', 'all references resolved', generation));
  return view;
}

/** A listener's tls.options through the Ingress annotations' parser; NGINX Gateway Fabric's curve option as tls-groups. */
function listenerPolicy(entries: Record<string, string> | undefined, field: string, options: GatewayOptions): { policy: TlsPolicy; fromOptions: boolean; errors: string[] } {
  const describe = (key: string) => `${field}.tls.options[${key}]`;
  const known = ['pq-mode', 'tls-groups', 'tls-min-version', 'certificate-preference'].map((k) => ANNOTATION_PREFIX + k);
  const errors: string[] = [];
  for (const key of Object.keys(entries ?? {})) {
    if (key.startsWith(ANNOTATION_PREFIX) && !known.includes(key)) errors.push(`${describe(key)}: not a QubeSec listener option (${known.join(', ')})`);
  }
  const parsed = parseSettings(entries, options.capabilities, ANNOTATION_PREFIX, describe);
  errors.push(...parsed.errors);
  const settings: IngressSettings = { ...parsed.settings };
  const curve = entries?.[NGF_ECDH_CURVE_OPTION];
  if (curve !== undefined) {
    const asGroups = parseSettings({ [`${ANNOTATION_PREFIX}tls-groups`]: curve }, options.capabilities, ANNOTATION_PREFIX, () => describe(NGF_ECDH_CURVE_OPTION));
    errors.push(...asGroups.errors);
    if (entries?.[`${ANNOTATION_PREFIX}tls-groups`] !== undefined) errors.push(`${describe(NGF_ECDH_CURVE_OPTION)}: set it or ${ANNOTATION_PREFIX}tls-groups, not both`);
    else if (asGroups.settings.tlsGroups) settings.tlsGroups = asGroups.settings.tlsGroups;
  }
  const policy = policyFromSettings(settings, options.defaults, options.capabilities, (key) => describe(ANNOTATION_PREFIX + key));
  errors.push(...policy.errors.map((e) => (e.startsWith(field) ? e : `${field}.tls.options: ${e}`)));
  return { policy: policy.policy, fromOptions: Object.keys(settings).length > 0, errors };
}

/** A route kind served on HTTP and HTTPS listeners: both become the same intents, a GRPCRoute's speaking gRPC to the pods. */
export type HttpRouteKind = 'HTTPRoute' | 'GRPCRoute';

/** Every route kind served; a TLSRoute attaches to TLS Passthrough listeners only. */
export type RouteKind = HttpRouteKind | 'TLSRoute';

/** A route's attachment to one listener, and the hosts it gives the route there. */
interface Attachment {
  parent: number;
  view: ListenerView;
  hosts: string[];
}

/** A route as judged before the kinds' hostname conflicts are settled: its intent comes after (routeIntent). */
interface JudgedRoute {
  ref: ObjectRef & { kind: RouteKind };
  /** creationTimestamp as ISO text, '' when none: the older of two conflicting routes wins. */
  created: string;
  parents: RouteParentStatusDraft[];
  /** Values QubeSec refuses (not features it does not serve yet), each naming the route and field: admission denies these. */
  refused: string[];
  /** Of the parents accepted, the listeners and hosts. */
  attachments: Attachment[];
  served: RuleOutcome[];
}

/** What one rule gives: its routes (without host yet), or why it is not served. */
interface RuleOutcome {
  /** With host '': each host the route's listeners give it gets a copy. */
  routes: IntentRoute[];
  /** A feature QubeSec cannot serve yet or (`refused`) a value it refuses: the rule is dropped. */
  dropped?: { reason: 'UnsupportedValue' | 'IncompatibleFilters'; message: string; refused: boolean };
  /** A backendRef that cannot be resolved: ResolvedRefs False; the rule is served, that backend's share answering 500 (refused) or 503 (missing). */
  refProblem?: { reason: 'InvalidKind' | 'RefNotPermitted' | 'BackendNotFound'; message: string };
  /** A TLSRoute's rule: the backends of its passthrough (routes is empty). */
  passthrough?: NonNullable<IntentRoute['backends']>;
  /** The BackendTLSPolicies that apply to its backends, or lost to one that does: their status names the route's Gateways. */
  policies?: BackendTLSPolicy[];
}

function judgeRoute(route: HTTPRoute | GRPCRoute | TLSRoute, kind: RouteKind, gateways: ReadonlyMap<string, { listeners: ListenerView[] }>, grants: ReferenceGrants, policies: BackendTlsPolicies, snapshot: GatewaySnapshot, options: GatewayOptions): JudgedRoute | undefined {
  const namespace = route.metadata.namespace ?? 'default';
  const ref = { kind, namespace, name: route.metadata.name ?? '', uid: route.metadata.uid };
  const generation = route.metadata.generation;
  const field = `${kind} ${name(ref)}`;
  const ourParents = (route.spec.parentRefs ?? []).map((parentRef, i) => ({ parentRef, i, gateway: gateways.get(`${parentRef.namespace ?? namespace}/${parentRef.name}`) }))
    .filter((p) => (p.parentRef.group ?? GATEWAY_GROUP) === GATEWAY_GROUP && (p.parentRef.kind ?? 'Gateway') === 'Gateway' && p.gateway);
  if (ourParents.length === 0) return undefined;

  const objectErrors = [checkObjectName(ref.name) && `metadata.name: ${quote(ref.name)} ${checkObjectName(ref.name)}`, checkNamespaceName(namespace) && `metadata.namespace: ${quote(namespace)} ${checkNamespaceName(namespace)}`]
    .filter((e): e is string => typeof e === 'string');
  const hostnameErrors: string[] = [];
  const hostnames = (route.spec.hostnames ?? []).filter((h, i) => {
    const e = checkHost(h);
    if (e) hostnameErrors.push(`spec.hostnames[${i}]: ${quote(h)} ${e}`);
    return !e;
  });
  // The port a redirect without scheme or port keeps: that of the first listener the route names.
  const firstListener = ourParents.flatMap(({ parentRef, gateway }) => gateway!.listeners.filter((v) => parentRef.sectionName === undefined || v.listener.name === parentRef.sectionName))[0]?.listener;
  if (kind === 'TLSRoute' && hostnames.length === 0 && hostnameErrors.length === 0) hostnameErrors.push('spec.hostnames: a TLSRoute needs at least one (the SNI names it takes)');
  const outcomes = kind === 'TLSRoute'
    ? ((route as TLSRoute).spec.rules ?? []).map((rule, i) => translateTlsRule(rule, i, namespace, grants, snapshot))
    : kind === 'GRPCRoute'
      ? ((route as GRPCRoute).spec.rules ?? [{}]).map((rule, i) => translateGrpcRule(rule, i, namespace, grants, policies, snapshot))
      : ((route as HTTPRoute).spec.rules ?? [{}]).map((rule, i) => translateRule(rule, i, 'HTTPRoute', namespace, grants, policies, snapshot, firstListener));
  if (kind === 'TLSRoute' && outcomes.length !== 1) hostnameErrors.push(`spec.rules: a TLSRoute has exactly one rule, not ${outcomes.length}`);
  const served = outcomes.filter((o) => !o.dropped);
  const dropped = outcomes.flatMap((o) => (o.dropped ? [o.dropped.message] : []));
  const refProblem = outcomes.find((o) => o.refProblem)?.refProblem;
  const refMessages = outcomes.flatMap((o) => (o.refProblem ? [o.refProblem.message] : []));
  const fatal = [...objectErrors, ...hostnameErrors];
  const refused = [...fatal, ...outcomes.flatMap((o) => (o.dropped?.refused ? [o.dropped.message] : []))].map((m) => `${field}: ${m}`);

  const parents: RouteParentStatusDraft[] = [];
  const attachments: Attachment[] = [];
  const attached = new Set<ListenerView>();
  for (const { parentRef, gateway } of ourParents) {
    const listeners = gateway!.listeners.filter((v) => (parentRef.sectionName === undefined || v.listener.name === parentRef.sectionName) && (parentRef.port === undefined || v.listener.port === parentRef.port));
    const allowed = listeners.filter((v) => v.status.supportedKinds.some((k) => k.kind === kind) && allowsNamespace(v, namespace, snapshot.namespaceLabels));
    // AttachedRoutes counts attachment by parentRef and allowedRoutes alone, whatever the hostnames or the listener's
    // state; a route that names a listener twice (by name and through the whole Gateway) counts once.
    for (const v of allowed) {
      if (!attached.has(v)) v.status.attachedRoutes++;
      attached.add(v);
    }
    const usable = allowed.filter((v) => v.usable);
    const intersections = usable.map((view) => ({ parent: parents.length, view, hosts: intersect(view.listener.hostname, hostnames) })).filter((x) => x.hosts.length > 0);
    let accepted: GatewayCondition;
    if (fatal.length > 0) {
      accepted = condition('Accepted', 'False', 'UnsupportedValue', `${field}: ${fatal.join('; ')}`, generation);
    } else if (listeners.length === 0) {
      accepted = condition('Accepted', 'False', 'NoMatchingParent', `${field}: Gateway ${parentRef.namespace ?? namespace}/${parentRef.name} has no listener${parentRef.sectionName === undefined ? '' : ` named ${parentRef.sectionName}`}${parentRef.port === undefined ? '' : ` on port ${parentRef.port}`}`, generation);
    } else if (allowed.length === 0) {
      accepted = condition('Accepted', 'False', 'NotAllowedByListeners', `${field}: no listener of Gateway ${parentRef.namespace ?? namespace}/${parentRef.name} allows ${kind}s from namespace ${namespace}`, generation);
    } else if (usable.length === 0) {
      accepted = condition('Accepted', 'False', 'NoMatchingParent', `${field}: the listeners it names (${allowed.map((v) => v.listener.name).join(', ')}) are not accepted or have no usable certificate`, generation);
    } else if (intersections.length === 0) {
      accepted = condition('Accepted', 'False', 'NoMatchingListenerHostname', `${field}: spec.hostnames (${hostnames.join(', ')}) match no hostname of the listeners ${usable.map((v) => `${v.listener.name} (${v.listener.hostname ?? 'any'})`).join(', ')}`, generation);
    } else if (dropped.length === outcomes.length) {
      accepted = condition('Accepted', 'False', outcomes[0]!.dropped!.reason, `${field}: no rule can be served: ${dropped.join('; ')}`, generation);
    } else {
      accepted = condition('Accepted', 'True', 'Accepted', 'accepted', generation);
      attachments.push(...intersections);
    }
    const conditions = [accepted];
    if (accepted.status === 'True' && dropped.length > 0) {
      conditions.push(condition('PartiallyInvalid', 'True', 'UnsupportedValue', `Dropped Rule(s): ${dropped.join('; ')}`, generation));
    }
    conditions.push(refProblem
      ? condition('ResolvedRefs', 'False', refProblem.reason, `${field}: ${refMessages.join('; ')}`, generation)
      : condition('ResolvedRefs', 'True', 'ResolvedRefs', 'all references resolved', generation));
    parents.push({ parentRef, controllerName: options.controllerName, conditions });
  }
  const reached = served.flatMap((o) => o.policies ?? []);
  for (const { view } of attachments) policies.reach(reached, view.gatewayRef);
  const created = route.metadata.creationTimestamp ? new Date(route.metadata.creationTimestamp).toISOString() : '';
  return { ref, created, parents, refused, attachments, served };
}

/**
 * The spec: of an HTTPRoute and a GRPCRoute attached to one listener with intersecting hostnames exactly one is
 * accepted there, the older (then the first by namespace/name); the other loses that attachment, and a parent left
 * with none is not accepted.
 */
function settleKindConflicts(routes: readonly JudgedRoute[]): void {
  // Most clusters have one kind only: nothing to settle, and no work on each translation.
  if (!routes.some((r) => r.ref.kind === 'GRPCRoute') || !routes.some((r) => r.ref.kind === 'HTTPRoute')) return;
  const order = routes.filter((r) => r.ref.kind !== 'TLSRoute').sort(oldestFirst((r) => r.created, (r) => name(r.ref)));
  // Per listener, the accepted attachments of each kind: a route is checked against the other kind's only.
  const held = new Map<ListenerView, Record<HttpRouteKind, { route: JudgedRoute; hosts: string[] }[]>>();
  for (const route of order) {
    const own = route.ref.kind as HttpRouteKind;
    const other: HttpRouteKind = own === 'HTTPRoute' ? 'GRPCRoute' : 'HTTPRoute';
    const lost = new Map<number, JudgedRoute>();
    route.attachments = route.attachments.filter((a) => {
      let kinds = held.get(a.view);
      if (!kinds) held.set(a.view, (kinds = { HTTPRoute: [], GRPCRoute: [] }));
      const rival = kinds[other].find((h) => hostsOverlap(h.hosts, a.hosts));
      if (!rival) {
        kinds[own].push({ route, hosts: a.hosts });
        return true;
      }
      lost.set(a.parent, rival.route);
      return false;
    });
    for (const [parent, rival] of lost) {
      if (route.attachments.some((a) => a.parent === parent)) continue;
      const status = route.parents[parent]!;
      const generation = status.conditions[0]!.observedGeneration;
      setCondition(status, condition('Accepted', 'False', 'HostnameConflict', `${route.ref.kind} ${name(route.ref)}: ${rival.ref.kind} ${name(rival.ref)}, older, serves intersecting hostnames on the same listeners (the spec accepts one of the two)`, generation));
      status.conditions = status.conditions.filter((c) => c.type !== 'PartiallyInvalid');
    }
  }
}

/** Two lists of hosts (from intersect: '' is any host) with a host in common. */
function hostsOverlap(a: readonly string[], b: readonly string[]): boolean {
  return a.some((x) => b.some((y) => x === '' || y === '' || intersection(x, y) !== undefined));
}

/** The intent of a judged route on the listeners it kept, or none when it kept none; and the Warnings of its parents. */
function routeIntent(judged: JudgedRoute, options: GatewayOptions): { intent?: IngressIntent; diagnostics: Diagnostic[] } {
  const { ref, parents, attachments, served } = judged;
  const field = `${ref.kind} ${name(ref)}`;
  const diagnostics: Diagnostic[] = [];
  const messages = new Set<string>();
  for (const parent of parents) {
    for (const c of parent.conditions) {
      if ((c.status === 'False' || c.type === 'PartiallyInvalid') && !messages.has(c.message)) {
        messages.add(c.message);
        diagnostics.push(warning(ref, c.reason, c.message.startsWith(field) ? c.message : `${field}: ${c.message}`));
      }
    }
  }
  if (attachments.length === 0 || served.length === 0) return { diagnostics };
  if (ref.kind === 'TLSRoute') {
    // Passthrough: no TLS policy of ours applies (the pods terminate); the hosts are the SNI names of the attachments.
    const hosts = [...new Set(attachments.flatMap((x) => x.hosts))];
    const policy = policyFromSettings({}, options.defaults, options.capabilities).policy;
    const proxy = parseProxyAnnotations(undefined, ref.namespace, false).settings;
    return { intent: { ref, created: judged.created, policy, policyFromAnnotations: false, routes: [], tls: [], proxy, passthrough: { hosts, backends: served[0]!.passthrough! } }, diagnostics };
  }

  // One intent: each served rule's routes on every host the route's listeners give it, first rule first; a later rule
  // for the same host, path and conditions loses to the earlier (the spec's tie-breaking within a route).
  const routes: IntentRoute[] = [];
  const seen = new Map<string, IntentRoute>();
  const hosts = [...new Set(attachments.flatMap((x) => x.hosts))];
  for (const host of hosts) {
    for (const outcome of served) {
      for (const r of outcome.routes) {
        const key = `${host} ${r.match} ${r.path} ${JSON.stringify(r.conditions ?? null)}`;
        const held = seen.get(key);
        if (held && held.precedence <= r.precedence) continue;
        const full = { ...r, host };
        if (held) routes.splice(routes.indexOf(held), 1, full);
        else routes.push(full);
        seen.set(key, full);
      }
    }
  }
  const tls: IngressIntent['tls'] = [];
  const https = attachments.filter((x) => x.view.listener.protocol === 'HTTPS');
  for (const { view, hosts: listenerHosts } of https) {
    for (const secret of view.secrets) {
      const entry = tls.find((t) => t.secret === secret);
      if (entry) entry.hosts = [...new Set([...entry.hosts, ...listenerHosts])];
      else tls.push({ hosts: listenerHosts, secret });
    }
  }
  // One TLS policy per intent: the first HTTPS listener's; a listener asking for another is told its options do not apply here.
  const policySource = https[0]?.view;
  for (const { view } of https.slice(1)) {
    if (view.policyFromOptions && view.policy && policySource?.policy && view.policy !== policySource.policy) {
      diagnostics.push(warning(ref, 'Conflict', `${field}: its hosts take the TLS policy of listener ${name(policySource.gatewayRef)}/${policySource.listener.name}; the tls.options of listener ${name(view.gatewayRef)}/${view.listener.name} do not apply to them`));
    }
  }
  const policy = policySource?.policy ?? policyFromSettings({}, options.defaults, options.capabilities).policy;
  const intent: IngressIntent = {
    ref,
    created: judged.created,
    policy,
    policyFromAnnotations: policySource?.policyFromOptions ?? false,
    routes,
    tls,
    // Attached to an HTTP listener: plain HTTP serves the route (no redirect unless a filter asks); on HTTPS listeners
    // only: plain HTTP to its hosts is redirected, as for an Ingress with TLS. A GRPCRoute speaks gRPC (HTTP/2) to the pods.
    proxy: {
      ...parseProxyAnnotations(undefined, ref.namespace, false).settings,
      httpsRedirect: https.length < attachments.length ? 'never' : 'tls-hosts',
      ...(ref.kind === 'GRPCRoute' ? { protocol: 'GRPC' as const } : {}),
    },
  };
  return { intent, diagnostics };
}

/** Filter types QubeSec serves, by route kind, each at most once per rule (the spec allows one of each core type). */
const SERVED_FILTERS: Record<HttpRouteKind, readonly string[]> = {
  HTTPRoute: ['RequestRedirect', 'RequestHeaderModifier', 'ResponseHeaderModifier', 'URLRewrite'],
  GRPCRoute: ['RequestHeaderModifier', 'ResponseHeaderModifier'],
};

/** Filter types a GRPCRoute's schema allows: of the others, one in a manifest file is refused. */
const GRPC_FILTERS = ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'ExtensionRef'];

/** HTTP methods a match may name: the schema's enumeration. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

/**
 * A GRPCRoute rule as the HTTPRoute rule that serves it: a gRPC call is a POST to /service/method, so a method match
 * is a path match (service and method: Exact; service alone: PathPrefix; else a regular expression), its headers as
 * they are. The method match's own values are checked here, so the paths made of them are valid.
 */
function translateGrpcRule(rule: GRPCRouteRule, index: number, namespace: string, grants: ReferenceGrants, policies: BackendTlsPolicies, snapshot: GatewaySnapshot): RuleOutcome {
  const field = `spec.rules[${index}]`;
  const invalid: string[] = [];
  (rule.filters ?? []).forEach((f, i) => {
    if (!GRPC_FILTERS.includes(f.type)) invalid.push(`${field}.filters[${i}].type: ${quote(f.type)} is not a GRPCRoute filter (${GRPC_FILTERS.join(', ')})`);
  });
  const matches = (rule.matches ?? []).map((m, j): HTTPRouteMatch => ({
    ...(m.headers ? { headers: m.headers } : {}),
    ...(m.method ? { path: grpcPath(m.method, `${field}.matches[${j}].method`, invalid) } : {}),
  }));
  if (invalid.length > 0) return { routes: [], dropped: { reason: 'UnsupportedValue', message: invalid.join('; '), refused: true } };
  return translateRule({ ...rule, matches }, index, 'GRPCRoute', namespace, grants, policies, snapshot, undefined);
}

/** gRPC service and method names as the GRPCRoute schema has them for Exact matches. */
const GRPC_SERVICE = /^\.?[A-Za-z_][A-Za-z_0-9]*(?:\.[A-Za-z_][A-Za-z_0-9]*)*$/;
const GRPC_METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;

/** A method match as the path match of its calls; bad values go to `invalid`. */
function grpcPath(match: GRPCMethodMatch, at: string, invalid: string[]): HTTPPathMatch {
  const type = match.type ?? 'Exact';
  const { service, method } = match;
  if (service === undefined && method === undefined) invalid.push(`${at}: needs a service, a method or both`);
  if (type === 'Exact') {
    if (service !== undefined && !GRPC_SERVICE.test(service)) invalid.push(`${at}.service: ${quote(service)} is not a gRPC service name (such as helloworld.Greeter)`);
    if (method !== undefined && !GRPC_METHOD.test(method)) invalid.push(`${at}.method: ${quote(method)} is not a gRPC method name (such as SayHello)`);
    if (service !== undefined && method !== undefined) return { type: 'Exact', value: `/${service}/${method}` };
    if (service !== undefined) return { type: 'PathPrefix', value: `/${service}/` };
    return { type: 'RegularExpression', value: `/[^/]+/${method ?? ''}` };
  }
  if (type !== 'RegularExpression') {
    invalid.push(`${at}.type: ${quote(type)} is not Exact or RegularExpression`);
    return {};
  }
  for (const [key, value] of [['service', service], ['method', method]] as const) {
    const e = value === undefined ? undefined : checkValueRegex(value) ?? (value.includes('/') ? 'must not contain /' : undefined);
    if (e) invalid.push(`${at}.${key}: ${quote(value!)} ${e}`);
  }
  return { type: 'RegularExpression', value: `/(?:${service ?? '[^/]+'})/(?:${method ?? '[^/]+'})` };
}

function translateRule(rule: HTTPRouteRule, index: number, kind: HttpRouteKind, namespace: string, grants: ReferenceGrants, policies: BackendTlsPolicies, snapshot: GatewaySnapshot, listener: Listener | undefined): RuleOutcome {
  const field = `spec.rules[${index}]`;
  const unsupported: string[] = [];
  const invalid: string[] = [];
  const filters = rule.filters ?? [];
  const others = filters.filter((f) => !SERVED_FILTERS[kind].includes(f.type));
  if (others.length > 0) {
    return { routes: [], dropped: { reason: 'IncompatibleFilters', message: `${field}.filters: ${others.map((f) => f.type).join(', ')} not supported yet`, refused: false } };
  }
  const repeated = SERVED_FILTERS[kind].filter((type) => filters.filter((f) => f.type === type).length > 1);
  if (repeated.length > 0) return { routes: [], dropped: { reason: 'IncompatibleFilters', message: `${field}.filters: more than one ${repeated.join(', ')}`, refused: true } };
  const filterAt = (type: string) => {
    const i = filters.findIndex((f) => f.type === type);
    return i < 0 ? undefined : { filter: filters[i]!, at: `${field}.filters[${i}]` };
  };
  const redirectFilter = filterAt('RequestRedirect');
  const redirect = redirectFilter && redirectOf(redirectFilter.filter.requestRedirect ?? {}, `${redirectFilter.at}.requestRedirect`, listener, invalid);
  const edits = (type: string, key: 'requestHeaderModifier' | 'responseHeaderModifier') => {
    const found = filterAt(type);
    return found && headerEditsOf(found.filter[key] ?? {}, `${found.at}.${key}`, invalid);
  };
  const requestHeaders = edits('RequestHeaderModifier', 'requestHeaderModifier');
  const responseHeaders = edits('ResponseHeaderModifier', 'responseHeaderModifier');
  if (redirect && (requestHeaders || responseHeaders)) unsupported.push(`${field}.filters (a header modifier with RequestRedirect)`);
  const rewriteFilter = filterAt('URLRewrite');
  if (redirectFilter && rewriteFilter) invalid.push(`${field}.filters: RequestRedirect and URLRewrite cannot be combined (the spec)`);
  const rewrite = rewriteFilter && urlRewriteOf(rewriteFilter.filter.urlRewrite ?? {}, `${rewriteFilter.at}.urlRewrite`, invalid);
  const timeoutMs = rule.timeouts && timeoutOf(rule.timeouts, `${field}.timeouts`, invalid);
  if (rule.retry) unsupported.push(`${field}.retry`);
  if (rule.sessionPersistence) unsupported.push(`${field}.sessionPersistence`);
  const matches = rule.matches && rule.matches.length > 0 ? rule.matches : [{}];
  const conditions = matches.map((m, j) => conditionsOf(m, `${field}.matches[${j}]`, invalid));
  // A redirect answers every request itself: its backendRefs are never used (the spec), so not judged.
  const backendRefs = redirect ? [] : (rule.backendRefs ?? []).filter((b) => b.weight !== 0);
  backendRefs.forEach((b) => {
    if ((b.filters ?? []).length > 0) unsupported.push(`${field}.backendRefs[${rule.backendRefs!.indexOf(b)}].filters`);
  });
  if (invalid.length > 0) return { routes: [], dropped: { reason: 'UnsupportedValue', message: invalid.join('; '), refused: true } };
  if (unsupported.length > 0) return { routes: [], dropped: { reason: 'UnsupportedValue', message: `${unsupported.join(', ')}: not supported yet`, refused: false } };

  const { backends, problems } = resolveBackendRefs(backendRefs, rule.backendRefs ?? [], field, kind, namespace, grants, snapshot, invalid);
  // No backendRef with weight above 0: every request answers 500 (the spec).
  if (!redirect && backends.length === 0) backends.push({ backend: { namespace, service: '', port: '' }, weight: 1, refused: true });
  // TLS to the pods as their Services' BackendTLSPolicies ask. NGINX has one TLS setting per location, so a rule's
  // backends must agree on it.
  const tlsOf = backends.filter((b) => !b.refused).map((b) => policies.backendTls(b.backend));
  const considered = [...new Set(tlsOf.flatMap((t) => t.considered))];
  if (new Set(tlsOf.map((t) => JSON.stringify(t.tls ?? null))).size > 1) {
    return { routes: [], dropped: { reason: 'UnsupportedValue', message: `${field}.backendRefs: their Services differ in BackendTLSPolicy (a rule has one TLS setting to its pods): not supported yet`, refused: false }, policies: considered };
  }
  const backendTls = tlsOf[0]?.tls;
  // A redirect's routes name no backend: the builder gives them no upstream.
  const backend: BackendRef = backends[0]?.backend ?? { namespace, service: '', port: '' };
  const extras = {
    ...(backendTls ? { backendTls } : {}),
    ...(backends.length > 1 || backends.some((b) => b.refused) ? { backends } : {}),
    ...(requestHeaders ? { requestHeaders } : {}),
    ...(responseHeaders ? { responseHeaders } : {}),
    // A redirect is answered at once: no attempt to time.
    ...(timeoutMs && !redirect ? { timeoutMs } : {}),
  };
  const routes: IntentRoute[] = [];
  matches.forEach((m, j) => {
    const pathField = `${field}.matches[${j}].path`;
    const type = m.path?.type ?? 'PathPrefix';
    const value = m.path?.value ?? '/';
    const routeField = `${field}.matches[${j}]`;
    const found: IntentRoute[] = [];
    if (type === 'Exact' || type === 'PathPrefix') {
      const e = checkPath(value) ?? checkExactOrPrefixPath(value);
      if (e) invalid.push(`${pathField}.value: ${quote(value)} ${e}`);
      else if (type === 'Exact') found.push({ host: '', match: 'exact', path: value, precedence: PRECEDENCE.exact, field: routeField, backend });
      else found.push(...prefixRoutes('', value, routeField, backend));
    } else if (type === 'RegularExpression') {
      const e = checkRegexPath(value);
      if (e) invalid.push(`${pathField}.value: ${quote(value)} ${e}`);
      // The whole path must match, as the spec's examples read; the group keeps an alternation inside the anchors.
      else found.push({ host: '', match: 'regex', path: `^(?:${value})$`, precedence: PRECEDENCE.pathPrefix, field: routeField, backend });
    } else {
      invalid.push(`${pathField}.type: ${quote(type)} is not Exact, PathPrefix or RegularExpression`);
    }
    const routeConditions = conditions[j];
    const routeRedirect = redirect && redirectFor(redirect, type, value, routeConditions !== undefined, `${redirectFilter!.at}.requestRedirect.path`, routeField, invalid);
    let routeRewrite: UrlRewrite | undefined;
    if (rewrite) {
      const { host, replaceFullPath, replacePrefixMatch } = rewrite;
      if (replacePrefixMatch !== undefined && type !== 'PathPrefix') invalid.push(`${rewriteFilter!.at}.urlRewrite.path: ReplacePrefixMatch needs a PathPrefix match, and ${routeField}.path is ${type}`);
      // The spec's prefix is matched element-wise: "/foo/" is "/foo"; "/" is "", so the whole path follows the replacement.
      const path = replaceFullPath !== undefined ? { full: replaceFullPath } : replacePrefixMatch !== undefined ? { prefix: value.replace(/\/+$/, ''), replacement: replacePrefixMatch } : undefined;
      routeRewrite = { ...(host ? { host } : {}), ...(path ? { path } : {}) };
    }
    routes.push(...found.map((r) => ({ ...r, ...extras, ...routeRedirect, ...(routeConditions ? { conditions: routeConditions } : {}), ...(routeRewrite ? { rewrite: routeRewrite } : {}) })));
  });
  if (invalid.length > 0) return { routes: [], dropped: { reason: 'UnsupportedValue', message: invalid.join('; '), refused: true } };
  const outcome: RuleOutcome = { routes, policies: considered };
  if (problems.length > 0) outcome.refProblem = { reason: problems[0]!.reason, message: problems.map((p) => p.message).join('; ') };
  return outcome;
}

/**
 * A rule's backendRefs (weight 0 left out: `refs`; `all` the rule's list, for field indexes) as the intent's backends:
 * a refused one (another kind, another namespace without a ReferenceGrant, a Service that does not exist) keeps its
 * share, which the data plane rejects (HTTP 500, as the spec asks of an invalid backendRef). Values QubeSec refuses go
 * to `invalid`; the unresolvable references' reasons to `problems`.
 */
function resolveBackendRefs(refs: readonly HTTPBackendRef[], all: readonly HTTPBackendRef[], field: string, kind: RouteKind, namespace: string, grants: ReferenceGrants, snapshot: GatewaySnapshot, invalid: string[]) {
  const backends: NonNullable<IntentRoute['backends']> = [];
  const problems: NonNullable<RuleOutcome['refProblem']>[] = [];
  const refusedShare = kind === 'TLSRoute' ? 'connections is rejected' : 'requests answers 500';
  for (const backendRef of refs) {
    const at = `${field}.backendRefs[${all.indexOf(backendRef)}]`;
    const target = backendRef.namespace ?? namespace;
    const weight = backendRef.weight ?? 1;
    if ((backendRef.group ?? '') !== '' || (backendRef.kind ?? 'Service') !== 'Service') {
      problems.push({ reason: 'InvalidKind', message: `${at}: ${backendRef.group ?? ''}/${backendRef.kind} is not a Service (the kind QubeSec routes to; its share of ${refusedShare})` });
      backends.push({ backend: { namespace: target, service: '', port: '' }, weight, refused: true });
      continue;
    }
    if (target !== namespace && !grants.permits({ group: GATEWAY_GROUP, kind, namespace }, { group: '', kind: 'Service', namespace: target, name: backendRef.name })) {
      problems.push({ reason: 'RefNotPermitted', message: `${at}: Service ${target}/${backendRef.name} is in another namespace and no ReferenceGrant there allows it (its share of ${refusedShare})` });
      backends.push({ backend: { namespace: target, service: '', port: '' }, weight, refused: true });
      continue;
    }
    const serviceError = checkServiceName(backendRef.name);
    if (serviceError) invalid.push(`${at}.name: ${quote(backendRef.name)} ${serviceError}`);
    if (backendRef.port === undefined) invalid.push(`${at}.port: is required for a Service`);
    else if (checkPortNumber(backendRef.port)) invalid.push(`${at}.port: ${backendRef.port} ${checkPortNumber(backendRef.port)}`);
    if (!Number.isInteger(weight) || weight < 0 || weight > 1_000_000) invalid.push(`${at}.weight: ${weight} is not an integer from 0 to 1000000`);
    if (!snapshot.services.has(`${target}/${backendRef.name}`)) {
      problems.push({ reason: 'BackendNotFound', message: `${at}: Service ${target}/${backendRef.name} not found (its share of ${refusedShare})` });
      backends.push({ backend: { namespace: target, service: '', port: '' }, weight, refused: true });
      continue;
    }
    backends.push({ backend: { namespace: target, service: backendRef.name, port: String(backendRef.port ?? '') }, weight });
  }
  return { backends, problems };
}

/** A TLSRoute's one rule: the backends its hosts' connections go to, still encrypted. */
function translateTlsRule(rule: NonNullable<TLSRoute['spec']['rules']>[number], index: number, namespace: string, grants: ReferenceGrants, snapshot: GatewaySnapshot): RuleOutcome {
  const field = `spec.rules[${index}]`;
  const invalid: string[] = [];
  const refs = (rule.backendRefs ?? []).filter((b) => b.weight !== 0);
  if (refs.length === 0) return { routes: [], dropped: { reason: 'UnsupportedValue', message: `${field}.backendRefs: none with weight above 0 (the connections would all be rejected)`, refused: false } };
  const { backends, problems } = resolveBackendRefs(refs, rule.backendRefs ?? [], field, 'TLSRoute', namespace, grants, snapshot, invalid);
  if (invalid.length > 0) return { routes: [], dropped: { reason: 'UnsupportedValue', message: invalid.join('; '), refused: true } };
  const outcome: RuleOutcome = { routes: [], passthrough: backends };
  if (problems.length > 0) outcome.refProblem = { reason: problems[0]!.reason, message: problems.map((p) => p.message).join('; ') };
  return outcome;
}

/** A match's headers, query parameters and method, or undefined when it has none (a path match only). */
function conditionsOf(m: HTTPRouteMatch, at: string, invalid: string[]): RequestConditions | undefined {
  const valueMatches = (list: { type?: string; name: string; value: string }[], kind: 'headers' | 'queryParams'): ValueMatch[] => {
    const out: ValueMatch[] = [];
    list.forEach((entry, i) => {
      const entryAt = `${at}.${kind}[${i}]`;
      const nameError = kind === 'headers' ? checkHeaderName(entry.name) : checkHeaderValue(entry.name) ?? (entry.name === '' ? 'must not be empty' : undefined);
      if (nameError) invalid.push(`${entryAt}.name: ${quote(entry.name)} ${nameError}`);
      const type = entry.type ?? 'Exact';
      if (type !== 'Exact' && type !== 'RegularExpression') invalid.push(`${entryAt}.type: ${quote(type)} is not Exact or RegularExpression`);
      const valueError = type === 'RegularExpression' ? checkValueRegex(entry.value) : checkHeaderValue(entry.value);
      if (valueError) invalid.push(`${entryAt}.value: ${quote(entry.value)} ${valueError}`);
      // The spec: of entries with equivalent names (headers: any case) only the first counts.
      const same = (a: string, b: string) => (kind === 'headers' ? a.toLowerCase() === b.toLowerCase() : a === b);
      if (!out.some((o) => same(o.name, entry.name))) out.push({ name: kind === 'headers' ? entry.name.toLowerCase() : entry.name, match: type === 'RegularExpression' ? 'regex' : 'exact', value: entry.value });
    });
    return out;
  };
  const headers = valueMatches(m.headers ?? [], 'headers');
  const queryParams = valueMatches(m.queryParams ?? [], 'queryParams');
  if (m.method !== undefined && !METHODS.has(m.method)) invalid.push(`${at}.method: ${quote(m.method)} is not one of ${[...METHODS].join(', ')}`);
  if (headers.length === 0 && queryParams.length === 0 && m.method === undefined) return undefined;
  return { ...(m.method === undefined ? {} : { method: m.method }), headers, queryParams };
}

/** A URLRewrite filter's values, checked; which path a ReplacePrefixMatch replaces depends on each match. */
function urlRewriteOf(filter: HTTPURLRewrite, at: string, invalid: string[]): { host?: string; replaceFullPath?: string; replacePrefixMatch?: string } {
  const hostError = filter.hostname === undefined ? undefined : checkHost(filter.hostname) ?? (filter.hostname.includes('*') ? 'must not be a wildcard' : undefined);
  if (hostError) invalid.push(`${at}.hostname: ${quote(filter.hostname!)} ${hostError}`);
  const out: { host?: string; replaceFullPath?: string; replacePrefixMatch?: string } = filter.hostname === undefined ? {} : { host: filter.hostname };
  const path = filter.path;
  if (!path) return out;
  const value = path.type === 'ReplaceFullPath' ? path.replaceFullPath : path.type === 'ReplacePrefixMatch' ? path.replacePrefixMatch : undefined;
  if (value === undefined) {
    invalid.push(`${at}.path: type ${quote(path.type)} needs ${path.type === 'ReplacePrefixMatch' ? 'replacePrefixMatch' : path.type === 'ReplaceFullPath' ? 'replaceFullPath' : 'to be ReplaceFullPath or ReplacePrefixMatch'}`);
    return out;
  }
  const e = checkPath(value);
  if (e) invalid.push(`${at}.path.${path.type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch'}: ${quote(value)} ${e}`);
  return path.type === 'ReplaceFullPath' ? { ...out, replaceFullPath: value } : { ...out, replacePrefixMatch: value };
}

/** Gateway API's Duration: 1 to 4 groups of up to 5 digits with h, m, s or ms. */
const DURATION = /^(?:[0-9]{1,5}(?:h|m|s|ms)){1,4}$/;
const DURATION_UNITS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

function durationMs(value: string): number | undefined {
  if (!DURATION.test(value)) return undefined;
  let total = 0;
  for (const [, digits, unit] of value.matchAll(/([0-9]+)(ms|h|m|s)/g)) total += Number(digits) * DURATION_UNITS[unit!]!;
  return total;
}

/**
 * A rule's timeouts as one limit for each attempt's connect, send and read: the shorter of request and backendRequest
 * (the data plane times each attempt, not the whole request). "0s" is no limit of QubeSec's (NGINX's defaults).
 */
function timeoutOf(timeouts: { request?: string; backendRequest?: string }, at: string, invalid: string[]): number | undefined {
  const limits: number[] = [];
  for (const key of ['request', 'backendRequest'] as const) {
    const value = timeouts[key];
    if (value === undefined) continue;
    const ms = durationMs(value);
    if (ms === undefined) invalid.push(`${at}.${key}: ${quote(value)} is not a duration (such as 500ms, 10s or 1m30s)`);
    else if (ms > 0) limits.push(ms);
  }
  return limits.length > 0 ? Math.min(...limits) : undefined;
}

/** A RequestHeaderModifier or ResponseHeaderModifier filter, its names and values checked. */
function headerEditsOf(filter: HTTPHeaderFilter, at: string, invalid: string[]): HeaderEdits {
  const pairs = (list: { name: string; value: string }[] | undefined, kind: 'set' | 'add') =>
    (list ?? []).map((h, i) => {
      const nameError = checkHeaderName(h.name);
      if (nameError) invalid.push(`${at}.${kind}[${i}].name: ${quote(h.name)} ${nameError}`);
      const valueError = checkHeaderValue(h.value);
      if (valueError) invalid.push(`${at}.${kind}[${i}].value: ${quote(h.value)} ${valueError}`);
      return { name: h.name, value: h.value };
    });
  const remove = (filter.remove ?? []).map((name, i) => {
    const e = checkHeaderName(name);
    if (e) invalid.push(`${at}.remove[${i}]: ${quote(name)} ${e}`);
    return name.toLowerCase();
  });
  return { set: pairs(filter.set, 'set'), add: pairs(filter.add, 'add'), remove };
}

/**
 * A RequestRedirect filter's parts. A part the filter leaves out keeps the request's: scheme, host, path and query.
 * Without scheme or port the port is the listener's; a port that is its scheme's well-known one is left out of the URL
 * (the spec). Bad values go to `invalid`.
 */
function redirectOf(filter: HTTPRequestRedirect, at: string, listener: Listener | undefined, invalid: string[]): { code: number; scheme?: string; host?: string; port: string; fullPath?: string; replacePrefixMatch?: string } {
  if (filter.scheme !== undefined && filter.scheme !== 'http' && filter.scheme !== 'https') invalid.push(`${at}.scheme: ${quote(filter.scheme)} is not http or https`);
  const hostError = filter.hostname === undefined ? undefined : checkHost(filter.hostname) ?? (filter.hostname.includes('*') ? 'must not be a wildcard' : undefined);
  if (hostError) invalid.push(`${at}.hostname: ${quote(filter.hostname!)} ${hostError}`);
  if (filter.port !== undefined && checkPortNumber(filter.port)) invalid.push(`${at}.port: ${filter.port} ${checkPortNumber(filter.port)}`);
  const code = filter.statusCode ?? 302;
  if (![301, 302, 303, 307, 308].includes(code)) invalid.push(`${at}.statusCode: ${code} is not 301, 302, 303, 307 or 308`);
  const path: { fullPath?: string; replacePrefixMatch?: string } = {};
  if (filter.path?.type === 'ReplaceFullPath' || filter.path?.type === 'ReplacePrefixMatch') {
    const key = filter.path.type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
    const value = filter.path[key] ?? '/';
    const e = checkPath(value);
    if (e) invalid.push(`${at}.path.${key}: ${quote(value)} ${e}`);
    if (key === 'replaceFullPath') path.fullPath = value;
    else path.replacePrefixMatch = value;
  } else if (filter.path) {
    invalid.push(`${at}.path.type: ${quote(filter.path.type)} is not ReplaceFullPath or ReplacePrefixMatch`);
  }
  const listenerScheme = listener?.protocol === 'HTTPS' ? 'https' : 'http';
  const wellKnown = (scheme: string, port: number) => (scheme === 'http' && port === 80) || (scheme === 'https' && port === 443);
  const port = filter.port ?? (filter.scheme === undefined ? listener?.port : undefined);
  const shown = port === undefined || wellKnown(filter.scheme ?? listenerScheme, port) ? '' : `:${port}`;
  return { code, ...(filter.scheme ? { scheme: filter.scheme } : {}), ...(filter.hostname ? { host: filter.hostname } : {}), port: shown, ...path };
}

/**
 * A redirect for one match: an NGINX `return` when it is the same for every request of the location, else parts the
 * data plane puts together per request (a prefix replacement, or a match with conditions, which makes it a branch).
 */
function redirectFor(redirect: ReturnType<typeof redirectOf>, type: string, value: string, conditional: boolean, at: string, matchAt: string, invalid: string[]): Pick<IntentRoute, 'redirect' | 'redirectTo'> {
  const { code, scheme, host, port, fullPath, replacePrefixMatch } = redirect;
  if (replacePrefixMatch !== undefined && type !== 'PathPrefix') invalid.push(`${at}: ReplacePrefixMatch needs a PathPrefix match, and ${matchAt}.path is ${type}`);
  const path = fullPath !== undefined ? { full: fullPath } : replacePrefixMatch !== undefined ? { prefix: value.replace(/\/+$/, ''), replacement: replacePrefixMatch } : undefined;
  const redirectTo = { code, ...(scheme ? { scheme } : {}), ...(host ? { host } : {}), port, ...(path ? { path } : {}) };
  if (replacePrefixMatch !== undefined || conditional) return { redirectTo };
  // Also as parts: sharing a path with routes that have conditions, it becomes their last branch.
  return { redirect: { code, url: `${scheme ?? '$scheme'}://${host ?? '$host'}${port}${fullPath === undefined ? '$request_uri' : `${fullPath}$is_args$args`}` }, redirectTo };
}

/**
 * The hostnames a route serves on a listener: the spec's intersection of the listener's hostname with the route's
 * hostnames ("*." matches one or more labels). No hostnames on either side is every host: '' (the catch-all server).
 */
export function intersect(listenerHostname: string | undefined, routeHostnames: readonly string[]): string[] {
  const listener = listenerHostname ?? '';
  if (routeHostnames.length === 0) return [listener];
  if (listener === '') return [...new Set(routeHostnames)];
  const out: string[] = [];
  for (const host of routeHostnames) {
    const common = intersection(listener, host);
    if (common !== undefined && !out.includes(common)) out.push(common);
  }
  return out;
}

function intersection(a: string, b: string): string | undefined {
  if (a === b) return a;
  if (covers(a, b)) return b;
  if (covers(b, a)) return a;
  return undefined;
}

/** Whether wildcard `pattern` (*.example.com) covers `host` (x.example.com, x.y.example.com, *.y.example.com). */
function covers(pattern: string, host: string): boolean {
  if (!pattern.startsWith('*.')) return false;
  const suffix = pattern.slice(1);
  const bare = host.startsWith('*.') ? host.slice(2) : host;
  return bare.endsWith(suffix) && bare.length > suffix.length;
}

function allowsNamespace(view: ListenerView, namespace: string, labels: GatewaySnapshot['namespaceLabels']): boolean {
  const from = view.listener.allowedRoutes?.namespaces?.from ?? 'Same';
  switch (from) {
    case 'All':
      return true;
    case 'Same':
      return namespace === view.gatewayRef.namespace;
    case 'Selector': {
      const selector = view.listener.allowedRoutes?.namespaces?.selector;
      return selector !== undefined && selects(selector, labels.get(namespace) ?? {});
    }
    default:
      return false;
  }
}

/** Kubernetes label selector semantics: every matchLabels entry and every expression must hold. */
export function selects(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  const pairs = Object.entries(selector.matchLabels ?? {});
  const expressions = selector.matchExpressions ?? [];
  if (!pairs.every(([k, v]) => labels[k] === v)) return false;
  return expressions.every((e) => {
    const has = Object.hasOwn(labels, e.key);
    switch (e.operator) {
      case 'In':
        return has && (e.values ?? []).includes(labels[e.key]!);
      case 'NotIn':
        return !has || !(e.values ?? []).includes(labels[e.key]!);
      case 'Exists':
        return has;
      case 'DoesNotExist':
        return !has;
      default:
        return false;
    }
  });
}

/** One BackendTLSPolicy as judged: the TLS it gives a backend (or why it cannot), its conditions, the Gateways it reaches. */
interface JudgedPolicy {
  ref: ObjectRef;
  tls: BackendTls;
  accepted: GatewayCondition;
  resolvedRefs: GatewayCondition;
  /** The policy that applies in its place to a target both name. */
  lostTo?: ObjectRef;
  gateways: Map<string, ObjectRef>;
}

/**
 * BackendTLSPolicies by the Service port they target: for a backend, the policies naming its Service and the port's
 * name (sectionName) apply, else those naming the Service alone; of several naming one target the oldest (then the
 * first by namespace/name) applies and the others are Conflicted (the spec). Each is judged once, when first used.
 */
class BackendTlsPolicies {
  private readonly byTarget = new Map<string, BackendTLSPolicy[]>();
  private readonly judged = new Map<BackendTLSPolicy, JudgedPolicy>();

  constructor(private readonly snapshot: GatewaySnapshot) {
    const sorted = [...snapshot.backendTlsPolicies].sort(oldestFirst((p) => (p.metadata.creationTimestamp ? new Date(p.metadata.creationTimestamp).toISOString() : ''), (p) => `${p.metadata.namespace}/${p.metadata.name}`));
    for (const policy of sorted) {
      const namespace = policy.metadata.namespace ?? 'default';
      for (const target of policy.spec?.targetRefs ?? []) {
        // Services only (the spec's Extended support); a target of another kind never meets a backendRef.
        if ((target.group ?? '') !== '' || target.kind !== 'Service') continue;
        const key = `${namespace}/${target.name}#${target.sectionName ?? ''}`;
        const list = this.byTarget.get(key) ?? [];
        if (!list.includes(policy)) list.push(policy);
        this.byTarget.set(key, list);
      }
    }
  }

  /** The TLS to one backend (none: plain), and the policies that named its target, the one applying first. */
  backendTls(backend: BackendRef): { tls?: BackendTls; considered: BackendTLSPolicy[] } {
    const service = `${backend.namespace}/${backend.service}`;
    const portName = this.snapshot.services.get(service)?.spec?.ports?.find((p) => String(p.port) === backend.port)?.name;
    const candidates = (portName ? this.byTarget.get(`${service}#${portName}`) : undefined) ?? this.byTarget.get(`${service}#`);
    if (!candidates) return { considered: [] };
    const [applying, ...others] = candidates as [BackendTLSPolicy, ...BackendTLSPolicy[]];
    const winner = this.judge(applying);
    for (const other of others) this.judge(other).lostTo ??= winner.ref;
    return { tls: winner.tls, considered: candidates };
  }

  /** The policies reach `gateway` through a route attached to it: each reports its conditions there. */
  reach(policies: readonly BackendTLSPolicy[], gateway: ObjectRef): void {
    for (const policy of policies) this.judge(policy).gateways.set(name(gateway), gateway);
  }

  statuses(controllerName: string): PolicyStatusDraft[] {
    return [...this.judged.values()].filter((j) => j.gateways.size > 0).map((j) => {
      const accepted = j.lostTo
        ? condition('Accepted', 'False', 'Conflicted', `BackendTLSPolicy ${name(j.ref)}: BackendTLSPolicy ${name(j.lostTo)} targets the same Service and section and is older; it applies`, j.accepted.observedGeneration)
        : j.accepted;
      // The spec allows 16 ancestors; the first by namespace/name.
      const gateways = [...j.gateways.values()].sort((a, b) => name(a).localeCompare(name(b))).slice(0, 16);
      return {
        ref: j.ref,
        ancestors: gateways.map((g) => ({ ancestorRef: { group: GATEWAY_GROUP, kind: 'Gateway', namespace: g.namespace, name: g.name }, controllerName, conditions: [accepted, j.resolvedRefs] })),
      };
    });
  }

  private judge(policy: BackendTLSPolicy): JudgedPolicy {
    const held = this.judged.get(policy);
    if (held) return held;
    const namespace = policy.metadata.namespace ?? 'default';
    const ref: ObjectRef = { kind: 'BackendTLSPolicy', namespace, name: policy.metadata.name ?? '', uid: policy.metadata.uid };
    const field = `BackendTLSPolicy ${name(ref)}`;
    const generation = policy.metadata.generation;
    const validation = policy.spec?.validation ?? { hostname: '' };
    const invalid: string[] = [];
    const hostname = validation.hostname ?? '';
    const hostError = hostname.startsWith('*') ? 'is a wildcard (the spec asks for a precise hostname)' : checkHost(hostname);
    if (hostError) invalid.push(`spec.validation.hostname: ${quote(hostname)} ${hostError}`);
    if ((validation.subjectAltNames ?? []).length > 0) invalid.push('spec.validation.subjectAltNames: not supported yet (NGINX verifies the name it sends, spec.validation.hostname)');
    const refs = validation.caCertificateRefs ?? [];
    const wellKnown = validation.wellKnownCACertificates ?? '';
    if (refs.length > 0 && wellKnown !== '') invalid.push('spec.validation: caCertificateRefs and wellKnownCACertificates exclude each other (the spec)');
    else if (refs.length === 0 && wellKnown === '') invalid.push('spec.validation: caCertificateRefs or wellKnownCACertificates is required');
    else if (wellKnown !== '' && wellKnown !== 'System') invalid.push(`spec.validation.wellKnownCACertificates: ${quote(wellKnown)} is not System, the one set QubeSec knows`);

    const bundles: CaBundle[] = [];
    const problems: { reason: 'InvalidKind' | 'InvalidCACertificateRef'; message: string }[] = [];
    refs.forEach((caRef, i) => {
      const at = `spec.validation.caCertificateRefs[${i}]`;
      if ((caRef.group ?? '') !== '' || caRef.kind !== 'ConfigMap') {
        problems.push({ reason: 'InvalidKind', message: `${at}: ${caRef.group || 'core'}/${caRef.kind} is not a ConfigMap (the kind QubeSec reads CA certificates from)` });
        return;
      }
      const checked = this.snapshot.caConfigMaps.get(`${namespace}/${caRef.name}`);
      if (!checked) problems.push({ reason: 'InvalidCACertificateRef', message: `${at}: ConfigMap ${namespace}/${caRef.name} not found` });
      else if ('error' in checked) problems.push({ reason: 'InvalidCACertificateRef', message: `${at}: ${checked.error}` });
      else bundles.push(checked.ca);
    });

    const accepted = invalid.length > 0
      ? condition('Accepted', 'False', 'Invalid', `${field}: ${invalid.join('; ')}`, generation)
      : refs.length > 0 && bundles.length === 0
        ? condition('Accepted', 'False', 'NoValidCACertificate', `${field}: no caCertificateRef holds usable CA certificates`, generation)
        : condition('Accepted', 'True', 'Accepted', 'accepted', generation);
    const resolvedRefs = problems.length > 0
      ? condition('ResolvedRefs', 'False', problems[0]!.reason, `${field}: ${problems.map((p) => p.message).join('; ')}`, generation)
      : condition('ResolvedRefs', 'True', 'ResolvedRefs', 'all references resolved', generation);
    // Without every check it asks for, the connection is not made: the backend answers 503 (the spec: 5xx).
    const unusable = [...invalid, ...problems.map((p) => p.message)];
    const tls: BackendTls = unusable.length > 0
      ? { unusable: `${field}: ${unusable.join('; ')}` }
      : { serverName: hostname, ca: refs.length > 0 ? joinCaBundles(bundles) : SYSTEM_CAS };
    const judged: JudgedPolicy = { ref, tls, accepted, resolvedRefs, gateways: new Map() };
    this.judged.set(policy, judged);
    return judged;
  }
}

interface GrantFrom {
  group: string;
  kind: string;
  namespace: string;
}

/** ReferenceGrants by namespace: a reference into a namespace needs a grant there naming its source and its target. */
class ReferenceGrants {
  private readonly byNamespace = new Map<string, ReferenceGrant[]>();

  constructor(grants: readonly ReferenceGrant[]) {
    for (const grant of grants) {
      const namespace = grant.metadata.namespace ?? 'default';
      const list = this.byNamespace.get(namespace) ?? [];
      list.push(grant);
      this.byNamespace.set(namespace, list);
    }
  }

  permits(from: GrantFrom, to: { group: string; kind: string; namespace: string; name: string }): boolean {
    return (this.byNamespace.get(to.namespace) ?? []).some((grant) =>
      grant.spec.from.some((f) => f.group === from.group && f.kind === from.kind && f.namespace === from.namespace)
      && grant.spec.to.some((t) => t.group === to.group && t.kind === to.kind && (t.name === undefined || t.name === '' || t.name === to.name)));
  }
}

/**
 * The spec's order for conflicts: older first (creationTimestamp as ISO text, compared by code point; '' from a
 * manifest file counts as the newest), then by namespace/name.
 */
function oldestFirst<T>(created: (x: T) => string, key: (x: T) => string): (a: T, b: T) => number {
  const age = (x: T) => created(x) || '~';
  return (a, b) => (age(a) !== age(b) ? (age(a) < age(b) ? -1 : 1) : key(a).localeCompare(key(b)));
}

function isAccepted(view: ListenerView): boolean {
  return view.status.conditions.some((c) => c.type === 'Accepted' && c.status === 'True');
}

function condition(type: string, status: GatewayCondition['status'], reason: string, message: string, observedGeneration: number | undefined): GatewayCondition {
  return observedGeneration === undefined ? { type, status, reason, message } : { type, status, reason, message, observedGeneration };
}

/** One condition per type, as metav1.Condition lists are keyed. */
function setCondition(status: { conditions: GatewayCondition[] }, next: GatewayCondition): void {
  const at = status.conditions.findIndex((c) => c.type === next.type);
  if (at >= 0) status.conditions[at] = next;
  else status.conditions.push(next);
}

function name(ref: ObjectRef): string {
  return `${ref.namespace}/${ref.name}`;
}
