// Golden files for representative configurations. QUBESEC_UPDATE_GOLDEN=1 rewrites them; review the diff.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildModel } from '../model/build.js';
import { checkTlsSecret } from '../model/certificates.js';
import { translateIngress } from '../model/ingress.js';
import { BUILTIN_TLS_DEFAULTS, defaultPolicy } from '../model/pq.js';
import { CAPABILITIES, endpointSlice, ingress, route, service, tlsSecret } from '../model/testing.js';
import type { Branch, CertificatePair, Model } from '../model/types.js';
import { PROJECT_ROOT } from '../project.js';
import { branchesValue, render, ServerBlocks, type RenderSettings } from './render.js';
import { inlined, RENDER_SETTINGS } from './testing.js';

const SETTINGS = RENDER_SETTINGS;

/** The configuration NGINX reads, its server blocks in place. */
const renderedText = (model: Model, settings: RenderSettings = SETTINGS) => inlined(render(model, settings));

function pair(secret: string, file: string): CertificatePair {
  const checked = checkTlsSecret(tlsSecret(secret, file), new Date('2026-11-28T00:00:00Z'));
  if ('error' in checked) throw new Error(checked.error);
  return checked.pair;
}

function modelOf(ingresses: Parameters<typeof translateIngress>[0][]): Model {
  return buildModel({
    intents: ingresses.map((i) => translateIngress(i, BUILTIN_TLS_DEFAULTS, CAPABILITIES).intent!),
    services: new Map([['default/web', service('web', [{ name: 'http', port: 80 }])], ['default/empty', service('empty', [{ port: 80 }])]]),
    endpointSlices: new Map([['default/web', [endpointSlice('web', { name: 'http', port: 8080 }, [{ ip: '10.0.0.1' }, { ip: 'fd00::1' }])]]]),
    certificates: new Map([['default/pq-mldsa', pair('pq-mldsa', 'mldsa65')], ['default/pq-ecdsa', pair('pq-ecdsa', 'ecdsa')]]),
    caBundles: new Map(),
    defaultPolicy: defaultPolicy(BUILTIN_TLS_DEFAULTS, CAPABILITIES),
    defaultCertificates: [pair('fake', 'ecdsa')],
  }).model;
}

const dualCertificates = { tls: [{ hosts: ['pq.example.com'], secretName: 'pq-mldsa' }, { hosts: ['pq.example.com'], secretName: 'pq-ecdsa' }] };

const CASES: Record<string, Model> = {
  'hybrid-dual-certificates': modelOf([
    ingress('web', { ...dualCertificates, rules: [route('pq.example.com', '/', 'Prefix', 'web', 'http'), route('pq.example.com', '/health', 'Exact', 'web', 80)] }),
  ]),
  'policies-per-host': modelOf([
    ingress('web', { ...dualCertificates, rules: [route('pq.example.com', '/', 'Prefix', 'web', 'http')] }),
    ingress('strict', { tls: [{ hosts: ['*.pq.example.com'], secretName: 'pq-mldsa' }], rules: [route('*.pq.example.com', '/api', 'Prefix', 'web', 'http')] }, { annotations: { 'qubesec.io/pq-mode': 'strict' } }),
  ]),
  'certificate-preference-per-host': modelOf([
    ingress('web', { ...dualCertificates, rules: [route('pq.example.com', '/', 'Prefix', 'web', 'http')] }, { annotations: { 'qubesec.io/certificate-preference': 'classical' } }),
    ingress('api', { tls: [{ hosts: ['api.pq.example.com'], secretName: 'pq-mldsa' }, { hosts: ['api.pq.example.com'], secretName: 'pq-ecdsa' }], rules: [route('api.pq.example.com', '/', 'Prefix', 'web', 'http')] }, { annotations: { 'qubesec.io/certificate-preference': 'post-quantum' } }),
  ]),
  'plain-http-and-empty-upstream': modelOf([
    ingress('plain', { rules: [route('plain.example.com', '/app', 'ImplementationSpecific', 'empty', 80)] }),
  ]),
  'session-tickets-with-policies-per-host': {
    ...modelOf([
      ingress('web', { ...dualCertificates, rules: [route('pq.example.com', '/', 'Prefix', 'web', 'http')] }),
      ingress('strict', { tls: [{ hosts: ['*.pq.example.com'], secretName: 'pq-mldsa' }], rules: [route('*.pq.example.com', '/api', 'Prefix', 'web', 'http')] }, { annotations: { 'qubesec.io/pq-mode': 'strict' } }),
    ]),
    sessionResumption: { timeoutSeconds: 600, tickets: true, ticketKeys: [Buffer.alloc(80, 2), Buffer.alloc(80, 1)] },
  },
};

