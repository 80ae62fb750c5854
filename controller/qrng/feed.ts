// `qubesec qrng feed`: a node's kernel entropy pool fed from the QRNG service. Two modes:
//  - rngd: random bytes go into a named pipe that rngd (rng-tools) reads; rngd runs its FIPS 140-2 tests on them and
//    credits the kernel pool with RNDADDENTROPY, which needs CAP_SYS_ADMIN. The feed runs rngd and supervises it by
//    its output as well as its exit: rngd exits 0 when its tests disable the source ("too many FIPS failures").
//  - safe: the bytes are written to /dev/random, which mixes them into the pool without crediting entropy and needs
//    no capability.
// Fail closed: when the service answers 503 (no healthy quantum source) nothing is written; the pipe runs dry and rngd
// waits.
import { spawn, type ChildProcess } from 'node:child_process';
import { constants, openSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Server } from 'node:http';
import { Socket } from 'node:net';
import { execa } from 'execa';
import { Registry } from 'prom-client';
import { flagFile, type FlagValues } from '../config.js';
import { createLogger, type Logger } from '../observability/log.js';
import { serveObservability } from '../observability/server.js';
import type { QRNG_FEED_FLAGS } from './flags.js';
import { createQrngMetrics, type QrngMetrics } from './metrics.js';
import { OpenApiSource } from './sources.js';

export type QrngFeedFlags = FlagValues<typeof QRNG_FEED_FLAGS>;

export type RngdExitReason = 'fips-disabled' | 'no-permission' | 'exited';

/** Why rngd stopped, from what it printed: its exit code is 0 for a source its tests disabled, too. */
export function rngdExitReason(output: string): RngdExitReason {
  if (/too many FIPS failures|disabling entropy source|No entropy sources working/i.test(output)) return 'fips-disabled';
  if (/RNDADDENTROPY failed: Operation not permitted/i.test(output)) return 'no-permission';
  return 'exited';
}

const RNGD_HINT: Record<RngdExitReason, string> = {
  'fips-disabled': 'rngd\'s FIPS 140-2 tests failed on the bytes it read and it disabled the source',
  'no-permission': 'rngd may not credit the kernel pool: RNDADDENTROPY needs CAP_SYS_ADMIN (or run the feed in safe mode, --write-device /dev/random)',
  exited: 'rngd exited',
};

const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 60_000;

/** Runs rngd, restarts it with capped backoff when it stops, and says why it stopped. */
class RngdSupervisor {
  private child: ChildProcess | undefined;
  private stopped = false;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly command: string[],
    private readonly metrics: QrngMetrics,
    private readonly log: Logger,
  ) {}

  get running(): boolean {
    return this.child !== undefined;
  }

  start(): void {
    const [binary = '', ...args] = this.command;
    const started = Date.now();
    let output = '';
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-4096);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.on('error', (err) => collect(Buffer.from(`\n${err.message}`)));
    child.on('close', (code, signal) => {
      this.child = undefined;
      if (this.stopped) return;
      const reason = rngdExitReason(output);
      this.metrics.feedRngdExits.inc({ reason });
      // A run that lasted a while resets the backoff: only repeated quick failures wait long.
      this.failures = Date.now() - started > MAX_BACKOFF_MS ? 0 : this.failures + 1;
      const waitMs = Math.min(MIN_BACKOFF_MS * 2 ** Math.max(0, this.failures - 1), MAX_BACKOFF_MS);
      this.log.error('rngd stopped', { reason, hint: RNGD_HINT[reason], code, signal, output: output.trim().split('\n').slice(-5), restartInMs: waitMs });
      this.timer = setTimeout(() => this.start(), waitMs);
    });
    this.log.info('rngd started', { command: this.command.join(' '), pid: child.pid });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const child = this.child;
    if (!child) return;
    const closed = new Promise((resolve) => child.once('close', resolve));
    child.kill('SIGTERM');
    await closed;
  }
}

/** The named pipe at `path`, made when absent; another kind of file there is refused. */
async function namedPipe(path: string): Promise<void> {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (stat && !stat.isFIFO()) throw new Error(`flag --fifo: ${path} exists and is not a named pipe`);
  if (!stat) await execa('mkfifo', ['-m', '600', path]);
}

export interface RunningQrngFeed {
  metricsPort: number;
  stop(): Promise<void>;
}

