// Per annotation: a valid use (what it parses to, what it renders) and a bad value (what it says). Shared by the
// annotation unit tests and the renderer's fuzz test, which mixes these values with hostile ones.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Secret } from '@kubernetes/client-node';
import { PROJECT_ROOT } from '../project.js';
import { buildModel } from './build.js';
import { checkCaSecret } from './certificates.js';
import { translateIngress } from './ingress.js';
import { BUILTIN_TLS_DEFAULTS, defaultPolicy } from './pq.js';
import { INGRESS_NGINX_PREFIX as N } from './proxy-annotations.js';
import { CAPABILITIES, endpointSlice, ingress, route, service } from './testing.js';
import type { CertificatePair, Model } from './types.js';

export interface AnnotationCase {
  annotations: Record<string, string>;
  /** Part of the parsed settings. */
  settings: Record<string, unknown>;
  /** Lines the rendered nginx.conf holds (trimmed). */
  rendered: string[];
}

/** A Secret default/ca with an ML-DSA CA in ca.crt: auth-tls-secret and proxy-ssl-secret name it. */
export const CA_SECRET: V1Secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ca', namespace: 'default' }, stringData: { 'ca.crt': readFileSync(join(PROJECT_ROOT, 'controller', 'testdata', 'mldsa-ca.crt'), 'utf8') } };