describe('render', () => {
  it.each(Object.keys(CASES))('renders %s as its golden file', (name) => {
    const text = renderedText(CASES[name]!);
    const golden = join(PROJECT_ROOT, 'controller', 'render', 'testdata', `${name}.conf`);
    if (process.env.QUBESEC_UPDATE_GOLDEN === '1') writeFileSync(golden, text);
    expect(text).toBe(readFileSync(golden, 'utf8'));
  });

  it('renders kept server blocks with their http-level declarations: the same configuration as from fresh objects', () => {
    const annotations = {
      'nginx.ingress.kubernetes.io/limit-rps': '10',
      'nginx.ingress.kubernetes.io/limit-connections': '5',
      'nginx.ingress.kubernetes.io/enable-cors': 'true',
      'nginx.ingress.kubernetes.io/cors-allow-origin': 'https://app.example.com',
      'nginx.ingress.kubernetes.io/affinity': 'cookie',
      'nginx.ingress.kubernetes.io/default-backend': 'web',
      'nginx.ingress.kubernetes.io/custom-http-errors': '503',
    };
    const model = modelOf([
      ingress('web', { ...dualCertificates, rules: [route('pq.example.com', '/', 'Prefix', 'web', 'http')] }, { annotations }),
      ingress('other', { rules: [route('other.example.com', '/', 'Prefix', 'web', 'http')] }),
    ]);
    const blocks = new ServerBlocks();
    const first = render(model, SETTINGS, blocks);
    // The same server objects: every block but the catch-all's is kept, and must bring its zones, maps and files.
    const kept = render({ ...model }, SETTINGS, blocks);
    // Copies: no block can be kept.
    const fresh = render(structuredClone(model), SETTINGS, blocks);
    // Files are named by their content: the same blocks are the same includes.
    for (const rendered of [kept, fresh]) {
      expect(rendered.config).toBe(first.config);
      expect([...rendered.certificateFiles.keys()].sort()).toEqual([...first.certificateFiles.keys()].sort());
    }
    expect(first.serverFiles.size).toBe(3);
    expect([...kept.serverFiles.values()]).toEqual([expect.stringContaining('server_name "~^";')]);
    expect(fresh.serverFiles).toEqual(first.serverFiles);
    const text = inlined(first);
    expect(text).toContain('limit_req_zone');
    expect(text).toContain('@qubesec_error_');
    expect(text).toContain('map $http_origin $qubesec_cors_');
  });

  it('writes each certificate pair once, key and certificate in one file named by fingerprint', () => {
    const rendered = render(CASES['hybrid-dual-certificates']!, SETTINGS);
    // ML-DSA and ECDSA for the host; the default certificate is the same ECDSA pair here, so it is written once.
    expect(rendered.certificateFiles.size).toBe(2);
    for (const [name, content] of rendered.certificateFiles) {
      expect(name).toMatch(/^[0-9a-f]{64}\.pem$/);
      expect(content).toMatch(/^-----BEGIN PRIVATE KEY-----[^]*-----BEGIN CERTIFICATE-----/);
    }
  });

  it('writes each session ticket key to a file named by its hash and lists the encrypting key first', () => {
    const model = CASES['session-tickets-with-policies-per-host']!;
    const rendered = render(model, SETTINGS);
    const keyFiles = [...rendered.config.matchAll(/ssl_session_ticket_key \/run\/qubesec\/certs\/(ticket-[0-9a-f]{16}\.key);/g)].map((m) => m[1]!);
    expect(keyFiles.map((name) => rendered.certificateFiles.get(name))).toEqual(model.sessionResumption!.ticketKeys);
    const off = render({ ...model, sessionResumption: { ...model.sessionResumption!, tickets: false } }, SETTINGS);
    expect(off.config).toMatch(/^ {4}ssl_session_tickets off;$/m);
    expect(off.config).not.toContain('ssl_session_ticket_key');
    expect([...off.certificateFiles.keys()].filter((name) => name.startsWith('ticket-'))).toEqual([]);
  });

  it('redirects to HTTPS on the port clients use (--https-redirect-port), not the one NGINX listens on', () => {
    // A TLS host: plain HTTP to it redirects to HTTPS (ssl-redirect's default).
    const model = CASES['hybrid-dual-certificates']!;
    const redirects = (settings: Partial<typeof SETTINGS>) => [...renderedText(model, { ...SETTINGS, ...settings }).matchAll(/return 308 (\S+);/g)].map((m) => m[1]);
    // The chart's pod: NGINX on 8443 behind a Service on 443.
    expect(redirects({ httpsPort: 8443 })).toEqual(['https://$host$request_uri', 'https://$host$request_uri']);
    expect(redirects({ httpsPort: 8443, httpsRedirectPort: 30443 })).toEqual(['https://$host:30443$request_uri', 'https://$host:30443$request_uri']);
  });

  it('gives each host its own certificate preference on one shared listener (no SNI routing for it)', () => {
    const config = renderedText(CASES['certificate-preference-per-host']!);
    const server = (name: string) => new RegExp(`server_name ${name.replace(/[.^"~]/g, '\\$&')};[\\s\\S]*?\\n    }`).exec(config)![0];
    expect(server('pq.example.com')).toContain('ssl_prefer_server_ciphers on;\n        ssl_conf_command SignatureAlgorithms ecdsa_secp256r1_sha256:ecdsa_secp384r1_sha384:ed25519:rsa_pss_rsae_sha256:rsa_pkcs1_sha256:mldsa44:mldsa65:mldsa87;');
    expect(server('api.pq.example.com')).toContain('ssl_conf_command SignatureAlgorithms mldsa44:mldsa65:mldsa87:ecdsa_secp256r1_sha256:');
    // The listener's default server and the catch-all keep the default (the client's order), and both hosts listen
    // where they do.
    expect(server('_')).not.toContain('SignatureAlgorithms');
    expect(server('"~^"')).not.toContain('SignatureAlgorithms');
    expect(config).not.toContain('ssl_preread');
    expect(config.match(/listen \S*443 ssl/g)).toHaveLength(4);
  });

  it('listens on --bind-address, an IPv6 one in brackets', () => {
    const listens = (bindAddress: string) => [...new Set([...renderedText(CASES['hybrid-dual-certificates']!, { ...SETTINGS, bindAddress }).matchAll(/listen (\S+?):(?:80|443)\b/g)].map((m) => m[1]))];
    expect(listens('192.0.2.1')).toEqual(['192.0.2.1']);
    expect(listens('::1')).toEqual(['[::1]']);
  });

  it('refuses to render a value NGINX would interpret, even one that got past the model boundary', () => {
    const model = CASES['plain-http-and-empty-upstream']!;
    const hostile: Model = { ...model, servers: [...model.servers, { host: 'x.com;\n  include /etc/shadow', locations: [] }] };
    expect(() => render(hostile, SETTINGS)).toThrow(/refusing to render view\.servers\[2\]\.serverName/);
  });

  it('refuses a hostile TLS host, which the certificate maps name too', () => {
    const model = CASES['hybrid-dual-certificates']!;
    const tls = model.servers.find((s) => s.tls)!.tls;
    const hostile: Model = { ...model, servers: [...model.servers, { host: 'x.com;\n  include /etc/shadow', locations: [], tls }] };
    expect(() => render(hostile, SETTINGS)).toThrow(/refusing to render view\.servers\[\d+\]\.serverName/);
  });

  it.each([['a space', 'x.com evil.com'], ['a tab', 'x.com\tevil.com'], ['a NUL', 'x.com\0']])('refuses %s in a bare value, which would split it into two arguments', (_what, host) => {
    const model = CASES['plain-http-and-empty-upstream']!;
    const hostile: Model = { ...model, servers: [...model.servers, { host, locations: [] }] };
    expect(() => render(hostile, SETTINGS)).toThrow(/refusing to render view\.servers\[2\]\.serverName/);
  });

  describe('locations with branches (Gateway API matches, weights and header modifiers)', () => {
    const branches: Branch[] = [
      { conditions: { method: 'POST', headers: [{ name: 'x-version', match: 'regex', value: 'v[12]' }], queryParams: [] }, backends: [{ upstream: 'default_web_http', weight: 9 }, { upstream: 'default_empty_80', weight: 1 }] },
      // Values NGINX or the Lua reader would read otherwise: quotes, "$", ";", braces, spaces, commas and colons.
      { conditions: { headers: [{ name: 'x-odd', match: 'exact', value: 'a "b" $host; {c}, d:e' }], queryParams: [{ name: 'q p', match: 'exact', value: '1' }] }, backends: [{ upstream: 'default_web_http', weight: 1 }],
        requestHeaders: { set: [{ name: 'X-Env', value: 'x y' }], add: [], remove: ['x-secret'] }, responseHeaders: { set: [], add: [{ name: 'x-served', value: '1' }], remove: [] },
        rewrite: { host: 'in.example.com', path: { prefix: '/a', replacement: '/b:c' } }, timeoutMs: 1500 },
    ];
    const withBranches = (list: Branch[]): Model => {
      const model = modelOf([ingress('web', { rules: [route('b.example.com', '/', 'Prefix', 'web', 'http')] })]);
      const server = model.servers.find((s) => s.host === 'b.example.com')!;
      const location = server.locations[0]!;
      if (location.action.kind !== 'proxy') throw new Error('not a proxy location');
      const action = { ...location.action, branches: list };
      return { ...model, upstreams: [...model.upstreams, { name: 'default_empty_80', service: { namespace: 'default', name: 'empty', port: '80' }, endpoints: [] }], servers: model.servers.map((s) => (s === server ? { ...s, locations: [{ ...location, action }] } : s)) };
    };

    it('encodes every user value so that it stays one field of one NGINX string', () => {
      expect(branchesValue(branches)).toBe('m:POST,h:x-version:r:v%5B12%5D,b:default_web_http:9,b:default_empty_80:1 '
        + 'h:x-odd:e:a%20%22b%22%20%24host%3B%20%7Bc%7D%2C%20d%3Ae,q:q%20p:e:1,b:default_web_http:1,qs:X-Env:x%20y,qr:x-secret,pa:x-served:1,uh:in.example.com,up:%2Fa:%2Fb%3Ac,t:1500');
    });

    it('encodes a redirect the data plane builds, its empty parts (here the scheme) kept from the request', () => {
      expect(branchesValue([{ conditions: { headers: [], queryParams: [] }, backends: [], redirect: { code: 301, host: 'moved.example.com', port: ':8443', path: { prefix: '/old', replacement: '/new' } } }]))
        .toBe('r:301::moved.example.com:%3A8443,rp:%2Fold:%2Fnew');
    });

    it('has the location choose in Lua, and edit response headers only when a branch asks', () => {
      const text = renderedText(withBranches(branches));
      expect(text).toContain(`set $qubesec_branches "${branchesValue(branches)}";`);
      expect(text).toContain('require("qubesec").branch()');
      expect(text).toContain('require("qubesec").edit_response_headers()');
      // The rewritten host is sent from the variable Lua sets; without a host rewrite the http-level headers are inherited.
      expect(text).toContain('set $qubesec_upstream_host $host;');
      expect(text).toContain('proxy_set_header Host $qubesec_upstream_host;');
      const plain = renderedText(withBranches([branches[0]!]));
      expect(plain).toContain('require("qubesec").branch()');
      expect(plain).not.toContain('header_filter_by_lua_block');
      expect(plain).not.toContain('qubesec_upstream_host');
    });
  });
});
