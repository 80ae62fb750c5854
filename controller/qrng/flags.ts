// Flags of `qubesec qrng serve` and `qubesec qrng feed`, parsed and checked with the controller's flag parsers
// (controller/config.ts). docs/flags.md lists each; controller/docs.test.ts checks it does.
import { DRBG_NAMES, MAX_REQUEST_BYTES } from './drbg.js';
import { absolutePath, duration, integer, ipAddress, list, listenAddress, namespacedName, oneOf, optional, text, type FlagSet } from '../config.js';
import { checkObjectName } from '../model/names.js';

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

const common = {
  'metrics-address': { type: 'string', default: '0.0.0.0', parse: ipAddress, description: 'IPv4 or IPv6 address of /metrics, /healthz and /readyz' },
  'log-level': { type: 'string', default: 'info', parse: oneOf(LEVELS), description: 'debug, info, warn or error' },
  help: { type: 'boolean', default: false, description: 'print the flags' },
} as const satisfies FlagSet;

export const QRNG_SERVE_FLAGS = {
  config: { type: 'string', default: '', parse: optional(absolutePath), description: 'the entropy sources\' configuration file, YAML or JSON (docs/qrng.md#configuration): an absolute path; required' },
  listen: { type: 'string', default: ':8443', parse: listenAddress, description: 'address of the QRNG Open API over TLS: :port, ip:port or [ipv6]:port' },
  'tls-certificate': { type: 'string', default: '', parse: list(text), description: 'PEM certificate chain file(s) of the service, comma-separated to serve several key types (ML-DSA and ECDSA); required' },
  'tls-key': { type: 'string', default: '', parse: list(text), description: 'PEM private key file(s), in the order of --tls-certificate' },
  tokens: { type: 'string', default: '', parse: optional(text), description: 'file of bearer tokens, one "<client-name> <token>" per line (tokens of at least 16 characters); with --client-ca, either authenticates' },
  'client-ca': { type: 'string', default: '', parse: optional(text), description: 'PEM CA file whose client certificates authenticate (the client is named by its CN)' },
  drbg: { type: 'string', default: 'ctr-aes-256', parse: oneOf(DRBG_NAMES), description: `the SP 800-90A DRBG that generates what is served, reseeded from the pool before every request: ${DRBG_NAMES.join(', ')}` },
  'max-block-size': { type: 'string', default: '65536', parse: integer(1, 1 << 20), description: 'largest block_size a request may ask for (bytes, 1 to 1048576)' },
  'max-block-count': { type: 'string', default: '64', parse: integer(1, 4096), description: 'largest block_count a request may ask for (1 to 4096)' },
  'max-request-bytes': { type: 'string', default: String(16 * MAX_REQUEST_BYTES), parse: integer(1, 1 << 24), description: 'largest block_size * block_count of one request (bytes, 1 to 16777216); more is refused with 422' },
  'rate-limit': { type: 'string', default: '1048576', parse: integer(1, 1_000_000_000), description: 'bytes per second each client may draw (a token bucket); more is refused with 429 and Retry-After' },
  'rate-burst': { type: 'string', default: '4194304', parse: integer(1, 1_000_000_000), description: 'bytes a client may draw at once before --rate-limit applies' },
  'metrics-port': { type: 'string', default: '10255', parse: integer(0, 65535), description: 'port of /metrics, /healthz and /readyz (ready while a quantum source is healthy; 0: any free port)' },
  'event-pod': { type: 'string', default: '', parse: optional(namespacedName('Pod', checkObjectName)), description: 'namespace/name of the Pod the service runs as: a Warning Event EntropySourceOut on it when a source is taken out, a Normal EntropySourceHealthy when it is back (the chart sets it from the downward API); empty: logs and metrics only' },
  kubeconfig: { type: 'string', default: '', parse: text, description: 'kubeconfig file for the Events of --event-pod; empty: in a Pod its service account, else the default kubeconfig' },
  ...common,
} as const satisfies FlagSet;

export const QRNG_FEED_FLAGS = {
  url: { type: 'string', default: '', parse: text, description: 'base URL of the QRNG service (qubesec qrng serve) or any QRNG Open API; required' },
  ca: { type: 'string', default: '', parse: optional(text), description: 'PEM CA file that signed the service\'s certificate' },
  'token-file': { type: 'string', default: '', parse: optional(text), description: 'file holding the bearer token' },
  fifo: { type: 'string', default: '', parse: optional(absolutePath), description: 'rngd mode: the named pipe to create and fill, which rngd reads (-r); rngd credits the kernel pool (needs CAP_SYS_ADMIN)' },
  'rngd-command': { type: 'string', default: '', parse: text, description: 'the rngd command line to run and supervise in rngd mode, split at spaces (rng-tools 5: "rngd -f -d 1 -n 1 -r <fifo> -o /dev/random"); empty: rngd runs elsewhere' },
  'write-device': { type: 'string', default: '', parse: optional(absolutePath), description: 'safe mode instead of --fifo: write to this device (/dev/random), which mixes the bytes into the kernel pool without crediting entropy and needs no capability' },
  'chunk-bytes': { type: 'string', default: '4096', parse: integer(64, 65536), description: 'bytes drawn from the service per request (64 to 65536)' },
  'write-interval': { type: 'string', default: '1s', parse: duration(['s', 'm'], '10m'), description: 'safe mode: how often a chunk is written (s or m); rngd mode writes as fast as rngd reads' },
  'metrics-port': { type: 'string', default: '10256', parse: integer(0, 65535), description: 'port of /metrics, /healthz and /readyz (0: any free port)' },
  ...common,
} as const satisfies FlagSet;

