// Entropy sources: where raw samples come from. Each gives raw, unconditioned bytes with what it claims about them
// (its SampleModel: sample size, min-entropy H per sample, alpha) and whether they are quantum. Health testing,
// conditioning and refusing are the pool's; a source only reads, and says why when it cannot.
//  - QRNG Open API (the vendors' common REST API): POST /v1/entropy, GET /v1/capabilities, GET /v1/healthtest; Qrypt's
//    entropy service (GET /api/v1/quantum-entropy?size=KiB) as a variant.
//  - A device or FIFO: a QRNG card's character device (IDQ Quantis: /dev/qrandom0) or a named pipe something feeds.
//  - The OS generator: never quantum, used only when configured.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { type SampleModel } from './health.js';

export interface EntropySource {
  readonly name: string;
  /** True for a quantum process; the pool refuses when no healthy quantum source is left. */
  readonly quantum: boolean;
  readonly model: SampleModel;
  /** Exactly `bytes` raw bytes (8 binary samples or one 8-bit sample each); throws SourceError when it cannot. */
  read(bytes: number): Promise<Buffer>;
  /** Forget raw bytes fetched ahead and not yet read: after a failure, a retry starts on fresh output. */
  discard(): void;
  close(): Promise<void>;
}

/** Why a source gave nothing: `unavailable` (503, refused connection, end of stream) and `timeout` are worth retrying. */
export type SourceErrorKind = 'unavailable' | 'timeout' | 'rejected' | 'unauthorized' | 'bad-response';

export class SourceError extends Error {
  override readonly name = 'SourceError';
  constructor(
    readonly source: string,
    readonly kind: SourceErrorKind,
    message: string,
  ) {
    super(`entropy source "${source}": ${message}`);
  }
  get retryable(): boolean {
    return this.kind === 'unavailable' || this.kind === 'timeout';
  }
}

export type OpenApiVariant = 'qrng-open-api' | 'qrypt';

export interface OpenApiSourceOptions {
  name: string;
  /** Base URL; the API's paths (/v1/entropy, ...) are appended. */
  url: string;
  variant?: OpenApiVariant;
  model: SampleModel;
  /** Authorization: Bearer <token>. */
  bearerToken?: string;
  /** X-API-KEY: <key>. */
  apiKey?: string;
  /** PEM: the CA that signed the vendor's server certificate, and a client certificate and key for mTLS. */
  ca?: string;
  cert?: string;
  key?: string;
  /** Bytes per block asked for (block_size); clamped to the server's max_block_size once capabilities are read. */
  blockSize?: number;
  entropyType?: string;
  /** Per request (default 10 s). */
  timeoutMs?: number;
  /** Tries per read for retryable failures (default 3), with backoff doubling from backoffMs (200 ms) to maxBackoffMs (5 s). */
  attempts?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
}

export interface Capabilities {
  minBlockSize: number;
  maxBlockSize: number;
  minBlockCount: number;
  maxBlockCount: number;
  entropyTypes: string[];
}

interface HttpAnswer {
  status: number;
  body: string;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Throws naming the source and the field when an optional setting is given and is not a positive integer. */
function checkPositiveInteger(source: string, field: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isInteger(value) && value > 0)) throw new Error(`entropy source "${source}": ${field} must be a positive integer, not ${value}`);
}

/** Strict base64 (the API's `entropy` items): Buffer.from would silently skip bad characters and accept truncation. */
export function decodeBlock(text: unknown, expectedBytes: number, where: string): Buffer {
  if (typeof text !== 'string' || text.length % 4 !== 0 || !BASE64.test(text)) throw new Error(`${where} is not base64`);
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== expectedBytes) throw new Error(`${where} decodes to ${bytes.length} bytes, not the ${expectedBytes} asked for`);
  return bytes;
}

/** A client of the QRNG Open API (PaloAltoNetworks/QRNG-OPENAPI) or of Qrypt's entropy service. */
export class OpenApiSource implements EntropySource {
  readonly name: string;
  readonly quantum = true;
  readonly model: SampleModel;
  private readonly base: URL;
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly variant: OpenApiVariant;
  private blockSize: number;
  private maxBlockCount = 1;
  private capabilitiesRead = false;
  /** Bytes of the last answer beyond what its read asked for: the next read starts with them, so samples stay in order. */
  private leftover = Buffer.alloc(0);

