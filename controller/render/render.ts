// Model -> nginx.conf. This module decides how the model maps onto NGINX directives; the templates only lay them out.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import Handlebars from 'handlebars';
import { quote } from '../model/names.js';
import { GROUP_CODEPOINTS, listenerKey, opensslGroupList } from '../model/pq.js';
import { TARGET_VARIABLES } from '../model/proxy-annotations.js';
import { SYSTEM_CAS, type Branch, type CaBundle, type CertificatePair, type ClientAuth, type HeaderEdits, type Location, type LocationAction, type Model, type RedirectTarget, type Server, type TlsPolicy, type Upstream, type UrlRewrite, type ValueMatch } from '../model/types.js';
import { TEMPLATES_DIR } from '../project.js';

/** Where things are, as NGINX sees them (inside its root when it runs chrooted). */
export interface RenderSettings {
  /** Identifies the configuration; the status server reports it so a reload can be confirmed. */
  generation: string;
  /** '' listens on all addresses, else an IP literal (IPv6 in brackets). */
  bindAddress: string;
  httpPort: number;
  httpsPort: number;
  /** The port clients reach HTTPS on (a Service's, say), named in redirects to HTTPS; 443 goes without saying. */
  httpsRedirectPort: number;
  /** 127.0.0.1 port of the controller-only status server. */
  statusPort: number;
  /** 127.0.0.1 UDP port where the controller receives one syslog line per connection. */
  handshakeLogPort: number;
  workerProcesses: number | 'auto';
  workerConnections: number;
  modules: string[];
  /**
   * lua: folder of the qubesec Lua module and the endpoints file it loads at start and reload; servers: folder of the
   * server blocks nginx.conf includes.
   */
  paths: { pid: string; errorLog: string; accessLog: string; temp: string; certificates: string; sockets: string; lua: string; servers: string };
}

export interface Rendered {
  /** The http level and the other contexts; it includes each server block from its file in paths.servers. */
  config: string;
  /**
   * File name (in paths.servers) -> content, of the server blocks rendered in this call: those the ServerBlocks passed
   * to render kept from its last render are named by config only, their files as written then. Files are named by a
   * hash of their content, so a name always means the same block.
   */
  serverFiles: Map<string, string>;
  /** Every server block file config includes (in paths.servers), by name. */
  includedServerFiles: string[];
  /** File name (in paths.certificates) -> content: one PEM (key and certificate) per pair, CA bundles, ticket keys. */
  certificateFiles: Map<string, string | Buffer>;
}

/** The endpoints file NGINX's init_by_lua loads (in paths.lua); endpointLines() gives its content. */
export const ENDPOINTS_FILE = 'endpoints.txt';
/** The Lua module the configuration requires (in paths.lua). */
export const LUA_MODULE_FILE = 'qubesec.lua';
/** The one upstream block every proxying location passes to; its balancer serves all of the model's upstreams. */
const SHARED_UPSTREAM = 'qubesec';
/** Idle connections to pods each worker keeps, over all upstreams (ingress-nginx's upstream-keepalive-connections). */
const KEEPALIVE_CONNECTIONS = 320;

/**
 * Upstream name -> its line in the endpoints file and in updates to the status server's /qubesec/endpoints (read by
 * nginx/lua/qubesec.lua): the name, then address:port of each ready endpoint, IPv6 in brackets.
 */
export function endpointLines(model: Model): Map<string, string> {
  let lines = endpointLinesOfList.get(model.upstreams);
  if (!lines) endpointLinesOfList.set(model.upstreams, (lines = new Map(model.upstreams.map((upstream) => [upstream.name, endpointLine(upstream)]))));
  return lines;
}

/**
 * By the model's list of upstreams: the model builder hands out the same list while no upstream changed, and a sync
 * asks for the lines up to three times (the applier's change check, its files, the render). Callers never change it.
 */
const endpointLinesOfList = new WeakMap<readonly Upstream[], Map<string, string>>();

/** By upstream object: a sync's model holds the unchanged upstreams of the last one, and each sync asks twice. */
const endpointLinesOf = new WeakMap<Upstream, string>();

function endpointLine(upstream: Upstream): string {
  let line = endpointLinesOf.get(upstream);
  if (line === undefined) {
    const endpoints = upstream.endpoints.map((e) => `${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port}`);
    endpointLinesOf.set(upstream, (line = [upstream.name, ...endpoints].join(' ')));
  }
  return line;
}

/**
 * MiB for the shared dictionary of these endpoint lines: what NGINX's slab allocator takes for each entry (a node of
 * about 70 bytes, the name and the endpoints, rounded up to a power of two up to half a page, to whole pages above),
 * twice over so that endpoint updates can grow without a reload, plus 1 MiB for the allocator's own pages.
 */
function endpointsDictionaryMiB(lines: Map<string, string>): number {
  let mib = dictionaryMiBOf.get(lines);
  if (mib === undefined) dictionaryMiBOf.set(lines, (mib = slabMiB(lines)));
  return mib;
}

/** By the lines' map, itself kept while the upstreams are (endpointLinesOfList). */
const dictionaryMiBOf = new WeakMap<Map<string, string>, number>();

