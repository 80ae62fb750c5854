// Render settings for unit tests: the paths a production pod would use.
import type { Rendered, RenderSettings } from './render.js';

export const RENDER_SETTINGS: RenderSettings = {
  generation: 'test',
  bindAddress: '',
  httpPort: 80,
  httpsPort: 443,
  httpsRedirectPort: 443,
  statusPort: 10246,
  handshakeLogPort: 5140,
  workerProcesses: 'auto',
  workerConnections: 4096,
  modules: ['/usr/lib/nginx/modules/ndk_http_module.so', '/usr/lib/nginx/modules/ngx_http_lua_module.so', '/usr/lib/nginx/modules/ngx_stream_module.so'],
  paths: { pid: '/run/qubesec/nginx.pid', errorLog: 'stderr', accessLog: '/dev/stdout', temp: '/run/qubesec/tmp', certificates: '/run/qubesec/certs', sockets: '/run/qubesec/sockets', lua: '/run/qubesec/lua', servers: '/run/qubesec/servers' },
};

/**
 * nginx.conf as NGINX reads it: each include of a server block's file replaced by that file, from `files` (the files
 * as written so far; by default the ones this render wrote).
 */
export function inlined(rendered: Pick<Rendered, 'config' | 'serverFiles'>, files: ReadonlyMap<string, string> = rendered.serverFiles): string {
  return rendered.config.replace(/^ {4}include \S+\/([0-9a-f]{32}\.conf);\n/gm, (_line, name: string) => {
    const text = files.get(name);
    if (text === undefined) throw new Error(`nginx.conf includes ${name}, which no render wrote`);
    return text;
  });
}
