// Backends for the e2e tests, inside a test host's network namespace (EndpointSlices refuse loopback addresses).
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { eventually, freePort, rootfs } from './env.js';
import type { TestHost } from './netns.js';

/** The echo backend (controller/cli/echo-backend.ts) as its own process; resolves with its port once it listens. */
export async function startEcho(host: TestHost, name: string): Promise<number> {
  const port = await freePort();
  const child = host.spawn(process.execPath, [fileURLToPath(new URL('./echo-main.js', import.meta.url)), name, String(port), host.address]);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    void child.then((r) => reject(new Error(`echo backend ${name} exited: ${r.all}`)));
  });
  return port;
}

/**
 * NGINX from the PQ rootfs, chrooted, with the configuration at `conf` (a path inside the rootfs): a backend that can
 * report what only a TLS server sees, such as the negotiated group. Resolves once each of `ports` accepts connections.
 */
export async function startRootfsNginx(host: TestHost, conf: string, ports: number[]): Promise<void> {
  const child = host.spawn('chroot', [rootfs(), 'nginx', '-c', conf, '-g', 'daemon off;']);
  const exited = child.then((r) => Promise.reject(new Error(`backend NGINX exited: ${r.all}`)));
  exited.catch(() => undefined); // the test host stops it at the end: not a failure then
  const listening = Promise.all(ports.map((port) => eventually(() => accepts(host.address, port), 10_000, `backend NGINX on ${host.address}:${port}`)));
  await Promise.race([exited, listening]);
}

function accepts(address: string, port: number): Promise<true | undefined> {
  return new Promise((resolve) => {
    const socket = connect(port, address, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(undefined));
  });
}
