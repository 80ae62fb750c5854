// Controller flags. Names follow ingress-nginx where the meaning is the same. docs/flags.md lists each.
import { statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { hostPath, type DataPlaneRuntime } from './dataplane/runtime.js';
import { parseSettings } from './model/annotations.js';
import type { BackendRef } from './model/ingress.js';
import { checkObjectName, checkPortName, checkPortNumber, checkServiceName } from './model/names.js';
import { DEFAULT_ALGORITHM, SIGNATURE_ALGORITHMS, isSignatureAlgorithm, type SignatureAlgorithm } from './pki/algorithms.js';
import { BUILTIN_TLS_DEFAULTS, overrideDefaults, type Capabilities, type TlsDefaults } from './model/pq.js';
import { MAX_RETIRED_KEYS, type RotationPolicy } from './tickets/keys.js';
import type { SessionResumptionOptions } from './tickets/served.js';

export const FLAGS = {
  kubeconfig: { type: 'string', default: '', description: 'kubeconfig file; empty: in-cluster service account, else ~/.kube/config' },
  manifests: { type: 'string', default: '', description: 'standalone mode: read Ingresses, Services, EndpointSlices, Secrets from YAML files in this folder instead of a cluster' },
  'watch-namespace': { type: 'string', default: '', description: 'only watch this namespace (default: all)' },
  'ingress-class': { type: 'string', default: 'qubesec', description: 'class name accepted in the legacy kubernetes.io/ingress.class annotation' },
  'controller-class': { type: 'string', default: 'qubesec.io/ingress-controller', description: 'spec.controller of the IngressClasses this controller serves' },
  configmap: { type: 'string', default: '', description: 'namespace/name of a ConfigMap whose keys (pq-mode, tls-groups, tls-min-version) override the default-* flags' },
  'publish-service': { type: 'string', default: '', description: 'namespace/name of the Service in front of the controllers: the leader publishes its addresses in the status of every Ingress served (with neither publish flag, Ingress status is left alone)' },
  'publish-status-address': { type: 'string', default: '', description: 'comma-separated IP addresses and DNS names the leader publishes in Ingress status instead (wins over --publish-service)' },
  'election-id': { type: 'string', default: 'qubesec-leader', description: 'name of the coordination.k8s.io Lease the replicas elect a leader with; only the leader writes Ingress status and runs the PKI controller' },
  'election-ttl': { type: 'string', default: '15s', description: 'lease duration of the leader election; the leader renews every ttl*2/15 and stops leading when it could not renew for ttl*2/3 (as client-go: 15s, 2s, 10s)' },
  'controller-namespace': { type: 'string', default: '', description: 'namespace of the leader-election Lease and the session ticket Secret; empty: $POD_NAMESPACE, else the kubeconfig context\'s namespace (in a pod: its own), else default' },
  'default-pq-mode': { type: 'string', default: BUILTIN_TLS_DEFAULTS.pqMode, description: 'pq-mode of Ingresses without the qubesec.io/pq-mode annotation: hybrid, strict or classical' },
  'default-tls-groups': { type: 'string', default: '', description: 'groups offered in hybrid mode, in strict server order (default: the hybrids X25519MLKEM768, SecP256r1MLKEM768, SecP384r1MLKEM1024, then X25519, secp256r1, secp384r1)' },
  'default-tls-min-version': { type: 'string', default: '1.3', description: 'lowest TLS version for hosts that do not set qubesec.io/tls-min-version: 1.3 or 1.2' },
  'default-backend-service': { type: 'string', default: '', description: 'namespace/name[:port] of a Service that answers requests no Ingress matches (instead of 404) and the error pages of custom-http-errors' },
  'bind-address': { type: 'string', default: '', description: 'address NGINX listens on for traffic (default: all)' },
  'http-port': { type: 'string', default: '80', description: 'HTTP port' },
  'https-port': { type: 'string', default: '443', description: 'HTTPS port' },
  'https-redirect-port': { type: 'string', default: '443', description: 'port that HTTP to HTTPS redirects (ssl-redirect, force-ssl-redirect) send clients to: the one they reach HTTPS on, such as the Service\'s port or NodePort, not --https-port behind it; 443 leaves the port out of the URL' },
  'metrics-address': { type: 'string', default: '0.0.0.0', description: 'address of the metrics and health server' },
  'metrics-port': { type: 'string', default: '10254', description: 'port of /metrics, /healthz and /readyz' },
  'status-port': { type: 'string', default: '10246', description: '127.0.0.1 port of NGINX\'s controller-only status server' },
  'handshake-log-port': { type: 'string', default: '0', description: '127.0.0.1 UDP port that receives NGINX\'s per-connection TLS log (0: any free port)' },
  'nginx-root': { type: 'string', default: '', description: 'run NGINX and OpenSSL chrooted in this folder (the development rootfs); empty: run them directly' },
  'nginx-binary': { type: 'string', default: 'nginx', description: 'NGINX executable' },
  'openssl-binary': { type: 'string', default: 'openssl', description: 'OpenSSL executable of the data plane (asked what it supports)' },
  'conf-dir': { type: 'string', default: '/run/qubesec', description: 'folder (as NGINX sees it) for nginx.conf, certificates and sockets' },
  'nginx-modules': { type: 'string', default: '', description: 'comma-separated dynamic modules to load; empty: the distribution\'s NDK and Lua modules (required) and its stream module if present' },
  'access-log': { type: 'string', default: '', description: 'NGINX access log (JSON lines); empty: /dev/stdout, or <conf-dir>/access.log when chrooted; refused at start when it is a Unix socket (the controller\'s stdout under systemd\'s journal), which NGINX cannot open' },
  'worker-processes': { type: 'string', default: 'auto', description: 'NGINX worker processes' },
  'debounce-ms': { type: 'string', default: '100', description: 'quiet time that gathers a burst of changes into one sync (one reload, or one endpoint update); a burst that does not go quiet syncs every 10 quiet times' },
  'session-tickets': { type: 'string', default: 'true', description: 'TLS session resumption by tickets whose keys the leader keeps in --session-ticket-secret and rotates, shared by every replica (docs/pq-tls.md#session-resumption): true or false (each replica then resumes from its own session cache only)' },
  'session-ticket-secret': { type: 'string', default: 'qubesec-session-tickets', description: 'name of the Secret, in the controller namespace, that holds the session ticket keys and the default certificate every replica serves (standalone: kept in memory)' },
  'session-ticket-rotation': { type: 'string', default: '12h', description: 'a new key encrypts tickets this often (s, m or h); older keys still decrypt for --session-timeout; at most 8 old keys, so at least timeout/8' },
  'session-timeout': { type: 'string', default: '10m', description: 'how long a TLS session may be resumed (ssl_session_timeout; s, m or h)' },
  'enable-pki': { type: 'string', default: 'true', description: 'run the PKI controller (Issuer, ClusterIssuer, Certificate; needs the CRDs, else it stays off with a warning): true or false' },
  'default-certificate-algorithm': { type: 'string', default: DEFAULT_ALGORITHM, description: `key algorithm of the Certificates created for Ingresses annotated with qubesec.io/issuer or cluster-issuer but not qubesec.io/certificate-algorithm: ${SIGNATURE_ALGORITHMS.join(', ')}` },
  'cluster-resource-namespace': { type: 'string', default: 'qubesec', description: 'namespace of the CA Secrets that ClusterIssuers name' },
  'validating-webhook': { type: 'string', default: '', description: 'address of the validating admission webhook for Ingresses, e.g. ":8443" (docs/admission.md); empty: off' },
  'validating-webhook-certificate': { type: 'string', default: '', description: 'PEM certificate file(s) of the webhook, comma-separated to serve several key types side by side (ML-DSA and ECDSA)' },
  'validating-webhook-key': { type: 'string', default: '', description: 'PEM private key file(s) of the webhook, in the order of --validating-webhook-certificate' },
  'log-level': { type: 'string', default: 'info', description: 'debug, info, warn or error' },
  help: { type: 'boolean', default: false, description: 'print the flags' },
} as const;

export type Flags = { [K in keyof typeof FLAGS]: (typeof FLAGS)[K]['type'] extends 'boolean' ? boolean : string };

export function parseFlags(argv: string[]): Flags {
  const { values } = parseArgs({ args: argv, options: FLAGS, strict: true, allowPositionals: false });
  return values as Flags;
}

export function usage(): string {
  return Object.entries(FLAGS)
    .map(([name, f]) => `  --${name}${f.type === 'string' ? ` (default ${JSON.stringify(f.default)})` : ''}\n      ${f.description}`)
    .join('\n');
}

export function port(flags: Flags, name: 'http-port' | 'https-port' | 'metrics-port' | 'status-port' | 'handshake-log-port'): number {
  const n = Number(flags[name]);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`flag --${name}: ${JSON.stringify(flags[name])} is not a port number`);
  return n;
}