function slabMiB(lines: Map<string, string>): number {
  const PAGE = 4096;
  let bytes = 0;
  for (const line of lines.values()) {
    const entry = line.length + 72;
    bytes += entry <= PAGE / 2 ? 2 ** Math.ceil(Math.log2(entry)) : Math.ceil(entry / PAGE) * PAGE;
  }
  return Math.ceil((2 * bytes) / 2 ** 20) + 1;
}

/** The new hosts' table (nginx/lua/qubesec.lua): a few hundred bytes per host, thousands of hosts between reloads. */
const NEW_HOSTS_DICTIONARY_MIB = 8;

/** A host the running NGINX has no server block for, served until the next reload (nginx/lua/qubesec.lua). */
export interface NewHostEntry {
  /** Its line in the status server's /qubesec/new-hosts table. */
  line: string;
  /** Certificate files it names (in paths.certificates), by file name: written before the line is sent. */
  files: Map<string, string>;
}

/**
 * How a host that is not in the running configuration is served before the reload that brings its server block, or
 * why it must wait for that reload: the catch-all path does exactly what the block will do only for plain proxying
 * over the default TLS policy. Anything that protects (allowlists, rate and connection limits, client certificates,
 * a stricter or other TLS policy) or changes the request (rewrites, headers, tuning, error pages, CORS, affinity)
 * waits, so that no request is ever served without it. Pure: no I/O.
 */
export function newHostEntry(server: Server, model: Model, settings: Pick<RenderSettings, 'httpsRedirectPort' | 'paths'>): NewHostEntry | { waitsForReload: string } {
  const waits = (why: string) => ({ waitsForReload: why });
  if (server.passthrough) return waits('TLS passthrough');
  if (server.host === '' || server.host.startsWith('*.')) return waits('a wildcard host');
  if (server.locations.length === 0) return waits('no paths');
  const tls = server.tls;
  if (tls) {
    if (tls.clientAuth) return waits('client certificates (auth-tls)');
    if (listenerKey(tls.policy) !== listenerKey(model.defaultPolicy) || tls.policy.signatureAlgorithms?.join(':') !== model.defaultPolicy.signatureAlgorithms?.join(':')) {
      return waits('a TLS policy other than the default');
    }
  }
  const redirects = new Set(server.locations.map((l) => l.policy.httpsRedirect));
  if (redirects.size > 1) return waits('paths that differ in ssl-redirect');
  const upstreams = new Map(model.upstreams.map((u) => [u.name, u]));
  const routes: string[] = [];
  for (const { match, path, action, policy } of server.locations) {
    if (match === 'regex') return waits(`the regular expression path ${quote(path)}`);
    if (/\s/.test(path)) return waits(`white space in the path ${quote(path)}`);
    if (action.kind !== 'proxy') return waits(action.kind === 'redirect' ? 'a redirect' : 'an unavailable path');
    if (action.branches) return waits('Gateway API matches, weights, header modifiers, rewrites or timeouts');
    if (action.protocol !== 'HTTP') return waits(`backend protocol ${action.protocol}`);
    if (action.rewrite !== undefined || action.upstreamHost !== undefined || action.forwardedPrefix !== undefined || action.errorPages) return waits('a rewrite, upstream-vhost, x-forwarded-prefix or custom-http-errors');
    if (Object.values(action.tuning).some((v) => v !== undefined)) return waits('proxy tuning');
    if (policy.allow.length > 0 || policy.deny.length > 0) return waits('a source-range allowlist or denylist');
    if (policy.rateLimit || policy.connectionLimit) return waits('a rate or connection limit');
    if (policy.cors) return waits('CORS');
    if (upstreams.get(action.upstream)?.affinityCookie) return waits('session affinity');
    routes.push(match, path, action.fallback === undefined ? action.upstream : `${action.upstream},${action.fallback}`);
  }
  const files = new Map<string, string>();
  for (const pair of tls?.certificates ?? []) files.set(`${pair.fingerprint}.pem`, fileContent(pair) as string);
  const certificates = files.size > 0 ? [...files.keys()].map((name) => `${settings.paths.certificates}/${name}`).join(',') : '-';
  const redirect = server.locations[0]!.policy.httpsRedirect ? String(settings.httpsRedirectPort) : '-';
  return { line: [server.host, certificates, redirect, ...routes].join(' '), files };
}

const templates = (() => {
  const hbs = Handlebars.create();
  for (const partial of ['tls', 'location', 'proxy-headers']) hbs.registerPartial(partial, readFileSync(join(TEMPLATES_DIR, `${partial}.hbs`), 'utf8'));
  // noEscape: NGINX is not HTML; values are checked by assertInert below instead.
  const compile = (file: string) => hbs.compile(readFileSync(join(TEMPLATES_DIR, file), 'utf8'), { noEscape: true, strict: true, data: false });
  return { config: compile('nginx.conf.hbs'), server: compile('server.hbs') };
})();

/** The file name of a server block: a hash of its text, so that a name always means the same block. */
export function serverFileName(text: string | Buffer): string {
  return `${createHash('sha256').update(text).digest('hex').slice(0, 32)}.conf`;
}

