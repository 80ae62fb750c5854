// The entropy pool: every configured source behind its own SP 800-90B health tests, mixed through the conditioner
// into full-entropy blocks, with the entropy of each block accounted from the health-tested input that made it.
// Fail closed: a source that fails a test or a read is out (and the pool's ready blocks are dropped); when no healthy
// quantum source is left the pool throws EntropyUnavailable, and a failed source is tried again, start-up tests
// first, after a backoff. The OS generator counts only when allowNonQuantum says so, and its blocks say quantum: false.
import { CONDITIONED_BITS, FULL_ENTROPY_MARGIN, condition } from './conditioning.js';
import type { EntropyInputSource } from './drbg.js';
import { EntropyUnavailable } from './errors.js';
import { DEFAULT_ALPHA, HealthTests, STARTUP_SAMPLES, validateSampleModel, type Cutoffs } from './health.js';
import type { QrngMetrics } from './metrics.js';
import { SourceError, type EntropySource } from './sources.js';
import type { Logger } from '../observability/log.js';

export type SourceState = 'starting' | 'healthy' | 'failed';

export interface SourceStatus {
  name: string;
  quantum: boolean;
  state: SourceState;
  /** Why it is out: the health test that failed, or the read error's kind. */
  cause?: string;
  message?: string;
  /** When a failed source is tried again (ms since the epoch). */
  retryAt?: number;
  cutoffs: Cutoffs;
}

export interface RetryPolicy {
  /** First wait after a failure (default 1 s), doubling per consecutive failure up to maxMs (default 60 s). */
  initialMs: number;
  maxMs: number;
}

