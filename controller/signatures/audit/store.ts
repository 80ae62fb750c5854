// The log's single writer: appends batches of events to the current segment, durably (write, then fdatasync, before
// the batch is acknowledged), adds a signed checkpoint every --checkpoint-events records or --checkpoint-interval,
// seals a segment with a checkpoint and starts the next past --segment-size, and refuses a batch rather than lose it
// when the store is full (--max-size or ENOSPC). Writes run one at a time, in arrival order.
import { mkdir, open, truncate, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../observability/log.js';
import type { AuditMetrics } from '../../observability/metrics.js';
import type { SigningKey } from '../keys.js';
import { signCheckpoint } from './checkpoint.js';
import { leafHash, type MerkleTree } from './merkle.js';
import { encodeCheckpoint, encodeRecord, segmentName } from './record.js';
import { describeProblem, scanLog } from './scan.js';

export interface StoreOptions {
  dir: string;
  signer: SigningKey;
  /** The checkpoints' origin line and key name. */
  origin: string;
  /** A segment that would grow past this many bytes is sealed and the next one started (a batch never spans two). */
  segmentBytes: number;
  /** Batches that would take the log past this many bytes are refused; undefined: only the disk's size limits it. */
  maxBytes: number | undefined;
  checkpointEvents: number;
  checkpointIntervalMs: number;
  log: Logger;
  metrics: AuditMetrics;
}

/** The store cannot take the batch now (full); the API server retries it. */
export class StoreFullError extends Error {}


export async function openStore(options: StoreOptions): Promise<AuditStore> {
  const { dir, log } = options;
  await mkdir(dir, { recursive: true });
  // Sizes, roots and leaves are checked; signatures are verify's (the log may hold checkpoints of a key since replaced).
  const scan = await scanLog(dir);
  if (scan.problem) throw new Error(`${dir}: ${describeProblem(scan.problem)}; the receiver appends only to a log that verifies (qubesec audit verify)`);
  if (scan.lastCheckpoint && scan.lastCheckpoint.origin !== options.origin) {
    throw new Error(`${dir}: its checkpoints have origin ${scan.lastCheckpoint.origin}, not --origin ${options.origin}`);
  }
  if (scan.tornTail) {
    // Written but never synced and acknowledged: the API server sent that batch again.
    await truncate(join(dir, scan.tornTail.segment), scan.tornTail.bytes);
    log.warn('removed a last line cut short by a crash (never acknowledged)', { segment: scan.tornTail.segment, keptBytes: scan.tornTail.bytes });
    scan.segments.at(-1)!.bytes = scan.tornTail.bytes;
  }
  // Room kept under --max-size for the checkpoint that seals the log: as long as one of this key (3,309 bytes of
  // ML-DSA-65 signature, 49,856 of SLH-DSA-SHA2-256f), measured by signing one.
  const checkpointBytes = encodeCheckpoint(await signCheckpoint({ origin: options.origin, size: Number.MAX_SAFE_INTEGER, root: scan.tree.root() }, options.signer)).length;
  const last = scan.segments.length;
  const segment = last === 0 ? await createSegment(dir, 1) : { number: last, handle: await open(join(dir, segmentName(last)), 'a') };
  const store = new AuditStore(options, scan.tree, segment, scan.segments.at(-1)?.bytes ?? 0, scan.segments.reduce((sum, s) => sum + s.bytes, 0), scan.lastCheckpoint?.size ?? 0, checkpointBytes);
  log.info('audit log opened', { dir, segments: Math.max(last, 1), records: scan.tree.size, lastCheckpoint: scan.lastCheckpoint?.size ?? null });
  return store;
}

async function createSegment(dir: string, number: number): Promise<{ number: number; handle: FileHandle }> {
  const handle = await open(join(dir, segmentName(number)), 'ax');
  // The new file's name is durable only once the folder is synced.
  const folder = await open(dir, 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
  return { number, handle };
}

export class AuditStore {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  /** Set when a failed write could not be undone: the segment's end is unknown, so nothing more is written. */
  private broken: Error | undefined;

  constructor(
    private readonly options: StoreOptions,
    private readonly tree: MerkleTree,
    private segment: { number: number; handle: FileHandle },
    private segmentSize: number,
    private totalBytes: number,
    private checkpointedSize: number,
    private readonly checkpointBytes: number,
  ) {
    this.timer = setInterval(() => void this.checkpoint().catch((err: Error) => options.log.error('checkpoint failed', { error: err.message })), options.checkpointIntervalMs);
    this.timer.unref();
    options.metrics.storeBytes.set(totalBytes);
    options.metrics.treeSize.set(tree.size);
  }

  /** Records in the log. */
  get size(): number {
    return this.tree.size;
  }

  /** Appends the events (each an audit Event serialised as JSON) in order; resolves once they are on disk. */
  append(eventTexts: string[]): Promise<void> {
    return this.enqueue(() => this.write(eventTexts));
  }

  /** Signs a checkpoint of the records so far (after the queued batches), if any came since the last one. */
  checkpoint(): Promise<void> {
    return this.enqueue(() => this.writeCheckpoint());
  }

  private async writeCheckpoint(): Promise<void> {
    const size = this.tree.size;
    if (size === this.checkpointedSize) return;
    const note = await signCheckpoint({ origin: this.options.origin, size, root: this.tree.root() }, this.options.signer);
    await this.writeDurably(Buffer.from(encodeCheckpoint(note)));
    this.checkpointedSize = size;
    this.options.metrics.checkpoints.inc();
  }

  /** Waits for queued batches, writes a last checkpoint and closes the segment. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.checkpoint().catch((err: Error) => this.options.log.error('last checkpoint failed', { error: err.message }));
    await this.segment.handle.close();
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async write(eventTexts: string[]): Promise<void> {
    // An empty EventList changes nothing (and must not start a segment).
    if (eventTexts.length === 0) return;
    const { options } = this;
    const started = process.hrtime.bigint();
    const first = this.tree.size;
    const leaves = eventTexts.map((text) => leafHash(Buffer.from(text, 'utf8')));
    const data = Buffer.from(eventTexts.map((text, i) => encodeRecord(first + i, text, leaves[i])).join(''));
    if (options.maxBytes !== undefined && this.totalBytes + data.length + this.checkpointBytes > options.maxBytes) {
      throw new StoreFullError(`the log holds ${this.totalBytes} bytes; ${eventTexts.length} more events (${data.length} bytes) would take it past --max-size ${options.maxBytes}`);
    }
    if (this.segmentSize > 0 && this.segmentSize + data.length > options.segmentBytes) await this.rotate();
    await this.writeDurably(data);
    for (const leaf of leaves) this.tree.append(leaf);
    options.metrics.eventsAppended.inc(eventTexts.length);
    options.metrics.treeSize.set(this.tree.size);
    options.metrics.appendDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    if (this.tree.size - this.checkpointedSize >= options.checkpointEvents) {
      // The batch is on disk and is acknowledged either way; a failed checkpoint is tried again at the next one.
      await this.writeCheckpoint().catch((err: Error) => options.log.error('checkpoint failed', { error: err.message }));
    }
  }

  private async rotate(): Promise<void> {
    await this.writeCheckpoint();
    await this.segment.handle.close();
    this.segment = await createSegment(this.options.dir, this.segment.number + 1);
    this.segmentSize = 0;
    this.options.log.info('audit segment started', { segment: segmentName(this.segment.number), firstRecord: this.tree.size });
  }

  /** Appends and syncs `data`, or leaves the segment as it was: a failed write is cut off again. */
  private async writeDurably(data: Buffer): Promise<void> {
    if (this.broken) throw new Error(`a failed write could not be undone (${this.broken.message}): restart the receiver, which removes a cut-short line`);
    try {
      await this.segment.handle.appendFile(data);
      await this.segment.handle.datasync();
    } catch (err) {
      await this.segment.handle.truncate(this.segmentSize).catch((undo: Error) => { this.broken = undo; });
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') throw new StoreFullError(`the disk is full (${code}) at ${this.totalBytes} bytes of log`);
      throw err;
    }
    this.segmentSize += data.length;
    this.totalBytes += data.length;
    this.options.metrics.storeBytes.set(this.totalBytes);
  }
}
