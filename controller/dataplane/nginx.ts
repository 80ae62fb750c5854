// The NGINX master process: started, supervised (restarted when it dies), tested, reloaded and stopped.
import { spawn } from 'node:child_process';
import { open, unlink } from 'node:fs/promises';
import { execa, type ResultPromise } from 'execa';
import type { Logger } from '../observability/log.js';
import { command, hostPath, type DataPlaneRuntime } from './runtime.js';

export interface NginxTestResult {
  ok: boolean;
  output: string;
}

const MAX_RESTART_DELAY_MS = 30_000;

export class NginxProcess {
  private child: ResultPromise | undefined;
  private stopping = false;
  private restartDelayMs = 500;
  private restartTimer: NodeJS.Timeout | undefined;

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
      // Not execa: its types take no file descriptor above 9.
      const child = spawn(file, args, { stdio: ['ignore', 'ignore', stderr.fd] });
      const code = await new Promise<number | null>((resolve) => child.on('error', () => resolve(null)).on('close', resolve));
      const { size } = await stderr.stat();
      const { buffer } = await stderr.read(Buffer.alloc(size), 0, size, 0);
      return { ok: code === 0, output: buffer.toString('utf8').trim() };
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
      if (this.stopping) return;
      this.log.error('nginx exited unexpectedly', { code: result.exitCode, signal: result.signal });
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
