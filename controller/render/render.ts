// Model -> nginx.conf. This module decides how the model maps onto NGINX directives; the templates only lay them out.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Handlebars from 'handlebars';
import { GROUP_CODEPOINTS, opensslGroupList, policyKey, samePolicy } from '../model/pq.js';
import type { CertificatePair, Model, Server, TlsPolicy } from '../model/types.js';
import { TEMPLATES_DIR } from '../project.js';

/** Where things are, as NGINX sees them (inside its root when it runs chrooted). */
export interface RenderSettings {
  /** Identifies the configuration; the status server reports it so a reload can be confirmed. */
  generation: string;
  /** '' listens on all addresses, else an IP literal (IPv6 in brackets). */
  bindAddress: string;
  httpPort: number;
  httpsPort: number;
  /** 127.0.0.1 port of the controller-only status server. */
  statusPort: number;
  /** 127.0.0.1 UDP port where the controller receives one syslog line per connection. */
  handshakeLogPort: number;
  workerProcesses: number | 'auto';
  workerConnections: number;
  modules: string[];
  paths: { pid: string; errorLog: string; accessLog: string; temp: string; certificates: string; sockets: string };
}

export interface Rendered {
  config: string;
  /** File name (in paths.certificates) -> content, one PEM (key and certificate) per pair. */
  certificateFiles: Map<string, string>;
}

const templates = (() => {
  const hbs = Handlebars.create();
  hbs.registerPartial('tls', readFileSync(join(TEMPLATES_DIR, 'tls.hbs'), 'utf8'));
  // noEscape: NGINX is not HTML; values are checked by assertInert below instead.
  return { config: hbs.compile(readFileSync(join(TEMPLATES_DIR, 'nginx.conf.hbs'), 'utf8'), { noEscape: true, strict: true }) };
})();

export function render(model: Model, settings: RenderSettings): Rendered {
  const certificateFiles = new Map<string, string>();
  const certificateFile = (pair: CertificatePair): string => {
    const name = `${pair.fingerprint}.pem`;
    certificateFiles.set(name, `${pair.keyPem.trim()}\n${pair.certificatePem.trim()}\n`);
    return `${settings.paths.certificates}/${name}`;
  };
  const tlsView = (policy: TlsPolicy, certificates: CertificatePair[]) => ({
    protocols: policy.protocols.join(' '),
    groups: opensslGroupList(policy.groups),
    certificates: certificates.map(certificateFile),
  });

  // One listener per distinct TLS policy, the default policy's first; a single policy needs no SNI routing.
  const policies = [model.defaultPolicy];
  for (const server of model.servers) {
    if (server.tls && !policies.some((p) => samePolicy(p, server.tls!.policy))) policies.push(server.tls.policy);
  }
  const sniRouting = policies.length > 1;
  const socketOf = (policy: TlsPolicy) =>
    `${settings.paths.sockets}/tls-${policies.findIndex((p) => policyKey(p) === policyKey(policy))}.sock`;

  const bind = settings.bindAddress === '' ? '' : `${settings.bindAddress}:`;
  const httpsRedirectPort = settings.httpsPort === 443 ? '' : `:${settings.httpsPort}`;
  const emptyUpstreams = new Set(model.upstreams.filter((u) => u.endpoints.length === 0).map((u) => u.name));

  const serverView = (server: Server) => {
    const catchAll = server.host === '';
    const tls = catchAll ? { policy: model.defaultPolicy, certificates: model.defaultCertificates } : server.tls;
    const listen = [`${bind}${settings.httpPort}${catchAll ? ' default_server' : ''}`];
    if (tls) {
      listen.push(
        sniRouting
          ? `unix:${socketOf(tls.policy)} ssl proxy_protocol${catchAll ? ' default_server' : ''}`
          : `${bind}${settings.httpsPort} ssl${catchAll ? ' default_server' : ''}`,
      );
    }
    return {
      serverName: catchAll ? '_' : server.host,
      listen,
      tls: tls ? tlsView(tls.policy, tls.certificates) : undefined,
      // As ingress-nginx: plain HTTP to a TLS host is redirected (308 keeps the method and body).
      httpsRedirect: !catchAll && server.tls ? `https://$host${httpsRedirectPort}$request_uri` : undefined,
      locations: server.locations.map((l) => ({
        modifier: l.match === 'exact' ? '= ' : '',
        path: l.path,
        upstream: emptyUpstreams.has(l.upstream) ? undefined : l.upstream,
      })),
      hasRootLocation: server.locations.some((l) => l.match === 'prefix' && l.path === '/'),
    };
  };

  const view = {
    generation: settings.generation,
    workerProcesses: settings.workerProcesses,
    workerConnections: settings.workerConnections,
    modules: settings.modules,
    paths: settings.paths,
    statusPort: settings.statusPort,
    handshakeLogPort: settings.handshakeLogPort,
    listen: { https: `${bind}${settings.httpsPort}`, reusePort: false },
    groupCodepoints: Object.entries(GROUP_CODEPOINTS).map(([code, name]) => ({ code, name })),
    sniRouting: sniRouting
      ? {
          defaultSocket: socketOf(model.defaultPolicy),
          routes: model.servers
            .filter((s) => s.tls && !samePolicy(s.tls.policy, model.defaultPolicy))
            .map((s) => ({ host: s.host, socket: socketOf(s.tls!.policy) })),
        }
      : undefined,
    policyDefaults: sniRouting
      ? policies.slice(1).map((policy, i) => ({
          index: i + 1,
          socket: socketOf(policy),
          ...tlsView(policy, model.defaultCertificates),
        }))
      : [],
    upstreams: model.upstreams
      .filter((u) => u.endpoints.length > 0)
      .map((u) => ({
        name: u.name,
        service: `${u.service.namespace}/${u.service.name}:${u.service.port}`,
        endpoints: u.endpoints.map((e) => `${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port}`),
      })),
    servers: model.servers.map(serverView),
  };
  assertInert(view, 'view');
  return { config: templates.config(view), certificateFiles };
}

// Characters that could end a value, start a block or a comment, or expand a variable in nginx.conf. The model
// boundary already rejects them in user input; this is the second lock, on everything the templates receive.
const UNSAFE = /[;{}"'\\#`\r\n]|\$(?!host\b|request_uri\b)/;

function assertInert(value: unknown, where: string): void {
  if (typeof value === 'string') {
    if (UNSAFE.test(value)) throw new Error(`refusing to render ${where}: ${JSON.stringify(value)} holds a character NGINX would interpret`);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => assertInert(v, `${where}[${i}]`));
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) assertInert(v, `${where}.${k}`);
  }
}
