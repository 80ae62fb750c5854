// Annotations that shape routing and proxying, read with ingress-nginx's meaning under both qubesec.io/ and
// nginx.ingress.kubernetes.io/ (qubesec.io/ wins when both are set), so a migration only changes the class.
// Each is parsed and bounded here, and only here; docs/annotations.md has a row for each.
import { isIP } from 'node:net';
import type { BackendProtocol, ClientVerification, CorsPolicy, ProxyTuning } from './types.js';
import { checkHost, checkNamespaceName, checkObjectName, checkPath, checkPortName, checkServiceName, quote } from './names.js';

export const INGRESS_NGINX_PREFIX = 'nginx.ingress.kubernetes.io/';
export const COMPAT_PREFIXES = ['qubesec.io/', INGRESS_NGINX_PREFIX] as const;

type Parsed<T> = { value: T } | { error: string };
type Parser<T> = (raw: string) => Parsed<T>;

/** Variables a redirect or rewrite target may use: they only echo the request, none reads configuration. */
export const TARGET_VARIABLES = ['request_uri', 'uri', 'args', 'is_args', 'host', 'scheme'] as const;

const bool: Parser<boolean> = (raw) => {
  const v = raw.trim().toLowerCase();
  return v === 'true' || v === 'false' ? { value: v === 'true' } : { error: `${quote(raw)} is not true or false` };
};

const onOff: Parser<boolean> = (raw) => {
  const v = raw.trim().toLowerCase();
  return v === 'on' || v === 'off' ? { value: v === 'on' } : { error: `${quote(raw)} is not on or off` };
};

function oneOf<T extends string>(values: readonly T[], normalize = (v: string) => v): Parser<T> {
  return (raw) => {
    const v = normalize(raw.trim());
    return (values as readonly string[]).includes(v) ? { value: v as T } : { error: `${quote(raw)} is not one of ${values.join(', ')}` };
  };
}

function integer(min: number, max: number): Parser<number> {
  return (raw) => {
    const v = raw.trim();
    const n = Number(v);
    return /^\d{1,9}$/.test(v) && n >= min && n <= max ? { value: n } : { error: `${quote(raw)} is not a whole number from ${min} to ${max}` };
  };
}

/** Seconds, as ingress-nginx reads them ("60"); a trailing "s" is accepted. */
function seconds(max: number): Parser<number> {
  const parse = integer(1, max);
  return (raw) => {
    const parsed = parse(raw.trim().replace(/s$/, ''));
    return 'error' in parsed ? { error: `${quote(raw)} is not a number of seconds from 1 to ${max}` } : parsed;
  };
}

/** NGINX size syntax, bounded: a number of bytes with an optional k, m or g. */
function size(maxBytes: number, allowZero: boolean): Parser<string> {
  const units: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
  return (raw) => {
    const m = /^(\d{1,10})([kmg]?)$/i.exec(raw.trim());
    const bytes = m ? Number(m[1]) * units[m[2]!.toLowerCase()]! : NaN;
    if (!m || bytes > maxBytes || (bytes === 0 && !allowZero)) {
      return { error: `${quote(raw)} is not a size like 8k, 1m${allowZero ? ' or 0 (no limit)' : ''}, at most ${maxBytes / 1024 ** 2}m` };
    }
    return { value: `${m[1]}${m[2]!.toLowerCase()}` };
  };
}

function list<T>(item: (entry: string) => T | undefined, what: string, max: number): Parser<T[]> {
  return (raw) => {
    const entries = raw.split(',').map((e) => e.trim()).filter((e) => e !== '');
    if (entries.length === 0) return { error: `is empty: list ${what}s separated by ","` };
    if (entries.length > max) return { error: `lists ${entries.length} ${what}s; at most ${max}` };
    const values: T[] = [];
    for (const entry of entries) {
      const value = item(entry);
      if (value === undefined) return { error: `${quote(entry)} is not a ${what}` };
      values.push(value);
    }
    return { value: values };
  };
}

const cidr = (entry: string): string | undefined => {
  const [address, prefix, ...rest] = entry.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || rest.length > 0) return undefined;
  if (prefix === undefined) return address;
  const bits = Number(prefix);
  return /^\d{1,3}$/.test(prefix) && bits <= (family === 4 ? 32 : 128) ? `${address}/${bits}` : undefined;
};

