import { buildModel, type ModelInputs } from './build.js';
import { checkCaSecret, checkTlsSecret } from './certificates.js';
import { CA_SECRET } from './proxy-annotations.cases.js';
import { translateIngress } from './ingress.js';
import { BUILTIN_TLS_DEFAULTS, defaultPolicy } from './pq.js';
import { CAPABILITIES, endpointSlice, ingress, route, service, tlsSecret } from './testing.js';
import type { CertificatePair, LocationAction } from './types.js';

const NOW = new Date('2026-11-28T00:00:00Z');

function pair(name: string, file: string): CertificatePair {
  const checked = checkTlsSecret(tlsSecret(name, file), NOW);
  if ('error' in checked) throw new Error(checked.error);
  return checked.pair;
}

function build(ingresses: Parameters<typeof translateIngress>[0][], extra: Partial<ModelInputs> = {}) {
  const intents = ingresses.map((i) => translateIngress(i, BUILTIN_TLS_DEFAULTS, CAPABILITIES).intent!);
  return buildModel({
    intents,
    services: new Map([['default/web', service('web', [{ name: 'http', port: 80 }])]]),
    endpointSlices: new Map([['default/web', [endpointSlice('web', { name: 'http', port: 8080 }, [{ ip: '10.0.0.2' }, { ip: '10.0.0.1', ready: true }, { ip: '10.0.0.9', ready: false }])]]]),
    certificates: new Map(),
    caBundles: new Map(),
    defaultPolicy: defaultPolicy(BUILTIN_TLS_DEFAULTS, CAPABILITIES),
    defaultCertificates: [pair('default', 'ecdsa')],
    ...extra,
  });
}

