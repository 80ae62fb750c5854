// Controller flags. Names follow ingress-nginx where the meaning is the same. docs/flags.md lists each.
// Every flag has its parser here: parseFlags checks them all at start and hands out typed values.
import { isIP } from 'node:net';
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { hostPath, type DataPlaneRuntime } from './dataplane/runtime.js';
import { parseSettings } from './model/annotations.js';
import { GATEWAY_CONTROLLER_NAME } from './model/gateway.js';
import type { BackendRef } from './model/ingress.js';
import { checkNamespaceName, checkObjectName, checkPortName, checkPortNumber, checkServiceName, quote } from './model/names.js';
import { DEFAULT_ALGORITHM, SIGNATURE_ALGORITHMS } from './pki/algorithms.js';
import { serviceKeyMaterial } from './pki/key-material.js';
import { BUILTIN_TLS_DEFAULTS, overrideDefaults, type Capabilities, type TlsDefaults } from './model/pq.js';
import type { Level } from './observability/log.js';
import { MAX_RETIRED_KEYS, type RotationPolicy } from './tickets/keys.js';
import type { SessionResumptionOptions } from './tickets/served.js';

/** A flag's parser: its typed value, or an Error saying why not (parseFlags adds the flag and the value). */
export type FlagParser<T> = (raw: string) => T;

export const text: FlagParser<string> = (raw) => raw;

export function integer(min: number, max: number): FlagParser<number> {
  return (raw) => {
    if (!/^\d{1,9}$/.test(raw) || Number(raw) < min || Number(raw) > max) throw new Error(`is not a whole number from ${min} to ${max}`);
    return Number(raw);
  };
}

const boolean: FlagParser<boolean> = (raw) => {
  if (raw !== 'true' && raw !== 'false') throw new Error('is not true or false');
  return raw === 'true';
};

export function oneOf<T extends string>(values: readonly T[]): FlagParser<T> {
  return (raw) => {
    if (!(values as readonly string[]).includes(raw)) throw new Error(`is not one of ${values.join(', ')}`);
    return raw as T;
  };
}

export function optional<T>(parse: FlagParser<T>): FlagParser<T | undefined> {
  return (raw) => (raw === '' ? undefined : parse(raw));
}

function checked(check: (raw: string) => string | undefined): FlagParser<string> {
  return (raw) => {
    const error = check(raw);
    if (error) throw new Error(error);
    return raw;
  };
}

/** A comma-separated list, without empty entries. */
export function list<T>(parse: FlagParser<T>): FlagParser<T[]> {
  return (raw) => raw.split(',').map((item) => item.trim()).filter(Boolean).map((item) => {
    try {
      return parse(item);
    } catch (err) {
      throw new Error(`holds ${quote(item)}, which ${(err as Error).message}`, { cause: err });
    }
  });
}

const UNITS = { s: 1000, m: 60_000, h: 3600_000 } as const;
type Unit = keyof typeof UNITS;
/**
 * A whole number of `units` above 0 and at most `max` ("90s", "10m", "12h"), in milliseconds. The bound keeps timers
 * within what setTimeout takes (about 24 days; beyond, Node fires them at once).
 */
export function duration(units: readonly Unit[], max: `${number}${Unit}`): FlagParser<number> {
  const ms = (amount: string, unit: string) => Number(amount) * UNITS[unit as Unit];
  const maxMs = ms(max.slice(0, -1), max.slice(-1));
  const names = units.map((u) => ({ s: 'seconds', m: 'minutes', h: 'hours' })[u]).join(', ').replace(/, (\w+)$/, ' or $1');
  return (raw) => {
    const match = new RegExp(`^(\\d{1,9})(${units.join('|')})$`).exec(raw);
    const value = match ? ms(match[1]!, match[2]!) : 0;
    if (!value || value > maxMs) throw new Error(`is not a whole number of ${names} above 0 and at most ${max}, like "${units.includes('h') ? '12h' : '15s'}"`);
    return value;
  };
}

export const ipAddress: FlagParser<string> = (raw) => {
  if (!isIP(raw)) throw new Error('is not an IPv4 or IPv6 address');
  return raw;
};