/** A source with its health tests and state; reads run one at a time, so the tests see samples in order. */
class MonitoredSource {
  state: SourceState = 'starting';
  cause: string | undefined;
  message: string | undefined;
  retryAt = 0;
  private consecutiveFailures = 0;
  /** Taken out and not healthy since. */
  private wasOut = false;
  private readonly tests: HealthTests;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly source: EntropySource,
    private readonly retry: RetryPolicy,
    private readonly onFailure: (source: MonitoredSource) => void,
    private readonly metrics: QrngMetrics | undefined,
    private readonly log: Logger | undefined,
    private readonly onHealthChange: ((change: SourceHealthChange) => void) | undefined,
  ) {
    validateSampleModel(source.model, `entropy source "${source.name}"`);
    this.tests = new HealthTests(source.model);
    this.setHealthy(false);
  }

  /** Claimed min-entropy per raw byte. */
  get bitsPerByte(): number {
    return this.source.model.minEntropy * (8 / this.source.model.sampleBits);
  }

  get cutoffs(): Cutoffs {
    return this.tests.cutoffs;
  }

  /** Usable now, or after start-up tests it may run now (never used, or failed and its retry is due). */
  available(now: number): boolean {
    return this.state !== 'failed' || now >= this.retryAt;
  }

  /** Health-tested raw bytes; runs the start-up tests first when the source is not healthy. Throws when it fails. */
  read(bytes: number): Promise<Buffer> {
    const run = this.queue.then(async () => {
      if (this.state !== 'healthy') await this.startUp();
      return this.tested(bytes);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async startUp(): Promise<void> {
    this.tests.reset();
    this.state = 'starting';
    // SP 800-90B 4.3: at least 1024 samples through both tests; they are discarded, not used.
    await this.tested(Math.ceil((STARTUP_SAMPLES * this.source.model.sampleBits) / 8));
    this.state = 'healthy';
    this.consecutiveFailures = 0;
    this.cause = this.message = undefined;
    this.setHealthy(true);
    this.log?.info('entropy source healthy', { source: this.source.name, quantum: this.source.quantum });
    if (this.wasOut) this.onHealthChange?.({ source: this.source.name, quantum: this.source.quantum, healthy: true });
    this.wasOut = false;
  }

  private async tested(bytes: number): Promise<Buffer> {
    let raw: Buffer;
    try {
      raw = await this.source.read(bytes);
    } catch (err) {
      const kind = err instanceof SourceError ? err.kind : 'unavailable';
      throw this.fail(kind, (err as Error).message);
    }
    this.metrics?.sourceBytes.inc({ source: this.source.name, quantum: String(this.source.quantum) }, raw.length);
    const failed = this.tests.test(raw);
    if (failed) {
      const c = failed === 'repetition-count' ? this.tests.cutoffs.repetitionCount : this.tests.cutoffs.adaptiveProportion;
      throw this.fail(failed, `entropy source "${this.source.name}" failed the ${failed} test (cutoff ${c}, H = ${this.source.model.minEntropy}, alpha = 2^${Math.log2(this.source.model.alpha ?? DEFAULT_ALPHA)})`);
    }
    return raw;
  }

  private fail(cause: string, message: string): Error {
    this.state = 'failed';
    this.cause = cause;
    this.message = message;
    const wait = Math.min(this.retry.initialMs * 2 ** this.consecutiveFailures, this.retry.maxMs);
    this.consecutiveFailures++;
    this.retryAt = Date.now() + wait;
    this.setHealthy(false);
    this.source.discard();
    this.metrics?.sourceFailures.inc({ source: this.source.name, cause });
    this.log?.warn('entropy source out', { source: this.source.name, quantum: this.source.quantum, cause, error: message, retryInMs: wait });
    // Once per outage, not at every failed retry.
    if (!this.wasOut) this.onHealthChange?.({ source: this.source.name, quantum: this.source.quantum, healthy: false, cause, message });
    this.wasOut = true;
    this.onFailure(this);
    return new SourceError(this.source.name, 'unavailable', message);
  }

  private setHealthy(healthy: boolean): void {
    this.metrics?.sourceHealthy.set({ source: this.source.name, quantum: String(this.source.quantum) }, healthy ? 1 : 0);
  }

  status(): SourceStatus {
    return {
      name: this.source.name,
      quantum: this.source.quantum,
      state: this.state,
      cutoffs: this.tests.cutoffs,
      ...(this.cause ? { cause: this.cause, message: this.message } : {}),
      ...(this.state === 'failed' ? { retryAt: this.retryAt } : {}),
    };
  }
}

/** One conditioned block: 64 bytes of full entropy and where it came from. */
export interface PoolBlock {
  bytes: Buffer;
  entropyBits: number;
  /** True when only quantum sources were credited for it. */
  quantum: boolean;
  /** The sources whose samples went in (credited or mixed in without credit). */
  sources: string[];
}

export interface EntropyPoolOptions {
  sources: EntropySource[];
  /**
   * Credit non-quantum sources (the OS generator) too. Off by default: then they are mixed in without credit and a
   * pool with no healthy quantum source refuses. On, blocks are labelled quantum: false whenever one was credited.
   */
  allowNonQuantum?: boolean;
  /** Conditioned blocks kept ready (default 4), refilled in the background after each use. */
  reserveBlocks?: number;
  retry?: Partial<RetryPolicy>;
  metrics?: QrngMetrics;
  log?: Logger;
  /** Called when a source is taken out, and when it is healthy again after that (not at every failed retry). */
  onHealthChange?: (change: SourceHealthChange) => void;
}

export interface SourceHealthChange {
  source: string;
  quantum: boolean;
  healthy: boolean;
  /** Why it was taken out: the health test that failed, or the source's error kind. */
  cause?: string;
  message?: string;
}

/** Input entropy gathered per block: its 512 output bits plus SP 800-90C's 64-bit margin, so each block is full entropy. */
const BLOCK_INPUT_ENTROPY = CONDITIONED_BITS + FULL_ENTROPY_MARGIN;
/** Raw bytes an uncredited source adds to each block. */
const UNCREDITED_BYTES = 64;

export class EntropyPool implements EntropyInputSource {
  private readonly sources: MonitoredSource[];
  private readonly allowNonQuantum: boolean;
  private readonly reserveBlocks: number;
  private reserve: PoolBlock[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private refilling = false;
  private closed = false;

  constructor(private readonly options: EntropyPoolOptions) {
    if (options.sources.length === 0) throw new Error('the entropy pool needs at least one source');
    const names = options.sources.map((s) => s.name);
    const duplicate = names.find((n, i) => names.indexOf(n) !== i);
    if (duplicate) throw new Error(`two entropy sources are named "${duplicate}"`);
    const retry = { initialMs: options.retry?.initialMs ?? 1000, maxMs: options.retry?.maxMs ?? 60_000 };
    this.sources = options.sources.map((s) => new MonitoredSource(s, retry, () => this.dropReserve(), options.metrics, options.log, options.onHealthChange));
    this.allowNonQuantum = options.allowNonQuantum ?? false;
    this.reserveBlocks = options.reserveBlocks ?? 4;
    options.metrics?.poolEntropy.set(0);
  }

  status(): SourceStatus[] {
    return this.sources.map((s) => s.status());
  }

  /** True when some quantum source is healthy or may be tried now; false means requests will be refused. */
  get serving(): boolean {
    const now = Date.now();
    return this.sources.some((s) => this.credited(s) && s.available(now));
  }

  /** `bytes` bytes of full entropy (at least `entropyBits`, which may not exceed 8 bits per byte). For the DRBGs. */
  async entropyInput(entropyBits: number, bytes: number): Promise<Buffer> {
    if (entropyBits > bytes * 8) throw new RangeError(`${bytes} bytes cannot carry ${entropyBits} bits of entropy`);
    const blocks: Buffer[] = [];
    for (let have = 0; have < bytes; have += CONDITIONED_BITS / 8) blocks.push((await this.block()).bytes);
    return Buffer.concat(blocks).subarray(0, bytes);
  }

  /** One conditioned full-entropy block, from the reserve when one is ready. */
  async block(): Promise<PoolBlock> {
    const ready = this.reserve.shift();
    if (ready) {
      this.levelChanged();
      this.refill();
      return ready;
    }
    const block = await this.serially(() => this.gather());
    this.refill();
    return block;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue.catch(() => undefined);
    await Promise.all(this.sources.map((s) => s.source.close()));
  }

  private credited(s: MonitoredSource): boolean {
    return s.source.quantum || this.allowNonQuantum;
  }

  private async gather(): Promise<PoolBlock> {
    const parts: Buffer[] = [];
    const used = new Set<string>();
    const failed = new Set<MonitoredSource>(); // out for the rest of this block, whatever its retry time
    let inputEntropy = 0;
    while (inputEntropy < BLOCK_INPUT_ENTROPY) {
      const now = Date.now();
      const credited = this.sources.filter((s) => this.credited(s) && s.available(now) && !failed.has(s));
      if (credited.length === 0) throw this.refuse();
      const share = (BLOCK_INPUT_ENTROPY - inputEntropy) / credited.length;
      await Promise.all(
        credited.map(async (s) => {
          try {
            const raw = await s.read(Math.ceil(share / s.bitsPerByte));
            parts.push(raw);
            used.add(s.source.name);
            inputEntropy += raw.length * s.bitsPerByte;
          } catch {
            failed.add(s); // it is out and said so; the loop asks the others for the rest
          }
        }),
      );
    }
    const now = Date.now();
    for (const s of this.sources.filter((x) => !this.credited(x) && x.available(now))) {
      try {
        parts.push(await s.read(UNCREDITED_BYTES));
        used.add(s.source.name);
      } catch {
        // Uncredited: the block does not depend on it.
      }
    }
    const block = condition(Buffer.concat(parts), inputEntropy);
    const quantum = this.sources.every((s) => !used.has(s.source.name) || !this.credited(s) || s.source.quantum);
    return { bytes: block.bytes, entropyBits: block.entropyBits, quantum, sources: [...used].sort() };
  }

  private refuse(): EntropyUnavailable {
    this.options.metrics?.refusals.inc();
    const sources = this.sources.map((s) => ({ name: s.source.name, state: s.state, ...(s.message ? { reason: s.message } : {}) }));
    const what = this.allowNonQuantum ? 'no healthy entropy source' : 'no healthy quantum entropy source';
    return new EntropyUnavailable(`${what}: ${sources.map((s) => `${s.name} ${s.state}${s.reason ? ` (${s.reason})` : ''}`).join('; ')}`, sources);
  }

  /** Background refill of the reserve, one block at a time, stopping at the first refusal. */
  private refill(): void {
    if (this.refilling || this.closed || this.reserve.length >= this.reserveBlocks) return;
    this.refilling = true;
    void (async () => {
      try {
        while (!this.closed && this.reserve.length < this.reserveBlocks) {
          const block = await this.serially(() => this.gather());
          this.reserve.push(block);
          this.levelChanged();
        }
      } catch (err) {
        this.options.log?.debug('entropy reserve not refilled', { error: err as Error });
      } finally {
        this.refilling = false;
      }
    })();
  }

  private dropReserve(): void {
    this.reserve = [];
    this.levelChanged();
  }

  private levelChanged(): void {
    this.options.metrics?.poolEntropy.set(this.reserve.reduce((n, b) => n + b.entropyBits, 0));
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