describe('buildModel', () => {
  it('builds servers by host, locations by path, and upstreams from ready endpoints', () => {
    const { model, diagnostics } = build([ingress('a', { rules: [route('a.example.com', '/', 'Prefix', 'web', 'http')] })]);
    expect(diagnostics).toEqual([]);
    expect(model.servers.map((s) => s.host)).toEqual(['', 'a.example.com']);
    expect(model.servers[1]!.locations).toEqual([expect.objectContaining({ match: 'prefix', path: '/', action: expect.objectContaining({ kind: 'proxy', upstream: 'default_web_http' }), ingress: expect.objectContaining({ name: 'a' }) })]);
    expect(model.upstreams).toEqual([{
      name: 'default_web_http',
      service: { namespace: 'default', name: 'web', port: 'http' },
      endpoints: [{ address: '10.0.0.1', port: 8080 }, { address: '10.0.0.2', port: 8080 }],
    }]);
  });

  it('resolves a Service port given by number to the EndpointSlice port of the same name', () => {
    const { model } = build([ingress('a', { rules: [route('a.example.com', '/', 'Prefix', 'web', 80)] })]);
    expect(model.upstreams[0]!.endpoints.map((e) => e.port)).toEqual([8080, 8080]);
  });

  it('gives a conflicting path to the oldest Ingress and warns the newer one', () => {
    const older = ingress('older', { rules: [route('a.example.com', '/api', 'Prefix', 'web', 80)] }, { created: '2026-01-01T00:00:00Z' });
    const newer = ingress('newer', { rules: [route('a.example.com', '/api', 'Prefix', 'other', 80)] }, { created: '2026-02-01T00:00:00Z' });
    for (const order of [[older, newer], [newer, older]]) {
      const { model, diagnostics } = build(order);
      const server = model.servers.find((s) => s.host === 'a.example.com')!;
      expect(server.locations.map((l) => l.ingress.name)).toEqual(['older', 'older']);
      expect(diagnostics.filter((d) => d.reason === 'Conflict').map((d) => d.object.name)).toEqual(['newer', 'newer']);
    }
  });

  it('lets an Exact path win over the exact match implied by a Prefix of another Ingress, without a conflict', () => {
    const prefix = ingress('prefix', { rules: [route('a.example.com', '/app', 'Prefix', 'web', 80)] }, { created: '2026-01-01T00:00:00Z' });
    const exact = ingress('exact', { rules: [route('a.example.com', '/app', 'Exact', 'web', 'http')] }, { created: '2026-02-01T00:00:00Z' });
    const { model, diagnostics } = build([prefix, exact]);
    const locations = model.servers.find((s) => s.host === 'a.example.com')!.locations;
    expect(locations.map((l) => [l.match, l.path, l.ingress.name])).toEqual([['exact', '/app', 'exact'], ['prefix', '/app/', 'prefix']]);
    expect(diagnostics).toEqual([]);
  });

  it('warns when a Service is missing and leaves its upstream empty (503)', () => {
    const { model, diagnostics } = build([ingress('a', { rules: [route('a.example.com', '/', 'Prefix', 'gone', 80)] })]);
    expect(model.upstreams[0]!.endpoints).toEqual([]);
    expect(diagnostics.map((d) => d.message)).toEqual(['Ingress default/a: Service default/gone not found; its paths answer 503']);
  });

  it('serves an ML-DSA and an ECDSA certificate side by side for one host', () => {
    const ing = ingress('a', {
      tls: [{ hosts: ['pq.example.com'], secretName: 'mldsa' }, { hosts: ['pq.example.com'], secretName: 'ecdsa' }],
      rules: [route('pq.example.com', '/', 'Prefix', 'web', 80)],
    });
    const certificates = new Map([['default/mldsa', pair('mldsa', 'mldsa65')], ['default/ecdsa', pair('ecdsa', 'ecdsa')]]);
    const { model, diagnostics } = build([ing], { certificates });
    expect(diagnostics).toEqual([]);
    const tls = model.servers.find((s) => s.host === 'pq.example.com')!.tls!;
    expect(tls.certificates.map((c) => c.keyAlgorithm)).toEqual(['ml-dsa-65', 'ec']);
    expect(tls.policy.groups[0]![0]).toBe('X25519MLKEM768');
  });

  it('falls back to the default certificate, with a warning, when the Secret is missing or does not cover the host', () => {
    const ing = ingress('a', {
      tls: [{ hosts: ['pq.example.com'], secretName: 'missing' }, { hosts: ['pq.example.com'], secretName: 'other' }],
      rules: [route('pq.example.com', '/', 'Prefix', 'web', 80)],
    });
    const { model, diagnostics } = build([ing], { certificates: new Map([['default/other', pair('other', 'mldsa44-other')]]) });
    expect(model.servers.find((s) => s.host === 'pq.example.com')!.tls!.certificates.map((c) => c.source)).toEqual(['default/default']);
    expect(diagnostics.map((d) => d.reason)).toEqual(['SecretNotUsable', 'CertificateHostMismatch']);
  });

  it('keeps the TLS policy of the oldest Ingress on a shared host and warns the newer one', () => {
    const older = ingress('older', { tls: [{ hosts: ['a.example.com'], secretName: 's' }], rules: [route('a.example.com', '/', 'Prefix', 'web', 80)] }, { created: '2026-01-01T00:00:00Z' });
    const newer = ingress('newer', { tls: [{ hosts: ['a.example.com'], secretName: 's' }], rules: [route('a.example.com', '/b', 'Exact', 'web', 80)] }, { created: '2026-03-01T00:00:00Z', annotations: { 'qubesec.io/pq-mode': 'strict' } });
    const { model, diagnostics } = build([newer, older]);
    expect(model.servers.find((s) => s.host === 'a.example.com')!.tls!.policy.pqMode).toBe('hybrid');
    expect(diagnostics.filter((d) => d.reason === 'Conflict').map((d) => d.object.name)).toEqual(['newer']);
  });

  it('keeps the certificate preference of the oldest Ingress on a shared host and warns the newer one', () => {
    const older = ingress('older', { tls: [{ hosts: ['a.example.com'], secretName: 's' }], rules: [route('a.example.com', '/', 'Prefix', 'web', 80)] }, { created: '2026-01-01T00:00:00Z', annotations: { 'qubesec.io/certificate-preference': 'classical' } });
    const newer = ingress('newer', { tls: [{ hosts: ['a.example.com'], secretName: 's' }], rules: [route('a.example.com', '/b', 'Exact', 'web', 80)] }, { created: '2026-03-01T00:00:00Z', annotations: { 'qubesec.io/certificate-preference': 'post-quantum' } });
    const { model, diagnostics } = build([newer, older]);
    expect(model.servers.find((s) => s.host === 'a.example.com')!.tls!.policy.certificatePreference).toBe('classical');
    expect(diagnostics.filter((d) => d.reason === 'Conflict').map((d) => d.object.name)).toEqual(['newer']);
  });
});