/** A server's rendered block (its file's name) and what it declared at http level and on disk, for when its server comes again. */
interface ServerBlock {
  /** What the block depends on beyond its server: the render settings and the model-wide values it reads. */
  context: string;
  /** The session-affinity cookie of each location's upstream, which the block names, looked up in `upstreams`. */
  affinity: string;
  upstreams: readonly Upstream[];
  /** Its file in paths.servers, named by a hash of its content: the block's text is not kept in memory. */
  file: string;
  declarations: Declaration[];
  files: [string, FileSource][];
}

/**
 * Server blocks of the last render by server object: the model builder hands out an unchanged server as the same
 * object (model objects are never changed once built), so a change to one Ingress checks and renders one or two
 * blocks, and the others neither build their view nor hash it. Only the last render's blocks are kept, by the name
 * of their file: whoever renders with a ServerBlocks writes the files of each render's serverFiles before the next.
 */
export class ServerBlocks {
  private byServer = new Map<Server, ServerBlock>();

  render(servers: readonly Server[], upstreams: readonly Upstream[], context: string, affinityOf: (server: Server) => string, viewOf: (server: Server) => { view: object; declarations: HttpBlocks; files: Map<string, FileSource> }, rendered: Map<string, string>): ServerBlock[] {
    const next = new Map<Server, ServerBlock>();
    const blocks = servers.map((server, i) => {
      let block = this.byServer.get(server);
      // The same list of upstreams names the same cookies: the affinity is looked up again only when it changed.
      const affinity = block?.upstreams === upstreams ? block.affinity : affinityOf(server);
      // The catch-all server shows the model's default policy and certificates: built afresh every time.
      if (!block || server.host === '' || block.context !== context || block.affinity !== affinity) {
        const { view, declarations, files } = viewOf(server);
        assertInert(view, ['servers', i]);
        const text = templates.server(view);
        const file = serverFileName(text);
        rendered.set(file, text);
        block = { context, upstreams, affinity, file, declarations: declarations.declarations(), files: Array.from(files) };
      } else if (block.upstreams !== upstreams) {
        block = { ...block, upstreams };
      }
      next.set(server, block);
      return block;
    });
    this.byServer = next;
    return blocks;
  }
}

/** Weights are shares of this among a backend's endpoints: divisible by 1 to 6 endpoints. */
const PASSTHROUGH_WEIGHT_SCALE = 120;

/**
 * The stream upstream's servers for a passthrough, each as its tokens: each backend's weight shared among its ready endpoints; a backend
 * refused or without endpoints keeps its share on a socket nobody listens on, so that share of connections is
 * rejected (the spec), never marked failed (max_fails=0) and never retried elsewhere (proxy_next_upstream off).
 */
function passthroughPeers(backends: readonly { upstream: string; weight: number }[], upstreams: ReadonlyMap<string, Upstream>, sockets: string): string[][] {
  const peers: string[][] = [];
  for (const backend of backends) {
    const endpoints = backend.upstream === '' ? [] : upstreams.get(backend.upstream)?.endpoints ?? [];
    if (endpoints.length === 0) {
      peers.push([`unix:${sockets}/rejected.sock`, `weight=${backend.weight * PASSTHROUGH_WEIGHT_SCALE}`, 'max_fails=0']);
      continue;
    }
    const weight = Math.max(1, Math.round((backend.weight * PASSTHROUGH_WEIGHT_SCALE) / endpoints.length));
    for (const e of endpoints) peers.push([`${isIP(e.address) === 6 ? `[${e.address}]` : e.address}:${e.port}`, `weight=${weight}`]);
  }
  return peers;
}

/** Debian's bundle of the system CAs (ca-certificates), in the data-plane image and the test rootfs alike. */
const SYSTEM_CA_FILE = '/etc/ssl/certs/ca-certificates.crt';

/** What a file in paths.certificates is made of; its content is made once per render, not once per server naming it. */
type FileSource = CertificatePair | CaBundle | Buffer;

function fileContent(source: FileSource): string | Buffer {
  if (Buffer.isBuffer(source)) return source;
  return 'keyPem' in source ? `${source.keyPem.trim()}\n${source.certificatePem.trim()}\n` : source.pem;
}

