// The QRNG Open API served by `qubesec qrng serve`: GET /v1/capabilities, POST /v1/entropy, GET /v1/healthtest over
// TLS with the hybrid ML-KEM groups, answered from a DRBG that reseeds from the health-tested pool before every
// request it generates (prediction resistance), so a pool that refuses (no healthy quantum source) is a 503 and no
// byte is served from old state. Clients authenticate with a bearer token or a client certificate; each has its own
// rate limit; requests beyond the limits are refused with the field that is wrong.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { hybridTlsOptions } from '../admission/server.js';
import { BearerTokens, bearerToken } from '../bearer-tokens.js';
import type { Logger } from '../observability/log.js';
import { MAX_REQUEST_BYTES, type Drbg } from './drbg.js';
import { EntropyUnavailable } from './errors.js';
import type { QrngMetrics } from './metrics.js';
import type { SourceStatus } from './pool.js';

/** What POST /v1/entropy serves: DRBG output from conditioned quantum entropy, never raw samples. */
export const ENTROPY_TYPE = 'conditioned';
/** A POST /v1/entropy body is a small JSON object. */
export const MAX_BODY_BYTES = 4096;

export interface EntropyLimits {
  maxBlockSize: number;
  maxBlockCount: number;
  /** block_size * block_count at most. */
  maxRequestBytes: number;
}

export interface EntropyRequest {
  blockSize: number;
  blockCount: number;
}

/** Checks a POST /v1/entropy body; the error names the field and the limit (the API's 422). */
export function checkEntropyRequest(body: string, limits: EntropyLimits): EntropyRequest | { error: string } {
  let request: unknown;
  try {
    request = JSON.parse(body);
  } catch {
    return { error: 'the body is not JSON: send {"block_size": n, "block_count": n}' };
  }
  if (request === null || typeof request !== 'object' || Array.isArray(request)) return { error: 'the body must be a JSON object {"block_size": n, "block_count": n}' };
  const r = request as Record<string, unknown>;
  const unknown = Object.keys(r).filter((k) => !['block_size', 'block_count', 'entropy_type'].includes(k));
  if (unknown.length > 0) return { error: `${unknown.join(', ')}: not a field of an entropy request (block_size, block_count, entropy_type)` };
  const count = r.block_count ?? 1;
  const field = (name: string, value: unknown, max: number): string | undefined =>
    Number.isInteger(value) && (value as number) >= 1 && (value as number) <= max ? undefined : `${name}: ${JSON.stringify(value)} is not a whole number from 1 to ${max}`;
  const error = field('block_size', r.block_size, limits.maxBlockSize) ?? field('block_count', count, limits.maxBlockCount);
  if (error) return { error };
  if (r.entropy_type !== undefined && r.entropy_type !== ENTROPY_TYPE) return { error: `entropy_type: ${JSON.stringify(r.entropy_type)} is not served; this service serves "${ENTROPY_TYPE}"` };
  const total = (r.block_size as number) * (count as number);
  if (total > limits.maxRequestBytes) return { error: `block_size * block_count is ${total} bytes, above the ${limits.maxRequestBytes} bytes one request may ask for` };
  return { blockSize: r.block_size as number, blockCount: count as number };
}

/** Bearer tokens by client name (a tokens file). */
export class TokenList {
  private constructor(private readonly tokens: BearerTokens<string>) {}

  /** A tokens file: one `<client-name> <token>` per line; blank lines and # comments are skipped. */
  static parse(text: string, file: string): TokenList {
    const entries: { token: string; holder: string }[] = [];
    const errors: string[] = [];
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const [client = '', token = '', ...rest] = line.split(/\s+/);
      if (!/^[A-Za-z0-9._-]{1,63}$/.test(client) || token === '' || rest.length > 0) return errors.push(`${file}:${i + 1}: not "<client-name> <token>" (a name of letters, digits, . _ -, then the token)`);
      if (token.length < 16) return errors.push(`${file}:${i + 1}: the token of client "${client}" is shorter than 16 characters`);
      if (entries.some((e) => e.holder === client)) return errors.push(`${file}:${i + 1}: client "${client}" is listed twice`);
      entries.push({ token, holder: client });
    });
    if (errors.length > 0) throw new Error(errors.join('; '));
    if (entries.length === 0) throw new Error(`${file}: lists no token`);
    return new TokenList(new BearerTokens(entries));
  }

  /** The client whose token this is. */
  client(token: string): string | undefined {
    return this.tokens.holderOf(token);
  }
}

