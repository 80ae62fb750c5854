// How the controller reaches the data plane's binaries and files: directly (in the image) or inside a root
// directory via chroot (the development rootfs), where every file NGINX reads must lie under that root.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Capabilities } from '../model/pq.js';

export interface DataPlaneRuntime {
  /** Root directory NGINX runs chrooted in; '' when NGINX sees the same filesystem as the controller. */
  root: string;
  nginxBinary: string;
  opensslBinary: string;
}

/** argv that runs a data-plane binary. */
export function command(runtime: DataPlaneRuntime, binary: string, args: string[]): [string, string[]] {
  return runtime.root === '' ? [binary, args] : ['chroot', [runtime.root, binary, ...args]];
}

/** The controller's path of a file NGINX knows as `path`. */
export function hostPath(runtime: DataPlaneRuntime, path: string): string {
  return runtime.root === '' ? path : join(runtime.root, path);
}

/** Asks the data plane's OpenSSL what it supports, so annotations are checked against the real thing. */
export async function probeCapabilities(runtime: DataPlaneRuntime): Promise<Capabilities> {
  const openssl = (...args: string[]) => {
    const [file, argv] = command(runtime, runtime.opensslBinary, args);
    return execa(file, argv).then((r) => r.stdout.trim());
  };
  const [version, groups, signatureAlgorithms] = await Promise.all([
    openssl('version'),
    openssl('list', '-tls-groups', '-tls1_3'),
    openssl('list', '-tls-signature-algorithms'),
  ]);
  return {
    opensslVersion: /OpenSSL (\S+)/.exec(version)?.[1] ?? version,
    groups: groups.split(':').filter(Boolean),
    signatureAlgorithms: signatureAlgorithms.split(':').filter(Boolean),
  };
}

const MODULES_DIR = '/usr/lib/nginx/modules';
// Lua (with NDK, which it needs) picks endpoints from shared memory; stream routes SNI when hosts differ in TLS policy.
const LUA_MODULES = ['ndk_http_module.so', 'ngx_http_lua_module.so'];
const STREAM_MODULE = 'ngx_stream_module.so';

/** The distribution's dynamic modules QubeSec's configuration uses: Lua is required, stream loaded when present. */
export function defaultModules(runtime: DataPlaneRuntime): string[] {
  const missing = LUA_MODULES.filter((m) => !existsSync(hostPath(runtime, `${MODULES_DIR}/${m}`)));
  if (missing.length > 0) {
    throw new Error(`--nginx-modules is empty and ${missing.map((m) => `${MODULES_DIR}/${m}`).join(', ')} not found: QubeSec needs NGINX's Lua module (Debian: libnginx-mod-http-lua); install it or name the modules with --nginx-modules`);
  }
  const stream = existsSync(hostPath(runtime, `${MODULES_DIR}/${STREAM_MODULE}`)) ? [STREAM_MODULE] : [];
  return [...LUA_MODULES, ...stream].map((m) => `${MODULES_DIR}/${m}`);
}
