// Model -> running NGINX: render, skip if unchanged, write, reload, and read the master's verdict: its [emerg] (refused)
// or new workers answering with the new generation (taken). No separate `nginx -t`: it would read the whole
// configuration once more. When NGINX refuses, the previous nginx.conf is put back (a restart never loads a refused
// file), the last good configuration keeps serving and the next apply retries. Endpoints are not part of the
// configuration: when only they changed, they go to NGINX's shared memory, no reload.
import { createHash, hash as digest } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { basename, join } from 'node:path';
import type { Model, Server } from '../model/types.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import { ENDPOINTS_FILE, LUA_MODULE_FILE, ServerBlocks, endpointLines, newHostEntry, render, serverFileName, type NewHostEntry, type RenderSettings } from '../render/render.js';
import { LUA_DIR } from '../project.js';
import { NginxProcess } from './nginx.js';
import { hostPath, type DataPlaneRuntime } from './runtime.js';

export interface ApplierSettings {
  runtime: DataPlaneRuntime;
  /** Folder (NGINX's path) that holds nginx.conf, certificates, sockets, logs and temp files. */
  confDir: string;
  render: Omit<RenderSettings, 'generation' | 'paths'>;
  /** Where NGINX writes its access log; stdout of the container by default. Its error log is stderr, read for verdicts. */
  accessLog: string;
  /**
   * New hosts serve at once from the catch-all path, and their server blocks come with a reload this long after the
   * first of them (--new-host-reload-ms); 0: a new host waits for its reload like any other change.
   */
  newHostReloadMs: number;
}

/**
 * applied: a new configuration was loaded (a reload); endpoints: only endpoints changed, without a reload; new-hosts:
 * hosts the running configuration does not have serve from the catch-all path until their reload. failed:
 * refused (by the renderer or NGINX's [emerg]: the configuration's fault), or not taken by NGINX (it could not run,
 * or no new workers answered).
 */
export type ApplyResult =
  | { status: 'unchanged' | 'applied' | 'endpoints' | 'new-hosts'; hash: string }
  | { status: 'failed'; hash: string; error: string; refused: boolean };

const CONFIRM_TIMEOUT_MS = 15_000;
const CONFIRM_STEADY_MS = 150;

/**
 * certs/ and its files are the controller's and NGINX's: certificates are named by variables (render.ts), so the
 * workers load them at their first handshake. In the image all share uid 101; where the controller and the master run
 * as root (the development rootfs), certs/ and its files belong to the workers' user, NGINX's default `nobody`
 * (docs/pq-tls.md#private-keys-and-the-nginx-workers). Workers must reach sockets and temp files. The mode
 * of --conf-dir is set only when the controller makes it: in a Pod it is an emptyDir's mount point, owned by root
 * (group fsGroup), which the controller's user may not chmod.
 */
const CONF_DIR_MODE = 0o711;
const SUBDIR_MODES = { certs: 0o700, sockets: 0o711, tmp: 0o711, lua: 0o711, servers: 0o711 } as const;

/**
 * Whether NGINX's workers run as another user than its master: NGINX switches them when the master's euid is 0,
 * which takes CAP_SETUID (bit 7 of CapEff; the master, our child, has our capabilities).
 */
async function workersSwitchUser(): Promise<boolean> {
  if (process.geteuid?.() !== 0) return false;
  const effective = /^CapEff:\s*([0-9a-f]+)$/m.exec(await readFile('/proc/self/status', 'utf8'))?.[1];
  return effective !== undefined && (BigInt(`0x${effective}`) & (1n << 7n)) !== 0n;
}