/** `blocks`: the last render's server blocks, kept by a caller that renders again (the applier); a new one renders every block. */
export function render(model: Model, settings: RenderSettings, blocks = new ServerBlocks()): Rendered {
  // Swapped for a server's own while its view is built (ServerBlocks keeps them with its block).
  let certificateFiles = new Map<string, FileSource>();
  const certificateFile = (pair: CertificatePair): string => {
    const name = `${pair.fingerprint}.pem`;
    certificateFiles.set(name, pair);
    return `${settings.paths.certificates}/${name}`;
  };
  const caFile = (ca: CaBundle): string => {
    const name = `ca-${ca.fingerprint}.pem`;
    certificateFiles.set(name, ca);
    return `${settings.paths.certificates}/${name}`;
  };
  // Named by a hash of the key, which reveals nothing of it, so that files stay put across rotations.
  const ticketKeyFile = (key: Buffer): string => {
    const name = `ticket-${createHash('sha256').update(key).digest('hex').slice(0, 16)}.key`;
    certificateFiles.set(name, key);
    return `${settings.paths.certificates}/${name}`;
  };
  // Certificates are named by variables, from maps of the known hosts on the SNI name (one map per certificate slot,
  // a host with fewer pairs repeating its last), so reading the configuration loads no certificate: a worker loads a
  // host's files at its first handshake and keeps them in ssl_certificate_cache. A name no host has maps to the
  // default certificate, so a client's SNI never becomes a file lookup.
  const slots = Math.max(model.defaultCertificates.length, ...model.servers.map((s) => s.tls?.certificates.length ?? 0));
  const slotFiles = (pairs: CertificatePair[]) => Array.from({ length: slots }, (_, i) => certificateFile(pairs[Math.min(i, pairs.length - 1)]!));
  const certificateVariables = Array.from({ length: slots }, (_, i) => `$qubesec_certificate_${i + 1}`);
  const defaultFiles = slotFiles(model.defaultCertificates);
  const mappedServers = model.servers.filter((s) => s.host !== '' && s.tls);
  const mappedFiles = new Set(defaultFiles);
  // Lines made here, not by the template: 25,000 entries at 10,000 hosts cost a Handlebars loop and a check each.
  const mapLines = certificateVariables.map((_, i) => {
    let lines = '';
    for (const server of mappedServers) {
      const pairs = server.tls!.certificates;
      const file = certificateFile(pairs[Math.min(i, pairs.length - 1)]!);
      mappedFiles.add(file);
      lines += `        ${server.host} ${file};\n`;
    }
    return lines;
  });
  const certificateMaps = certificateVariables.map((variable, i) => ({ variable, fallback: defaultFiles[i]! }));
  // newHostDefaults: the catch-all's, whose Lua hook sets a new host's certificates or these (its variables are there
  // only because NGINX wants a certificate: the hook replaces NGINX's own that reads them).
  const tlsView = (policy: TlsPolicy, clientAuth?: ClientAuth, newHostDefaults?: string[]) => ({
    protocols: policy.protocols,
    groups: opensslGroupList(policy.groups),
    // OpenSSL follows the server's signature algorithm order only with server preference on.
    signatureAlgorithms: policy.signatureAlgorithms?.join(':'),
    certificates: certificateVariables,
    newHostDefaults: newHostDefaults && quoted(newHostDefaults.join(',')),
    clientAuth: clientAuth && { verify: clientAuth.verify, depth: clientAuth.depth, ca: clientAuth.ca && caFile(clientAuth.ca) },
  });
  // A host server without ssl_* directives has no SSL context of its own: its handshake runs in its listener's
  // default server's, which names the host's certificates through the maps. Only a host whose TLS differs from that
  // after SNI (client certificates, its own signature algorithm order) needs its own context. The catch-all server has
  // one too, which NGINX picks (by its regular expression name) for a name no server has: its certificates are the
  // default ones, or a new host's, chosen in Lua (newHostEntry).
  const defaultSignatureAlgorithms = model.defaultPolicy.signatureAlgorithms?.join(':');
  const ownContext = (server: Server) => server.tls !== undefined && (server.tls.clientAuth !== undefined || server.tls.policy.signatureAlgorithms?.join(':') !== defaultSignatureAlgorithms);

  // One listener per distinct groups and protocols, the default policy's first; a single one needs no SNI routing.
  const defaultListenerKey = listenerKey(model.defaultPolicy);
  const listeners = new Map([[defaultListenerKey, model.defaultPolicy]]);
  for (const server of model.servers) {
    if (server.tls && !listeners.has(listenerKey(server.tls.policy))) listeners.set(listenerKey(server.tls.policy), server.tls.policy);
  }
  const passthroughServers = model.servers.filter((s) => s.passthrough);
  const sniRouting = listeners.size > 1 || passthroughServers.length > 0;
  // Named by the policy, not its position: while a reload overlaps old and new workers, an old worker's SNI route
  // must still reach a listener with the same policy.
  const sockets = new Map<string, string>();
  const socketOf = (policy: TlsPolicy) => {
    const key = listenerKey(policy);
    let socket = sockets.get(key);
    if (socket === undefined) {
      socket = `${settings.paths.sockets}/tls-${createHash('sha256').update(key).digest('hex').slice(0, 16)}.sock`;
      sockets.set(key, socket);
    }
    return socket;
  };

  // NGINX reads an IPv6 address only in brackets.
  const bind = settings.bindAddress === '' ? '' : isIP(settings.bindAddress) === 6 ? `[${settings.bindAddress}]:` : `${settings.bindAddress}:`;
  const tlsListen = (policy: TlsPolicy) => (sniRouting ? [`unix:${socketOf(policy)}`, 'ssl', 'proxy_protocol'] : [`${bind}${settings.httpsPort}`, 'ssl']);
  const httpsRedirectPort = settings.httpsRedirectPort === 443 ? '' : `:${settings.httpsRedirectPort}`;
  const upstreamsByName = upstreamsByNameOf(model.upstreams);
  // Named by the host, as the policies' sockets are by the policy, so that an old worker's route still leads to it.
  const passthrough = passthroughServers.map((server) => {
    const id = createHash('sha256').update(server.host).digest('hex').slice(0, 16);
    return { host: server.host, socket: `${settings.paths.sockets}/passthrough-${id}.sock`, upstream: `qubesec_passthrough_${id}`, servers: passthroughPeers(server.passthrough!.backends, upstreamsByName, settings.paths.sockets) };
  });
  let http = new HttpBlocks();

  const proxyView = (action: Extract<LocationAction, { kind: 'proxy' }>, location: Location, server: Server, affinityVariable: string | undefined) => {
    const grpc = action.protocol === 'GRPC' || action.protocol === 'GRPCS';
    const tls = action.tls;
    const passCertificate = server.tls?.clientAuth?.passCertificate === true;
    // A branch's URLRewrite hostname: Lua sets the variable the Host header is sent from.
    const hostRewrite = action.branches?.some((b) => b.rewrite?.host !== undefined) ?? false;
    return {
      directive: grpc ? 'grpc' : 'proxy',
      // Locations inherit the http-level proxy headers unless they change one (NGINX replaces the whole set).
      ownHeaders: grpc || action.upstreamHost !== undefined || action.forwardedPrefix !== undefined || passCertificate || hostRewrite,
      hostRewrite,
      // Endpoints are chosen at request time (nginx/lua/qubesec.lua): the fallback serves when the upstream has none.
      pass: `${action.protocol.toLowerCase()}://${SHARED_UPSTREAM}`,
      upstreams: quoted(action.fallback === undefined ? action.upstream : `${action.upstream} ${action.fallback}`),
      branches: action.branches && quoted(branchesValue(action.branches)),
      responseHeaders: action.branches?.some((b) => b.responseHeaders) ?? false,
      affinityVariable,
      http1: !grpc,
      rewrite: action.rewrite && { pattern: quoted(`(?i)${location.path}`), target: quoted(action.rewrite) },
      host: hostRewrite ? '$qubesec_upstream_host' : action.upstreamHost ? quoted(action.upstreamHost) : '$host',
      forwardedPrefix: action.forwardedPrefix && quoted(action.forwardedPrefix),
      passCertificate,
      tuning: {
        bodySize: action.tuning.bodySize,
        bufferSize: action.tuning.bufferSize,
        connectTimeout: seconds(action.tuning.connectTimeout),
        readTimeout: seconds(action.tuning.readTimeout),
        sendTimeout: seconds(action.tuning.sendTimeout),
      },
      tls: tls && {
        protocols: tls.policy.protocols,
        // A client offers a flat list; the server's tiers are its own business.
        groups: tls.policy.groups.flat().join(':'),
        serverName: tls.serverName,
        sendServerName: tls.sendServerName ? 'on' : 'off',
        verify: tls.verify && { ca: tls.verify.ca === SYSTEM_CAS ? SYSTEM_CA_FILE : caFile(tls.verify.ca), depth: tls.verify.depth },
        certificate: tls.clientCertificate && certificateFile(tls.clientCertificate),
      },
      errorPages: action.errorPages?.codes.map((code) => ({ code, location: http.errorLocation(server.host, action.errorPages!.upstream, code) })),
    };
  };

  const locationView = (location: Location, server: Server) => {
    const { policy, action } = location;
    const corsView = policy.cors && {
      origin: http.corsOrigin(policy.cors.origins),
      methods: quoted(policy.cors.methods.join(', ')),
      headers: quoted(policy.cors.headers.join(', ')),
      exposeHeaders: policy.cors.exposeHeaders.length > 0 ? quoted(policy.cors.exposeHeaders.join(', ')) : undefined,
      credentials: policy.cors.credentials,
      maxAge: policy.cors.maxAgeSeconds,
    };
    const upstream = action.kind === 'proxy' ? upstreamsByName.get(action.upstream) : undefined;
    const affinityVariable = upstream?.affinityCookie && http.affinityVariable(upstream.affinityCookie);
    return {
      modifier: { exact: '=', prefix: undefined, regex: '~*' }[location.match],
      path: quoted(location.path),
      httpsRedirect: policy.httpsRedirect ? `https://$host${httpsRedirectPort}$request_uri` : undefined,
      deny: policy.deny,
      allow: policy.allow,
      denyOthers: policy.allow.length > 0,
      rateLimit: policy.rateLimit && { zone: http.requestZone(policy.rateLimit.zone, policy.rateLimit.requestsPerSecond), burst: policy.rateLimit.burst },
      connectionLimit: policy.connectionLimit && { zone: http.connectionZone(policy.connectionLimit.zone), connections: policy.connectionLimit.connections },
      cors: corsView,
      affinityCookie: upstream?.affinityCookie && quoted(`${upstream.affinityCookie}=${affinityVariable}; Path=/; HttpOnly`),
      redirect: action.kind === 'redirect' ? { code: action.code, url: quoted(action.url) } : undefined,
      unavailable: action.kind === 'unavailable',
      proxy: action.kind === 'proxy' ? proxyView(action, location, server, affinityVariable?.slice(1)) : undefined,
    };
  };

  const defaultBackend = model.defaultBackend;
  const serverView = (server: Server) => {
    const catchAll = server.host === '';
    const tls = catchAll ? { policy: model.defaultPolicy, certificates: model.defaultCertificates } : server.tls;
    // Each listen directive as its tokens: the render-time check refuses white space in a bare value. The catch-all
    // is the default server of plain HTTP; for TLS its listener's default server is the policy's (policyDefaults).
    const listen = [[`${bind}${settings.httpPort}`, ...(catchAll ? ['default_server'] : [])]];
    if (tls) listen.push(tlsListen(tls.policy));
    // NGINX tries regular expressions in order after the prefix match: longest first, as ingress-nginx.
    const ordered = [...server.locations.filter((l) => l.match !== 'regex'), ...server.locations.filter((l) => l.match === 'regex').sort((a, b) => b.path.length - a.path.length)];
    return {
      // A regular expression that matches any name: NGINX tries it after every exact and wildcard name, for the
      // SNI as for the Host header, so new hosts and unknown names reach the catch-all's context and locations.
      serverName: catchAll ? quoted('~^') : server.host,
      listen,
      tls: catchAll ? tlsView(model.defaultPolicy, undefined, [...new Set(defaultFiles)]) : tls && ownContext(server) ? tlsView(tls.policy, server.tls?.clientAuth) : undefined,
      newHosts: catchAll ? { defaultBackend: defaultBackend ? quoted(defaultBackend) : '""', pass: `http://${SHARED_UPSTREAM}` } : undefined,
      locations: ordered.map((l) => locationView(l, server)),
      fallback: server.locations.some((l) => l.match === 'prefix' && l.path === '/') ? undefined : { defaultBackend, pass: `http://${SHARED_UPSTREAM}` },
      errorLocations: http.errorLocationsOf(server.host),
    };
  };

  // Before the http-level view: building a server's view declares the zones, maps and error pages it uses. Each
  // server declares into its own, merged here, so that a block kept from the last render brings its declarations.
  const context = JSON.stringify([bind, settings.httpPort, settings.httpsPort, httpsRedirectPort, settings.paths, sniRouting, defaultBackend]);
  const affinityOf = (server: Server) => server.locations.map((l) => (l.action.kind === 'proxy' ? upstreamsByName.get(l.action.upstream)?.affinityCookie ?? '' : '')).join(',');
  const serverFiles = new Map<string, string>();
  const serverBlockList = blocks.render(passthroughServers.length > 0 ? model.servers.filter((s) => !s.passthrough) : model.servers, model.upstreams, context, affinityOf, (server) => {
    const outer = { http, certificateFiles };
    http = new HttpBlocks();
    certificateFiles = new Map();
    try {
      return { view: serverView(server), declarations: http, files: certificateFiles };
    } finally {
      ({ http, certificateFiles } = outer);
    }
  }, serverFiles);
  for (const { declarations, files } of serverBlockList) {
    http.declare(declarations);
    for (const [name, source] of files) certificateFiles.set(name, source);
  }
  const view = {
    generation: settings.generation,
    // Room for every host name (server names, certificate maps): NGINX's default (512) makes it warn and fall back to a slower hash past a few hundred.
    serverNamesHashMaxSize: Math.max(512, 2 * model.servers.length),
    workerProcesses: settings.workerProcesses,
    workerConnections: settings.workerConnections,
    modules: settings.modules,
    paths: settings.paths,
    statusPort: settings.statusPort,
    handshakeLogPort: settings.handshakeLogPort,
    sessionResumption: model.sessionResumption && {
      timeout: `${model.sessionResumption.timeoutSeconds}s`,
      tickets: model.sessionResumption.tickets ? 'on' : 'off',
      ticketKeys: model.sessionResumption.tickets ? model.sessionResumption.ticketKeys.map(ticketKeyFile) : [],
    },
    listen: { https: `${bind}${settings.httpsPort}`, reusePort: false },
    certificateMaps,
    // Every file the maps name, twice over: files are named by their content's fingerprint, so an entry is never stale.
    certificateCacheSize: 2 * mappedFiles.size,
    groupCodepoints: Object.entries(GROUP_CODEPOINTS).map(([code, name]) => ({ code, name })),
    sniRouting: sniRouting
      ? {
          defaultSocket: socketOf(model.defaultPolicy),
          routes: [
            ...model.servers.filter((s) => s.tls && listenerKey(s.tls.policy) !== defaultListenerKey).map((s) => ({ host: s.host, socket: socketOf(s.tls!.policy) })),
            ...passthrough.map((p) => ({ host: p.host, socket: p.socket })),
          ],
          passthrough,
        }
      : undefined,
    policyDefaults: [...listeners.values()].map((policy, i) => ({
      index: i,
      listen: [...tlsListen(policy), 'default_server'],
      // The handshakes of the listener's hosts run in its context (their certificates by the maps); a request reaches
      // it only without a Host header (any name is the catch-all's).
      ...tlsView({ ...policy, certificatePreference: model.defaultPolicy.certificatePreference, signatureAlgorithms: model.defaultPolicy.signatureAlgorithms }),
    })),
    ...http.view(),
    lua: {
      packagePath: quoted(`${settings.paths.lua}/?.lua;;`),
      endpointsFile: `${settings.paths.lua}/${ENDPOINTS_FILE}`,
      dictionaryMiB: endpointsDictionaryMiB(endpointLines(model)),
      newHostsMiB: NEW_HOSTS_DICTIONARY_MIB,
      upstream: SHARED_UPSTREAM,
      keepalive: KEEPALIVE_CONNECTIONS,
    },
  };
  assertInert(view);
  // Server blocks and the hosts' map lines come rendered: each host was checked as its block's serverName (a render
  // with a host that fails refuses the whole configuration), the files are the checked certificates folder and a
  // fingerprint.
  const includedServerFiles = serverBlockList.map((b) => b.file);
  const mapsWithEntries = certificateMaps.map((map, i) => ({ ...map, entries: mapLines[i]! }));
  return { config: templates.config({ ...view, certificateMaps: mapsWithEntries, servers: includedServerFiles.map((file) => `${settings.paths.servers}/${file}`) }), serverFiles, includedServerFiles, certificateFiles: new Map([...certificateFiles].map(([name, source]) => [name, fileContent(source)])) };
}

