// Generators of hostile Ingresses for property tests: values that try to end an NGINX token, open a block, start a
// comment, expand a variable or smuggle a directive, mixed with valid values so that many Ingresses pass the model
// boundary and reach the renderer. Tests only.
import fc from 'fast-check';
import type { V1Ingress } from '@kubernetes/client-node';
import { ANNOTATION_PREFIX } from '../model/annotations.js';
import type { ModelInputs } from '../model/build.js';
import { checkCaSecret, checkTlsSecret } from '../model/certificates.js';
import { BUILTIN_TLS_DEFAULTS, defaultPolicy } from '../model/pq.js';
import { ANNOTATION_CASES, CA_SECRET } from '../model/proxy-annotations.cases.js';
import { COMPAT_PREFIXES, INGRESS_NGINX_PREFIX, PROXY_ANNOTATIONS } from '../model/proxy-annotations.js';
import { CAPABILITIES, endpointSlice, service, tlsSecret } from '../model/testing.js';
import type { CertificatePair } from '../model/types.js';

const PIECES = [
  '/', 'a', 'Z', '0', '9', '.', '-', '_', '*', '~', '"', "'", '`', '{', '}', ';', '\n', '\r', '\t', ' ', '$', '${', '$host',
  '$1', '${request_uri}', '$remote_addr', '#', '\\', '\\"', '(', ')', '|', '^', '?', '&', '=', ':', ',', '%0a', '@', '!',
  'include /etc/shadow', 'content_by_lua_block { os.execute("id") }', 'access_by_lua', 'load_module', 'ssl_certificate_key /etc/',
  'return 200', 'proxy_pass http://evil', '}\nserver {', 'http://', 'https://', '\u0000', 'é', '\u2028', 'x'.repeat(300),
];

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 10 }).map((p) => p.join('')) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom('a'.repeat(5000), `/${'a/'.repeat(1500)}`) },
);

const validValues: Record<string, string[]> = {};
for (const c of Object.values(ANNOTATION_CASES)) {
  for (const [key, value] of Object.entries(c.annotations)) (validValues[key.slice(INGRESS_NGINX_PREFIX.length)] ??= []).push(value);
}
const TLS_VALUES: Record<string, string[]> = { 'pq-mode': ['hybrid', 'strict', 'classical'], 'tls-groups': ['X25519MLKEM768:X25519', 'MLKEM1024'], 'tls-min-version': ['1.2', '1.3'], 'certificate-preference': ['client', 'classical', 'post-quantum'] };

const annotationKey = fc.oneof(
  { weight: 18, arbitrary: fc.tuple(fc.constantFrom(...COMPAT_PREFIXES), fc.constantFrom(...Object.keys(PROXY_ANNOTATIONS))).map(([p, n]) => p + n) },
  { weight: 6, arbitrary: fc.constantFrom(...Object.keys(TLS_VALUES)).map((n) => ANNOTATION_PREFIX + n) },
  { weight: 1, arbitrary: fc.constantFrom('configuration-snippet', 'server-snippet', 'auth-url', 'proxy-buffering').map((n) => INGRESS_NGINX_PREFIX + n) },
);

const annotation = annotationKey.chain((key) => {
  const name = key.slice(key.indexOf('/') + 1);
  const valid = validValues[name] ?? TLS_VALUES[name] ?? ['x'];
  return fc.tuple(fc.constant(key), fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...valid) }, { weight: 1, arbitrary: hostileString }));
});

const host = fc.oneof({ weight: 12, arbitrary: fc.constantFrom('a.example.com', '*.example.com', 'b.example.org', '') }, { weight: 1, arbitrary: hostileString });
// Regular-expression paths are valid only with use-regex or rewrite-target.
const path = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('/', '/api', '/a.b', '/x/y-z') },
  { weight: 2, arbitrary: fc.constantFrom('/app(/|$)(.*)', '/v[0-9]+/x') },
  { weight: 2, arbitrary: hostileString.map((s) => `/${s}`) },
);
const name = fc.oneof({ weight: 16, arbitrary: fc.constantFrom('web', 'api', 'ca') }, { weight: 1, arbitrary: hostileString });

export const hostileIngress: fc.Arbitrary<V1Ingress> = fc
  .record({
    name: fc.constantFrom('one', 'two', 'three'),
    annotations: fc.array(annotation, { maxLength: 5 }).map((pairs) => Object.fromEntries(pairs)),
    rules: fc.array(fc.record({ host, paths: fc.array(fc.record({ path, pathType: fc.constantFrom('Exact', 'Prefix', 'ImplementationSpecific'), service: name }), { minLength: 1, maxLength: 3 }) }), { minLength: 1, maxLength: 3 }),
    tls: fc.array(fc.record({ hosts: fc.array(host, { maxLength: 2 }), secretName: name }), { maxLength: 2 }),
    created: fc.integer({ min: 0, max: 1000 }),
  })
  .map((r) => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: r.name, namespace: 'default', uid: `uid-${r.name}`, annotations: r.annotations, creationTimestamp: new Date(Date.UTC(2026, 0, 1) + r.created * 1000) },
    spec: {
      ingressClassName: 'qubesec',
      tls: r.tls,
      rules: r.rules.map((rule) => ({
        host: rule.host === '' ? undefined : rule.host,
        http: { paths: rule.paths.map((p) => ({ path: p.path, pathType: p.pathType, backend: { service: { name: p.service, port: { number: 80 } } } })) },
      })),
    },
  }));

/** The cluster the generated Ingresses point into: Services web and api with endpoints, Secrets web, api and ca. */
export function hostileClusterState(now: Date): Omit<ModelInputs, 'intents'> {
  const pair = (name: string, file: string): CertificatePair => {
    const checked = checkTlsSecret(tlsSecret(name, file), now);
    if ('error' in checked) throw new Error(checked.error);
    return checked.pair;
  };
  const ca = checkCaSecret(CA_SECRET, now);
  if ('error' in ca) throw new Error(ca.error);
  return {
    services: new Map([['default/web', service('web', [{ port: 80 }])], ['default/api', service('api', [{ port: 80 }])]]),
    endpointSlices: new Map([['default/web', [endpointSlice('web', { port: 8080 }, [{ ip: '10.0.0.1' }])]], ['default/api', [endpointSlice('api', { port: 8080 }, [{ ip: '10.0.0.2' }])]]]),
    certificates: new Map([['default/web', pair('web', 'ecdsa')], ['default/api', pair('api', 'mldsa65')]]),
    caBundles: new Map([['default/ca', ca.ca]]),
    defaultPolicy: defaultPolicy(BUILTIN_TLS_DEFAULTS, CAPABILITIES),
    defaultCertificates: [pair('default', 'ecdsa')],
  };
}
