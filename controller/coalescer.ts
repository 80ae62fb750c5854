// Runs a sync after a burst of changes has gone quiet, never two at once, and once more if changes came during one.
export class Coalescer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private pending = false;
  private stopped = false;

  constructor(private readonly run: () => Promise<void>, private readonly debounceMs: number, private readonly onError: (err: Error) => void) {}

  schedule(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.runNow(), this.debounceMs);
  }

  async runNow(): Promise<void> {
    this.timer = undefined;
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