/** By the model's list of upstreams, which the model builder hands out again while no upstream changed. */
const upstreamsByNameOfList = new WeakMap<readonly Upstream[], Map<string, Upstream>>();

function upstreamsByNameOf(upstreams: readonly Upstream[]): Map<string, Upstream> {
  let byName = upstreamsByNameOfList.get(upstreams);
  if (!byName) upstreamsByNameOfList.set(upstreams, (byName = new Map(upstreams.map((u) => [u.name, u]))));
  return byName;
}

type Declaration =
  | ['requestZone', string, number]
  | ['connectionZone', string]
  | ['corsMap', string, string[]]
  | ['affinityCookie', string];

/** Declarations at http level that locations share: limit zones, CORS origin maps, affinity maps, error pages. */
class HttpBlocks {
  private readonly requestZones = new Map<string, number>();
  private readonly connectionZones = new Set<string>();
  private readonly corsMaps = new Map<string, string[]>();
  private readonly affinityCookies = new Set<string>();
  /** By host, then by location name. */
  private readonly errorLocations = new Map<string, Map<string, { name: string; code: number; upstream: string }>>();

  requestZone(zone: string, requestsPerSecond: number): string {
    this.requestZones.set(zone, requestsPerSecond);
    return zone;
  }

  connectionZone(zone: string): string {
    this.connectionZones.add(zone);
    return zone;
  }

