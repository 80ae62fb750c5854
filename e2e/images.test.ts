// The image's runtime choices, tried for real on the dev rootfs (same Debian 13 packages): the oqs-provider OpenSSL
// configuration as OpenSSL 3.5 reads it, and NGINX as images/Dockerfile runs it: the packaged binary, no file
// capability, as UID 101, on ports from 1024 up, and on port 80 only where the pod lowers
// net.ipv4.ip_unprivileged_port_start (the node e2e tests run the image itself).
import { chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { PROJECT_ROOT } from '../controller/project.js';
import { eventually, rootfs } from './lib/env.js';
import { createTestHost, type TestHost } from './lib/netns.js';

/** The image's user (images/Dockerfile: USER 101:101). */
const IMAGE_UID = 101;

let dir: string;
/** dir as seen inside the rootfs. */
let inside: string;

beforeAll(async () => {
  dir = await mkdtemp(join(rootfs(), 'tmp', 'qubesec-image-'));
  inside = dir.slice(rootfs().length);
  await chown(dir, IMAGE_UID, IMAGE_UID);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('images/openssl-oqs.cnf', () => {
  const opensslWith = (conf: string) => execa('chroot', [rootfs(), 'openssl', 'list', '-providers'], { reject: false, env: { OPENSSL_CONF: conf } });

  // OpenSSL passes over a provider it cannot load without an error, so the rootfs (which has no oqs-provider) can show
  // that the file parses and that its provider section decides what is active, not that oqs-provider loads.
  it('is read by OpenSSL 3.5: its provider section activates the default provider', async () => {
    const cnf = await readFile(join(PROJECT_ROOT, 'images', 'openssl-oqs.cnf'), 'utf8');
    await writeFile(join(dir, 'openssl-oqs.cnf'), cnf);
    const shipped = await opensslWith(`${inside}/openssl-oqs.cnf`);
    expect(shipped.exitCode).toBe(0);
    expect(shipped.stdout).toMatch(/default\s+name: OpenSSL Default Provider[\s\S]*status: active/);

    const withoutDefault = cnf.replace(/^default = default_sect\n/m, '');
    expect(withoutDefault).not.toBe(cnf);
    await writeFile(join(dir, 'openssl-without-default.cnf'), withoutDefault);
    const none = await opensslWith(`${inside}/openssl-without-default.cnf`);
    expect(none.stdout).not.toContain('OpenSSL Default Provider');
  });
});

describe('NGINX as the image runs it: UID 101, no capability, no user directive', () => {
  let host: TestHost;

  beforeAll(async () => {
    host = await createTestHost();
    const temp = (name: string) => `${name}_temp_path ${inside}/${name};`;
    for (const port of [80, 8080]) {
      await writeFile(
        join(dir, `nginx-${port}.conf`),
        `pid ${inside}/nginx-${port}.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
    access_log off;
    ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join('\n    ')}
    server { listen ${port}; return 200 "non-root\\n"; }
}
`,
      );
    }
  });

  afterAll(async () => {
    await host.stop();
  });

  const startAsImageUser = (on: TestHost, port: number) =>
    on.spawn('chroot', [`--userspec=${IMAGE_UID}:${IMAGE_UID}`, rootfs(), '/usr/sbin/nginx', '-e', 'stderr', '-c', `${inside}/nginx-${port}.conf`, '-g', 'daemon off;']);

  const answer = (on: TestHost, port: number) =>
    eventually(async () => {
      const response = await fetch(`http://${on.address}:${port}/`);
      return response.status === 200 ? response.text() : undefined;
    }, 10_000, `nginx answering on port ${port}`);

  it('runs the packaged binary, which carries no file capability', async () => {
    const { stdout } = await execa('getcap', [join(rootfs(), 'usr', 'sbin', 'nginx')]);
    expect(stdout).toBe('');
  });

  it('cannot bind port 80', async () => {
    const result = await startAsImageUser(host, 80);
    expect(result.exitCode).not.toBe(0);
    expect(result.all).toMatch(/bind\(\) to 0\.0\.0\.0:80 failed \(13: Permission denied\)/);
  });

  it('binds port 8080 and serves as UID 101 without any effective capability', async () => {
    const child = startAsImageUser(host, 8080);
    expect(await answer(host, 8080)).toBe('non-root\n');
    const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
    expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe(String(IMAGE_UID));
    expect(/^CapEff:\s+(\w+)/m.exec(status)?.[1]).toMatch(/^0+$/);
  });

  // The way images/README.md gives to ports below 1024: the sysctl is per network namespace, as a pod's is.
  it('binds port 80 where the network namespace sets net.ipv4.ip_unprivileged_port_start=80', async () => {
    const lowered = await createTestHost();
    try {
      expect((await lowered.spawn('sysctl', ['-w', 'net.ipv4.ip_unprivileged_port_start=80'])).exitCode).toBe(0);
      startAsImageUser(lowered, 80);
      expect(await answer(lowered, 80)).toBe('non-root\n');
    } finally {
      await lowered.stop();
    }
  });
});