describe('checkTlsSecret', () => {
  it('accepts ML-DSA and ECDSA pairs and reads their names', () => {
    expect(pair('m', 'mldsa65')).toEqual(expect.objectContaining({ keyAlgorithm: 'ml-dsa-65', names: ['pq.example.com', '*.pq.example.com'], source: 'default/m' }));
    expect(pair('e', 'ecdsa').keyAlgorithm).toBe('ec');
  });

  it.each([
    ['a key that does not match', tlsSecret('s', 'mldsa65', 'default', 'ecdsa'), 'Secret default/s: data.tls.key does not match the certificate in data.tls.crt'],
    ['an expired certificate', tlsSecret('s', 'expired'), 'Secret default/s: the certificate expired at 2021-01-01T00:00:00.000Z'],
    ['a Secret of another type', { ...tlsSecret('s', 'ecdsa'), type: 'Opaque' }, 'Secret default/s: type is Opaque, not kubernetes.io/tls'],
    ['a missing key', { ...tlsSecret('s', 'ecdsa'), data: { 'tls.crt': 'eA==' } }, 'Secret default/s: data.tls.crt and data.tls.key are both required'],
    ['garbage', { ...tlsSecret('s', 'ecdsa'), data: { 'tls.crt': 'eA==', 'tls.key': 'eA==' } }, 'Secret default/s: data.tls.crt is not a PEM certificate'],
  ])('refuses %s', (_name, secret, message) => {
    const checked = checkTlsSecret(secret, NOW);
    expect('error' in checked && checked.error).toContain(message);
  });

  describe('annotations', () => {
    const N = 'nginx.ingress.kubernetes.io/';
    const tls = { tls: [{ hosts: ['a.com'], secretName: 'cert' }] };
    const withCa = () => {
      const ca = checkCaSecret(CA_SECRET, NOW);
      if ('error' in ca) throw new Error(ca.error);
      return new Map([['default/ca', ca.ca]]);
    };

    it('verifies clients with the CA of the oldest Ingress that asks, and fails closed without it', () => {
      const ing = ingress('m', { ...tls, rules: [route('a.com', '/', 'Prefix', 'web', 'http')] }, { annotations: { [`${N}auth-tls-secret`]: 'ca' } });
      const served = build([ing], { caBundles: withCa() });
      expect(served.model.servers[1]!.tls!.clientAuth).toEqual(expect.objectContaining({ verify: 'on', depth: 1, ca: expect.objectContaining({ source: 'default/ca' }) }));
      expect(served.model.servers[1]!.locations[0]!.action.kind).toBe('proxy');
      const missing = build([ing]);
      expect(missing.model.servers[1]!.tls!.clientAuth).toBeUndefined();
      expect(missing.model.servers[1]!.locations.map((l) => l.action)).toEqual([{ kind: 'unavailable', reason: 'Secret default/ca has no usable ca.crt for client certificate checks' }]);
      expect(missing.diagnostics).toEqual(expect.arrayContaining([expect.objectContaining({ reason: 'ClientCANotUsable' })]));
    });

    it('gives a sticky route its own upstream, and proxies HTTPS with the Ingress\'s groups and the Service DNS name', () => {
      const sticky = ingress('s', { rules: [route('a.com', '/s', 'Prefix', 'web', 'http')] }, { annotations: { [`${N}affinity`]: 'cookie' } });
      const https = ingress('h', { rules: [route('a.com', '/h', 'Prefix', 'web', 'http')] }, { annotations: { [`${N}backend-protocol`]: 'HTTPS', [`${N}proxy-ssl-secret`]: 'ca', [`${N}proxy-ssl-verify`]: 'on', 'qubesec.io/pq-mode': 'strict' } });
      const { model } = build([sticky, https], { caBundles: withCa() });
      expect(model.upstreams.map((u) => [u.name, u.affinityCookie])).toEqual([['default_web_http_sticky_INGRESSCOOKIE', 'INGRESSCOOKIE'], [expect.stringMatching(/^default_web_http_tls_/), undefined]]);
      const action = model.servers[1]!.locations.find((l) => l.path === '/h')!.action;
      expect(action).toEqual(expect.objectContaining({ kind: 'proxy', protocol: 'HTTPS' }));
      const upstreamTls = (action as Extract<typeof action, { kind: 'proxy' }>).tls!;
      expect(upstreamTls.serverName).toBe('web.default.svc');
      expect(upstreamTls.policy.pqMode).toBe('strict');
      expect(upstreamTls.verify!.ca).toEqual(expect.objectContaining({ source: 'default/ca' }));
      expect(build([https]).model.servers[1]!.locations[0]!.action.kind).toBe('unavailable');
    });

    it('gives each upstream TLS setup its own upstream, so no route reuses a connection another route verified', () => {
      const toPod = (name: string, path: string, annotations: Record<string, string>) =>
        ingress(name, { rules: [route('a.com', path, 'Prefix', 'web', 'http')] }, { annotations: { [`${N}backend-protocol`]: 'HTTPS', ...annotations } });
      const verified = { [`${N}proxy-ssl-secret`]: 'ca', [`${N}proxy-ssl-verify`]: 'on' };
      const { model } = build([
        toPod('verified', '/v', verified),
        toPod('verified-too', '/v2', verified),
        toPod('other-name', '/n', { ...verified, [`${N}proxy-ssl-name`]: 'pod.internal' }),
        toPod('unverified', '/u', {}),
        toPod('strict', '/s', { ...verified, 'qubesec.io/pq-mode': 'strict' }),
        ingress('plain', { rules: [route('a.com', '/p', 'Prefix', 'web', 'http')] }),
      ], { caBundles: withCa() });
      const upstreamOf = (path: string) => (model.servers[1]!.locations.find((l) => l.path === path)!.action as { upstream: string }).upstream;
      expect(upstreamOf('/v')).toBe(upstreamOf('/v2'));
      expect(upstreamOf('/v')).toMatch(/^default_web_http_tls_[0-9a-f]{12}$/);
      expect(new Set(['/v', '/n', '/u', '/s', '/p'].map(upstreamOf)).size).toBe(5);
      expect(upstreamOf('/p')).toBe('default_web_http');
      expect(model.upstreams.every((u) => u.endpoints.length === 2)).toBe(true);
    });

    it('serves a host without spec.tls over TLS with the default certificates when force-ssl-redirect sends it there', () => {
      const forced = ingress('f', { rules: [route('forced.com', '/', 'Prefix', 'web', 'http')] }, { annotations: { [`${N}force-ssl-redirect`]: 'true', 'qubesec.io/pq-mode': 'strict' } });
      const plain = ingress('p', { rules: [route('plain.com', '/', 'Prefix', 'web', 'http')] });
      const { model } = build([forced, plain]);
      const host = (name: string) => model.servers.find((s) => s.host === name)!;
      expect(host('forced.com').tls).toEqual({ policy: expect.objectContaining({ pqMode: 'strict' }), certificates: [expect.objectContaining({ source: 'default/default' })] });
      expect(host('forced.com').locations[0]!.policy.httpsRedirect).toBe(true);
      expect(host('plain.com').tls).toBeUndefined();
      expect(host('plain.com').locations[0]!.policy.httpsRedirect).toBe(false);
    });

    it('falls back to the default-backend Service when the path\'s Service has no ready endpoint', () => {
      const ing = ingress('d', { rules: [route('a.com', '/', 'Prefix', 'empty', 80)] }, { annotations: { [`${N}default-backend`]: 'web:http' } });
      const { model } = build([ing], { services: new Map([['default/web', service('web', [{ name: 'http', port: 80 }])], ['default/empty', service('empty', [{ port: 80 }])]]) });
      expect(model.servers[1]!.locations[0]!.action).toEqual(expect.objectContaining({ upstream: 'default_empty_80', fallback: 'default_web_http' }));
    });

    it('sends error pages of an HTTPS route over plain HTTP, through an upstream of its own', () => {
      const ing = ingress('e', { rules: [route('a.com', '/', 'Prefix', 'web', 'http')] }, { annotations: { [`${N}backend-protocol`]: 'HTTPS', [`${N}default-backend`]: 'web:http', [`${N}custom-http-errors`]: '503' } });
      const action = build([ing]).model.servers[1]!.locations[0]!.action as Extract<LocationAction, { kind: 'proxy' }>;
      expect(action.fallback).toMatch(/^default_web_http_tls_/);
      expect(action.errorPages).toEqual({ codes: [503], upstream: 'default_web_http' });
    });
  });
});