/** --https-redirect-port: the port clients reach HTTPS on, which redirects to HTTPS name. */
export function httpsRedirectPortFromFlags(flags: Flags): number {
  const raw = flags['https-redirect-port'];
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > 65535) throw new Error(`flag --https-redirect-port: ${JSON.stringify(raw)} is not a port number from 1 to 65535`);
  return n;
}

/** --access-log, or its default: the container's stdout, or a file in --conf-dir when chrooted (the rootfs has no /proc for /dev/stdout). */
export function accessLogFromFlags(flags: Flags, runtime: DataPlaneRuntime): string {
  const path = flags['access-log'] || (runtime.root ? `${flags['conf-dir']}/access.log` : '/dev/stdout');
  // NGINX opens its logs by path and open() refuses a Unix socket (ENXIO): the master would never start.
  if (statSync(hostPath(runtime, path), { throwIfNoEntry: false })?.isSocket()) {
    throw new Error(`flag --access-log: ${JSON.stringify(path)} is a Unix socket here (the controller's stdout is one under systemd's journal or a parent's socketpair), which NGINX cannot open; give the controller a pipe, file or terminal as stdout, or set --access-log to a file`);
  }
  return path;
}

/** A listen address flag: ":8443" (all addresses), "127.0.0.1:8443" or "[::1]:8443". */
export function listenAddress(flags: Flags, name: 'validating-webhook'): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(flags[name]);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new Error(`flag --${name}: ${JSON.stringify(flags[name])} is not host:port or :port`);
  return { host: match[1] ?? match[2] ?? '', port };
}