  /** '"*"', or a variable that holds the request's Origin when it is one of `origins`, else is empty. */
  corsOrigin(origins: string[]): string {
    if (origins.includes('*')) return quoted('*');
    const variable = `$qubesec_cors_${createHash('sha256').update(origins.join(',')).digest('hex').slice(0, 12)}`;
    this.corsMaps.set(variable, origins);
    return variable;
  }

  affinityVariable(cookie: string): string {
    this.affinityCookies.add(cookie);
    return `$qubesec_affinity_${cookie}`;
  }

  errorLocation(host: string, upstream: string, code: number): string {
    const name = `@qubesec_error_${upstream}_${code}`;
    let ofHost = this.errorLocations.get(host);
    if (!ofHost) {
      ofHost = new Map();
      this.errorLocations.set(host, ofHost);
    }
    ofHost.set(name, { name, code, upstream });
    return name;
  }

  /**
   * What was declared here for the http level, as calls to replay (declare): a kept server block holds these, smaller
   * than the maps. Error locations are not among them: only their own server's block reads them.
   */
  declarations(): Declaration[] {
    const list: Declaration[] = [];
    for (const [zone, rate] of this.requestZones) list.push(['requestZone', zone, rate]);
    for (const zone of this.connectionZones) list.push(['connectionZone', zone]);
    for (const [variable, origins] of this.corsMaps) list.push(['corsMap', variable, origins]);
    for (const cookie of this.affinityCookies) list.push(['affinityCookie', cookie]);
    // Kept with a server's block: copied to its length (push leaves room for 17).
    return list.slice();
  }