const ORIGIN = /^https?:\/\/(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:\d{1,5})?$/;
const origins: Parser<string[]> = (raw) => {
  if (raw.trim() === '*') return { value: ['*'] };
  return list((e) => (ORIGIN.test(e.toLowerCase()) ? e.toLowerCase() : undefined), 'origin (scheme://host[:port], or * alone)', 64)(raw);
};

const HEADER_NAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;
const headerNames = list((e) => (HEADER_NAME.test(e) || e === '*' ? e : undefined), 'header name', 64);
const methods = list((e) => (/^[A-Za-z]{1,16}$/.test(e) ? e.toUpperCase() : undefined), 'HTTP method', 16);
const cidrs = list(cidr, 'IP address or CIDR', 1000);
const statusCodes = list((e) => (/^[45]\d\d$/.test(e) ? Number(e) : undefined), 'HTTP status from 400 to 599', 32);

/** Paths we put in a Location header or a header value: the path syntax of names.ts. */
const plainPath: Parser<string> = (raw) => {
  const e = checkPath(raw.trim());
  return e ? { error: `${quote(raw)} ${e}` } : { value: raw.trim() };
};

const URL_PART = /^[A-Za-z0-9._~%!&()*+,=:@/?-]*$/;
/**
 * What is left when the allowed variables are taken out must be plain. Variables as NGINX writes them: $host, or
 * ${host} when a name character follows; with captures, $1-$9 (NGINX reads one digit).
 */
function withVariables(rest: string, captures: boolean): boolean {
  const names = TARGET_VARIABLES.join('|');
  const stripped = rest.replace(new RegExp(`\\$(?:(?:${names})(?![A-Za-z0-9_])|\\{(?:${names})\\})`, 'g'), '').replace(captures ? /\$[1-9]/g : /$^/, '');
  return URL_PART.test(stripped);
}

const redirectUrl: Parser<string> = (raw) => {
  const v = raw.trim();
  const m = /^https?:\/\/([a-z0-9.-]+|\[[0-9a-f:]+\])(:\d{1,5})?([/?$].*)?$/i.exec(v);
  if (!m || v.length > 2048 || !withVariables(m[3] ?? '', false)) {
    return { error: `${quote(raw)} is not an absolute http(s) URL (variables allowed: ${TARGET_VARIABLES.map((n) => `$${n}`).join(' ')})` };
  }
  return { value: v };
};

const rewriteTarget: Parser<string> = (raw) => {
  const v = raw.trim();
  if (!v.startsWith('/') || v.length > 2048 || !withVariables(v, true)) {
    return { error: `${quote(raw)} is not a path starting with "/" (captures $1-$9 and ${TARGET_VARIABLES.map((n) => `$${n}`).join(' ')} allowed, also as ${'${host}'})` };
  }
  return { value: v };
};

const upstreamHost: Parser<string> = (raw) => {
  const [host, port, ...rest] = raw.trim().toLowerCase().split(':');
  const portOk = port === undefined || (/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535);
  return host && !host.startsWith('*') && checkHost(host) === undefined && portOk && rest.length === 0
    ? { value: raw.trim().toLowerCase() }
    : { error: `${quote(raw)} is not a host name with an optional :port` };
};

const serverName: Parser<string> = (raw) => {
  const v = raw.trim().toLowerCase();
  return checkHost(v) === undefined && !v.startsWith('*') ? { value: v } : { error: `${quote(raw)} is not a host name` };
};

const cookieName: Parser<string> = (raw) =>
  /^[A-Za-z0-9_]{1,64}$/.test(raw.trim())
    ? { value: raw.trim() }
    : { error: `${quote(raw)} is not a cookie name of letters, digits and "_" (NGINX cannot read cookies with other characters)` };

/** "namespace/name" as ingress-nginx writes it, or "name"; the namespace is checked against the Ingress's later. */
const secretRef: Parser<{ namespace?: string; name: string }> = (raw) => {
  const parts = raw.trim().split('/');
  const [namespace, name] = parts.length === 2 ? parts : [undefined, parts[0]];
  if (parts.length > 2 || !name || checkObjectName(name) || (namespace !== undefined && checkNamespaceName(namespace))) {
    return { error: `${quote(raw)} is not a Secret as namespace/name or name` };
  }
  return { value: { namespace, name } };
};