/** A comma-separated list flag, without empty entries. */
export function listFlag(flags: Flags, name: 'nginx-modules' | 'validating-webhook-certificate' | 'validating-webhook-key'): string[] {
  return flags[name].split(',').map((item) => item.trim()).filter(Boolean);
}

/** The default-* flags, checked with the same parsers as the annotations. */
export function tlsDefaultsFromFlags(flags: Flags, capabilities: Capabilities): TlsDefaults {
  const entries: Record<string, string> = { 'pq-mode': flags['default-pq-mode'], 'tls-min-version': flags['default-tls-min-version'] };
  if (flags['default-tls-groups']) entries['tls-groups'] = flags['default-tls-groups'];
  const parsed = parseSettings(entries, capabilities, '', (key) => `flag --default-${key}`);
  if (parsed.errors.length > 0) throw new Error(parsed.errors.join('; '));
  return overrideDefaults(BUILTIN_TLS_DEFAULTS, parsed.settings);
}

/** --default-backend-service as a backend reference, checked with the Ingress name rules. */
export function defaultBackendFromFlags(flags: Flags): BackendRef | undefined {
  const raw = flags['default-backend-service'];
  if (raw === '') return undefined;
  const m = /^([^/:]+)\/([^/:]+)(?::([^/:]+))?$/.exec(raw);
  const [namespace = '', service = '', port = ''] = m ? m.slice(1) : [];
  const portError = port === '' ? undefined : /^\d+$/.test(port) ? checkPortNumber(Number(port)) : checkPortName(port);
  if (!m || checkServiceName(namespace) || checkServiceName(service) || portError) {
    throw new Error(`flag --default-backend-service: ${JSON.stringify(raw)} is not namespace/name or namespace/name:port`);
  }
  return { namespace, service, port };
}

export function certificateAlgorithmFromFlags(flags: Flags): SignatureAlgorithm {
  const value = flags['default-certificate-algorithm'];
  if (!isSignatureAlgorithm(value)) throw new Error(`flag --default-certificate-algorithm: ${JSON.stringify(value)} is not one of ${SIGNATURE_ALGORITHMS.join(', ')}`);
  return value;
}

/** A whole number of seconds, minutes or hours above 0 ("90s", "10m", "12h"), in milliseconds. */
function durationFlag(flags: Flags, name: 'session-ticket-rotation' | 'session-timeout'): number {
  const match = /^(\d+)(s|m|h)$/.exec(flags[name]);
  const ms = match ? Number(match[1]) * { s: 1000, m: 60_000, h: 3600_000 }[match[2] as 's' | 'm' | 'h'] : 0;
  if (!ms) throw new Error(`flag --${name}: ${JSON.stringify(flags[name])} is not a whole number of seconds, minutes or hours above 0, like "12h"`);
  return ms;
}

/** --session-* flags, in the controller namespace `namespace`. */
export function sessionResumptionFromFlags(flags: Flags, namespace: string): SessionResumptionOptions & { rotation: RotationPolicy } {
  const tickets = flags['session-tickets'];
  if (tickets !== 'true' && tickets !== 'false') throw new Error(`flag --session-tickets: ${JSON.stringify(tickets)} is not true or false`);
  const name = flags['session-ticket-secret'];
  const nameError = checkObjectName(name);
  if (nameError) throw new Error(`flag --session-ticket-secret: ${JSON.stringify(name)} ${nameError}`);
  const rotation = { periodMs: durationFlag(flags, 'session-ticket-rotation'), sessionTimeoutMs: durationFlag(flags, 'session-timeout') };
  const retired = Math.ceil(rotation.sessionTimeoutMs / rotation.periodMs);
  if (retired > MAX_RETIRED_KEYS) {
    throw new Error(`flag --session-ticket-rotation: every ${flags['session-ticket-rotation']} would keep ${retired} old keys to decrypt tickets for --session-timeout ${flags['session-timeout']}; rotate at most ${MAX_RETIRED_KEYS} times per session timeout`);
  }
  return { tickets: tickets === 'true', timeoutSeconds: rotation.sessionTimeoutMs / 1000, ticketSecret: { namespace, name }, rotation };
}
