// The configuration model: what the ingress must serve, independent of NGINX and of where it came from.

/** A Kubernetes object named in diagnostics and Events. */
export interface ObjectRef {
  kind: string;
  namespace: string;
  name: string;
  uid?: string;
  /** For kinds the Event recorder does not know (any kind a SignaturePolicy covers). */
  apiVersion?: string;
}

export type DiagnosticType = 'Normal' | 'Warning';

/** Something a user should hear about an object: becomes a Kubernetes Event and a log line. */
export interface Diagnostic {
  object: ObjectRef;
  type: DiagnosticType;
  reason: string;
  message: string;
}

/** How a host trades post-quantum safety against reach: see docs/pq-tls.md. */
export type PqMode = 'hybrid' | 'strict' | 'classical';

export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

/**
 * Which of a host's certificates a client that accepts several gets: the one its own signature_algorithms order puts
 * first (client), or the server's choice of classical (ECDSA, RSA) or post-quantum (ML-DSA) first. See docs/pq-tls.md.
 */
export type CertificatePreference = 'client' | 'classical' | 'post-quantum';

/**
 * Key exchange, protocol versions and certificate choice of a TLS server. Hosts with equal groups and protocols share a
 * listener; the certificate choice is each server's own.
 */
export interface TlsPolicy {
  pqMode: PqMode;
  /**
   * TLS groups as OpenSSL names them, in tiers of server preference: the server picks from the first tier the client
   * supports, and within a tier prefers a group the client already sent a key share for (no extra round trip).
   */
  groups: string[][];
  protocols: TlsVersion[];
  certificatePreference: CertificatePreference;
  /**
   * TLS signature algorithms as OpenSSL names them, in the server's order of preference; absent (preference client),
   * the client's order decides.
   */
  signatureAlgorithms?: string[];
}

/** A checked certificate/key pair from a kubernetes.io/tls Secret (or a generated default). */
export interface CertificatePair {
  /** namespace/name of the Secret it came from. */
  source: string;
  certificatePem: string;
  keyPem: string;
  /** OpenSSL's name of the key type: ml-dsa-65, ec, rsa, ... */
  keyAlgorithm: string;
  notAfter: Date;
  /** DNS names and IPs the certificate covers (subjectAltName, else CN). */
  names: string[];
  /** sha256 of certificate and key: names the files on disk and detects change. */
  fingerprint: string;
}

/** CA certificates from a Secret's or ConfigMap's ca.crt: verify clients (auth-tls) or upstreams (proxy-ssl, BackendTLSPolicy). */
export interface CaBundle {
  /** namespace/name of the Secret or ConfigMap (comma-separated when joined). */
  source: string;
  pem: string;
  /** sha256 of the PEM: names the file on disk. */
  fingerprint: string;
}

/**
 * Kubernetes pathType semantics reduced to string matchers: the whole path, a path prefix, or (use-regex and
 * rewrite-target, as ingress-nginx) a case-insensitive regular expression anchored at the start.
 */
export type PathMatch = 'exact' | 'prefix' | 'regex';

export type BackendProtocol = 'HTTP' | 'HTTPS' | 'GRPC' | 'GRPCS';

/** Proxy limits an Ingress may tune; absent values keep the data plane's defaults (docs/annotations.md). */
export interface ProxyTuning {
  /** NGINX size syntax: 1m, 512k, 0 (no limit). */
  bodySize?: string;
  bufferSize?: string;
  /** Seconds. */
  connectTimeout?: number;
  readTimeout?: number;
  sendTimeout?: number;
}

export interface CorsPolicy {
  /** Allowed origins (scheme://host[:port], host may start with *.), or ['*']. */
  origins: string[];
  methods: string[];
  headers: string[];
  exposeHeaders: string[];
  credentials: boolean;
  maxAgeSeconds: number;
}

/** TLS from NGINX to the pods (backend-protocol HTTPS or GRPCS). */
export interface UpstreamTls {
  /** Groups and versions offered to the pod: the Ingress's own policy, so strict stays strict end to end. */
  policy: TlsPolicy;
  /** Name sent as SNI and checked against the pod's certificate. */
  serverName: string;
  sendServerName: boolean;
  /** Present when the pod's certificate is verified: against a CA bundle, or the data plane's system CAs. */
  verify?: { ca: CaBundle | typeof SYSTEM_CAS; depth: number };
  /** Presented to the pod when it asks for a client certificate. */
  clientCertificate?: CertificatePair;
}

/** The data plane's own trust store (Debian's ca-certificates), as BackendTLSPolicy's wellKnownCACertificates: System names it. */
export const SYSTEM_CAS = 'system';

/**
 * TLS to a route's backends as a Gateway API BackendTLSPolicy asks: `serverName` is sent as SNI and verified against
 * `ca`. `unusable`: a policy applies that cannot be honoured, and the route answers 503 rather than go without it.
 */
export type BackendTls = { serverName: string; ca: CaBundle | typeof SYSTEM_CAS } | { unusable: string };

/** A request header or query parameter a branch requires: the whole value equal, or matched by a regular expression. */
export interface ValueMatch {
  /** A header name (any case) or a query parameter name (exact). */
  name: string;
  match: 'exact' | 'regex';
  value: string;
}

/** What a request must have besides its path (Gateway API matches): all of it. */
export interface RequestConditions {
  method?: string;
  headers: ValueMatch[];
  queryParams: ValueMatch[];
}

/** Header changes before the request goes upstream or before the response goes back (Gateway API header modifiers). */
export interface HeaderEdits {
  set: { name: string; value: string }[];
  /** Appended to the header's values. */
  add: { name: string; value: string }[];
  remove: string[];
}