/** A Service of the Ingress's namespace: "name" (its first port) or "name:port". */
const serviceRef: Parser<{ service: string; port: string }> = (raw) => {
  const [service = '', port = '', ...rest] = raw.trim().split(':');
  const portOk = port === '' || (/^\d+$/.test(port) ? Number(port) >= 1 && Number(port) <= 65535 : checkPortName(port) === undefined);
  return checkServiceName(service) === undefined && portOk && rest.length === 0
    ? { value: { service, port } }
    : { error: `${quote(raw)} is not a Service name with an optional :port` };
};

const BACKEND_PROTOCOLS: readonly BackendProtocol[] = ['HTTP', 'HTTPS', 'GRPC', 'GRPCS'];
const CLIENT_VERIFY = ['on', 'off', 'optional', 'optional_no_ca'] as const;

/** Every annotation of this module by name (after the prefix), with its parser. */
export const PROXY_ANNOTATIONS = {
  'rewrite-target': rewriteTarget,
  'use-regex': bool,
  'ssl-redirect': bool,
  'force-ssl-redirect': bool,
  'backend-protocol': oneOf(BACKEND_PROTOCOLS, (v) => v.toUpperCase()),
  'proxy-body-size': size(64 * 1024 ** 3, true),
  'proxy-buffer-size': size(8 * 1024 ** 2, false),
  'proxy-connect-timeout': seconds(3600),
  'proxy-read-timeout': seconds(86400),
  'proxy-send-timeout': seconds(86400),
  'allowlist-source-range': cidrs,
  'whitelist-source-range': cidrs,
  'denylist-source-range': cidrs,
  'limit-rps': integer(1, 100_000),
  'limit-burst-multiplier': integer(1, 100),
  'limit-connections': integer(1, 100_000),
  'enable-cors': bool,
  'cors-allow-origin': origins,
  'cors-allow-methods': methods,
  'cors-allow-headers': headerNames,
  'cors-expose-headers': headerNames,
  'cors-allow-credentials': bool,
  'cors-max-age': integer(0, 30 * 86400),
  affinity: oneOf(['cookie'] as const),
  'session-cookie-name': cookieName,
  'app-root': plainPath,
  'permanent-redirect': redirectUrl,
  'permanent-redirect-code': integer(300, 308),
  'temporal-redirect': redirectUrl,
  'temporal-redirect-code': integer(300, 308),
  'default-backend': serviceRef,
  'custom-http-errors': statusCodes,
  'upstream-vhost': upstreamHost,
  'x-forwarded-prefix': plainPath,
  'auth-tls-secret': secretRef,
  'auth-tls-verify-client': oneOf(CLIENT_VERIFY),
  'auth-tls-verify-depth': integer(1, 10),
  'auth-tls-pass-certificate-to-upstream': bool,
  'proxy-ssl-secret': secretRef,
  'proxy-ssl-verify': onOff,
  'proxy-ssl-name': serverName,
  'proxy-ssl-verify-depth': integer(1, 10),
  'proxy-ssl-server-name': onOff,
} as const;

type Name = keyof typeof PROXY_ANNOTATIONS;
type ValueOf<P> = P extends Parser<infer T> ? T : never;
type Values = { [K in Name]?: ValueOf<(typeof PROXY_ANNOTATIONS)[K]> };

/** What an Ingress's annotations ask of routing and proxying; secrets are still references (namespace/name). */
export interface ProxySettings {
  /** Paths are case-insensitive regular expressions (use-regex, or implied by rewrite-target). */
  regex: boolean;
  rewrite?: string;
  /** tls-hosts: plain HTTP to a TLS host is redirected (the default); always: also hosts without TLS. */
  httpsRedirect: 'tls-hosts' | 'always' | 'never';
  protocol: BackendProtocol;
  tuning: ProxyTuning;
  allow: string[];
  deny: string[];
  rateLimit?: { requestsPerSecond: number; burst: number };
  connectionLimit?: number;
  cors?: CorsPolicy;
  affinityCookie?: string;
  appRoot?: string;
  redirect?: { code: number; url: string };
  defaultBackend?: { service: string; port: string };
  errorCodes?: number[];
  upstreamHost?: string;
  forwardedPrefix?: string;
  clientAuth?: { secret?: string; verify: ClientVerification; depth: number; passCertificate: boolean };
  upstreamTls?: { secret?: string; verify: boolean; serverName?: string; depth: number; sendServerName: boolean };
}