/** The uid and gid of NGINX's workers when its master runs as root (no `user` directive: `nobody`), from `passwd`. */
function workerOwner(passwd: string): { uid: number; gid: number } {
  const fields = passwd.split('\n').map((l) => l.split(':')).find((f) => f[0] === 'nobody');
  if (!fields || !/^\d+$/.test(fields[2] ?? '') || !/^\d+$/.test(fields[3] ?? '')) throw new Error('no user nobody in the data plane\'s /etc/passwd: NGINX\'s workers run as nobody when its master is root');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

const LUA_MODULE = readFileSync(join(LUA_DIR, LUA_MODULE_FILE), 'utf8');

export class Applier {
  readonly nginx: NginxProcess;
  /** Hash of the running configuration: the model without its endpoints. */
  private runningHash = '';
  /** Upstream name -> endpoint line NGINX has in shared memory. */
  private servedEndpoints = new Map<string, string>();
  /** What the running configuration has (the model of the last confirmed reload): new hosts are the others. */
  private running?: { hosts: Set<string>; wildcardSuffixes: string[]; upstreams: Set<string> };
  /** Host -> line of the new hosts' table NGINX has in shared memory. */
  private servedNewHosts = new Map<string, string>();
  /** When the first host of servedNewHosts was served, and the timer of the reload that brings their server blocks. */
  private newHostsSince?: number;
  private newHostsReload?: NodeJS.Timeout;
  private readonly newHostEntries = new WeakMap<Server, ReturnType<typeof newHostEntry>>();
  /** What this process wrote, by host path: tells our own writes from changes made by others. */
  private readonly written = new Map<string, string>();
  /**
   * The last render's server blocks, whose files are in servers/; a forced apply renders every block afresh. The
   * files this process wrote there and has not removed are in serverFiles: each is named by its content's hash.
   */
  private blocks = new ServerBlocks();
  private readonly serverFiles = new Set<string>();
  private readonly paths: RenderSettings['paths'];

  /** Called when NGINX died and is being restarted: the caller re-applies what should run (an apply may have been cut short). */
  onRestart: () => void = () => {};
  /** Called when the new hosts served without a reload are due for theirs: the caller applies again. */
  onReloadDue: () => void = () => {};

  constructor(private readonly settings: ApplierSettings, private readonly metrics: Metrics, private readonly log: Logger) {
    const dir = settings.confDir;
    this.paths = {
      pid: `${dir}/nginx.pid`,
      errorLog: 'stderr',
      accessLog: settings.accessLog,
      temp: `${dir}/tmp`,
      certificates: `${dir}/certs`,
      sockets: `${dir}/sockets`,
      lua: `${dir}/lua`,
      servers: `${dir}/servers`,
    };
    const sockets = hostPath(settings.runtime, this.paths.sockets);
    this.nginx = new NginxProcess(
      settings.runtime,
      `${dir}/nginx.conf`,
      log,
      () => {
        metrics.nginxRestarts.inc();
        this.runningHash = ''; // the restarted master reads nginx.conf afresh; confirm it on the next apply
        this.running = undefined;
        this.servedNewHosts = new Map(); // a new master has empty shared memory
        this.onRestart();
      },
      () => {
        rmSync(sockets, { recursive: true, force: true });
        mkdirSync(sockets, { recursive: true });
        chmodSync(sockets, SUBDIR_MODES.sockets);
      },
    );
  }

  /**
   * What others might change: nginx.conf, the server blocks, the certificates and the ticket keys. The folders are
   * watched, not the files, because each apply replaces nginx.conf by rename and a watch on the file itself would stay
   * on the old inode.
   */
  get watched(): { paths: string[]; relevant: (path: string) => boolean } {
    const dir = hostPath(this.settings.runtime, this.settings.confDir);
    const certificates = hostPath(this.settings.runtime, this.paths.certificates);
    const servers = hostPath(this.settings.runtime, this.paths.servers);
    const conf = `${dir}/nginx.conf`;
    return {
      paths: [dir, certificates, servers],
      relevant: (p) =>
        p === dir || p === conf || p === certificates || p === servers || (p.startsWith(`${certificates}/`) && /\.(pem|key)$/.test(p)) || (p.startsWith(`${servers}/`) && p.endsWith('.conf')),
    };
  }

  get serving(): boolean {
    return this.runningHash !== '' && this.nginx.running;
  }

  /** Whether a file under watchedDir differs from what this controller wrote there. */
  async changedByOthers(file: string): Promise<boolean> {
    if (file.startsWith(`${hostPath(this.settings.runtime, this.paths.servers)}/`)) {
      // A server block file is named by its content's hash: one of ours that no longer matches its name was changed.
      const name = basename(file);
      if (!this.serverFiles.has(name)) return false;
      return readFile(file).then((content) => serverFileName(content) !== name, () => true);
    }
    const mine = this.written.get(file);
    if (mine === undefined) return false;
    const now = await readFile(file).then(sha256, () => '');
    return now !== mine;
  }

  async apply(model: Model, force = false): Promise<ApplyResult> {
    const hash = configurationHash(model);
    const endpoints = endpointLines(model);
    if (!force && this.nginx.running && this.running) {
      const newHosts = hash === this.runningHash ? new Map<string, NewHostEntry>() : this.newHosts(model);
      const status = newHosts && (await this.applyWithoutReload(endpoints, newHosts));
      // When the new hosts' reload is due, it follows at once: hosts new in this sync are served before it all the same.
      if (status && !this.newHostsReloadDue) return { status, hash };
    }
    this.metrics.reloads.inc();
    const generation = hash.slice(0, 12);
    const written = await this.writeFiles(model, generation, endpoints, force);
    if ('error' in written) return this.fail(hash, written.error, true);
    const { rendered } = written;

    const confFile = this.confFile;
    const previous = await readFile(confFile, 'utf8').catch(() => undefined);
    await this.write(confFile, rendered.config, 0o644);
    this.nginx.expectVerdict();
    const verdict = await this.load(generation);
    if (verdict !== 'taken') {
      await this.restore(confFile, previous);
      return 'refused' in verdict
        ? this.fail(hash, `NGINX refused the configuration: ${verdict.refused}`, true)
        : this.fail(hash, `NGINX did not take the new configuration: ${verdict.notTaken}`, false);
    }
    this.nginx.supervise();
    this.runningHash = hash;
    this.running = {
      hosts: new Set(model.servers.map((s) => s.host)),
      wildcardSuffixes: model.servers.filter((s) => s.host.startsWith('*.')).map((s) => s.host.slice(1)),
      upstreams: new Set(model.upstreams.map((u) => u.name)),
    };
    this.servedEndpoints = endpoints;
    await this.checkEndpointsLoaded();
    // Every host has its server block now.
    if (this.servedNewHosts.size > 0) await this.updateNewHosts(new Map());
    this.metrics.lastReloadSuccessful.set(1);
    this.metrics.lastReloadSuccessTimestamp.set(Date.now() / 1000);
    this.metrics.configHash.set(parseInt(hash.slice(0, 12), 16));
    await this.removeUnused(new Set(rendered.certificateFiles.keys()), new Set(rendered.includedServerFiles));
    this.log.info('configuration applied', { hash: generation, servers: model.servers.length, upstreams: model.upstreams.length });
    return { status: 'applied', hash };
  }

  async stop(): Promise<void> {
    clearTimeout(this.newHostsReload);
    await this.nginx.stop();
  }

  /**
   * newHostEntry by server object (model objects never change once built): a sync while hundreds of new hosts wait
   * does not make their entries again. The entry depends on the model's upstreams and default policy only through
   * what the configuration hash compares first.
   */
  private newHostEntryOf(server: Server, model: Model): ReturnType<typeof newHostEntry> {
    let entry = this.newHostEntries.get(server);
    if (!entry) this.newHostEntries.set(server, (entry = newHostEntry(server, model, this.renderPaths)));
    return entry;
  }

  /** Whether new hosts have been served without their reload for --new-host-reload-ms. */
  private get newHostsReloadDue(): boolean {
    return this.newHostsSince !== undefined && Date.now() - this.newHostsSince >= this.settings.newHostReloadMs;
  }

  /**
   * The hosts of `model` the running configuration does not have, each as served from the catch-all path, when they
   * are the only difference and each can be served that way; undefined when `model` needs a reload now: something
   * else changed, or a new host waits for its reload (newHostEntry says why).
   */
  private newHosts(model: Model): Map<string, NewHostEntry> | undefined {
    if (this.settings.newHostReloadMs === 0 || !this.running) return undefined;
    const { hosts, upstreams, wildcardSuffixes } = this.running;
    const kept = { ...model, servers: model.servers.filter((s) => hosts.has(s.host)), upstreams: model.upstreams.filter((u) => upstreams.has(u.name)) };
    if (configurationHash(kept) !== this.runningHash) return undefined;
    const entries = new Map<string, NewHostEntry>();
    for (const server of model.servers) {
      if (hosts.has(server.host)) continue;
      // NGINX would route the host to a wildcard server it has, not to the catch-all.
      const wildcard = wildcardSuffixes.find((suffix) => server.host.endsWith(suffix));
      const entry = wildcard ? { waitsForReload: `the running wildcard host *${wildcard} covers it` } : this.newHostEntryOf(server, model);
      if ('waitsForReload' in entry) {
        this.log.info('a new host waits for the reload', { host: server.host, reason: entry.waitsForReload });
        return undefined;
      }
      entries.set(server.host, entry);
    }
    return entries;
  }

  /**
   * Endpoints and new hosts to NGINX's shared memory, no reload: what changed, or undefined when NGINX did not take
   * it (the caller reloads).
   */
  private async applyWithoutReload(endpoints: Map<string, string>, newHosts: Map<string, NewHostEntry>): Promise<'unchanged' | 'endpoints' | 'new-hosts' | undefined> {
    const changed = [...endpoints].filter(([name, line]) => this.servedEndpoints.get(name) !== line).map(([, line]) => line);
    const hostsChanged = newHosts.size !== this.servedNewHosts.size || [...newHosts].some(([host, entry]) => this.servedNewHosts.get(host) !== entry.line);
    if (changed.length === 0 && !hostsChanged) return 'unchanged';
    // Endpoints first: a new host's routes name upstreams that must have theirs.
    if (changed.length > 0 && !(await this.updateEndpoints(endpoints, changed))) return undefined;
    if (hostsChanged && !(await this.updateNewHosts(newHosts))) return undefined;
    return hostsChanged ? 'new-hosts' : 'endpoints';
  }

  /**
   * Writes the new hosts' certificate files and replaces NGINX's table of new hosts with `newHosts`; keeps the timer of
   * their reload. False when NGINX did not take the table.
   */
  private async updateNewHosts(newHosts: Map<string, NewHostEntry>): Promise<boolean> {
    const certificates = hostPath(this.settings.runtime, this.paths.certificates);
    const owner = newHosts.size > 0 && (await workersSwitchUser()) ? workerOwner(await readFile(hostPath(this.settings.runtime, '/etc/passwd'), 'utf8')) : undefined;
    for (const entry of newHosts.values()) {
      // Named by their content: a file this process wrote is there as it is.
      for (const [name, content] of entry.files) if (!this.written.has(join(certificates, name))) await this.write(join(certificates, name), content, 0o600, owner);
    }
    const table = [...newHosts.values()].map((e) => `${e.line}\n`).join('');
    try {
      await statusServer(this.settings.render.statusPort, '/qubesec/new-hosts', table);
    } catch (err) {
      this.metrics.newHostUpdateFailures.inc();
      this.log.warn('new hosts not taken without a reload; reloading instead', { error: (err as Error).message });
      return false;
    }
    this.servedNewHosts = new Map([...newHosts].map(([host, entry]) => [host, entry.line]));
    this.metrics.newHosts.set(newHosts.size);
    if (newHosts.size === 0) {
      this.newHostsSince = undefined;
      clearTimeout(this.newHostsReload);
      return true;
    }
    this.metrics.newHostUpdates.inc();
    this.log.info('new hosts served without a reload until theirs', { hosts: newHosts.size });
    if (this.newHostsSince === undefined) {
      this.newHostsSince = Date.now();
      this.newHostsReload = setTimeout(() => this.onReloadDue(), this.settings.newHostReloadMs);
    }
    return true;
  }

  /**
   * Renders `model` and runs `nginx -t` on nginx.conf.next, without touching the running configuration: NGINX's
   * message when refused, undefined when it would load. Only for the reconciler's tries that find which Ingress NGINX
   * refused, after a refused apply: they must not change what serves.
   */
  async test(model: Model): Promise<string | undefined> {
    const written = await this.writeFiles(model, configurationHash(model).slice(0, 12), endpointLines(model));
    if ('error' in written) return written.error;
    const candidate = `${this.confFile}.next`;
    await this.write(candidate, written.rendered.config, 0o644);
    const test = await this.nginx.test(`${this.settings.confDir}/nginx.conf.next`);
    await unlink(candidate).catch(() => undefined);
    this.written.delete(candidate);
    return test.ok ? undefined : test.error;
  }

  private get renderPaths(): Pick<RenderSettings, 'httpsRedirectPort' | 'paths'> {
    return { httpsRedirectPort: this.settings.render.httpsRedirectPort, paths: this.paths };
  }

  /** nginx.conf as this process sees it. */
  private get confFile(): string {
    return hostPath(this.settings.runtime, `${this.settings.confDir}/nginx.conf`);
  }

  /**
   * Reloads NGINX (or starts it) on the nginx.conf just written and waits for the master's verdict: its [emerg], or
   * new workers answering every poll with `generation` for CONFIRM_STEADY_MS. NGINX starts the new workers and
   * signals the old ones about 100 ms later, so both accept connections for a moment.
   */
  private async load(generation: string): Promise<'taken' | { refused: string } | { notTaken: string }> {
    try {
      if (this.nginx.running) this.nginx.reload();
      else this.nginx.start();
    } catch (err) {
      return { notTaken: (err as Error).message };
    }
    const deadline = Date.now() + CONFIRM_TIMEOUT_MS;
    let last = '';
    let steadySince: number | undefined;
    while (Date.now() < deadline) {
      last = await statusServer(this.settings.render.statusPort, '/qubesec/generation').catch((err: Error) => err.message);
      const refusal = this.nginx.refusal;
      if (refusal !== undefined) return { refused: refusal };
      if (last !== generation) steadySince = undefined;
      else if (steadySince === undefined) steadySince = Date.now();
      else if (Date.now() - steadySince >= CONFIRM_STEADY_MS) return 'taken';
      if (!this.nginx.running) return { notTaken: `the NGINX master ${this.nginx.lastExit}` };
      await new Promise((r) => setTimeout(r, 20));
    }
    return { notTaken: `workers still report ${JSON.stringify(last)} after ${CONFIRM_TIMEOUT_MS} ms` };
  }

  /**
   * Puts the previous nginx.conf back after a failed load (none before: removes the new one), so that no start or
   * restart reads a file NGINX did not take, and brings NGINX onto it: a master that still runs may have taken the new
   * file without answering (reloaded again), one that died at start is started again on the last good file.
   */
  private async restore(confFile: string, previous: string | undefined): Promise<void> {
    if (previous === undefined) {
      await rm(confFile, { force: true });
      this.written.delete(confFile);
      // A master that refused its first configuration is exiting, and may not have yet: nothing good ever ran.
      if (this.nginx.running) await this.nginx.stop();
      return;
    }
    await this.write(confFile, previous, 0o644);
    if (this.nginx.refusal !== undefined && this.nginx.running) return; // the master kept the configuration it ran
    this.runningHash = ''; // what runs is known again once an apply confirms it
    if (this.nginx.running) this.nginx.reload();
    else this.nginx.start();
    this.nginx.supervise();
  }

  /**
   * Renders and writes the server blocks that are new, the certificates and Lua files; nginx.conf is the caller's to
   * write. `fresh`: renders and writes every server block, for when files may have been changed by others.
   */
  private async writeFiles(model: Model, generation: string, endpoints: Map<string, string>, fresh = false): Promise<{ rendered: ReturnType<typeof render> } | { error: string }> {
    let rendered: ReturnType<typeof render>;
    if (fresh) this.blocks = new ServerBlocks();
    try {
      rendered = render(model, { ...this.settings.render, generation, paths: this.paths }, this.blocks);
    } catch (err) {
      // The renderer's own check refused a value the model let through: a QubeSec bug, reported like a refused reload.
      return { error: `rendering refused the configuration: ${(err as Error).message}` };
    }
    const host = (p: string) => hostPath(this.settings.runtime, p);
    const confDir = host(this.settings.confDir);
    if ((await mkdir(confDir, { recursive: true })) !== undefined) await chmod(confDir, CONF_DIR_MODE);
    for (const [dir, mode] of Object.entries(SUBDIR_MODES)) {
      const path = join(confDir, dir);
      await mkdir(path, { recursive: true });
      await chmod(path, mode); // whatever the umask, and for folders left by an earlier run
    }
    const certificates = host(this.paths.certificates);
    const owner = (await workersSwitchUser()) ? workerOwner(await readFile(host('/etc/passwd'), 'utf8')) : undefined;
    if (owner) await chown(certificates, owner.uid, owner.gid);
    for (const [name, content] of rendered.certificateFiles) {
      await this.write(join(certificates, name), content, 0o600, owner);
    }
    const servers = host(this.paths.servers);
    try {
      for (const [name, text] of rendered.serverFiles) {
        await this.write(join(servers, name), text, 0o644, undefined, false);
        this.serverFiles.add(name);
      }
    } catch (err) {
      this.blocks = new ServerBlocks(); // the next render must not take a block whose file was not written for kept
      throw err;
    }
    await this.write(join(host(this.paths.lua), LUA_MODULE_FILE), LUA_MODULE, 0o644);
    await this.writeEndpoints(endpoints);
    return { rendered };
  }

  /**
   * Sends the changed upstreams' lines to the status server, which stores them in shared memory for all workers; the
   * file keeps every line for the next start or reload. False when NGINX did not take them: the caller reloads.
   */
  private async updateEndpoints(endpoints: Map<string, string>, changed: string[]): Promise<boolean> {
    await this.writeEndpoints(endpoints);
    try {
      await statusServer(this.settings.render.statusPort, '/qubesec/endpoints', `${changed.join('\n')}\n`);
    } catch (err) {
      this.metrics.endpointUpdateFailures.inc();
      this.log.warn('endpoint update not taken; reloading instead', { error: (err as Error).message });
      return false;
    }
    this.servedEndpoints = endpoints;
    this.metrics.endpointUpdates.inc();
    this.log.info('endpoints updated without a reload', { upstreams: changed.length });
    return true;
  }

  /**
   * Whether the new workers' NGINX stored every line of the endpoints file. The dictionary is sized from the model, so a
   * failure means the estimate was wrong: nothing retries, the error and the metric say so.
   */
  private async checkEndpointsLoaded(): Promise<void> {
    try {
      await statusServer(this.settings.render.statusPort, '/qubesec/endpoints/load');
    } catch (err) {
      this.metrics.endpointUpdateFailures.inc();
      this.log.error('NGINX did not store every upstream\'s endpoints; those answer 503', { error: (err as Error).message });
    }
  }

  private async writeEndpoints(endpoints: Map<string, string>): Promise<void> {
    const file = join(hostPath(this.settings.runtime, this.paths.lua), ENDPOINTS_FILE);
    await this.write(file, `${[...endpoints.values()].join('\n')}\n`, 0o644);
  }

  private async fail(hash: string, error: string, refused: boolean): Promise<ApplyResult> {
    this.metrics.reloadFailures.inc();
    this.metrics.lastReloadSuccessful.set(0);
    this.log.error('configuration not applied; the last good one keeps serving', { error });
    return { status: 'failed', hash, error, refused };
  }

  /** `remember`: keeps the content's hash in `written` (not for server block files, whose name is their hash). */
  private async write(file: string, content: string | Buffer, mode: number, owner?: { uid: number; gid: number }, remember = true): Promise<void> {
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, content, { mode });
    if (owner) await chown(tmp, owner.uid, owner.gid);
    if (remember) this.written.set(file, sha256(content));
    await rename(tmp, file);
  }

  /** After a confirmed reload: the files the running configuration does not name, left by it or an earlier one. */
  private async removeUnused(certificates: Set<string>, servers: Set<string>): Promise<void> {
    const certificatesDir = hostPath(this.settings.runtime, this.paths.certificates);
    for (const name of await readdir(certificatesDir)) {
      if (!certificates.has(name)) {
        await rm(join(certificatesDir, name), { force: true });
        this.written.delete(join(certificatesDir, name));
      }
    }
    const serversDir = hostPath(this.settings.runtime, this.paths.servers);
    for (const name of await readdir(serversDir)) {
      if (!servers.has(name)) {
        this.serverFiles.delete(name);
        await rm(join(serversDir, name), { force: true });
      }
    }
  }
}

