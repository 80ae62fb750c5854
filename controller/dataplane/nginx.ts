// The NGINX master process: started, supervised (restarted when it dies), tested, reloaded and stopped.
import { spawn } from 'node:child_process';
import { open, unlink } from 'node:fs/promises';
import { getSystemErrorMessage } from 'node:util';
import { execa, type ResultPromise } from 'execa';
import type { Logger } from '../observability/log.js';
import { command, hostPath, type DataPlaneRuntime } from './runtime.js';

/** Whether NGINX took the configuration; if not, why, in NGINX's words or the kernel's. */
export type NginxTestResult = { ok: true } | { ok: false; error: string };

/** How a run of a program ended: its exit code or signal, or the error that kept it from running. */
interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: NodeJS.ErrnoException;
}

const MAX_RESTART_DELAY_MS = 30_000;

export class NginxProcess {
  private child: ResultPromise | undefined;
  private stopping = false;
  private restartDelayMs = 500;
  private restartTimer: NodeJS.Timeout | undefined;
  private exitReason = 'has not started';

  constructor(
    private readonly runtime: DataPlaneRuntime,
    /** nginx.conf as NGINX sees it. */
    private readonly configPath: string,
    private readonly log: Logger,
    private readonly onUnexpectedExit: (code: number | undefined) => void,
    /** Runs before each start, e.g. to clear unix sockets a killed master left behind. */
    private readonly prepare: () => void = () => {},
  ) {}

  get running(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** How the master ended last, completing "the NGINX master ...". */
  get lastExit(): string {
    return this.exitReason;
  }

  /**
   * `nginx -t` on a configuration file (NGINX's path). Runs no configuration, binds no port. NGINX opens the logs it
   * names by path, and open() refuses a Unix socket, which is what Node's stdio pipes are: so its stdin and stdout are
   * /dev/null and its stderr a file (beside the configuration, in a folder the controller writes), never pipes, and an
   * access or error log of /dev/stdout or /dev/stderr opens as it will for the master.
   */
  async test(configPath: string): Promise<NginxTestResult> {
    const [file, args] = command(this.runtime, this.runtime.nginxBinary, ['-t', '-q', '-c', configPath]);
    const stderrFile = `${hostPath(this.runtime, configPath)}.stderr`;
    const stderr = await open(stderrFile, 'w+');
    try {
      await unlink(stderrFile); // NGINX writes to the open file; nothing is left behind
      const ended = await run(file, args, stderr.fd);
      if (ended.code === 0) return { ok: true };
      const { size } = await stderr.stat();
      const { buffer } = await stderr.read(Buffer.alloc(size), 0, size, 0);
      const output = buffer.toString('utf8').trim();
      return { ok: false, error: output ? `nginx -t refused the configuration: ${output}` : `nginx -t ${howItEnded(file, ended)}` };
    } finally {
      await stderr.close();
    }
  }

  start(): void {
    if (this.child) return;
    this.stopping = false;
    this.prepare();
    const [file, args] = command(this.runtime, this.runtime.nginxBinary, ['-c', this.configPath, '-g', 'daemon off;']);
    // Its own process group: if the master dies, its orphaned workers (still holding the ports) go with it.
    const child = execa(file, args, { reject: false, stdin: 'ignore', stdout: 'inherit', stderr: 'inherit', detached: true });
    this.child = child;
    this.log.info('nginx started', { pid: child.pid });
    const startedAt = Date.now();
    void child.then((result) => {
      if (this.child !== child) return;
      this.child = undefined;
      const ended = howItEnded(file, { code: result.exitCode ?? null, signal: result.signal ?? null, error: result.cause as NodeJS.ErrnoException | undefined });
      // Its stderr is the controller's, not captured: NGINX's own words are there.
      this.exitReason = result.exitCode === undefined ? ended : `${ended} (NGINX's error log, on stderr, says why)`;
      if (this.stopping) return;
      this.log.error('nginx exited unexpectedly', { error: this.exitReason });
      killGroup(child.pid);
      this.onUnexpectedExit(result.exitCode);
      // A master that ran for a while restarts at once; one that keeps dying backs off.
      this.restartDelayMs = Date.now() - startedAt > 60_000 ? 500 : Math.min(this.restartDelayMs * 2, MAX_RESTART_DELAY_MS);
      this.restartTimer = setTimeout(() => this.start(), this.restartDelayMs);
    });
  }

  /** Graceful reload: the master re-reads nginx.conf, starts new workers and lets old ones finish their requests. */
  reload(): void {
    if (!this.child?.pid) throw new Error('nginx is not running');
    process.kill(this.child.pid, 'SIGHUP');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child) return;
    child.kill('SIGQUIT');
    const timer = setTimeout(() => child.kill('SIGTERM'), 10_000);
    await child;
    clearTimeout(timer);
    this.child = undefined;
  }
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: no process of the group is left.
  }
}

/** Runs a program to its end with stdin and stdout on /dev/null and stderr on `stderrFd` (not execa: its types take no descriptor above 9). */
function run(file: string, args: string[], stderrFd: number): Promise<Ended> {
  return new Promise((resolve) => {
    let error: NodeJS.ErrnoException | undefined;
    try {
      spawn(file, args, { stdio: ['ignore', 'ignore', stderrFd] })
        .on('error', (err) => (error = err))
        .on('close', (code, signal) => resolve({ code, signal, error }));
    } catch (err) {
      // spawn() throws some of the kernel's refusals (EPERM) instead of emitting them.
      resolve({ code: null, signal: null, error: err as NodeJS.ErrnoException });
    }
  });
}

/** How a run ended when the program said nothing itself: the kernel's refusal to execute it, or its exit. */
function howItEnded(file: string, { code, signal, error }: Ended): string {
  if (error) return `could not be executed: ${error.path ?? file}: ${error.errno === undefined ? error.message : `${getSystemErrorMessage(error.errno)} (${error.code})`}`;
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}
