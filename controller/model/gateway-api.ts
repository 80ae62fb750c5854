// Gateway API v1 (gateway.networking.k8s.io) as QubeSec reads it: the fields the translation (gateway.ts) uses, as the
// API server serves them. @kubernetes/client-node has no Gateway API types. Field meanings are those of the spec
// (sigs.k8s.io/gateway-api apis/v1); fields QubeSec does not serve yet are typed so that the translation can see them
// and say so (docs/gateway-api.md, "not yet"), never drop them silently.

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';
export const GATEWAY_VERSION = 'v1';

/**
 * Where the API server serves each kind QubeSec reads, by the source's snapshot field: the one table the source
 * (list and watch) and the status writer (patch) use. ReferenceGrant at v1beta1: every release that has it serves
 * that version (v1 only from v1.5).
 */
export const GATEWAY_API_RESOURCES = {
  gatewayClasses: { kind: 'GatewayClass', plural: 'gatewayclasses', version: GATEWAY_VERSION, namespaced: false },
  gateways: { kind: 'Gateway', plural: 'gateways', version: GATEWAY_VERSION, namespaced: true },
  httpRoutes: { kind: 'HTTPRoute', plural: 'httproutes', version: GATEWAY_VERSION, namespaced: true },
  grpcRoutes: { kind: 'GRPCRoute', plural: 'grpcroutes', version: GATEWAY_VERSION, namespaced: true },
  tlsRoutes: { kind: 'TLSRoute', plural: 'tlsroutes', version: GATEWAY_VERSION, namespaced: true },
  referenceGrants: { kind: 'ReferenceGrant', plural: 'referencegrants', version: 'v1beta1', namespaced: true },
  backendTlsPolicies: { kind: 'BackendTLSPolicy', plural: 'backendtlspolicies', version: GATEWAY_VERSION, namespaced: true },
} as const;

/** The part of ObjectMeta the translation reads. */
export interface GatewayObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  /** RFC 3339 from the API server, a Date from @kubernetes/client-node's deserializer. */
  creationTimestamp?: string | Date;
  labels?: Record<string, string>;
}

export interface GatewayClass {
  apiVersion?: string;
  kind?: 'GatewayClass';
  metadata: GatewayObjectMeta;
  spec: {
    controllerName: string;
    parametersRef?: { group: string; kind: string; name: string; namespace?: string };
    description?: string;
  };
}

export type ProtocolType = 'HTTP' | 'HTTPS' | 'TLS' | 'TCP' | 'UDP' | (string & {});
export type FromNamespaces = 'All' | 'Same' | 'Selector' | 'None';

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface RouteGroupKind {
  group?: string;
  kind: string;
}

export interface AllowedRoutes {
  namespaces?: { from?: FromNamespaces; selector?: LabelSelector };
  kinds?: RouteGroupKind[];
}

/** A reference to a Secret (or another kind) holding a certificate. */
export interface SecretObjectReference {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
}

export interface ListenerTLSConfig {
  mode?: 'Terminate' | 'Passthrough';
  certificateRefs?: SecretObjectReference[];
  /** Implementation-specific keys: QubeSec reads qubesec.io/ ones and nginx.org/ssl-ecdh-curve. */
  options?: Record<string, string>;
}

export interface Listener {
  name: string;
  hostname?: string;
  port: number;
  protocol: ProtocolType;
  tls?: ListenerTLSConfig;
  allowedRoutes?: AllowedRoutes;
}

export interface GatewaySpecAddress {
  type?: 'IPAddress' | 'Hostname' | 'NamedAddress' | (string & {});
  value?: string;
}

export interface Gateway {
  apiVersion?: string;
  kind?: 'Gateway';
  metadata: GatewayObjectMeta;
  spec: {
    gatewayClassName: string;
    listeners: Listener[];
    addresses?: GatewaySpecAddress[];
  };
}

export interface ParentReference {
  group?: string;
  kind?: string;
  namespace?: string;
  name: string;
  sectionName?: string;
  port?: number;
}

export interface HTTPPathMatch {
  type?: 'Exact' | 'PathPrefix' | 'RegularExpression' | (string & {});
  value?: string;
}

export interface HTTPRouteMatch {
  path?: HTTPPathMatch;
  headers?: { type?: string; name: string; value: string }[];
  queryParams?: { type?: string; name: string; value: string }[];
  method?: string;
}

/** The spec's HTTPRequestRedirectFilter. */
export interface HTTPRequestRedirect {
  scheme?: string;
  hostname?: string;
  path?: { type: 'ReplaceFullPath' | 'ReplacePrefixMatch' | (string & {}); replaceFullPath?: string; replacePrefixMatch?: string };
  port?: number;
  statusCode?: number;
}