  constructor(private readonly options: OpenApiSourceOptions) {
    this.name = options.name;
    this.model = options.model;
    this.variant = options.variant ?? 'qrng-open-api';
    for (const field of ['blockSize', 'timeoutMs', 'attempts', 'backoffMs', 'maxBackoffMs'] as const) checkPositiveInteger(options.name, field, options[field]);
    if (options.variant === 'qrypt' && options.blockSize !== undefined && options.blockSize !== 1024) throw new Error(`entropy source "${options.name}": Qrypt serves 1024-byte blocks; blockSize cannot be ${options.blockSize}`);
    if ((options.cert === undefined) !== (options.key === undefined)) throw new Error(`entropy source "${options.name}": mTLS needs both cert and key`);
    try {
      this.base = new URL(options.url.replace(/\/+$/, ''));
    } catch {
      throw new Error(`entropy source "${options.name}": url ${JSON.stringify(options.url)} is not a URL`);
    }
    if (this.base.protocol !== 'https:' && this.base.protocol !== 'http:') throw new Error(`entropy source "${options.name}": url must be http(s), not ${this.base.protocol}`);
    this.agent = this.base.protocol === 'https:' ? new HttpsAgent({ keepAlive: true, ca: options.ca, cert: options.cert, key: options.key }) : new HttpAgent({ keepAlive: true });
    // Qrypt serves whole KiB blocks.
    this.blockSize = this.variant === 'qrypt' ? 1024 : (options.blockSize ?? 1024);
  }

  /** GET /v1/capabilities. */
  async capabilities(): Promise<Capabilities> {
    const body = this.json(await this.call('GET', '/v1/capabilities'), 'capabilities') as { entropy?: Record<string, unknown> };
    const e = body.entropy ?? {};
    const int = (v: unknown, fallback: number) => (Number.isInteger(v) && (v as number) > 0 ? (v as number) : fallback);
    return {
      minBlockSize: int(e.min_block_size, 1),
      maxBlockSize: int(e.max_block_size, this.blockSize),
      minBlockCount: int(e.min_block_count, 1),
      maxBlockCount: int(e.max_block_count, 1),
      entropyTypes: Array.isArray(e.entropy_types) ? e.entropy_types.filter((t): t is string => typeof t === 'string') : [],
    };
  }

  /** GET /v1/healthtest: the vendor's own report (informational; QubeSec's health tests decide). */
  async healthtest(): Promise<unknown> {
    return this.json(await this.call('GET', '/v1/healthtest'), 'healthtest');
  }

  async read(bytes: number): Promise<Buffer> {
    if (this.variant === 'qrng-open-api' && !this.capabilitiesRead) {
      const caps = await this.capabilities();
      this.blockSize = Math.max(caps.minBlockSize, Math.min(this.blockSize, caps.maxBlockSize));
      this.maxBlockCount = caps.maxBlockCount;
      this.capabilitiesRead = true;
    }
    const chunks: Buffer[] = [this.leftover];
    let have = this.leftover.length;
    this.leftover = Buffer.alloc(0);
    while (have < bytes) {
      const blocks = Math.min(Math.ceil((bytes - have) / this.blockSize), this.variant === 'qrypt' ? 512 : this.maxBlockCount);
      const got = this.variant === 'qrypt' ? await this.quantumEntropy(blocks) : await this.entropy(blocks);
      chunks.push(got);
      have += got.length;
    }
    const all = Buffer.concat(chunks);
    this.leftover = all.subarray(bytes);
    return all.subarray(0, bytes);
  }

  discard(): void {
    this.leftover = Buffer.alloc(0);
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }

  /** POST /v1/entropy {block_size, block_count, entropy_type} -> {"entropy": [base64, ...]}. */
  private async entropy(blocks: number): Promise<Buffer> {
    const request = { block_size: this.blockSize, block_count: blocks, ...(this.options.entropyType ? { entropy_type: this.options.entropyType } : {}) };
    const body = this.json(await this.call('POST', '/v1/entropy', JSON.stringify(request)), 'entropy') as { entropy?: unknown };
    return this.blocks(body.entropy, blocks, 'entropy');
  }

  /** Qrypt: GET /api/v1/quantum-entropy?size=<KiB> -> {"random": [base64 of 1 KiB, ...], "size": n}. */
  private async quantumEntropy(kib: number): Promise<Buffer> {
    const body = this.json(await this.call('GET', `/api/v1/quantum-entropy?size=${kib}`), 'quantum-entropy') as { random?: unknown };
    return this.blocks(body.random, kib, 'random');
  }

  private blocks(items: unknown, count: number, field: string): Buffer {
    if (!Array.isArray(items) || items.length !== count) {
      throw new SourceError(this.name, 'bad-response', `the answer's "${field}" is not an array of ${count} blocks`);
    }
    try {
      return Buffer.concat(items.map((item, i) => decodeBlock(item, this.blockSize, `${field}[${i}]`)));
    } catch (err) {
      throw new SourceError(this.name, 'bad-response', (err as Error).message);
    }
  }

