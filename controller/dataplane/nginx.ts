// The NGINX master process: started, supervised (restarted when it dies), tested, reloaded and stopped. Its stderr
// (NGINX's error log) passes through the controller, which reads there the master's verdict on each configuration.
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

/**
 * An [emerg] of the master: at start "nginx: [emerg] <message>", at a reload "<date> <time> [emerg] <pid>#<tid>:
 * <message>" (the running configuration's error log, stderr). Either way NGINX did not take the configuration.
 */
const EMERGENCY = /^(?:nginx: \[emerg\] |\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[emerg\] (\d+)#\d+: )(.*)$/;

export class NginxProcess {
  private child: ResultPromise | undefined;
  private stopping = false;
  private restartDelayMs = 500;
  private restartTimer: NodeJS.Timeout | undefined;
  private exitReason = 'has not started';
  /**
   * Whether the master is restarted when it dies. One that the applier started is supervised only once its
   * configuration is confirmed: a master that exits at start (its configuration refused) is the apply's failure.
   */
  private supervised = false;
  /** The master's [emerg] since expectVerdict(), if any. */
  private emergency: string | undefined;
  private awaitingVerdict = false;

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

  /**
   * From now until the next call, remembers the master's first [emerg]: the refusal of the configuration it is about
   * to read (at start or at the reload that follows).
   */
  expectVerdict(): void {
    this.emergency = undefined;
    this.awaitingVerdict = true;
  }

  /** NGINX's message when the master refused the configuration since expectVerdict(). */
  get refusal(): string | undefined {
    return this.emergency;
  }

  /** The running configuration is confirmed: from now on the master is restarted when it dies. */
  supervise(): void {
    if (this.child) this.supervised = true;
  }

  start(): void {
    if (this.child) return;
    this.stopping = false;
    this.supervised = false;
    this.prepare();
    const [file, args] = command(this.runtime, this.runtime.nginxBinary, ['-c', this.configPath, '-g', 'daemon off;']);
    // Its own process group: if the master dies, its orphaned workers (still holding the ports) go with it. Nothing
    // buffered: the output of a long-running process would only grow.
    const child = execa(file, args, { reject: false, buffer: false, stdin: 'ignore', stdout: 'inherit', stderr: 'pipe', detached: true });
    this.child = child;
    this.passThrough(child);
    this.log.info('nginx started', { pid: child.pid });
    const startedAt = Date.now();
    const ended = (how: Ended) => {
      if (this.child !== child) return;
      this.child = undefined;
      // Its stderr goes on to the controller's: NGINX's own words are there.
      this.exitReason = how.error ? howItEnded(file, how) : `${howItEnded(file, how)} (NGINX's error log, on stderr, says why)`;
      if (this.stopping) return;
      killGroup(child.pid); // orphaned workers would hold the ports (and the stderr pipe)
      if (!this.supervised) return;
      this.log.error('nginx exited unexpectedly', { error: this.exitReason });
      this.onUnexpectedExit(how.code ?? undefined);
      // A master that ran for a while restarts at once; one that keeps dying backs off.
      this.restartDelayMs = Date.now() - startedAt > 60_000 ? 500 : Math.min(this.restartDelayMs * 2, MAX_RESTART_DELAY_MS);
      this.restartTimer = setTimeout(() => {
        this.start();
        this.supervised = true; // it loads the last good file: the applier restores the previous one after a refusal
      }, this.restartDelayMs);
    };
    // The master's exit, not the end of its stderr, which its workers hold open. A master that could not be executed
    // has no pid and no exit: execa's result gives the reason.
    child.nodeChildProcess.once('exit', (code, signal) => {
      if (child.pid !== undefined) ended({ code, signal });
    });
    void child.then((result) => ended({ code: result.exitCode ?? null, signal: result.signal ?? null, error: result.cause as NodeJS.ErrnoException | undefined }));
  }

  /** Copies the master's stderr to the controller's, line by line, and notes the first [emerg] awaited. */
  private passThrough(child: ResultPromise): void {
    let partial = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      process.stderr.write(chunk);
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const emergency = EMERGENCY.exec(line);
        // A worker's [emerg] is not the master's verdict on a configuration.
        if (!emergency || !this.awaitingVerdict || (emergency[1] !== undefined && Number(emergency[1]) !== child.pid)) continue;
        this.emergency = emergency[2];
        this.awaitingVerdict = false;
      }
    });
  }

  /** Graceful reload: the master re-reads nginx.conf, starts new workers and lets old ones finish their requests. */
  reload(): void {
    if (!this.child?.pid) throw new Error('nginx is not running');
    process.kill(this.child.pid, 'SIGHUP');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.supervised = false;
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