const SIZE_UNITS = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 } as const;
/** A size in bytes: a whole number above 0 with Ki, Mi, Gi or Ti (as Kubernetes quantities), at most `max`. */
export function byteSize(max: number): FlagParser<number> {
  return (raw) => {
    const match = /^(\d{1,9})(Ki|Mi|Gi|Ti)$/.exec(raw);
    const value = match ? Number(match[1]) * SIZE_UNITS[match[2] as keyof typeof SIZE_UNITS] : 0;
    if (!value || value > max) throw new Error(`is not a size above 0 and at most ${max / 2 ** 30}Gi with a unit Ki, Mi, Gi or Ti, like "64Mi"`);
    return value;
  };
}

// Rendered bare into nginx.conf (conf-dir, access-log, modules): absolute, and nothing NGINX would read otherwise.
export const absolutePath: FlagParser<string> = (raw) => {
  if (!/^\/[A-Za-z0-9._/+@=-]*$/.test(raw)) throw new Error('is not an absolute path of letters, digits and . _ / + @ = -');
  return raw;
};

/** namespace/name of a `kind`, each checked with the rule of its kind. */
export function namespacedName(kind: string, checkName: (name: string) => string | undefined): FlagParser<{ namespace: string; name: string }> {
  return (raw) => {
    const [namespace = '', name = '', ...rest] = raw.split('/');
    if (rest.length > 0 || checkNamespaceName(namespace) || checkName(name)) throw new Error(`is not namespace/name of a ${kind}`);
    return { namespace, name };
  };
}

/** ":8443" (all addresses), "127.0.0.1:8443" or "[::1]:8443". */
export const listenAddress: FlagParser<{ host: string; port: number }> = (raw) => {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(raw);
  const host = match?.[1] ?? match?.[2] ?? '';
  const port = Number(match?.[3]);
  if (!match || (host !== '' && !isIP(host)) || (match[1] !== undefined && isIP(host) !== 6) || port < 1 || port > 65535) {
    throw new Error('is not :port, ip:port or [ipv6]:port');
  }
  return { host, port };
};

/** An https URL (a QRNG service's base URL). */
export const httpsUrl: FlagParser<string> = (raw) => {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error('is not a URL');
  }
  if (url.protocol !== 'https:') throw new Error('is not an https URL');
  return raw;
};

/** An IP address or a lower-case DNS name, as Ingress status holds them. */
const statusAddress: FlagParser<string> = (raw) => {
  if (!isIP(raw) && checkObjectName(raw)) throw new Error('is neither an IP address nor a lower-case DNS name');
  return raw;
};

