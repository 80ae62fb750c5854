// The controller as a container runs it, tried on the dev rootfs: the qubesec command in a process of its own, its
// stdout a pipe as the container runtime gives it, with /proc in the rootfs so NGINX's /dev/stdout is that stdout.
import { chmod, chown, copyFile, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { PROJECT_ROOT } from '../controller/project.js';
import { eventually, freePort, rootfs } from './lib/env.js';
import { QUBESEC_CLASS, pqIngress } from './lib/objects.js';

const MAIN = join(PROJECT_ROOT, 'dist', 'controller', 'cli', 'main.js');
/** The image's user and group (images/Dockerfile), the chart's runAsUser and fsGroup. */
const IMAGE_UID = 101;

let manifests: string;
let httpPort: number;
let httpsPort: number;
let confDir: string;
let controller: ResultPromise | undefined;
/** What the controller logged so far (JSON lines on its stderr). */
let logs: string;

beforeAll(async () => {
  manifests = await mkdtemp(join(tmpdir(), 'qubesec-container-'));
  await chmod(manifests, 0o755); // for the image's user too
  await writeFile(join(manifests, 'class.yaml'), JSON.stringify(QUBESEC_CLASS));
  // An object for the ReloadFailed Event to be about; its host leaves the catch-all's answer alone.
  await writeFile(join(manifests, 'web.yaml'), JSON.stringify(pqIngress('web', 'web.example.com', 'web')));
});

beforeEach(async () => {
  [httpPort, httpsPort] = [await freePort(), await freePort()];
  confDir = `/run/qubesec-container-${process.pid}-${httpPort}`;
});

afterEach(async () => {
  controller?.kill('SIGTERM');
  await controller;
  controller = undefined;
  await rm(join(rootfs(), confDir), { recursive: true, force: true });
});

afterAll(async () => {
  await rm(manifests, { recursive: true, force: true });
});

/**
 * `qubesec controller` on the manifests folder, chrooting NGINX into the rootfs, in a mount namespace of its own where
 * the rootfs has /proc (its /dev/stdout links to /proc/self/fd/1). `wrap` runs the node command (a redirect, setpriv).
 * Its stdout is a Node pipe, which is a Unix socket.
 */
function startController(extra: string[] = [], wrap: string[] = []): ResultPromise {
  const flags = [
    '--manifests', manifests, '--nginx-root', rootfs(), '--conf-dir', confDir, '--bind-address', '127.0.0.1',
    '--http-port', String(httpPort), '--https-port', String(httpsPort), '--status-port', '0', '--metrics-address', '127.0.0.1',
    '--metrics-port', '0', '--worker-processes', '1', '--log-level', 'debug', ...extra,
  ];
  controller = execa('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t proc proc "$0/proc" && exec "$@"', rootfs(), ...wrap, process.execPath, MAIN, 'controller', ...flags], {
    reject: false, stdin: 'ignore', stderr: 'pipe', timeout: 60_000,
  });
  logs = '';
  controller.stderr!.on('data', (chunk: Buffer) => (logs += chunk.toString()));
  return controller;
}

/** The first line the controller logged that contains `text`, within 30 s; on failure, says what it logged. */
function logged(text: string): Promise<string> {
  return eventually(async () => logs.split('\n').find((line) => line.includes(text)), 30_000, `a log line with ${text}`)
    .catch((err: Error) => { throw new Error(`${err.message}\ncontroller logs:\n${logs.slice(-4000)}`); });
}

/**
 * Waits until the controller logged its first configuration applied (until then it has no SIGTERM handler) and NGINX
 * gives its catch-all answer (404) on the HTTP port.
 */
async function served(): Promise<void> {
  await logged('"msg":"configuration applied"');
  await eventually(async () => (await fetch(`http://127.0.0.1:${httpPort}/`)).status === 404 || undefined, 10_000, 'NGINX answering');
}

