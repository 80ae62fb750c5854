// The VPN data plane: one charon (strongSwan's IKE daemon) run under the controller, configured only through swanctl
// over its vici socket, so a configuration change (peers, certificates, PPKs) is a `swanctl --load-all` and never a
// restart: established SAs stay up, new ones use what was loaded. charon is restarted only when it died.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';
import type { Logger } from '../observability/log.js';
import { EMPTY_SWANCTL, renderStrongswanConf, type CharonSettings, type SwanctlFiles } from './render.js';
import { parseSas } from './status.js';

export interface CharonRuntime {
  /** Root directory charon runs chrooted in ('' for none: the image). */
  root: string;
  /** Network namespace charon runs in ('' for the controller's own). */
  netns: string;
  /** Directory of charon's files as charon sees it: strongswan.conf, swanctl/, the vici socket. */
  stateDir: string;
  libipsec: boolean;
}

export const CHARON_BINARY = '/usr/lib/ipsec/charon';
export const SWANCTL_BINARY = '/usr/sbin/swanctl';
const SOCKET_WAIT_MS = 10_000;

export class CharonError extends Error {}

export class Charon {
  private process: ResultPromise | undefined;
  private exited = true;
  private stopping = false;
  private readonly settings: CharonSettings;

  constructor(
    private readonly runtime: CharonRuntime,
    private readonly log: Logger,
    private readonly onLogLine: (line: string) => void,
    /** charon died (not stopped by us): the owner starts it again and loads its configuration. */
    private readonly onExit: () => void,
  ) {
    this.settings = { libipsec: runtime.libipsec, viciSocket: join(runtime.stateDir, 'charon.vici') };
  }

  /** The controller's path of a file charon knows as `path`. */
  hostPath(path: string): string {
    return this.runtime.root === '' ? path : join(this.runtime.root, path);
  }

  private argv(binary: string, args: string[]): [string, string[]] {
    const chrooted = this.runtime.root === '' ? [binary, ...args] : ['chroot', this.runtime.root, binary, ...args];
    const all = this.runtime.netns === '' ? chrooted : ['ip', 'netns', 'exec', this.runtime.netns, ...chrooted];
    return [all[0]!, all.slice(1)];
  }

  private get env(): Record<string, string> {
    return { STRONGSWAN_CONF: join(this.runtime.stateDir, 'strongswan.conf'), SWANCTL_DIR: join(this.runtime.stateDir, 'swanctl') };
  }

  /** Writes strongswan.conf and starts charon; resolves when its vici socket answers. */
  async start(ports: { ikePort: number; natPort: number }): Promise<void> {
    this.stopping = false;
    mkdirSync(this.hostPath(join(this.runtime.stateDir, 'swanctl')), { recursive: true });
    writeFileSync(this.hostPath(join(this.runtime.stateDir, 'strongswan.conf')), renderStrongswanConf(ports, this.settings));
    rmSync(this.hostPath(this.settings.viciSocket), { force: true });
    const [file, args] = this.argv(CHARON_BINARY, []);
    const child = execa(file, args, { reject: false, stdin: 'ignore', env: this.env, buffer: false });
    this.process = child;
    this.exited = false;
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on('line', (line) => this.onLogLine(line));
    }
    void child.then((result) => {
      this.exited = true;
      if (this.stopping) return;
      this.log.error('charon exited', { exitCode: result.exitCode, signal: result.signal });
      this.onExit();
    });
    const deadline = Date.now() + SOCKET_WAIT_MS;
    while (!(await this.swanctl(['--stats'], false).then((r) => r.exitCode === 0))) {
      if (this.exited || Date.now() > deadline) throw new CharonError(`charon did not open its vici socket ${this.settings.viciSocket} within ${SOCKET_WAIT_MS} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
    this.log.info('charon started', { pid: child.pid, libipsec: this.runtime.libipsec });
  }

  get running(): boolean {
    return !this.exited;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.process;
    if (!child || !this.running) return;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([child.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 5000)))]);
    clearTimeout(timer);
    if (!ended) {
      child.kill('SIGKILL');
      await child;
    }
  }

  async swanctl(args: string[], reject = true): Promise<{ stdout: string; stderr: string; exitCode: number | undefined }> {
    const [file, argv] = this.argv(SWANCTL_BINARY, [...args, '--uri', `unix://${this.settings.viciSocket}`]);
    const result = await execa(file, argv, { reject: false, stdin: 'ignore', env: this.env });
    if (reject && result.exitCode !== 0) {
      throw new CharonError(`swanctl ${args.join(' ')} failed (exit ${result.exitCode}): ${(result.stderr || result.stdout).trim().split('\n').slice(-5).join(' | ')}`);
    }
    return { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode };
  }

  /**
   * Replaces the swanctl directory's files with `files` (each written to a temporary name, then renamed; files no
   * longer rendered are removed) and loads them all: connections, pools, certificates, keys and PPKs. swanctl unloads
   * connections and pools the files no longer hold; established SAs of remaining connections stay up. Credentials are
   * loaded without --clear, which would leave a moment with no key or CA loaded (an IKE_AUTH then fails): a replaced
   * certificate or CA stays in charon's memory until it restarts, but no connection names it any more, and a peer's
   * trust is its connection's cacerts only.
   */
  async load(files: SwanctlFiles, clearCredentials = false): Promise<void> {
    const dir = this.hostPath(join(this.runtime.stateDir, 'swanctl'));
    for (const sub of ['x509', 'x509ca', 'private']) {
      const folder = join(dir, sub);
      if (!existsSync(folder)) continue;
      for (const name of readdirSync(folder)) if (!files.has(`${sub}/${name}`)) rmSync(join(folder, name));
    }
    for (const [path, content] of files) {
      const target = join(dir, path);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(`${target}.tmp`, content, { mode: path.startsWith('private/') || path === 'swanctl.conf' ? 0o600 : 0o644 });
      renameSync(`${target}.tmp`, target);
    }
    await this.swanctl(['--load-all', '--noprompt', ...(clearCredentials ? ['--clear'] : [])]);
  }

  /**
   * Leaves charon with nothing: every IKE SA terminated first (peers get a DELETE at once; unloading a connection
   * leaves its SAs up), then an empty configuration loaded with every credential cleared (keys, certificates, PPKs).
   * Returns how many IKE SAs were terminated.
   */
  async unloadEverything(): Promise<number> {
    const sas = parseSas((await this.swanctl(['--list-sas', '--pretty'])).stdout);
    for (const connection of new Set(sas.map((sa) => sa.connection))) {
      await this.swanctl(['--terminate', '--ike', connection, '--force', '--timeout', '5'], false);
    }
    await this.load(EMPTY_SWANCTL, true);
    return sas.length;
  }
}