  /** Makes the declarations of another (a server's) here, in their order. */
  declare(declarations: readonly Declaration[]): void {
    for (const d of declarations) {
      if (d[0] === 'requestZone') this.requestZone(d[1], d[2]);
      else if (d[0] === 'connectionZone') this.connectionZone(d[1]);
      else if (d[0] === 'corsMap') this.corsMaps.set(d[1], d[2]);
      else this.affinityVariable(d[1]);
    }
  }

  errorLocationsOf(host: string) {
    return [...(this.errorLocations.get(host)?.values() ?? [])].map((l) => ({ name: l.name, code: l.code, upstream: l.upstream, pass: `http://${SHARED_UPSTREAM}` }));
  }

  view() {
    return {
      requestZones: [...this.requestZones].map(([zone, rate]) => ({ zone, rate })),
      connectionZones: [...this.connectionZones],
      corsMaps: [...this.corsMaps].map(([variable, origins]) => ({
        variable,
        // Exact origins as strings; *.domain as a regular expression for one more label.
        origins: origins.map((o) => quoted(o.includes('*.') ? `~^${o.replace(/\./g, '\\.').replace('*\\.', '[a-z0-9-]+\\.')}$` : o)),
      })),
      affinityCookies: [...this.affinityCookies].map((cookie) => ({ cookie, variable: `$qubesec_affinity_${cookie}` })),
    };
  }
}

