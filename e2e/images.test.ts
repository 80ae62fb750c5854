// The image's runtime choices, tried for real on the dev rootfs (same Debian 13 packages) since images cannot be built
// here: the oqs-provider OpenSSL configuration as OpenSSL 3.5 reads it, and NGINX run by a non-root user binding
// port 80 through the file capability images/Dockerfile sets.
import { chown, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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

describe('NGINX as the image runs it: a non-root master, no user directive', () => {
  let host: TestHost;

  beforeAll(async () => {
    host = await createTestHost();
    const nginx = join(dir, 'nginx');
    await copyFile(join(rootfs(), 'usr', 'sbin', 'nginx'), nginx);
    const temp = (name: string) => `${name}_temp_path ${inside}/${name};`;
    await writeFile(
      join(dir, 'nginx.conf'),
      `pid ${inside}/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
    access_log off;
    ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join('\n    ')}
    server { listen 80; return 200 "non-root\\n"; }
}
`,
    );
  });

  afterAll(async () => {
    await host.stop();
  });

  const startAsImageUser = () =>
    host.spawn('chroot', [`--userspec=${IMAGE_UID}:${IMAGE_UID}`, rootfs(), `${inside}/nginx`, '-e', 'stderr', '-c', `${inside}/nginx.conf`, '-g', 'daemon off;']);

  it('cannot bind port 80 without the capability', async () => {
    const result = await startAsImageUser();
    expect(result.exitCode).not.toBe(0);
    expect(result.all).toMatch(/bind\(\) to 0\.0\.0\.0:80 failed \(13: Permission denied\)/);
  });

  it('binds port 80 and serves as UID 101 once `setcap cap_net_bind_service=+ep` is on the binary', async () => {
    await execa('setcap', ['cap_net_bind_service=+ep', join(dir, 'nginx')]);
    const child = startAsImageUser();
    const body = await eventually(async () => {
      const response = await fetch(`http://${host.address}:80/`);
      return response.status === 200 ? response.text() : undefined;
    }, 10_000, 'nginx answering on port 80');
    expect(body).toBe('non-root\n');
    const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
    expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe(String(IMAGE_UID));
  });
});