/** Hashes of model pieces by object: the model builder hands out unchanged servers and upstreams as the same objects. */
const pieceHashes = new WeakMap<object, string>();

function pieceHash(piece: object, json: () => string): string {
  let hashed = pieceHashes.get(piece);
  if (hashed === undefined) pieceHashes.set(piece, (hashed = digest('sha256', json(), 'base64')));
  return hashed;
}

/**
 * The configuration's identity: the model without what changes without a reload (endpoints). Hashed from a hash per
 * server and per upstream, each computed once per object (model objects are never changed once built), so a sync
 * hashes only the pieces that are new, never the JSON of the whole model at once.
 */
export function configurationHash(model: Model): string {
  const rest = JSON.stringify({ ...model, servers: model.servers.length, upstreams: model.upstreams.length });
  const servers = model.servers.map((server) => pieceHash(server, () => JSON.stringify(server)));
  // A passthrough's endpoints are in the stream block (it has no Lua balancer): their changes reload.
  const passedThrough = new Set(model.servers.flatMap((s) => s.passthrough?.backends.map((b) => b.upstream) ?? []));
  const upstreams = model.upstreams.map((upstream) => (passedThrough.has(upstream.name) ? sha256(JSON.stringify(upstream)) : pieceHash(upstream, () => JSON.stringify({ ...upstream, endpoints: undefined }))));
  return sha256(`${rest}\n${servers.join('')}\n${upstreams.join('')}`);
}

function sha256(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

/**
 * One request to NGINX's status server on a fresh connection (no keep-alive: an old worker must not answer for the
 * new configuration); rejects unless it answers 200.
 */
function statusServer(port: number, path: string, body?: string): Promise<string> {
  const post = body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) } };
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 5000, ...post }, (res) => {
      let answer = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (answer += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(answer.trim()) : reject(new Error(`status ${res.statusCode}: ${answer.trim()}`))));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}