export const ANNOTATION_CASES: Record<string, AnnotationCase> = {
  'rewrite-target': {
    annotations: { [`${N}rewrite-target`]: '/${host}/$2' },
    settings: { regex: true, rewrite: '/${host}/$2' },
    rendered: ['location ~* "^/app(/|$)(.*)" {', 'rewrite "(?i)^/app(/|$)(.*)" "/${host}/$2" break;'],
  },
  'use-regex': { annotations: { [`${N}use-regex`]: 'true' }, settings: { regex: true }, rendered: ['location ~* "^/app(/|$)(.*)" {'] },
  'ssl-redirect': { annotations: { [`${N}ssl-redirect`]: 'false' }, settings: { httpsRedirect: 'never' }, rendered: [] },
  'force-ssl-redirect': { annotations: { [`${N}force-ssl-redirect`]: 'true' }, settings: { httpsRedirect: 'always' }, rendered: ['return 308 https://$host$request_uri;'] },
  'backend-protocol': {
    annotations: { [`${N}backend-protocol`]: 'grpcs' },
    settings: { protocol: 'GRPCS' },
    rendered: ['set $qubesec_upstreams "default_web_80_tls_', 'grpc_pass grpcs://qubesec;', 'grpc_ssl_conf_command Groups X25519MLKEM768:SecP256r1MLKEM768:SecP384r1MLKEM1024:x25519:secp256r1:secp384r1;', 'grpc_ssl_protocols TLSv1.3;', 'grpc_ssl_name web.default.svc;', 'grpc_set_header Host $host;'],
  },
  'proxy-body-size': { annotations: { [`${N}proxy-body-size`]: '8M' }, settings: { tuning: expect.objectContaining({ bodySize: '8m' }) }, rendered: ['client_max_body_size 8m;'] },
  'proxy-buffer-size': { annotations: { [`${N}proxy-buffer-size`]: '16k' }, settings: { tuning: expect.objectContaining({ bufferSize: '16k' }) }, rendered: ['proxy_buffer_size 16k;', 'proxy_buffers 4 16k;'] },
  'proxy-connect-timeout': { annotations: { [`${N}proxy-connect-timeout`]: '10' }, settings: { tuning: expect.objectContaining({ connectTimeout: 10 }) }, rendered: ['proxy_connect_timeout 10s;'] },
  'proxy-read-timeout': { annotations: { [`${N}proxy-read-timeout`]: '120s' }, settings: { tuning: expect.objectContaining({ readTimeout: 120 }) }, rendered: ['proxy_read_timeout 120s;'] },
  'proxy-send-timeout': { annotations: { [`${N}proxy-send-timeout`]: '30' }, settings: { tuning: expect.objectContaining({ sendTimeout: 30 }) }, rendered: ['proxy_send_timeout 30s;'] },
  'allowlist-source-range': { annotations: { [`${N}allowlist-source-range`]: '10.0.0.0/8, 192.168.1.1' }, settings: { allow: ['10.0.0.0/8', '192.168.1.1'] }, rendered: ['allow 10.0.0.0/8;', 'allow 192.168.1.1;', 'deny all;'] },
  'whitelist-source-range': { annotations: { [`${N}whitelist-source-range`]: 'fd00::/8' }, settings: { allow: ['fd00::/8'] }, rendered: ['allow fd00::/8;', 'deny all;'] },
  'denylist-source-range': { annotations: { [`${N}denylist-source-range`]: '203.0.113.0/24' }, settings: { deny: ['203.0.113.0/24'], allow: [] }, rendered: ['deny 203.0.113.0/24;'] },
  'limit-rps': { annotations: { [`${N}limit-rps`]: '10' }, settings: { rateLimit: { requestsPerSecond: 10, burst: 50 } }, rendered: ['limit_req_zone $binary_remote_addr zone=default_web_rps:5m rate=10r/s;', 'limit_req zone=default_web_rps burst=50 nodelay;'] },
  'limit-burst-multiplier': { annotations: { [`${N}limit-rps`]: '10', [`${N}limit-burst-multiplier`]: '2' }, settings: { rateLimit: { requestsPerSecond: 10, burst: 20 } }, rendered: ['limit_req zone=default_web_rps burst=20 nodelay;'] },
  'limit-connections': { annotations: { [`${N}limit-connections`]: '3' }, settings: { connectionLimit: 3 }, rendered: ['limit_conn_zone $binary_remote_addr zone=default_web_conn:5m;', 'limit_conn default_web_conn 3;'] },
  'enable-cors': {
    annotations: { [`${N}enable-cors`]: 'true' },
    settings: { cors: expect.objectContaining({ origins: ['*'], credentials: true, maxAgeSeconds: 1728000 }) },
    rendered: ['if ($request_method = OPTIONS) {', 'add_header Access-Control-Allow-Origin "*" always;', 'add_header Access-Control-Allow-Methods "GET, PUT, POST, DELETE, PATCH, OPTIONS" always;', 'return 204;'],
  },
  'cors-allow-origin': {
    annotations: { [`${N}enable-cors`]: 'true', [`${N}cors-allow-origin`]: 'https://app.example.com, https://*.example.org:8443' },
    settings: { cors: expect.objectContaining({ origins: ['https://app.example.com', 'https://*.example.org:8443'] }) },
    rendered: ['"https://app.example.com" $http_origin;', '"~^https://[a-z0-9-]+\\.example\\.org:8443$" $http_origin;'],
  },
  'cors-allow-methods': { annotations: { [`${N}enable-cors`]: 'true', [`${N}cors-allow-methods`]: 'get,post' }, settings: { cors: expect.objectContaining({ methods: ['GET', 'POST'] }) }, rendered: ['add_header Access-Control-Allow-Methods "GET, POST" always;'] },
  'cors-allow-headers': { annotations: { [`${N}enable-cors`]: 'true', [`${N}cors-allow-headers`]: 'X-Api-Key, Content-Type' }, settings: { cors: expect.objectContaining({ headers: ['X-Api-Key', 'Content-Type'] }) }, rendered: ['add_header Access-Control-Allow-Headers "X-Api-Key, Content-Type" always;'] },
  'cors-expose-headers': { annotations: { [`${N}enable-cors`]: 'true', [`${N}cors-expose-headers`]: 'X-Trace' }, settings: { cors: expect.objectContaining({ exposeHeaders: ['X-Trace'] }) }, rendered: ['add_header Access-Control-Expose-Headers "X-Trace" always;'] },
  'cors-allow-credentials': { annotations: { [`${N}enable-cors`]: 'true', [`${N}cors-allow-credentials`]: 'false' }, settings: { cors: expect.objectContaining({ credentials: false }) }, rendered: [] },
  'cors-max-age': { annotations: { [`${N}enable-cors`]: 'true', [`${N}cors-max-age`]: '600' }, settings: { cors: expect.objectContaining({ maxAgeSeconds: 600 }) }, rendered: ['add_header Access-Control-Max-Age 600 always;'] },
  affinity: { annotations: { [`${N}affinity`]: 'cookie' }, settings: { affinityCookie: 'INGRESSCOOKIE' }, rendered: ['set $qubesec_upstreams "default_web_80_sticky_INGRESSCOOKIE";', 'require("qubesec").route(503, "qubesec_affinity_INGRESSCOOKIE")', 'add_header Set-Cookie "INGRESSCOOKIE=$qubesec_affinity_INGRESSCOOKIE; Path=/; HttpOnly";'] },
  'session-cookie-name': { annotations: { [`${N}affinity`]: 'cookie', [`${N}session-cookie-name`]: 'route_id' }, settings: { affinityCookie: 'route_id' }, rendered: ['map $cookie_route_id $qubesec_affinity_route_id {', 'set $qubesec_upstreams "default_web_80_sticky_route_id";'] },
  'app-root': { annotations: { [`${N}app-root`]: '/dashboard' }, settings: { appRoot: '/dashboard' }, rendered: ['location = "/" {', 'return 302 "/dashboard";'] },
  'permanent-redirect': { annotations: { [`${N}permanent-redirect`]: 'https://new.example.com$request_uri' }, settings: { redirect: { code: 301, url: 'https://new.example.com$request_uri' } }, rendered: ['return 301 "https://new.example.com$request_uri";'] },
  'permanent-redirect-code': { annotations: { [`${N}permanent-redirect`]: 'https://new.example.com/', [`${N}permanent-redirect-code`]: '308' }, settings: { redirect: { code: 308, url: 'https://new.example.com/' } }, rendered: ['return 308 "https://new.example.com/";'] },
  'temporal-redirect': { annotations: { [`${N}temporal-redirect`]: 'https://maintenance.example.com' }, settings: { redirect: { code: 302, url: 'https://maintenance.example.com' } }, rendered: ['return 302 "https://maintenance.example.com";'] },
  'temporal-redirect-code': { annotations: { [`${N}temporal-redirect`]: 'https://m.example.com', [`${N}temporal-redirect-code`]: '307' }, settings: { redirect: { code: 307, url: 'https://m.example.com' } }, rendered: ['return 307 "https://m.example.com";'] },
  'default-backend': { annotations: { [`${N}default-backend`]: 'errors:80' }, settings: { defaultBackend: { service: 'errors', port: '80' } }, rendered: ['set $qubesec_upstreams "default_web_80 default_errors_80";'] },
  'custom-http-errors': {
    annotations: { [`${N}default-backend`]: 'errors', [`${N}custom-http-errors`]: '404,503' },
    settings: { errorCodes: [404, 503] },
    rendered: ['proxy_intercept_errors on;', 'error_page 404 = @qubesec_error_default_errors_first_404;', 'location @qubesec_error_default_errors_first_503 {', 'proxy_set_header X-Code 503;'],
  },
  'upstream-vhost': { annotations: { [`${N}upstream-vhost`]: 'internal.example.com:8080' }, settings: { upstreamHost: 'internal.example.com:8080' }, rendered: ['proxy_set_header Host "internal.example.com:8080";'] },
  'x-forwarded-prefix': { annotations: { [`${N}x-forwarded-prefix`]: '/api' }, settings: { forwardedPrefix: '/api' }, rendered: ['proxy_set_header X-Forwarded-Prefix "/api";'] },
  'auth-tls-secret': { annotations: { [`${N}auth-tls-secret`]: 'default/ca' }, settings: { clientAuth: { secret: 'default/ca', verify: 'on', depth: 1, passCertificate: false } }, rendered: ['ssl_verify_client on;', 'ssl_verify_depth 1;', 'ssl_client_certificate /run/qubesec/certs/ca-'] },
  'auth-tls-verify-client': { annotations: { [`${N}auth-tls-secret`]: 'ca', [`${N}auth-tls-verify-client`]: 'optional' }, settings: { clientAuth: expect.objectContaining({ verify: 'optional' }) }, rendered: ['ssl_verify_client optional;'] },
  'auth-tls-verify-depth': { annotations: { [`${N}auth-tls-secret`]: 'ca', [`${N}auth-tls-verify-depth`]: '3' }, settings: { clientAuth: expect.objectContaining({ depth: 3 }) }, rendered: ['ssl_verify_depth 3;'] },
  'auth-tls-pass-certificate-to-upstream': { annotations: { [`${N}auth-tls-secret`]: 'ca', [`${N}auth-tls-pass-certificate-to-upstream`]: 'true' }, settings: { clientAuth: expect.objectContaining({ passCertificate: true }) }, rendered: ['proxy_set_header ssl-client-cert $ssl_client_escaped_cert;'] },
  'proxy-ssl-secret': {
    annotations: { [`${N}backend-protocol`]: 'HTTPS', [`${N}proxy-ssl-secret`]: 'default/ca', [`${N}proxy-ssl-verify`]: 'on' },
    settings: { upstreamTls: { secret: 'default/ca', verify: true, serverName: undefined, depth: 1, sendServerName: true } },
    rendered: ['proxy_ssl_verify on;', 'proxy_ssl_trusted_certificate /run/qubesec/certs/ca-', 'set $qubesec_upstreams "default_web_80_tls_', 'proxy_pass https://qubesec;'],
  },
  'proxy-ssl-verify': { annotations: { [`${N}backend-protocol`]: 'HTTPS', [`${N}proxy-ssl-verify`]: 'off' }, settings: { upstreamTls: expect.objectContaining({ verify: false }) }, rendered: ['proxy_ssl_server_name on;'] },
  'proxy-ssl-name': { annotations: { [`${N}backend-protocol`]: 'HTTPS', [`${N}proxy-ssl-name`]: 'backend.internal' }, settings: { upstreamTls: expect.objectContaining({ serverName: 'backend.internal' }) }, rendered: ['proxy_ssl_name backend.internal;'] },
  'proxy-ssl-verify-depth': { annotations: { [`${N}backend-protocol`]: 'HTTPS', [`${N}proxy-ssl-secret`]: 'ca', [`${N}proxy-ssl-verify`]: 'on', [`${N}proxy-ssl-verify-depth`]: '2' }, settings: { upstreamTls: expect.objectContaining({ depth: 2 }) }, rendered: ['proxy_ssl_verify_depth 2;'] },
  'proxy-ssl-server-name': { annotations: { [`${N}backend-protocol`]: 'HTTPS', [`${N}proxy-ssl-server-name`]: 'off' }, settings: { upstreamTls: expect.objectContaining({ sendServerName: false }) }, rendered: ['proxy_ssl_server_name off;'] },
};

