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
});