/** The spec's HTTPHeaderFilter: RequestHeaderModifier and ResponseHeaderModifier. */
export interface HTTPHeaderFilter {
  set?: { name: string; value: string }[];
  add?: { name: string; value: string }[];
  remove?: string[];
}

/** The spec's HTTPURLRewriteFilter. */
export interface HTTPURLRewrite {
  hostname?: string;
  path?: { type: 'ReplaceFullPath' | 'ReplacePrefixMatch' | (string & {}); replaceFullPath?: string; replacePrefixMatch?: string };
}

/** A rule's filter: of the types not served only the type is read, to name them in the route's status. */
export interface HTTPRouteFilter {
  type: string;
  requestRedirect?: HTTPRequestRedirect;
  urlRewrite?: HTTPURLRewrite;
  requestHeaderModifier?: HTTPHeaderFilter;
  responseHeaderModifier?: HTTPHeaderFilter;
}

export interface HTTPBackendRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
  weight?: number;
  filters?: HTTPRouteFilter[];
}

export interface HTTPRouteRule {
  name?: string;
  matches?: HTTPRouteMatch[];
  filters?: HTTPRouteFilter[];
  backendRefs?: HTTPBackendRef[];
  timeouts?: { request?: string; backendRequest?: string };
  retry?: unknown;
  sessionPersistence?: unknown;
}

export interface HTTPRoute {
  apiVersion?: string;
  kind?: 'HTTPRoute';
  metadata: GatewayObjectMeta;
  spec: {
    parentRefs?: ParentReference[];
    hostnames?: string[];
    rules?: HTTPRouteRule[];
  };
}

/** The spec's GRPCMethodMatch: a gRPC call is a POST to /service/method. */
export interface GRPCMethodMatch {
  type?: 'Exact' | 'RegularExpression' | (string & {});
  service?: string;
  method?: string;
}

export interface GRPCRouteMatch {
  method?: GRPCMethodMatch;
  headers?: { type?: string; name: string; value: string }[];
}

export interface GRPCRouteRule {
  name?: string;
  matches?: GRPCRouteMatch[];
  /** The schema allows RequestHeaderModifier, ResponseHeaderModifier, RequestMirror and ExtensionRef. */
  filters?: HTTPRouteFilter[];
  backendRefs?: HTTPBackendRef[];
  sessionPersistence?: unknown;
}

export interface GRPCRoute {
  apiVersion?: string;
  kind?: 'GRPCRoute';
  metadata: GatewayObjectMeta;
  spec: {
    parentRefs?: ParentReference[];
    hostnames?: string[];
    rules?: GRPCRouteRule[];
  };
}

/** The spec's TLSRoute: connections chosen by their SNI, passed on still encrypted (a Passthrough listener). */
export interface TLSRoute {
  apiVersion?: string;
  kind?: 'TLSRoute';
  metadata: GatewayObjectMeta;
  spec: {
    parentRefs?: ParentReference[];
    /** SNI names (a wildcard first label allowed): at least one. */
    hostnames?: string[];
    /** Exactly one. */
    rules?: { name?: string; backendRefs?: HTTPBackendRef[] }[];
  };
}

export interface ReferenceGrant {
  apiVersion?: string;
  kind?: 'ReferenceGrant';
  metadata: GatewayObjectMeta;
  spec: {
    from: { group: string; kind: string; namespace: string }[];
    to: { group: string; kind: string; name?: string }[];
  };
}

/** The spec's LocalPolicyTargetReferenceWithSectionName: an object in the policy's namespace (a Service, and a port by name). */
export interface PolicyTargetReference {
  group: string;
  kind: string;
  name: string;
  sectionName?: string;
}

/** The spec's BackendTLSPolicy: how the Gateway connects to a Service's pods over TLS. */
export interface BackendTLSPolicy {
  apiVersion?: string;
  kind?: 'BackendTLSPolicy';
  metadata: GatewayObjectMeta;
  spec: {
    targetRefs: PolicyTargetReference[];
    validation: {
      /** In the policy's namespace: a ConfigMap (Core) with the CA certificates in ca.crt. */
      caCertificateRefs?: { group: string; kind: string; name: string }[];
      wellKnownCACertificates?: 'System' | (string & {});
      /** The SNI sent, and the name the pod's certificate must cover unless subjectAltNames is set. */
      hostname: string;
      subjectAltNames?: { type: 'Hostname' | 'URI' | (string & {}); hostname?: string; uri?: string }[];
    };
    options?: Record<string, string>;
  };
}

export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** A metav1.Condition without lastTransitionTime, which the status writer sets from the condition it replaces. */
export interface GatewayCondition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration?: number;
}