  private json(answer: HttpAnswer, what: string): unknown {
    try {
      return JSON.parse(answer.body);
    } catch {
      throw new SourceError(this.name, 'bad-response', `${what}: the answer is not JSON`);
    }
  }

  /** One API call with the timeout, retrying retryable failures with capped exponential backoff. */
  private async call(method: 'GET' | 'POST', path: string, body?: string): Promise<HttpAnswer> {
    const attempts = this.options.attempts ?? 3;
    let delay = this.options.backoffMs ?? 200;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(method, path, body);
      } catch (err) {
        if (!(err instanceof SourceError) || !err.retryable || attempt >= attempts) throw err;
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, this.options.maxBackoffMs ?? 5000);
      }
    }
  }

  private once(method: 'GET' | 'POST', path: string, body?: string): Promise<HttpAnswer> {
    const url = new URL(this.base.pathname.replace(/\/$/, '') + path, this.base);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (this.options.bearerToken) headers.Authorization = `Bearer ${this.options.bearerToken}`;
    if (this.options.apiKey) headers['X-API-KEY'] = this.options.apiKey;
    const timeoutMs = this.options.timeoutMs ?? 10_000;
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(url, { method, headers, agent: this.agent, signal: AbortSignal.timeout(timeoutMs) }, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(this.transportError(err, timeoutMs)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status === 200) return resolve({ status, body: text });
          const detail = `${method} ${url.pathname} answered ${status}${text ? `: ${text.slice(0, 200)}` : ''}`;
          if (status === 503 || status === 429 || status >= 500) reject(new SourceError(this.name, 'unavailable', detail));
          else if (status === 422 || status === 400) reject(new SourceError(this.name, 'rejected', detail));
          else if (status === 401 || status === 403) reject(new SourceError(this.name, 'unauthorized', detail));
          else reject(new SourceError(this.name, 'bad-response', detail));
        });
      });
      req.on('error', (err) => reject(this.transportError(err, timeoutMs)));
      req.end(body);
    });
  }

  private transportError(err: Error, timeoutMs: number): SourceError {
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return new SourceError(this.name, 'timeout', `no answer within ${timeoutMs} ms`);
    return new SourceError(this.name, 'unavailable', err.message);
  }
}

export interface DeviceSourceOptions {
  name: string;
  /** A character device (/dev/qrandom0) or a FIFO. */
  path: string;
  model: SampleModel;
  /** A device is quantum unless said otherwise (a FIFO fed from elsewhere may not be). */
  quantum?: boolean;
  /** How long a read may wait for bytes (default 5 s). */
  timeoutMs?: number;
}

const POLL_MS = 10;

/**
 * Reads a device or FIFO opened non-blocking, so an absent writer or a stalled device never holds one of libuv's few
 * threads: no bytes (EAGAIN, or end of file while a FIFO has no writer) means waiting and polling until the timeout.
 */
export class DeviceSource implements EntropySource {
  readonly name: string;
  readonly quantum: boolean;
  readonly model: SampleModel;
  private handle: FileHandle | undefined;

  constructor(private readonly options: DeviceSourceOptions) {
    if (!options.path) throw new Error(`entropy source "${options.name}": path is empty`);
    checkPositiveInteger(options.name, 'timeoutMs', options.timeoutMs);
    this.name = options.name;
    this.model = options.model;
    this.quantum = options.quantum ?? true;
  }

  async read(bytes: number): Promise<Buffer> {
    const out = Buffer.alloc(bytes);
    const timeoutMs = this.options.timeoutMs ?? 5000;
    const deadline = Date.now() + timeoutMs;
    let have = 0;
    while (have < bytes) {
      let got = 0;
      try {
        this.handle ??= await open(this.options.path, constants.O_RDONLY | constants.O_NONBLOCK);
        ({ bytesRead: got } = await this.handle.read(out, have, bytes - have, null));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EAGAIN') {
          await this.close();
          throw new SourceError(this.name, 'unavailable', `${this.options.path}: ${(err as Error).message}`);
        }
      }
      have += got;
      if (got > 0) continue;
      if (Date.now() >= deadline) throw new SourceError(this.name, 'timeout', `${this.options.path} gave ${have} of ${bytes} bytes in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    return out;
  }

  /** Nothing is read ahead: a device's or FIFO's bytes stay in the kernel until read. */
  discard(): void {}

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close().catch(() => undefined);
  }
}

/** The OS generator (getrandom via OpenSSL): only when configured, and never quantum. */
export class OsSource implements EntropySource {
  readonly quantum = false;
  constructor(
    readonly name: string,
    readonly model: SampleModel,
  ) {}

  async read(bytes: number): Promise<Buffer> {
    return randomBytes(bytes);
  }

  discard(): void {}

  async close(): Promise<void> {}
}
