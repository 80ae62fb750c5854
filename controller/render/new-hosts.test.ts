// Which new hosts the catch-all path serves before their reload, and what it is told: Ingresses translated and built
// as a sync does, no I/O.
import { buildModel } from '../model/build.js';
import { checkTlsSecret } from '../model/certificates.js';
import { translateIngress } from '../model/ingress.js';
import { BUILTIN_TLS_DEFAULTS, defaultPolicy } from '../model/pq.js';
import { CAPABILITIES, endpointSlice, ingress, route, service, tlsSecret } from '../model/testing.js';
import type { CertificatePair, Model } from '../model/types.js';
import { newHostEntry } from './render.js';
import { RENDER_SETTINGS } from './testing.js';

const NOW = new Date('2026-11-28T00:00:00Z');

function pair(secret: string, file: string): CertificatePair {
  const checked = checkTlsSecret(tlsSecret(secret, file), NOW);
  if ('error' in checked) throw new Error(checked.error);
  return checked.pair;
}

const mldsa = pair('pq-mldsa', 'mldsa65');
const ecdsa = pair('pq-ecdsa', 'ecdsa');
const tls = { tls: [{ hosts: ['pq.example.com'], secretName: 'pq-mldsa' }, { hosts: ['pq.example.com'], secretName: 'pq-ecdsa' }] };

function modelOf(spec: Parameters<typeof ingress>[1], annotations: Record<string, string> = {}): Model {
  const translated = translateIngress(ingress('new', spec, { annotations }), BUILTIN_TLS_DEFAULTS, CAPABILITIES);
  if (!translated.intent) throw new Error(translated.diagnostics.map((d) => d.message).join('; '));
  return buildModel({
    intents: [translated.intent],
    services: new Map([['default/web', service('web', [{ name: 'http', port: 80 }])]]),
    endpointSlices: new Map([['default/web', [endpointSlice('web', { name: 'http', port: 8080 }, [{ ip: '198.18.0.10' }])]]]),
    certificates: new Map([['default/pq-mldsa', mldsa], ['default/pq-ecdsa', ecdsa]]),
    caBundles: new Map(),
    defaultPolicy: defaultPolicy(BUILTIN_TLS_DEFAULTS, CAPABILITIES),
    defaultCertificates: [pair('fake', 'ecdsa')],
  }).model;
}

function entryOf(model: Model, host = 'pq.example.com') {
  return newHostEntry(model.servers.find((s) => s.host === host)!, model, RENDER_SETTINGS);
}