/**
 * One way a location answers (Gateway API: one match of one rule): the first branch whose conditions hold serves the
 * request, and none answers 404. Its upstream is drawn by weight from `backends`; upstream '' (a refused backendRef) answers 500.
 */
export interface Branch {
  conditions: RequestConditions;
  backends: { upstream: string; weight: number }[];
  requestHeaders?: HeaderEdits;
  responseHeaders?: HeaderEdits;
  rewrite?: UrlRewrite;
  /** Each attempt's connect, send and read timeout (Gateway API timeouts); absent: the data plane's. */
  timeoutMs?: number;
  /** Answers with a redirect instead of proxying (then `backends` is empty). */
  redirect?: RedirectTarget;
}

/**
 * A redirect built per request (Gateway API RequestRedirect): each part left out keeps the request's; `port` is the
 * URL's port part as written (":8443", or "" for none).
 */
export interface RedirectTarget {
  code: number;
  scheme?: string;
  host?: string;
  port: string;
  path?: { full: string } | { prefix: string; replacement: string };
}

/** What goes upstream instead of the request's Host and path (Gateway API URLRewrite). */
export interface UrlRewrite {
  host?: string;
  /** The whole path, or the part the match's prefix matched (prefix without its trailing "/"; "" for "/"). */
  path?: { full: string } | { prefix: string; replacement: string };
}

export type LocationAction =
  | {
      kind: 'proxy';
      /** Name of the upstream in Model.upstreams. */
      upstream: string;
      protocol: BackendProtocol;
      tls?: UpstreamTls;
      /** rewrite-target: the path sent upstream, with $1..$9 from the location's regular expression. */
      rewrite?: string;
      /** Host header sent upstream (upstream-vhost); default: the client's. */
      upstreamHost?: string;
      forwardedPrefix?: string;
      tuning: ProxyTuning;
      /** Upstream used when `upstream` has no ready endpoint (default-backend annotation). */
      fallback?: string;
      /** Responses with these statuses are replaced by the error backend's (custom-http-errors). */
      errorPages?: { codes: number[]; upstream: string };
      /** Present: the data plane picks a branch per request, and its backend instead of `upstream` (the first branch's first). */
      branches?: Branch[];
    }
  | { kind: 'redirect'; code: number; url: string }
  /** The Ingress asked for client-certificate checks whose CA is unusable: fail closed. */
  | { kind: 'unavailable'; reason: string };

/** Checks that run before the action, in this order: redirect to HTTPS, source ranges, rate limits, CORS. */
export interface LocationPolicy {
  httpsRedirect: boolean;
  /** CIDRs denied first, then allowed; when `allow` is non-empty everything else is denied. */
  deny: string[];
  allow: string[];
  /** Shared by all locations of one Ingress, as in ingress-nginx. */
  rateLimit?: { zone: string; requestsPerSecond: number; burst: number };
  connectionLimit?: { zone: string; connections: number };
  cors?: CorsPolicy;
}

export interface Location {
  match: PathMatch;
  path: string;
  action: LocationAction;
  policy: LocationPolicy;
  /** The Ingress that asked for it. */
  ingress: ObjectRef;
}

export type ClientVerification = 'on' | 'optional' | 'optional_no_ca';

/** Client certificate authentication of a TLS host (auth-tls-*). */
export interface ClientAuth {
  verify: ClientVerification;
  depth: number;
  /** Absent only with optional_no_ca. */
  ca?: CaBundle;
  /** Pass the client's PEM certificate upstream (auth-tls-pass-certificate-to-upstream). */
  passCertificate: boolean;
}

export interface Server {
  /** Host name, possibly a leading wildcard (*.example.com); '' is the catch-all server. */
  host: string;
  locations: Location[];
  /** Present when the host is served over TLS. */
  tls?: {
    policy: TlsPolicy;
    certificates: CertificatePair[];
    clientAuth?: ClientAuth;
  };
  /**
   * TLS passthrough (Gateway API TLSRoute): the host's TLS connections, chosen by their SNI before any handshake, go on
   * still encrypted to one of `backends` (drawn by weight; upstream '' rejects its share). Such a server has no locations.
   */
  passthrough?: { backends: { upstream: string; weight: number }[] };
}

export interface Endpoint {
  address: string;
  port: number;
}

export interface Upstream {
  name: string;
  service: { namespace: string; name: string; port: string };
  /** Ready endpoints only; empty means the upstream answers 503. */
  endpoints: Endpoint[];
  /** Session affinity: clients carrying this cookie stick to one endpoint (affinity: cookie). */
  affinityCookie?: string;
}

/** TLS session resumption at http level (docs/pq-tls.md#session-resumption). */
export interface SessionResumption {
  /** How long a session may be resumed: ssl_session_timeout, and the lifetime hint of tickets. */
  timeoutSeconds: number;
  /** Stateless session tickets; off, each replica resumes only from its own session cache. */
  tickets: boolean;
  /** The tickets' keys, 80 bytes each: the first encrypts, all decrypt; none: NGINX's own, per NGINX instance. */
  ticketKeys: Buffer[];
}

export interface Model {
  servers: Server[];
  upstreams: Upstream[];
  /** TLS policy of the catch-all listener and of hosts that ask for nothing else. */
  defaultPolicy: TlsPolicy;
  /** Served to clients whose host matches no server, and to TLS hosts without a usable Secret. */
  defaultCertificates: CertificatePair[];
  /** Upstream for requests no location matches (--default-backend-service); absent: 404. */
  defaultBackend?: string;
  /** Absent: NGINX's defaults. */
  sessionResumption?: SessionResumption;
}
