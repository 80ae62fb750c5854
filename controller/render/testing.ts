// Render settings for unit tests: the paths a production pod would use.
import type { RenderSettings } from './render.js';

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
  paths: { pid: '/run/qubesec/nginx.pid', errorLog: 'stderr', accessLog: '/dev/stdout', temp: '/run/qubesec/tmp', certificates: '/run/qubesec/certs', sockets: '/run/qubesec/sockets', lua: '/run/qubesec/lua' },
};