function seconds(value: number | undefined): string | undefined {
  return value === undefined ? undefined : `${value}s`;
}

/** One NGINX token in double quotes; assertInert refuses what would end it or expand a variable. */
/** A URI component with nothing but unreserved characters and %XX: one NGINX token, one Lua field. */
function encoded(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * A location's branches as nginx/lua/qubesec.lua's branch() reads them from $qubesec_branches: branches separated by
 * spaces, in order; each a comma-separated list of fields, whose parts are separated by ":" and percent-encoded.
 * m:METHOD, h:name:e|r:value (header), q:name:e|r:value (query parameter), b:upstream:weight (backend),
 * qs:/qa:/qr: and ps:/pa:/pr: (request and response header set, add, remove), uh:host, uf:path and
 * up:prefix:replacement (URL rewrites), t:milliseconds (each attempt's timeout), r:code:scheme:host:port with
 * rf:path or rp:prefix:replacement (a redirect; an empty part keeps the request's).
 */
export function branchesValue(branches: readonly Branch[]): string {
  const field = (...parts: (string | number)[]) => parts.map((p) => encoded(String(p))).join(':');
  const kind = (match: ValueMatch['match']) => (match === 'exact' ? 'e' : 'r');
  const editFields = (prefix: 'q' | 'p', edits: HeaderEdits | undefined) => [
    ...(edits?.set ?? []).map((h) => field(`${prefix}s`, h.name, h.value)),
    ...(edits?.add ?? []).map((h) => field(`${prefix}a`, h.name, h.value)),
    ...(edits?.remove ?? []).map((name) => field(`${prefix}r`, name)),
  ];
  const pathFields = (prefix: 'u' | 'r', path: UrlRewrite['path']) => (path === undefined ? [] : ['full' in path ? field(`${prefix}f`, path.full) : field(`${prefix}p`, path.prefix, path.replacement)]);
  const rewriteFields = (rewrite: UrlRewrite | undefined) => [...(rewrite?.host === undefined ? [] : [field('uh', rewrite.host)]), ...pathFields('u', rewrite?.path)];
  const redirectFields = (r: RedirectTarget | undefined) => (r ? [field('r', r.code, r.scheme ?? '', r.host ?? '', r.port), ...pathFields('r', r.path)] : []);
  return branches.map((b) => [
    ...(b.conditions.method === undefined ? [] : [field('m', b.conditions.method)]),
    ...b.conditions.headers.map((h) => field('h', h.name, kind(h.match), h.value)),
    ...b.conditions.queryParams.map((q) => field('q', q.name, kind(q.match), q.value)),
    ...b.backends.map((x) => field('b', x.upstream, x.weight)),
    ...editFields('q', b.requestHeaders),
    ...editFields('p', b.responseHeaders),
    ...rewriteFields(b.rewrite),
    ...(b.timeoutMs === undefined ? [] : [field('t', b.timeoutMs)]),
    ...redirectFields(b.redirect),
  ].join(',')).join(' ');
}

function quoted(value: string): string {
  return `"${value}"`;
}

// Variables the renderer itself puts into values: request echoes (also allowed in redirect targets, also as ${host})
// and its own maps.
const RENDERED_VARIABLES = `(?:(?:${TARGET_VARIABLES.join('|')}|qubesec_[A-Za-z0-9_]+)(?![A-Za-z0-9_])|\\{(?:${TARGET_VARIABLES.join('|')})\\})`;
// A bare token: nothing that could end a value, start a block or a comment, or expand another variable.
const UNSAFE_BARE = new RegExp(`[\\s\\x00-\\x1f\\x7f;{}"'\\\\#\`]|\\$(?!${RENDERED_VARIABLES})`);
// A quoted token may hold ; { } # (regular expressions): it must not end early, escape, or expand other variables.
const UNSAFE_QUOTED = new RegExp(`["\\x00-\\x1f\\x7f]|\\\\(["'\\\\]|$)|\\$(?![0-9)|]|$|${RENDERED_VARIABLES})`);

// The model boundary already rejects these in user input; this is the second lock, on everything the templates receive.
// The path of a value is only spelled out for the error: building it for every value would cost more than the checks.
function assertInert(view: object, path: (string | number)[] = []): void {
  const visit = (value: unknown): void => {
    if (typeof value === 'string') {
      const isQuoted = value.length >= 2 && value.startsWith('"') && value.endsWith('"');
      const unsafe = isQuoted ? UNSAFE_QUOTED.test(value.slice(1, -1)) : UNSAFE_BARE.test(value);
      if (unsafe) {
        const where = path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('');
        throw new Error(`refusing to render view${where}: ${quote(value)} holds a character NGINX would interpret`);
      }
    } else if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        path.push(i);
        visit(value[i]);
        path.pop();
      }
    } else if (value && typeof value === 'object') {
      for (const key in value) {
        path.push(key);
        visit((value as Record<string, unknown>)[key]);
        path.pop();
      }
    }
  };
  visit(view);
}