export interface RateLimit {
  bytesPerSecond: number;
  burstBytes: number;
}

/** A token bucket of bytes per client: `burstBytes` at once, refilled at `bytesPerSecond`. */
export class RateLimiter {
  private readonly buckets = new Map<string, { bytes: number; at: number }>();
  constructor(private readonly limit: RateLimit) {}

  /** Takes `bytes` from the client's bucket: 0 when allowed, else the milliseconds until they would be. */
  take(client: string, bytes: number, now = Date.now()): number {
    const bucket = this.buckets.get(client) ?? { bytes: this.limit.burstBytes, at: now };
    bucket.bytes = Math.min(this.limit.burstBytes, bucket.bytes + ((now - bucket.at) * this.limit.bytesPerSecond) / 1000);
    bucket.at = now;
    this.buckets.set(client, bucket);
    if (bytes > this.limit.burstBytes) return Infinity;
    if (bucket.bytes >= bytes) {
      bucket.bytes -= bytes;
      return 0;
    }
    return Math.ceil(((bytes - bucket.bytes) * 1000) / this.limit.bytesPerSecond);
  }

  /** Gives bytes back (a request that was refused after it was counted). */
  refund(client: string, bytes: number): void {
    const bucket = this.buckets.get(client);
    if (bucket) bucket.bytes = Math.min(this.limit.burstBytes, bucket.bytes + bytes);
  }
}

export interface QrngServiceOptions {
  /** '' listens on all addresses. */
  host: string;
  port: number;
  keyPairs: { certificatePem: string; keyPem: string }[];
  /** Bearer tokens; and/or the CA (PEM) whose client certificates are accepted, the client named by its CN. */
  tokens?: TokenList;
  clientCaPem?: string;
  limits: EntropyLimits;
  rateLimit: RateLimit;
}

/** What the service reads: the pool's sources' states (GET /v1/healthtest) and whether one is healthy. */
export interface PoolView {
  status(): SourceStatus[];
  readonly serving: boolean;
}