export async function startQrngFeed(flags: QrngFeedFlags): Promise<RunningQrngFeed> {
  const log = createLogger(flags['log-level'], { component: 'qrng-feed' });
  if (!flags.url) throw new Error('flag --url is required');
  if ((flags.fifo === undefined) === (flags['write-device'] === undefined)) throw new Error('give exactly one of flag --fifo (rngd mode) and flag --write-device (safe mode)');
  if (flags['rngd-command'] && !flags.fifo) throw new Error('flag --rngd-command needs --fifo: rngd reads the named pipe');
  const ca = flags.ca ? await flagFile('ca', flags.ca) : undefined;
  const token = flags['token-file'] ? (await flagFile('token-file', flags['token-file'])).trim() : undefined;
  const registry = new Registry();
  const metrics = createQrngMetrics(registry);
  // The service's output is DRBG output, already health-tested and conditioned upstream: the client only fetches.
  const service = new OpenApiSource({ name: 'qrng-service', url: flags.url, model: { sampleBits: 8, minEntropy: 8 }, blockSize: flags['chunk-bytes'], attempts: 1, ...(ca ? { ca } : {}), ...(token ? { bearerToken: token } : {}) });

  let writeChunk: (bytes: Buffer) => Promise<void>;
  let closeOutput: () => Promise<void>;
  let supervisor: RngdSupervisor | undefined;
  if (flags.fifo) {
    await namedPipe(flags.fifo);
    // Opened read-write and non-blocking: the open never waits for rngd, and a write to a full pipe waits in the event
    // loop (the socket's backpressure), not in one of libuv's threads.
    const pipe = new Socket({ fd: openSync(flags.fifo, constants.O_RDWR | constants.O_NONBLOCK), readable: false, writable: true });
    pipe.on('error', (err) => log.error('FIFO write failed', { fifo: flags.fifo, error: err.message }));
    writeChunk = (bytes) => new Promise((resolve) => (pipe.write(bytes) ? resolve() : pipe.once('drain', resolve)));
    closeOutput = async () => void pipe.destroy();
    if (flags['rngd-command']) {
      supervisor = new RngdSupervisor(flags['rngd-command'].split(/\s+/).filter(Boolean), metrics, log);
      supervisor.start();
    }
  } else {
    const device: FileHandle = await open(flags['write-device']!, 'w').catch((err: Error) => {
      throw new Error(`flag --write-device: ${flags['write-device']}: ${err.message}`, { cause: err });
    });
    writeChunk = async (bytes) => void (await device.write(bytes));
    closeOutput = () => device.close();
  }

  let stopped = false;
  let serviceOk = false;
  let wake: (() => void) | undefined;
  const sleep = (ms: number) => new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    wake = () => {
      clearTimeout(timer);
      resolve();
    };
  });
  const loop = (async () => {
    let backoffMs = MIN_BACKOFF_MS;
    while (!stopped) {
      let chunk: Buffer;
      try {
        chunk = await service.read(flags['chunk-bytes']);
      } catch (err) {
        if (serviceOk || backoffMs === MIN_BACKOFF_MS) log.warn('no entropy from the QRNG service: writing nothing', { error: (err as Error).message, retryInMs: backoffMs });
        serviceOk = false;
        service.discard();
        await sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS / 2);
        continue;
      }
      if (!serviceOk) log.info('drawing entropy from the QRNG service', { url: flags.url, mode: flags.fifo ? 'rngd' : 'safe' });
      serviceOk = true;
      backoffMs = MIN_BACKOFF_MS;
      if (stopped) break;
      await writeChunk(chunk);
      metrics.feedBytes.inc(chunk.length);
      if (!flags.fifo) await sleep(flags['write-interval']);
    }
  })();

  const observability: Server = await serveObservability({ registry }, flags['metrics-address'], flags['metrics-port'], () => serviceOk && (supervisor?.running ?? true));
  return {
    metricsPort: (observability.address() as { port: number }).port,
    stop: async () => {
      stopped = true;
      wake?.();
      await supervisor?.stop();
      // A write waiting for rngd to drain the pipe never ends once rngd is gone: the loop is not awaited past closing.
      await closeOutput();
      await Promise.race([loop, new Promise((r) => setTimeout(r, 100))]);
      await service.close();
      await new Promise((resolve) => observability.close(resolve));
      observability.closeAllConnections();
    },
  };
}
