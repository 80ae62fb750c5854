// Runs a sync after a burst of changes has gone quiet, never two at once, and once more if changes came during one.
// The first change after a quiet time syncs at once: a lone change (an Ingress created) waits for nothing, and what
// follows it within the quiet time is gathered into the next sync. A burst that never goes quiet (Pods churning all
// day) still syncs every MAX_WAIT_DEBOUNCES quiet times.
export const MAX_WAIT_DEBOUNCES = 10;

export class Coalescer {
  private timer: NodeJS.Timeout | undefined;
  /** Whether the timer is the one that syncs a change after a quiet time at once: later changes leave it be. */
  private leading = false;
  /** When the first change of the burst waiting for a sync came. */
  private burstStartedAt: number | undefined;
  /** When the last change came: one debounceMs after it, with no sync running or waiting, comes after a quiet time. */
  private lastChangeAt = -Infinity;
  private running: Promise<void> | undefined;
  private pending = false;
  private stopped = false;

  constructor(private readonly run: () => Promise<void>, private readonly debounceMs: number, private readonly onError: (err: Error) => void) {}

  schedule(): void {
    if (this.stopped || this.leading) return;
    const now = Date.now();
    const quiet = now - this.lastChangeAt >= this.debounceMs;
    this.lastChangeAt = now;
    if (quiet && this.timer === undefined && this.running === undefined) {
      // A zero timer, not a sync in this call: changes told in the same turn (an Ingress and its Secret) go together.
      this.leading = true;
      this.timer = setTimeout(() => void this.runNow(), 0);
      return;
    }
    this.burstStartedAt ??= now;
    const untilMaxWait = this.burstStartedAt + this.debounceMs * MAX_WAIT_DEBOUNCES - now;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.runNow(), Math.max(0, Math.min(this.debounceMs, untilMaxWait)));
  }

  async runNow(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.leading = false;
    this.burstStartedAt = undefined;
    if (this.stopped) return;
    if (this.running) {
      this.pending = true;
      return this.running;
    }
    this.running = this.run().catch(this.onError);
    await this.running;
    this.running = undefined;
    if (this.pending) {
      this.pending = false;
      return this.runNow();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}

/**
 * Work that syncs after a burst of changes and again when it says (a retry, a due date), as the leader-only writers
 * do. stop() lets the sync in hand finish and starts none after it; a sync checks `stopped` before each write.
 */
export abstract class CoalescedWork {
  protected stopped = false;
  private readonly coalescer: Coalescer;
  private timer: NodeJS.Timeout | undefined;

  constructor(debounceMs: number, onError: (err: Error) => void) {
    this.coalescer = new Coalescer(() => this.sync(), debounceMs, onError);
  }

  async start(): Promise<void> {
    await this.coalescer.runNow();
  }

  schedule(): void {
    this.coalescer.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.coalescer.stop();
  }

  /** Syncs again in `ms`, in place of any time set before; undefined: only after changes. */
  protected syncAgainIn(ms: number | undefined): void {
    clearTimeout(this.timer);
    if (ms !== undefined && !this.stopped) this.timer = setTimeout(() => this.schedule(), ms);
  }

  protected abstract sync(): Promise<void>;
}
