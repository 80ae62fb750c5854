// The configuration model: what the ingress must serve, independent of NGINX and of where it came from.

/** A Kubernetes object named in diagnostics and Events. */
export interface ObjectRef {
  kind: string;
  namespace: string;
  name: string;
  uid?: string;
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

/** Key exchange and protocol versions a TLS server offers. Hosts with equal policies share a listener. */
export interface TlsPolicy {
  pqMode: PqMode;
  /**
   * TLS groups as OpenSSL names them, in tiers of server preference: the server picks from the first tier the client
   * supports, and within a tier prefers a group the client already sent a key share for (no extra round trip).
   */
  groups: string[][];
  protocols: TlsVersion[];
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

/** Kubernetes pathType semantics reduced to two matchers: the whole path, or a path prefix (string-wise). */
export type PathMatch = 'exact' | 'prefix';

export interface Location {
  match: PathMatch;
  path: string;
  /** Name of the upstream in Model.upstreams. */
  upstream: string;
  /** The Ingress that asked for it. */
  ingress: ObjectRef;
}

export interface Server {
  /** Host name, possibly a leading wildcard (*.example.com); '' is the catch-all server. */
  host: string;
  locations: Location[];
  /** Present when the host is served over TLS. */
  tls?: {
    policy: TlsPolicy;
    certificates: CertificatePair[];
  };
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
}

export interface Model {
  servers: Server[];
  upstreams: Upstream[];
  /** TLS policy of the catch-all listener and of hosts that ask for nothing else. */
  defaultPolicy: TlsPolicy;
  /** Served to clients whose host matches no server, and to TLS hosts without a usable Secret. */
  defaultCertificates: CertificatePair[];
}