/** One bad value per annotation, and the message it must give. */
export const BAD_VALUES: Record<string, [string, RegExp]> = {
  'rewrite-target': ['/$foo', /is not a path starting with "\/"/],
  'use-regex': ['yes', /is not true or false/],
  'ssl-redirect': ['1', /is not true or false/],
  'force-ssl-redirect': ['on', /is not true or false/],
  'backend-protocol': ['FCGI', /is not one of HTTP, HTTPS, GRPC, GRPCS/],
  'proxy-body-size': ['100g', /at most 65536m/],
  'proxy-buffer-size': ['0', /is not a size/],
  'proxy-connect-timeout': ['0', /seconds from 1 to 3600/],
  'proxy-read-timeout': ['1m', /seconds from 1 to 86400/],
  'proxy-send-timeout': ['-1', /seconds/],
  'allowlist-source-range': ['10.0.0.0/33', /"10.0.0.0\/33" is not a IP address or CIDR/],
  'whitelist-source-range': ['example.com', /is not a IP address or CIDR/],
  'denylist-source-range': ['', /is empty/],
  'limit-rps': ['0', /from 1 to 100000/],
  'limit-burst-multiplier': ['1000', /from 1 to 100/],
  'limit-connections': ['many', /whole number/],
  'enable-cors': ['maybe', /true or false/],
  'cors-allow-origin': ['javascript:alert(1)', /is not a origin/],
  'cors-allow-methods': ['GET;', /is not a HTTP method/],
  'cors-allow-headers': ['X-A"b', /is not a header name/],
  'cors-expose-headers': ['a b', /is not a header name/],
  'cors-allow-credentials': ['yes', /true or false/],
  'cors-max-age': ['99999999', /from 0 to 2592000/],
  affinity: ['ip', /is not one of cookie/],
  'session-cookie-name': ['my-cookie', /NGINX cannot read cookies/],
  'app-root': ['dashboard', /must start with "\/"/],
  'permanent-redirect': ['/relative', /absolute http\(s\) URL/],
  'permanent-redirect-code': ['200', /from 300 to 308/],
  'temporal-redirect': ['https://x.com/$remote_addr', /absolute http\(s\) URL/],
  'temporal-redirect-code': ['399', /from 300 to 308/],
  'default-backend': ['Errors', /is not a Service name/],
  'custom-http-errors': ['302', /from 400 to 599/],
  'upstream-vhost': ['a.com;evil', /is not a host name/],
  'x-forwarded-prefix': ['/a b', /must start with "\/" and hold only/],
  'auth-tls-secret': ['a/b/c', /is not a Secret/],
  'auth-tls-verify-client': ['required', /is not one of on, off, optional, optional_no_ca/],
  'auth-tls-verify-depth': ['11', /from 1 to 10/],
  'auth-tls-pass-certificate-to-upstream': ['on', /true or false/],
  'proxy-ssl-secret': ['Bad_Name', /is not a Secret/],
  'proxy-ssl-verify': ['true', /is not on or off/],
  'proxy-ssl-name': ['*.example.com', /is not a host name/],
  'proxy-ssl-verify-depth': ['0', /from 1 to 10/],
  'proxy-ssl-server-name': ['yes', /is not on or off/],
};