/** spec.controller of an IngressClass, as the API server checks it: a domain-prefixed path. */
const controllerName: FlagParser<string> = (raw) => {
  const [domain = '', ...path] = raw.split('/');
  if (raw.length > 250 || checkObjectName(domain) || path.length === 0 || !/^[A-Za-z0-9/._~%!$&'()*+,;=:-]+$/.test(path.join('/'))) {
    throw new Error('is not a domain-prefixed path like example.com/ingress-controller');
  }
  return raw;
};

/** namespace/name[:port] of a Service, checked with the Ingress name rules. */
const serviceBackend: FlagParser<BackendRef> = (raw) => {
  const m = /^([^/:]+)\/([^/:]+)(?::([^/:]+))?$/.exec(raw);
  const [namespace = '', service = '', port = ''] = m ? m.slice(1) : [];
  const portError = port === '' ? undefined : /^\d+$/.test(port) ? checkPortNumber(Number(port)) : checkPortName(port);
  if (!m || checkNamespaceName(namespace) || checkServiceName(service) || portError) throw new Error('is not namespace/name or namespace/name:port of a Service');
  return { namespace, service, port };
};

const LEVELS: readonly Level[] = ['debug', 'info', 'warn', 'error'];

export const FLAGS = {
  kubeconfig: { type: 'string', default: '', parse: text, description: 'kubeconfig file; empty: in-cluster service account, else ~/.kube/config' },
  manifests: { type: 'string', default: '', parse: text, description: 'standalone mode: read Ingresses, Services, EndpointSlices, Secrets (and Gateway API objects) from YAML files in this folder instead of a cluster' },
  'watch-namespace': { type: 'string', default: '', parse: optional(checked(checkNamespaceName)), description: 'only watch this namespace (default: all): a namespace name (RFC 1123 label)' },
  'ingress-class': { type: 'string', default: 'qubesec', parse: checked(checkObjectName), description: 'class name accepted in the legacy kubernetes.io/ingress.class annotation: an object name (RFC 1123 subdomain)' },
  'controller-class': { type: 'string', default: 'qubesec.io/ingress-controller', parse: controllerName, description: 'spec.controller of the IngressClasses this controller serves: a domain-prefixed path' },
  'gateway-controller-name': { type: 'string', default: GATEWAY_CONTROLLER_NAME, parse: optional(controllerName), description: 'spec.controllerName of the Gateway API GatewayClasses this controller serves: a domain-prefixed path; empty: Gateway API off' },
  configmap: { type: 'string', default: '', parse: optional(namespacedName('ConfigMap', checkObjectName)), description: 'namespace/name of a ConfigMap whose keys (pq-mode, tls-groups, tls-min-version, certificate-preference) override the default-* flags' },
  'publish-service': { type: 'string', default: '', parse: optional(namespacedName('Service', checkServiceName)), description: 'namespace/name of the Service in front of the controllers: the leader publishes its addresses in the status of every Ingress served (with neither publish flag, Ingress status is left alone)' },
  'publish-status-address': { type: 'string', default: '', parse: list(statusAddress), description: 'comma-separated IP addresses and DNS names the leader publishes in Ingress status instead (wins over --publish-service)' },
  'election-id': { type: 'string', default: 'qubesec-leader', parse: checked(checkObjectName), description: 'name of the coordination.k8s.io Lease the replicas elect a leader with; only the leader writes Ingress status and runs the PKI controller' },
  'election-ttl': { type: 'string', default: '15s', parse: duration(['s', 'm'], '10m'), description: 'lease duration of the leader election (s or m, at most 10m); the leader renews every ttl*2/15 and stops leading when it could not renew for ttl*2/3 (as client-go: 15s, 2s, 10s)' },
  'controller-namespace': { type: 'string', default: '', parse: optional(checked(checkNamespaceName)), description: 'namespace of the leader-election Lease and the session ticket Secret; empty: $POD_NAMESPACE, else the kubeconfig context\'s namespace (in a pod: its own), else default' },
  // Checked at start by the annotations' parsers, against what the data plane supports (tlsDefaultsFromFlags).
  'default-pq-mode': { type: 'string', default: BUILTIN_TLS_DEFAULTS.pqMode, parse: text, description: 'pq-mode of Ingresses without the qubesec.io/pq-mode annotation: hybrid, strict or classical' },
  'default-tls-groups': { type: 'string', default: '', parse: text, description: 'groups offered in hybrid mode, in strict server order, separated by : or , (default: the hybrids X25519MLKEM768, SecP256r1MLKEM768, SecP384r1MLKEM1024, then X25519, secp256r1, secp384r1)' },
  'default-tls-min-version': { type: 'string', default: '1.3', parse: text, description: 'lowest TLS version for hosts that do not set qubesec.io/tls-min-version: 1.3 or 1.2' },
  'default-certificate-preference': { type: 'string', default: BUILTIN_TLS_DEFAULTS.certificatePreference, parse: text, description: 'certificate-preference of hosts without the qubesec.io/certificate-preference annotation: which certificate a client that accepts both an ML-DSA and an ECDSA one gets: client (its own order), classical or post-quantum' },
  'default-backend-service': { type: 'string', default: '', parse: optional(serviceBackend), description: 'namespace/name[:port] of a Service that answers requests no Ingress matches (instead of 404) and the error pages of custom-http-errors' },
  'bind-address': { type: 'string', default: '', parse: optional(ipAddress), description: 'IPv4 or IPv6 address NGINX listens on for traffic (default: all)' },
  'http-port': { type: 'string', default: '80', parse: integer(1, 65535), description: 'HTTP port (1-65535)' },
  'https-port': { type: 'string', default: '443', parse: integer(1, 65535), description: 'HTTPS port (1-65535)' },
  'gateway-http-port': { type: 'string', default: '', parse: optional(integer(1, 65535)), description: 'port a Gateway API listener of protocol HTTP names for this data plane: the one clients reach, such as the Service\'s (1-65535); empty: --http-port' },
  'gateway-https-port': { type: 'string', default: '', parse: optional(integer(1, 65535)), description: 'port a Gateway API listener of protocol HTTPS names for this data plane: the one clients reach, such as the Service\'s (1-65535); empty: --https-port' },
  'https-redirect-port': { type: 'string', default: '443', parse: integer(1, 65535), description: 'port that HTTP to HTTPS redirects (ssl-redirect, force-ssl-redirect) send clients to: the one they reach HTTPS on, such as the Service\'s port or NodePort, not --https-port behind it; 443 leaves the port out of the URL' },
  'metrics-address': { type: 'string', default: '0.0.0.0', parse: ipAddress, description: 'IPv4 or IPv6 address of the metrics and health server' },
  'metrics-port': { type: 'string', default: '10254', parse: integer(0, 65535), description: 'port of /metrics, /healthz and /readyz (0: any free port)' },
  'status-port': { type: 'string', default: '10246', parse: integer(0, 65535), description: '127.0.0.1 port of NGINX\'s controller-only status server (0: any free port)' },
  'handshake-log-port': { type: 'string', default: '0', parse: integer(0, 65535), description: '127.0.0.1 UDP port that receives NGINX\'s per-connection TLS log (0: any free port)' },
  'nginx-root': { type: 'string', default: '', parse: text, description: 'run NGINX and OpenSSL chrooted in this folder (the development rootfs); empty: run them directly' },
  'nginx-binary': { type: 'string', default: 'nginx', parse: text, description: 'NGINX executable' },
  'openssl-binary': { type: 'string', default: 'openssl', parse: text, description: 'OpenSSL executable of the data plane (asked what it supports)' },
  'conf-dir': { type: 'string', default: '/run/qubesec', parse: absolutePath, description: 'folder (as NGINX sees it) for nginx.conf, certificates and sockets: an absolute path' },
  'nginx-modules': { type: 'string', default: '', parse: list(absolutePath), description: 'comma-separated absolute paths of the dynamic modules to load; empty: the distribution\'s NDK and Lua modules (required) and its stream module if present' },
  'access-log': { type: 'string', default: '', parse: optional(absolutePath), description: 'NGINX access log (JSON lines), an absolute path; empty: /dev/stdout, or <conf-dir>/access.log when chrooted; refused at start when it is a Unix socket (the controller\'s stdout under systemd\'s journal), which NGINX cannot open' },
  'worker-processes': { type: 'string', default: 'auto', parse: (raw: string): number | 'auto' => (raw === 'auto' ? 'auto' : integer(1, 1024)(raw)), description: 'NGINX worker processes: auto (one per core) or 1-1024' },
  'new-host-reload-ms': { type: 'string', default: '10000', parse: integer(0, 600_000), description: 'a new host whose features the catch-all path serves exactly (docs/architecture.md#new-hosts-without-a-reload) serves at once, without a reload; its server block comes with one reload this many milliseconds (0-600000) after the first such host, which gathers the hosts created meanwhile; 0: new hosts wait for a reload like any change' },
  'debounce-ms': { type: 'string', default: '100', parse: integer(1, 60_000), description: 'quiet time in milliseconds (1-60000) that gathers a burst of changes into one sync (one reload, or one endpoint update); a burst that does not go quiet syncs every 10 quiet times' },
  'session-tickets': { type: 'string', default: 'true', parse: boolean, description: 'TLS session resumption by tickets whose keys the leader keeps in --session-ticket-secret and rotates, shared by every replica (docs/pq-tls.md#session-resumption): true or false (each replica then resumes from its own session cache only)' },
  'session-ticket-secret': { type: 'string', default: 'qubesec-session-tickets', parse: checked(checkObjectName), description: 'name of the Secret, in the controller namespace, that holds the session ticket keys and the default certificate every replica serves (standalone: kept in memory)' },
  'session-ticket-rotation': { type: 'string', default: '12h', parse: duration(['s', 'm', 'h'], '168h'), description: 'a new key encrypts tickets this often (s, m or h, at most 168h); older keys still decrypt for --session-timeout; at most 8 old keys, so at least timeout/8' },
  'session-timeout': { type: 'string', default: '10m', parse: duration(['s', 'm', 'h'], '24h'), description: 'how long a TLS session may be resumed (ssl_session_timeout; s, m or h, at most 24h)' },
  'enable-pki': { type: 'string', default: 'true', parse: boolean, description: 'run the PKI controller (Issuer, ClusterIssuer, Certificate; needs the CRDs, else it stays off with a warning): true or false' },
  'default-certificate-algorithm': { type: 'string', default: DEFAULT_ALGORITHM, parse: oneOf(SIGNATURE_ALGORITHMS), description: `key algorithm of the Certificates created for Ingresses annotated with qubesec.io/issuer or cluster-issuer but not qubesec.io/certificate-algorithm: ${SIGNATURE_ALGORITHMS.join(', ')}` },
  'cluster-resource-namespace': { type: 'string', default: 'qubesec', parse: checked(checkNamespaceName), description: 'namespace of the CA Secrets that ClusterIssuers name' },
  'validating-webhook': { type: 'string', default: '', parse: optional(listenAddress), description: 'address of the validating admission webhook for Ingresses: :port, ip:port or [ipv6]:port, e.g. ":8443" (docs/admission.md); empty: off' },
  'validating-webhook-certificate': { type: 'string', default: '', parse: list(text), description: 'PEM certificate file(s) of the webhook, comma-separated to serve several key types side by side (ML-DSA and ECDSA)' },
  'validating-webhook-key': { type: 'string', default: '', parse: list(text), description: 'PEM private key file(s) of the webhook, in the order of --validating-webhook-certificate' },
  'enable-signatures': { type: 'string', default: 'false', parse: boolean, description: 'verify objects against SignaturePolicies (post-quantum signatures, docs/signatures.md#policies-and-admission) at POST /validate/signatures of the --validating-webhook server; needs a cluster and the qubesec.io CRDs (until their first lists are in, reviews fail closed): true or false' },
  'entropy-source': { type: 'string', default: '', parse: optional(httpsUrl), description: 'https URL of a QRNG service (qubesec qrng serve, docs/qrng.md): the PKI\'s ML-DSA and ML-KEM keys are made from seeds it serves, every serial number and every session ticket key are its bytes; with no healthy quantum source there, the PKI issues nothing (Certificate reason EntropyUnavailable) and ticket keys are not rotated. Empty: OpenSSL\'s generator' },
  'entropy-source-ca': { type: 'string', default: '', parse: optional(text), description: 'PEM CA file of the --entropy-source service\'s certificate' },
  'entropy-source-token-file': { type: 'string', default: '', parse: optional(text), description: 'file holding the bearer token for --entropy-source' },
  'log-level': { type: 'string', default: 'info', parse: oneOf(LEVELS), description: 'debug, info, warn or error' },
  help: { type: 'boolean', default: false, description: 'print the flags' },
} as const;

/** A set of flags: each a string with a default and a parser, or a boolean. */
export type FlagSet = Record<string, { type: 'string'; default: string; parse: FlagParser<unknown>; description: string } | { type: 'boolean'; default: boolean; description: string }>;

/** The values of a flag set as their parsers return them. */
export type FlagValues<S> = { [K in keyof S]: S[K] extends { parse: FlagParser<infer T> } ? T : boolean };

/** The controller's flags' values. */
export type Flags = FlagValues<typeof FLAGS>;

/** Parses and checks every flag; a bad value stops the controller with an error naming the flag and the value. */
export function parseFlags(argv: string[]): Flags {
  return parseFlagSet(FLAGS, argv);
}

/** Parses and checks every flag of `set` (the controller's, or a command's such as `audit serve`). */
export function parseFlagSet<S extends FlagSet>(set: S, argv: string[]): FlagValues<S> {
  const { values } = parseArgs({ args: argv, options: set, strict: true, allowPositionals: false });
  const flags: Record<string, unknown> = {};
  const errors: string[] = [];
  for (const [name, flag] of Object.entries(set)) {
    const raw = (values as Record<string, unknown>)[name];
    if (!('parse' in flag)) {
      flags[name] = raw;
      continue;
    }
    try {
      flags[name] = flag.parse(raw as string);
    } catch (err) {
      errors.push(`flag --${name}: ${quote(raw as string)} ${(err as Error).message}`);
    }
  }
  if (errors.length > 0) throw new Error(errors.join('; '));
  return flags as FlagValues<S>;
}

export function usage(set: FlagSet = FLAGS): string {
  return Object.entries(set)
    .map(([name, f]) => `  --${name}${f.type === 'string' ? ` (default ${JSON.stringify(f.default)})` : ''}\n      ${f.description}`)
    .join('\n');
}

/** --access-log, or its default: the container's stdout, or a file in --conf-dir when chrooted (the rootfs has no /proc for /dev/stdout). */
export function accessLogFromFlags(flags: Flags, runtime: DataPlaneRuntime): string {
  const path = flags['access-log'] ?? (runtime.root ? `${flags['conf-dir']}/access.log` : '/dev/stdout');
  // NGINX opens its logs by path and open() refuses a Unix socket (ENXIO): the master would never start.
  if (statSync(hostPath(runtime, path), { throwIfNoEntry: false })?.isSocket()) {
    throw new Error(`flag --access-log: ${JSON.stringify(path)} is a Unix socket here (the controller's stdout is one under systemd's journal or a parent's socketpair), which NGINX cannot open; give the controller a pipe, file or terminal as stdout, or set --access-log to a file`);
  }
  return path;
}

/** The default-* flags, checked with the same parsers as the annotations. */
export function tlsDefaultsFromFlags(flags: Flags, capabilities: Capabilities): TlsDefaults {
  const entries: Record<string, string> = {
    'pq-mode': flags['default-pq-mode'],
    'tls-min-version': flags['default-tls-min-version'],
    'certificate-preference': flags['default-certificate-preference'],
  };
  if (flags['default-tls-groups']) entries['tls-groups'] = flags['default-tls-groups'];
  const parsed = parseSettings(entries, capabilities, '', (key) => `flag --default-${key}`);
  if (parsed.errors.length > 0) throw new Error(parsed.errors.join('; '));
  return overrideDefaults(BUILTIN_TLS_DEFAULTS, parsed.settings);
}

/** --session-* flags, in the controller namespace `namespace`: the rotation must fit the session timeout. */
export function sessionResumptionFromFlags(flags: Flags, namespace: string): SessionResumptionOptions & { rotation: RotationPolicy } {
  const rotation = { periodMs: flags['session-ticket-rotation'], sessionTimeoutMs: flags['session-timeout'] };
  const retired = Math.ceil(rotation.sessionTimeoutMs / rotation.periodMs);
  if (retired > MAX_RETIRED_KEYS) {
    throw new Error(`flag --session-ticket-rotation: every ${rotation.periodMs / 1000}s would keep ${retired} old keys to decrypt tickets for --session-timeout ${rotation.sessionTimeoutMs / 1000}s; rotate at most ${MAX_RETIRED_KEYS} times per session timeout`);
  }
  return { tickets: flags['session-tickets'], timeoutSeconds: rotation.sessionTimeoutMs / 1000, ticketSecret: { namespace, name: flags['session-ticket-secret'] }, rotation };
}

/** The content of a file a flag names; the error names the flag (and says it is required when it is not given). */
export async function flagFile(flag: string, path: string | undefined): Promise<string> {
  if (!path) throw new Error(`flag --${flag} is required`);
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`flag --${flag}: ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, { cause: err });
  }
}

/**
 * --entropy-source with its CA and token files, each read error naming its flag: the controller's and `qubesec vpn
 * run`'s (the same three flags, the same meaning).
 */
export async function entropySourceFromFlags(flags: Record<'entropy-source' | 'entropy-source-ca' | 'entropy-source-token-file', string | undefined>): Promise<ReturnType<typeof serviceKeyMaterial>> {
  const file = async (flag: 'entropy-source-ca' | 'entropy-source-token-file') => (flags[flag] ? flagFile(flag, flags[flag]) : undefined);
  const ca = await file('entropy-source-ca');
  const token = (await file('entropy-source-token-file'))?.trim();
  return serviceKeyMaterial({ url: flags['entropy-source']!, ...(ca ? { ca } : {}), ...(token ? { bearerToken: token } : {}) });
}