describe('newHostEntry', () => {
  it('serves a plain TLS host with its own certificates, its routes and the redirect to HTTPS', () => {
    const model = modelOf({ ...tls, rules: [route('pq.example.com', '/app', 'Prefix', 'web', 'http'), route('pq.example.com', '/health', 'Exact', 'web', 'http')] });
    const entry = entryOf(model);
    if ('waitsForReload' in entry) throw new Error(entry.waitsForReload);
    const [host, certificates, redirect, ...routes] = entry.line.split(' ');
    expect(host).toBe('pq.example.com');
    // Both pairs, by their fingerprints, as files the line names and the entry writes.
    expect(certificates!.split(',').sort()).toEqual([mldsa, ecdsa].map((p) => `/run/qubesec/certs/${p.fingerprint}.pem`).sort());
    expect([...entry.files.keys()].sort()).toEqual([`${mldsa.fingerprint}.pem`, `${ecdsa.fingerprint}.pem`].sort());
    expect(entry.files.get(`${mldsa.fingerprint}.pem`)).toContain(mldsa.certificatePem.trim());
    expect(entry.files.get(`${mldsa.fingerprint}.pem`)).toContain(mldsa.keyPem.trim());
    // ssl-redirect is on by default for a TLS host, to the HTTPS port clients reach.
    expect(redirect).toBe('443');
    // Kubernetes Prefix /app is NGINX's exact /app and prefix /app/, as the server block's locations.
    const triples = [];
    for (let i = 0; i < routes.length; i += 3) triples.push(routes.slice(i, i + 3).join(' '));
    const upstream = model.upstreams[0]!.name;
    expect(triples.sort()).toEqual([`exact /app ${upstream}`, `exact /health ${upstream}`, `prefix /app/ ${upstream}`].sort());
  });

  it('serves a plain HTTP host without certificates or redirect, and names the redirect port clients use', () => {
    const plain = entryOf(modelOf({ rules: [route('pq.example.com', '/', 'Prefix', 'web', 'http')] }));
    expect('line' in plain && plain.line.split(' ').slice(0, 3)).toEqual(['pq.example.com', '-', '-']);
    const model = modelOf({ ...tls, rules: [route('pq.example.com', '/', 'Prefix', 'web', 'http')] });
    const elsewhere = newHostEntry(model.servers.find((s) => s.host === 'pq.example.com')!, model, { ...RENDER_SETTINGS, httpsRedirectPort: 8443 });
    expect('line' in elsewhere && elsewhere.line.split(' ')[2]).toBe('8443');
    const noRedirect = entryOf(modelOf({ ...tls, rules: [route('pq.example.com', '/', 'Prefix', 'web', 'http')] }, { 'nginx.ingress.kubernetes.io/ssl-redirect': 'false' }));
    expect('line' in noRedirect && noRedirect.line.split(' ')[2]).toBe('-');
  });

  it('names the default-backend annotation\'s upstream after the location\'s own', () => {
    const model = modelOf({ rules: [route('pq.example.com', '/', 'Prefix', 'web', 'http')] }, { 'nginx.ingress.kubernetes.io/default-backend': 'web' });
    const entry = entryOf(model);
    expect('line' in entry && entry.line.split(' ')[5]).toMatch(/^[^,]+,[^,]+$/);
  });

  it.each([
    ['an allowlist', { 'nginx.ingress.kubernetes.io/whitelist-source-range': '198.18.0.0/15' }, /allowlist or denylist/],
    ['a denylist', { 'nginx.ingress.kubernetes.io/denylist-source-range': '198.18.0.0/15' }, /allowlist or denylist/],
    ['a rate limit', { 'nginx.ingress.kubernetes.io/limit-rps': '5' }, /rate or connection limit/],
    ['a connection limit', { 'nginx.ingress.kubernetes.io/limit-connections': '5' }, /rate or connection limit/],
    ['a stricter TLS policy', { 'qubesec.io/pq-mode': 'strict' }, /TLS policy other than the default/],
    ['its own certificate preference', { 'qubesec.io/certificate-preference': 'post-quantum' }, /TLS policy other than the default/],
    ['a regular expression path', { 'nginx.ingress.kubernetes.io/use-regex': 'true' }, /regular expression path/],
    ['a rewrite (which makes the path a regular expression, as in ingress-nginx)', { 'nginx.ingress.kubernetes.io/rewrite-target': '/' }, /regular expression path/],
    ['proxy tuning', { 'nginx.ingress.kubernetes.io/proxy-body-size': '8m' }, /proxy tuning/],
    ['CORS', { 'nginx.ingress.kubernetes.io/enable-cors': 'true' }, /CORS/],
    ['session affinity', { 'nginx.ingress.kubernetes.io/affinity': 'cookie' }, /session affinity/],
    ['an HTTPS backend', { 'nginx.ingress.kubernetes.io/backend-protocol': 'HTTPS' }, /backend protocol HTTPS/],
    ['a permanent redirect', { 'nginx.ingress.kubernetes.io/permanent-redirect': 'https://198.18.0.1/' }, /a redirect/],
  ])('makes a host with %s wait for its reload', (_what, annotations, reason) => {
    const entry = entryOf(modelOf({ ...tls, rules: [route('pq.example.com', '/', 'Prefix', 'web', 'http')] }, annotations));
    expect(entry).toEqual({ waitsForReload: expect.stringMatching(reason) });
  });

  it('makes a host whose location chooses per request (Gateway API matches, weights, header modifiers) wait for its reload', () => {
    const model = modelOf({ ...tls, rules: [route('pq.example.com', '/', 'Prefix', 'web', 'http')] });
    const server = model.servers.find((s) => s.host === 'pq.example.com')!;
    const location = server.locations[0]!;
    if (location.action.kind !== 'proxy') throw new Error('not a proxy location');
    const branched = { ...location, action: { ...location.action, branches: [{ conditions: { headers: [{ name: 'x-v', match: 'exact' as const, value: '2' }], queryParams: [] }, backends: [{ upstream: location.action.upstream, weight: 1 }] }] } };
    const changed: Model = { ...model, servers: model.servers.map((s) => (s === server ? { ...s, locations: [branched] } : s)) };
    expect(entryOf(changed)).toEqual({ waitsForReload: 'Gateway API matches, weights, header modifiers, rewrites or timeouts' });
  });

  it('makes wildcard hosts wait for their reload', () => {
    const model = modelOf({ rules: [route('*.pq.example.com', '/', 'Prefix', 'web', 'http')] });
    expect(entryOf(model, '*.pq.example.com')).toEqual({ waitsForReload: 'a wildcard host' });
  });
});
