import { translateIngress } from './ingress.js';
import { BUILTIN_TLS_DEFAULTS, GROUPS_BY_MODE } from './pq.js';
import { CAPABILITIES, ingress, route } from './testing.js';

const translate = (ing: Parameters<typeof translateIngress>[0]) => translateIngress(ing, BUILTIN_TLS_DEFAULTS, CAPABILITIES);
const messages = (r: ReturnType<typeof translate>) => r.diagnostics.map((d) => d.message);

describe('translateIngress', () => {
  it('maps Kubernetes pathTypes to exact and prefix matchers', () => {
    const r = translate(ingress('web', {
      rules: [{
        host: 'a.example.com',
        http: {
          paths: [
            { path: '/exact', pathType: 'Exact', backend: { service: { name: 'svc', port: { number: 80 } } } },
            { path: '/app/', pathType: 'Prefix', backend: { service: { name: 'svc', port: { name: 'http' } } } },
            { path: '/', pathType: 'Prefix', backend: { service: { name: 'svc', port: { number: 80 } } } },
            { path: '/raw', pathType: 'ImplementationSpecific', backend: { service: { name: 'svc', port: { number: 80 } } } },
          ],
        },
      }],
    }));
    expect(r.diagnostics).toEqual([]);
    expect(r.intent!.routes.map((x) => [x.match, x.path, x.precedence, x.backend.port])).toEqual([
      ['exact', '/exact', 0, '80'],
      ['exact', '/app', 2, 'http'],
      ['prefix', '/app/', 1, 'http'],
      ['prefix', '/', 1, '80'],
      ['prefix', '/raw', 1, '80'],
    ]);
  });

  it('gives the hybrid groups, hybrids first, and TLS 1.3 by default', () => {
    const r = translate(ingress('web', { rules: [route('a.example.com', '/', 'Prefix', 'svc')] }));
    expect(r.intent!.policy).toEqual({
      pqMode: 'hybrid',
      groups: [['X25519MLKEM768', 'SecP256r1MLKEM768', 'SecP384r1MLKEM1024'], ['x25519', 'secp256r1', 'secp384r1']],
      protocols: ['TLSv1.3'],
      certificatePreference: 'client',
    });
    expect(r.intent!.policyFromAnnotations).toBe(false);
    expect(GROUPS_BY_MODE.hybrid[0]![0]).toBe('X25519MLKEM768');
  });

  it('strict offers only ML-KEM-based groups; classical only classical ones, with a Normal event', () => {
    const strict = translate(ingress('s', { rules: [route('a.example.com', '/', 'Prefix', 'svc')] }, { annotations: { 'qubesec.io/pq-mode': 'strict' } }));
    expect(strict.intent!.policy.groups).toEqual([['X25519MLKEM768', 'SecP256r1MLKEM768', 'SecP384r1MLKEM1024'], ['MLKEM768', 'MLKEM1024']]);
    const classical = translate(ingress('c', { rules: [route('a.example.com', '/', 'Prefix', 'svc')] }, { annotations: { 'qubesec.io/pq-mode': 'classical' } }));
    expect(classical.intent!.policy.groups).toEqual([['x25519', 'secp256r1', 'secp384r1']]);
    expect(classical.diagnostics).toEqual([expect.objectContaining({ type: 'Normal', reason: 'ClassicalKeyExchange' })]);
  });

  it('orders the signature algorithms by certificate-preference, every algorithm of the data plane kept', () => {
    const preferring = (preference: string) => translate(ingress('w', { rules: [route('a.example.com', '/', 'Prefix', 'svc')] }, { annotations: { 'qubesec.io/certificate-preference': preference } }));
    expect(preferring('classical').intent!.policy).toEqual(expect.objectContaining({
      certificatePreference: 'classical',
      signatureAlgorithms: ['ecdsa_secp256r1_sha256', 'ecdsa_secp384r1_sha384', 'ed25519', 'rsa_pss_rsae_sha256', 'rsa_pkcs1_sha256', 'mldsa44', 'mldsa65', 'mldsa87'],
    }));
    expect(preferring('post-quantum').intent!.policy.signatureAlgorithms).toEqual(['mldsa44', 'mldsa65', 'mldsa87', 'ecdsa_secp256r1_sha256', 'ecdsa_secp384r1_sha384', 'ed25519', 'rsa_pss_rsae_sha256', 'rsa_pkcs1_sha256']);
    const client = preferring('client').intent!.policy;
    expect([client.certificatePreference, client.signatureAlgorithms]).toEqual(['client', undefined]);
    // The global default (flag, ConfigMap key) applies where the annotation is absent.
    const defaulted = translateIngress(ingress('d', { rules: [route('a.example.com', '/', 'Prefix', 'svc')] }), { ...BUILTIN_TLS_DEFAULTS, certificatePreference: 'classical' }, CAPABILITIES);
    expect(defaulted.intent!.policy.signatureAlgorithms![0]).toBe('ecdsa_secp256r1_sha256');
    expect(defaulted.intent!.policyFromAnnotations).toBe(false);
    const bad = preferring('ecdsa');
    expect(bad.intent).toBeUndefined();
    expect(messages(bad)).toEqual(['Ingress default/w: annotation qubesec.io/certificate-preference: "ecdsa" is not one of client, classical, post-quantum']);
  });

  it('lets TLS 1.2 in only when asked, and never with strict', () => {
    const tls12 = translate(ingress('w', { rules: [route('a.example.com', '/', 'Prefix', 'svc')] }, { annotations: { 'qubesec.io/tls-min-version': '1.2' } }));
    expect(tls12.intent!.policy.protocols).toEqual(['TLSv1.2', 'TLSv1.3']);
    const bad = translate(ingress('w', { rules: [route('a.example.com', '/', 'Prefix', 'svc')] }, { annotations: { 'qubesec.io/pq-mode': 'strict', 'qubesec.io/tls-min-version': '1.2' } }));
    expect(bad.intent).toBeUndefined();
    expect(messages(bad)).toEqual(['Ingress default/w: annotation qubesec.io/tls-min-version: 1.2 cannot go with pq-mode strict (ML-KEM groups exist only in TLS 1.3)']);
  });

  it('puts an explicit tls-groups list in strict server order', () => {
    const r = translate(ingress('w', { rules: [route('a.example.com', '/', 'Prefix', 'svc')] }, { annotations: { 'qubesec.io/tls-groups': 'SecP384r1MLKEM1024:X25519MLKEM768' } }));
    expect(r.intent!.policy.groups).toEqual([['SecP384r1MLKEM1024'], ['X25519MLKEM768']]);
    expect(r.intent!.policyFromAnnotations).toBe(true);
  });

  it('rejects tls-groups that contradict the pq-mode', () => {
    const r = translate(ingress('w', { rules: [route('a.example.com', '/', 'Prefix', 'svc')] }, { annotations: { 'qubesec.io/pq-mode': 'strict', 'qubesec.io/tls-groups': 'X25519MLKEM768:X25519' } }));
    expect(r.intent).toBeUndefined();
    expect(messages(r)[0]).toContain('annotation qubesec.io/tls-groups: x25519 is not ML-KEM-based');
  });

  it.each([
    ['host with a directive', { rules: [route('a.com;\n    include /etc/passwd', '/', 'Prefix', 'svc')] }, 'spec.rules[0].host'],
    ['path with a brace', { rules: [route('a.com', '/x { return 200; }', 'Prefix', 'svc')] }, 'spec.rules[0].http.paths[0].path'],
    ['path with a variable', { rules: [route('a.com', '/$host', 'Exact', 'svc')] }, 'spec.rules[0].http.paths[0].path'],
    ['path with a quote', { rules: [route('a.com', '/a"b', 'Exact', 'svc')] }, 'spec.rules[0].http.paths[0].path'],
    ['service name', { rules: [route('a.com', '/', 'Prefix', 'svc;evil')] }, 'spec.rules[0].http.paths[0].backend.service.name'],
    ['port name', { rules: [route('a.com', '/', 'Prefix', 'svc', 'ht tp')] }, 'spec.rules[0].http.paths[0].backend.service.port.name'],
    ['port number', { rules: [route('a.com', '/', 'Prefix', 'svc', 70000)] }, 'spec.rules[0].http.paths[0].backend.service.port.number'],
    ['pathType', { rules: [route('a.com', '/', 'Regex', 'svc')] }, 'spec.rules[0].http.paths[0].pathType'],
    ['secret name', { tls: [{ hosts: ['a.com'], secretName: 'x}' }], rules: [route('a.com', '/', 'Prefix', 'svc')] }, 'spec.tls[0].secretName'],
    ['tls host', { tls: [{ hosts: ['a.com\n'], secretName: 's' }], rules: [route('a.com', '/', 'Prefix', 'svc')] }, 'spec.tls[0].hosts[0]'],
  ])('rejects a hostile %s, naming the Ingress and the field', (_name, spec, field) => {
    const r = translate(ingress('bad', spec as never));
    expect(r.intent).toBeUndefined();
    expect(r.diagnostics).toEqual([expect.objectContaining({ type: 'Warning', reason: 'Rejected', object: expect.objectContaining({ kind: 'Ingress', name: 'bad' }) })]);
    expect(messages(r)[0]).toContain(`Ingress default/bad: ${field}:`);
  });

  it.each([
    ['a name with a space (it names limit zones)', 'web app', 'default', 'metadata.name: "web app" is not a valid object name (RFC 1123 subdomain)'],
    ['an upper-case name', 'Web', 'default', 'metadata.name: "Web" is not a valid object name'],
    ['a namespace with a dot', 'web', 'team.a', 'metadata.namespace: "team.a" is not a valid namespace name (RFC 1123 label)'],
  ])('rejects %s as the API server would', (_name, name, namespace, message) => {
    const r = translate(ingress(name, { rules: [route('a.com', '/', 'Prefix', 'svc')] }, { namespace }));
    expect(r.intent).toBeUndefined();
    expect(messages(r)[0]).toContain(message);
  });

  it('accepts a namespace that starts with a digit (an RFC 1123 label, not RFC 1035)', () => {
    expect(translate(ingress('web', { rules: [route('a.com', '/', 'Prefix', 'svc')] }, { namespace: '1team' })).intent?.ref.namespace).toBe('1team');
  });

  it.each([
    ['/a//b', 'must not contain "//"'],
    ['/a/./b', 'must not contain "/./"'],
    ['/a/../b', 'must not contain "/../"'],
    ['/a%2fb', 'must not contain "%2f"'],
    ['/a/..', 'must not end with "/.."'],
    ['/a/.', 'must not end with "/."'],
  ])('refuses the Exact or Prefix path %j as the API server does, and takes it as ImplementationSpecific', (path, why) => {
    for (const pathType of ['Exact', 'Prefix']) {
      const r = translate(ingress('p', { rules: [route('a.com', path, pathType, 'svc')] }));
      expect(messages(r)).toEqual([`Ingress default/p: spec.rules[0].http.paths[0].path: ${JSON.stringify(path)} ${why} (pathType Exact or Prefix)`]);
    }
    expect(translate(ingress('p', { rules: [route('a.com', path, 'ImplementationSpecific', 'svc')] })).intent).toBeDefined();
  });

  it('shortens a rejected value in its message', () => {
    const host = `${'a'.repeat(100_000)}.com`;
    const [message = ''] = messages(translate(ingress('long', { rules: [route(host, '/', 'Prefix', 'svc')] })));
    expect(message).toBe(`Ingress default/long: spec.rules[0].host: "${'a'.repeat(77)}..." is longer than 253 characters`);
  });

  it('routes a spec.defaultBackend to the catch-all server and to each host of the Ingress', () => {
    const r = translate(ingress('d', { defaultBackend: { service: { name: 'fallback', port: { number: 8080 } } }, rules: [route('a.com', '/api', 'Prefix', 'api')] }));
    expect(r.intent!.routes.filter((x) => x.backend.service === 'fallback').map((x) => [x.host, x.match, x.path])).toEqual([
      ['', 'prefix', '/'],
      ['a.com', 'prefix', '/'],
    ]);
  });

  it('applies TLS entries without hosts to the rule hosts, and warns about unknown qubesec.io annotations', () => {
    const r = translate(ingress('t', { tls: [{ secretName: 'cert' }], rules: [route('a.com', '/', 'Prefix', 'svc'), route('b.com', '/', 'Prefix', 'svc')] }, { annotations: { 'qubesec.io/pqmode': 'strict' } }));
    expect(r.intent!.tls).toEqual([{ hosts: ['a.com', 'b.com'], secret: 'default/cert' }]);
    expect(r.diagnostics).toEqual([expect.objectContaining({ reason: 'UnknownAnnotation', message: 'annotation qubesec.io/pqmode is not known to QubeSec and has no effect' })]);
  });

  it.each([
    ['nginx.ingress.kubernetes.io/configuration-snippet', 'more_set_headers "X: y";', /snippets are refused: raw NGINX configuration/],
    ['nginx.ingress.kubernetes.io/server-snippet', 'location /x { return 200; }', /snippets are refused/],
    ['qubesec.io/auth-snippet', 'x', /snippets are refused/],
    ['nginx.ingress.kubernetes.io/auth-url', 'http://auth.svc/check', /restricts access and QubeSec does not implement it/],
    ['nginx.ingress.kubernetes.io/auth-type', 'basic', /restricts access/],
  ])('rejects %s, saying why', (key, value, why) => {
    const r = translate(ingress('s', { rules: [route('a.com', '/', 'Prefix', 'svc')] }, { annotations: { [key]: value } }));
    expect(r.intent).toBeUndefined();
    expect(r.diagnostics).toEqual([expect.objectContaining({ type: 'Warning', reason: 'Rejected', message: expect.stringMatching(new RegExp(`^Ingress default/s: annotation ${key}: ${why.source}`)) })]);
  });

  it('warns once per unknown controller annotation and leaves other tools\' annotations alone', () => {
    const r = translate(ingress('u', { rules: [route('a.com', '/', 'Prefix', 'svc')] }, {
      annotations: { 'nginx.ingress.kubernetes.io/proxy-buffering': 'off', 'nginx.ingress.kubernetes.io/rewrite-target': '/', 'cert-manager.io/cluster-issuer': 'x', 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
    }));
    expect(r.intent).toBeDefined();
    expect(messages(r)).toEqual(['annotation nginx.ingress.kubernetes.io/proxy-buffering is not known to QubeSec and has no effect']);
  });

  it('turns paths into anchored case-insensitive regular expressions with use-regex, and checks them as such', () => {
    const spec = (path: string) => ({ rules: [{ host: 'a.com', http: { paths: [
      { path, pathType: 'ImplementationSpecific', backend: { service: { name: 'svc', port: { number: 80 } } } },
      { path: '/exact', pathType: 'Exact', backend: { service: { name: 'svc', port: { number: 80 } } } },
    ] } }] });
    const ok = translate(ingress('r', spec('/api/v[0-9]+/(.*)'), { annotations: { 'nginx.ingress.kubernetes.io/use-regex': 'true' } }));
    expect(ok.intent!.routes.map((x) => [x.match, x.path])).toEqual([['regex', '^/api/v[0-9]+/(.*)'], ['regex', '^/exact$']]);
    // An Exact path that ends in the anchor keeps one (fuzz seed 624198553 found "^/$$", which the renderer refuses).
    const anchored = translate(ingress('r', { rules: [route('a.com', '/v1$', 'Exact', 'svc')] }, { annotations: { 'nginx.ingress.kubernetes.io/use-regex': 'true' } }));
    expect(anchored.intent!.routes.map((x) => x.path)).toEqual(['^/v1$']);
    for (const [path, why] of [['/a"b', 'quotes'], ['/a$host', 'end anchor'], ['/a(', 'regular expression'], ['/a\\', 'escape'], ['/a;b', 'quotes']] as const) {
      const bad = translate(ingress('r', spec(path), { annotations: { 'nginx.ingress.kubernetes.io/use-regex': 'true' } }));
      expect(bad.intent).toBeUndefined();
      expect(messages(bad)[0]).toMatch(new RegExp(`spec.rules\\[0\\].http.paths\\[0\\].path: .*${why}`));
    }
  });

  it('adds an app-root redirect for / on each host, ahead of any / path, and needs TLS for client certificates', () => {
    const r = translate(ingress('a', { rules: [route('a.com', '/', 'Exact', 'svc')] }, { annotations: { 'nginx.ingress.kubernetes.io/app-root': '/app' } }));
    expect(r.intent!.routes.map((x) => [x.host, x.match, x.path, x.precedence, x.redirect])).toEqual([
      ['a.com', 'exact', '/', 0, undefined],
      ['a.com', 'exact', '/', -1, { code: 302, url: '/app' }],
    ]);
    const mtls = translate(ingress('m', { rules: [route('a.com', '/', 'Prefix', 'svc')] }, { annotations: { 'nginx.ingress.kubernetes.io/auth-tls-secret': 'ca' } }));
    expect(messages(mtls)).toEqual(['Ingress default/m: client certificate authentication (auth-tls-*) needs spec.tls: client certificates exist only in TLS']);
  });
});