/** `random` gives DRBG output (generate() below) and throws EntropyUnavailable when the pool refuses. */
export async function serveQrng(options: QrngServiceOptions, random: (bytes: number) => Promise<Buffer>, pool: PoolView, metrics: QrngMetrics, log: Logger): Promise<Server> {
  if (!options.tokens && !options.clientCaPem) throw new Error('the QRNG service needs bearer tokens or a client CA: it serves no anonymous client');
  const limiter = new RateLimiter(options.rateLimit);
  const server = createServer(
    {
      ...hybridTlsOptions(options.keyPairs),
      ...(options.clientCaPem ? { ca: options.clientCaPem, requestCert: true, rejectUnauthorized: false } : {}),
      handshakeTimeout: 10_000,
      headersTimeout: 10_000,
      requestTimeout: 30_000,
      keepAliveTimeout: 120_000,
    },
    (req, res) => {
      const path = (req.url ?? '').split('?')[0] ?? '';
      res.on('finish', () => metrics.requests.inc({ path: KNOWN_PATHS.includes(path) ? path : 'other', code: String(res.statusCode) }));
      handle(req, res, path).catch((err: Error) => {
        log.error('QRNG request failed', { path, error: err.stack ?? err.message });
        if (!res.headersSent) reply(res, 500, { error: err.message });
      });
    },
  );
  server.on('tlsClientError', (err) => log.debug('QRNG TLS handshake failed', { error: err.message }));

  const clientOf = (req: IncomingMessage): string | undefined => {
    const token = bearerToken(req.headers.authorization);
    if (token !== undefined && options.tokens) return options.tokens.client(token);
    const socket = req.socket as TLSSocket;
    if (options.clientCaPem && socket.authorized) {
      const cn = socket.getPeerCertificate().subject?.CN;
      return `cn:${Array.isArray(cn) ? cn[0] : (cn ?? '')}`;
    }
    return undefined;
  };

  async function handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const client = clientOf(req);
    if (!client) {
      req.resume();
      return reply(res, 401, { error: 'authenticate with Authorization: Bearer <token> or a client certificate' }, { 'WWW-Authenticate': 'Bearer' });
    }
    if (path === '/v1/capabilities' && req.method === 'GET') {
      return reply(res, 200, {
        entropy: { min_block_size: 1, max_block_size: options.limits.maxBlockSize, min_block_count: 1, max_block_count: options.limits.maxBlockCount, entropy_types: [ENTROPY_TYPE] },
        healthtest: { source_count: pool.status().length },
      });
    }
    if (path === '/v1/healthtest' && req.method === 'GET') {
      const sources = pool.status().map((s) => ({ source: s.name, quantum: s.quantum, state: s.state, test_type: 'nist_sp800_90b', ...(s.cause ? { cause: s.cause, message: s.message } : {}), cutoffs: s.cutoffs }));
      return reply(res, pool.serving ? 200 : 503, { serving: pool.serving, test_result: sources, time_stamp: new Date().toISOString() });
    }
    if (path !== '/v1/entropy') return reply(res, 404, { error: `no such path: ${path} (GET /v1/capabilities, POST /v1/entropy, GET /v1/healthtest)` });
    if (req.method !== 'POST') return reply(res, 405, { error: 'POST /v1/entropy' }, { Allow: 'POST' });
    const body = await readBody(req);
    if (body === undefined) return reply(res, 413, { error: `the body exceeds ${MAX_BODY_BYTES} bytes` });
    const request = checkEntropyRequest(body, options.limits);
    if ('error' in request) return reply(res, 422, { error: request.error });
    const bytes = request.blockSize * request.blockCount;
    const waitMs = limiter.take(client, bytes);
    if (waitMs > 0) {
      return reply(res, 429, { error: `client "${client}" is over its rate limit of ${options.rateLimit.bytesPerSecond} bytes/s (burst ${options.rateLimit.burstBytes})` }, { 'Retry-After': String(Math.ceil(waitMs / 1000)) });
    }
    let output: Buffer;
    try {
      output = await random(bytes);
    } catch (err) {
      limiter.refund(client, bytes);
      if (!(err instanceof EntropyUnavailable)) throw err;
      log.warn('QRNG request refused: no entropy', { client, error: err.message });
      return reply(res, 503, { error: err.message, sources: err.sources }, { 'Retry-After': '1' });
    }
    metrics.servedBytes.inc({ client }, bytes);
    const entropy = Array.from({ length: request.blockCount }, (_, i) => output.subarray(i * request.blockSize, (i + 1) * request.blockSize).toString('base64'));
    reply(res, 200, { entropy });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host || undefined, () => resolve());
  });
  return server;
}

const KNOWN_PATHS = ['/v1/capabilities', '/v1/entropy', '/v1/healthtest'];

/** `bytes` of DRBG output in requests the DRBG takes (at most 2^19 bits each), each reseeded from the pool. */
export async function generate(drbg: Drbg, bytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let have = 0; have < bytes; have += MAX_REQUEST_BYTES) parts.push(await drbg.generate(Math.min(MAX_REQUEST_BYTES, bytes - have)));
  return Buffer.concat(parts);
}

/** The body, or undefined when it is larger than MAX_BODY_BYTES (the rest is drained, so the client reads the answer). */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) {
      req.resume();
      return resolve(undefined);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function reply(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers }).end(JSON.stringify(body));
}