describe('the qubesec controller process as a container runs it', () => {
  it('serves with the access log on /dev/stdout when its stdout is a pipe, as a container runtime gives it', async () => {
    const fifo = join(manifests, 'stdout');
    await execa('mkfifo', [fifo]);
    const reader = execa('cat', [fifo], { reject: false });
    let stdout = '';
    reader.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    try {
      startController(['--access-log', '/dev/stdout'], ['sh', '-c', 'exec "$@" >"$0"', fifo]);
      await served();
      const line = await eventually(async () => stdout.split('\n').find((l) => l.startsWith('{')), 5_000, 'an access log line on stdout');
      expect(JSON.parse(line)).toEqual(expect.objectContaining({ request: 'GET / HTTP/1.1', status: 404 }));
    } finally {
      reader.kill();
      await reader;
      await rm(fifo, { force: true });
    }
  });

  it('refuses to start, naming --access-log, when /dev/stdout is a Unix socket NGINX cannot open', async () => {
    const result = await startController(['--access-log', '/dev/stdout']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('qubesec controller: flag --access-log: "/dev/stdout" is a Unix socket here');
  });

  it('runs as the image\'s user in a --conf-dir it does not own: an emptyDir mount point, root\'s with group fsGroup', async () => {
    const mountPoint = join(rootfs(), confDir);
    await mkdir(mountPoint);
    await chown(mountPoint, 0, IMAGE_UID);
    // What the kubelet makes of an emptyDir with fsGroup: 0777, group-writable, setgid.
    await chmod(mountPoint, 0o2777);
    // The user keeps CAP_SYS_CHROOT alone, for the dev rootfs's chroot; chmod of another user's folder needs CAP_FOWNER.
    const asImageUser = ['setpriv', `--reuid=${IMAGE_UID}`, `--regid=${IMAGE_UID}`, '--clear-groups', '--inh-caps=+sys_chroot', '--ambient-caps=+sys_chroot'];
    startController([], asImageUser);
    await served();
    const [confDirStat, certs] = [await stat(mountPoint), await stat(join(mountPoint, 'certs'))];
    expect([confDirStat.uid, confDirStat.gid, confDirStat.mode & 0o7777]).toEqual([0, IMAGE_UID, 0o2777]);
    expect([certs.uid, certs.mode & 0o7777]).toEqual([IMAGE_UID, 0o700]);
  });

  it('says in its log and the ReloadFailed Event why the kernel would not execute NGINX', async () => {
    // NGINX run directly, as in the image, from a binary with a file capability that the bounding set lacks (a Pod
    // that drops ALL): execve fails with EPERM. The rootfs's OpenSSL still answers what the data plane supports.
    const bin = await mkdtemp(join(tmpdir(), 'qubesec-bin-'));
    try {
      const nginx = join(bin, 'nginx');
      await copyFile('/bin/true', nginx);
      await execa('setcap', ['cap_net_bind_service=+ep', nginx]);
      const openssl = join(bin, 'openssl');
      await writeFile(openssl, `#!/bin/sh\nexec chroot ${rootfs()} openssl "$@"\n`, { mode: 0o755 });
      const hostConfDir = join(rootfs(), confDir);
      startController([
        '--nginx-root', '', '--nginx-binary', nginx, '--openssl-binary', openssl, '--conf-dir', hostConfDir, '--access-log', `${hostConfDir}/access.log`,
        '--nginx-modules', '/usr/lib/nginx/modules/ndk_http_module.so,/usr/lib/nginx/modules/ngx_http_lua_module.so',
      ], ['setpriv', '--bounding-set=-all,+sys_chroot']);
      const reason = `NGINX did not take the new configuration: the NGINX master could not be executed: ${nginx}: operation not permitted (EPERM)`;
      expect(JSON.parse(await logged('"msg":"configuration not applied'))).toEqual(expect.objectContaining({ error: reason }));
      expect(JSON.parse(await logged('"event":"ReloadFailed"'))).toEqual(expect.objectContaining({
        object: 'Ingress default/web',
        message: `the data plane refused the new configuration; the previous one keeps serving: ${reason}`,
      }));
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  });
});