/** One Ingress with these annotations on web.example.com (TLS), its Services ready, CA_SECRET checked. */
export function annotatedModel(annotations: Record<string, string>, defaultCertificates: CertificatePair[] = []): Model {
  const tls = { tls: [{ hosts: ['web.example.com'], secretName: 'web-tls' }] };
  const paths = annotations[`${N}rewrite-target`] || annotations[`${N}use-regex`] ? '/app(/|$)(.*)' : '/app';
  const translated = translateIngress(ingress('web', { ...tls, rules: [route('web.example.com', paths, 'ImplementationSpecific', 'web', 80)] }, { annotations }), BUILTIN_TLS_DEFAULTS, CAPABILITIES);
  if (!translated.intent) throw new Error(translated.diagnostics.map((d) => d.message).join('; '));
  const ca = checkCaSecret(CA_SECRET, new Date());
  if ('error' in ca) throw new Error(ca.error);
  const { model } = buildModel({
    intents: [translated.intent],
    services: new Map([['default/web', service('web', [{ port: 80 }])], ['default/errors', service('errors', [{ port: 80 }])]]),
    endpointSlices: new Map([
      ['default/web', [endpointSlice('web', { port: 8080 }, [{ ip: '10.0.0.1' }])]],
      ['default/errors', [endpointSlice('errors', { port: 8080 }, [{ ip: '10.0.0.2' }])]],
    ]),
    certificates: new Map(),
    caBundles: new Map([['default/ca', ca.ca]]),
    defaultPolicy: defaultPolicy(BUILTIN_TLS_DEFAULTS, CAPABILITIES),
    defaultCertificates,
  });
  return model;
}