export interface ProxySettingsResult {
  settings: ProxySettings;
  errors: string[];
  /** Settings that parse but do nothing as combined; the Ingress is still served. */
  warnings: string[];
}

/** Defaults as ingress-nginx's, so an Ingress means the same on both. */
const CORS_DEFAULTS = {
  methods: ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS'],
  headers: ['DNT', 'Keep-Alive', 'User-Agent', 'X-Requested-With', 'If-Modified-Since', 'Cache-Control', 'Content-Type', 'Range', 'Authorization'],
  maxAgeSeconds: 1728000,
};
const BURST_MULTIPLIER = 5;

/**
 * Reads the proxy annotations of an Ingress in `namespace`. `hasDefaultBackend` tells whether the controller has a
 * default backend (--default-backend-service) for custom-http-errors without a default-backend annotation.
 */
export function parseProxyAnnotations(annotations: Record<string, string> | undefined, namespace: string, hasDefaultBackend: boolean): ProxySettingsResult {
  const errors: string[] = [];
  const warnings: string[] = [];
  const keys: Partial<Record<Name, string>> = {};
  const v: Values = {};
  for (const name of Object.keys(PROXY_ANNOTATIONS) as Name[]) {
    const key = COMPAT_PREFIXES.map((p) => p + name).find((k) => annotations?.[k] !== undefined);
    if (key === undefined) continue;
    keys[name] = key;
    const parsed = (PROXY_ANNOTATIONS[name] as Parser<unknown>)(annotations![key]!);
    if ('error' in parsed) errors.push(`annotation ${key}: ${parsed.error}`);
    else (v as Record<string, unknown>)[name] = parsed.value;
  }
  const key = (name: Name) => keys[name] ?? `${INGRESS_NGINX_PREFIX}${name}`;
  const unused = (names: Name[], because: string) => {
    for (const name of names) if (keys[name] !== undefined) warnings.push(`annotation ${key(name)} has no effect ${because}`);
  };
  const ownSecret = (name: 'auth-tls-secret' | 'proxy-ssl-secret'): string | undefined => {
    const ref = v[name];
    if (!ref) return undefined;
    // Another namespace's CA or client key must not be usable by whoever may write Ingresses here.
    if (ref.namespace !== undefined && ref.namespace !== namespace) {
      errors.push(`annotation ${key(name)}: Secret ${ref.namespace}/${ref.name} is not in the Ingress's namespace ${namespace}`);
      return undefined;
    }
    return `${namespace}/${ref.name}`;
  };

  const settings: ProxySettings = {
    regex: v['use-regex'] === true || v['rewrite-target'] !== undefined,
    rewrite: v['rewrite-target'],
    httpsRedirect: v['force-ssl-redirect'] === true ? 'always' : v['ssl-redirect'] === false ? 'never' : 'tls-hosts',
    protocol: v['backend-protocol'] ?? 'HTTP',
    tuning: {
      bodySize: v['proxy-body-size'],
      bufferSize: v['proxy-buffer-size'],
      connectTimeout: v['proxy-connect-timeout'],
      readTimeout: v['proxy-read-timeout'],
      sendTimeout: v['proxy-send-timeout'],
    },
    allow: v['allowlist-source-range'] ?? v['whitelist-source-range'] ?? [],
    deny: v['denylist-source-range'] ?? [],
    affinityCookie: v.affinity === 'cookie' ? (v['session-cookie-name'] ?? 'INGRESSCOOKIE') : undefined,
    appRoot: v['app-root'],
    upstreamHost: v['upstream-vhost'],
    forwardedPrefix: v['x-forwarded-prefix'],
  };
  if (v['allowlist-source-range'] && v['whitelist-source-range']) unused(['whitelist-source-range'], `next to ${key('allowlist-source-range')}, which wins`);
  if (v.affinity === undefined) unused(['session-cookie-name'], 'without affinity: cookie');

  if (v['limit-rps'] !== undefined) {
    settings.rateLimit = { requestsPerSecond: v['limit-rps'], burst: v['limit-rps'] * (v['limit-burst-multiplier'] ?? BURST_MULTIPLIER) };
  } else unused(['limit-burst-multiplier'], 'without limit-rps');
  settings.connectionLimit = v['limit-connections'];

  const corsKeys: Name[] = ['cors-allow-origin', 'cors-allow-methods', 'cors-allow-headers', 'cors-expose-headers', 'cors-allow-credentials', 'cors-max-age'];
  if (v['enable-cors'] === true) {
    settings.cors = {
      origins: v['cors-allow-origin'] ?? ['*'],
      methods: v['cors-allow-methods'] ?? CORS_DEFAULTS.methods,
      headers: v['cors-allow-headers'] ?? CORS_DEFAULTS.headers,
      exposeHeaders: v['cors-expose-headers'] ?? [],
      credentials: v['cors-allow-credentials'] ?? true,
      maxAgeSeconds: v['cors-max-age'] ?? CORS_DEFAULTS.maxAgeSeconds,
    };
  } else unused(corsKeys, 'without enable-cors: "true"');

  if (v['permanent-redirect'] !== undefined && v['temporal-redirect'] !== undefined) {
    errors.push(`annotations ${key('permanent-redirect')} and ${key('temporal-redirect')}: set one, not both`);
  } else if (v['permanent-redirect'] !== undefined) {
    settings.redirect = { code: v['permanent-redirect-code'] ?? 301, url: v['permanent-redirect'] };
  } else if (v['temporal-redirect'] !== undefined) {
    settings.redirect = { code: v['temporal-redirect-code'] ?? 302, url: v['temporal-redirect'] };
  }
  if (v['permanent-redirect'] === undefined) unused(['permanent-redirect-code'], 'without permanent-redirect');
  if (v['temporal-redirect'] === undefined) unused(['temporal-redirect-code'], 'without temporal-redirect');

  settings.defaultBackend = v['default-backend'];
  if (v['custom-http-errors'] !== undefined) {
    if (!settings.defaultBackend && !hasDefaultBackend) {
      errors.push(`annotation ${key('custom-http-errors')}: needs ${key('default-backend')} or the controller's --default-backend-service to serve the error pages`);
    }
    settings.errorCodes = v['custom-http-errors'];
  }

  const verify = v['auth-tls-verify-client'] ?? 'on';
  const clientCa = ownSecret('auth-tls-secret');
  if (v['auth-tls-secret'] !== undefined || (v['auth-tls-verify-client'] !== undefined && verify !== 'off')) {
    if (verify !== 'off') {
      if (clientCa === undefined && verify !== 'optional_no_ca' && !errors.some((e) => e.includes(key('auth-tls-secret')))) {
        errors.push(`annotation ${key('auth-tls-verify-client')}: ${verify} needs ${key('auth-tls-secret')} (a Secret with ca.crt)`);
      }
      settings.clientAuth = { secret: clientCa, verify, depth: v['auth-tls-verify-depth'] ?? 1, passCertificate: v['auth-tls-pass-certificate-to-upstream'] ?? false };
    }
  } else unused(['auth-tls-verify-depth', 'auth-tls-pass-certificate-to-upstream'], 'without auth-tls-secret');

  const upstreamSecret = ownSecret('proxy-ssl-secret');
  const tlsUpstream = settings.protocol === 'HTTPS' || settings.protocol === 'GRPCS';
  if (tlsUpstream) {
    const verifyUpstream = v['proxy-ssl-verify'] ?? false;
    if (verifyUpstream && upstreamSecret === undefined && !errors.some((e) => e.includes(key('proxy-ssl-secret')))) {
      errors.push(`annotation ${key('proxy-ssl-verify')}: on needs ${key('proxy-ssl-secret')} (a Secret with ca.crt)`);
    }
    settings.upstreamTls = {
      secret: upstreamSecret,
      verify: verifyUpstream,
      serverName: v['proxy-ssl-name'],
      depth: v['proxy-ssl-verify-depth'] ?? 1,
      sendServerName: v['proxy-ssl-server-name'] ?? true,
    };
  } else {
    unused(['proxy-ssl-secret', 'proxy-ssl-verify', 'proxy-ssl-name', 'proxy-ssl-verify-depth', 'proxy-ssl-server-name'], `with backend-protocol ${settings.protocol} (only HTTPS and GRPCS)`);
  }
  return { settings, errors, warnings };
}
