// Gateway API's pinned standard-channel CRDs (scripts/gateway-api-crds.sh) on a real kube-apiserver, applied with the
// real kubectl: the unit tests' fixtures are accepted as written, the API server's defaults and all read back go
// through translateGateways, and objects the CRDs' schemas forbid are refused. Proves the types in
// controller/model/gateway-api.ts match what the API server serves.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import type { Gateway, GatewayClass, HTTPRoute, ReferenceGrant } from '../controller/model/gateway-api.js';
import { GATEWAY_CONTROLLER_NAME, translateGateways } from '../controller/model/gateway.js';
import { BUILTIN_TLS_DEFAULTS } from '../controller/model/pq.js';
import { CAPABILITIES, gateway, gatewayClass, httpListener, httpRoute, httpRule, httpsListener, referenceGrant, servicesByKey } from '../controller/model/testing.js';
import type { CertificatePair } from '../controller/model/types.js';
import { startCluster, type TestCluster } from './cluster/cluster.js';
import { gatewayApiCrds, kubeBinary } from './lib/env.js';

let cluster: TestCluster;
let dir: string;

async function kubectl(args: string[]) {
  const result = await execa(kubeBinary('kubectl'), ['--kubeconfig', cluster.kubeconfigPath, ...args], { reject: false });
  return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
}

/** `kubectl apply -f` of these objects, as a user would run it; never throws. */
async function apply(...objects: object[]) {
  const file = join(dir, `apply-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, objects.map((o) => stringify(o)).join('---\n'));
  return kubectl(['apply', '-f', file]);
}

async function get<T>(resource: string, name: string, namespace?: string): Promise<T> {
  const result = await kubectl(['get', resource, name, '-o', 'json', ...(namespace ? ['-n', namespace] : [])]);
  if (result.exitCode !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout) as T;
}

const GATEWAY = gateway('gw', [
  httpListener('http'),
  httpsListener('https', '*.pq.example.com', ['pq-mldsa', { kind: 'Secret', name: 'shared', namespace: 'certs' }], { 'qubesec.io/pq-mode': 'strict', 'nginx.org/ssl-ecdh-curve': 'X25519MLKEM768' }),
]);
const ROUTE = httpRoute('web', {
  hostnames: ['www.pq.example.com'],
  rules: [
    httpRule('/', 'web'),
    { matches: [{ path: { type: 'RegularExpression', value: '/v[0-9]+/items' } }], backendRefs: [{ name: 'shared', namespace: 'backends', port: 8080 }] },
  ],
});
const GRANTS = [
  referenceGrant('routes-to-shared', 'backends', [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'default' }], [{ group: '', kind: 'Service', name: 'shared' }]),
  referenceGrant('gateways-to-certs', 'certs', [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'default' }], [{ group: '', kind: 'Secret' }]),
];

beforeAll(async () => {
  cluster = await startCluster();
  dir = await mkdtemp(join(tmpdir(), 'qubesec-gateway-crds-'));
  // Server-side: the HTTPRoute CRD is larger than client-side apply's last-applied annotation may be.
  const crds = await kubectl(['apply', '--server-side', '-f', gatewayApiCrds()]);
  if (crds.exitCode !== 0) throw new Error(`applying the Gateway API CRDs failed: ${crds.stderr}`);
  const established = await kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
  if (established.exitCode !== 0) throw new Error(`Gateway API CRDs not established: ${established.stderr}`);
  for (const namespace of ['backends', 'certs']) {
    const created = await apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
    if (created.exitCode !== 0) throw new Error(created.stderr);
  }
}, 300_000);

afterAll(async () => {
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('Gateway API v1.6.3 standard CRDs', () => {
  it('serves GatewayClass, Gateway, HTTPRoute and ReferenceGrant at v1', async () => {
    const resources = await kubectl(['api-resources', '--api-group=gateway.networking.k8s.io', '-o', 'name']);
    expect(resources.stdout.split('\n')).toEqual(expect.arrayContaining(['gatewayclasses.gateway.networking.k8s.io', 'gateways.gateway.networking.k8s.io', 'httproutes.gateway.networking.k8s.io', 'referencegrants.gateway.networking.k8s.io']));
    const versions = await kubectl(['get', 'crd', 'referencegrants.gateway.networking.k8s.io', '-o', 'jsonpath={.spec.versions[?(@.served==true)].name}']);
    expect(versions.stdout.split(' ')).toContain('v1');
  });

  it('accepts the unit tests\' fixtures, and what it stores translates as the fixtures do', async () => {
    const applied = await apply(gatewayClass(), GATEWAY, ROUTE, ...GRANTS);
    expect(applied).toEqual(expect.objectContaining({ exitCode: 0 }));
    expect(applied.stdout.split('\n')).toEqual([
      'gatewayclass.gateway.networking.k8s.io/qubesec created',
      'gateway.gateway.networking.k8s.io/gw created',
      'httproute.gateway.networking.k8s.io/web created',
      'referencegrant.gateway.networking.k8s.io/routes-to-shared created',
      'referencegrant.gateway.networking.k8s.io/gateways-to-certs created',
    ]);

    const storedClass = await get<GatewayClass>('gatewayclass', 'qubesec');
    const storedGateway = await get<Gateway>('gateway', 'gw', 'default');
    const storedRoute = await get<HTTPRoute>('httproute', 'web', 'default');
    const storedGrants = await Promise.all(GRANTS.map((g) => get<ReferenceGrant>('referencegrant', g.metadata.name!, g.metadata.namespace)));
    // What the fixtures wrote comes back as written, with the schema's defaults filled in.
    expect(storedClass.spec.controllerName).toBe(GATEWAY_CONTROLLER_NAME);
    expect(storedGateway.spec.listeners[0]).toEqual({ ...GATEWAY.spec.listeners[0], allowedRoutes: { namespaces: { from: 'Same' } } });
    const tls = GATEWAY.spec.listeners[1]!.tls!;
    expect(storedGateway.spec.listeners[1]!.tls).toEqual({ ...tls, certificateRefs: tls.certificateRefs!.map((r) => ({ group: '', ...r })) });
    expect(storedRoute.spec.parentRefs).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' }]);
    expect(storedRoute.spec.rules![1]!.backendRefs).toEqual([{ group: '', kind: 'Service', name: 'shared', namespace: 'backends', port: 8080, weight: 1 }]);
    expect(storedGrants.map((g) => g.spec)).toEqual(GRANTS.map((g) => g.spec));

    const certificates = new Map<string, CertificatePair>(['default/pq-mldsa', 'certs/shared'].map((key) => [key, { source: key } as CertificatePair]));
    const t = translateGateways({
      gatewayClasses: [storedClass],
      gateways: [storedGateway],
      httpRoutes: [storedRoute],
      grpcRoutes: [],
      tlsRoutes: [],
      referenceGrants: storedGrants,
      backendTlsPolicies: [],
      namespaceLabels: new Map([['default', {}]]),
      services: servicesByKey(['default/web', 'backends/shared']),
      certificates,
      caConfigMaps: new Map(),
    }, { controllerName: GATEWAY_CONTROLLER_NAME, defaults: BUILTIN_TLS_DEFAULTS, capabilities: CAPABILITIES, ports: { http: 80, https: 443 } });
    expect(t.diagnostics).toEqual([]);
    expect(t.gateways[0]!.listeners.map((l) => [l.name, l.attachedRoutes, l.conditions.map((c) => `${c.type}=${c.status}`).join(' ')])).toEqual([
      ['http', 1, 'Accepted=True ResolvedRefs=True Conflicted=False'],
      ['https', 1, 'Accepted=True ResolvedRefs=True Conflicted=False'],
    ]);
    expect(t.routes[0]!.parents[0]!.conditions.map((c) => [c.type, c.status, c.observedGeneration])).toEqual([['Accepted', 'True', 1], ['ResolvedRefs', 'True', 1]]);
    const intent = t.intents[0]!;
    expect(intent.routes.map((r) => [r.host, r.match, r.path, `${r.backend.namespace}/${r.backend.service}:${r.backend.port}`])).toEqual([
      ['www.pq.example.com', 'prefix', '/', 'default/web:80'],
      ['www.pq.example.com', 'regex', '^(?:/v[0-9]+/items)$', 'backends/shared:8080'],
    ]);
    expect(intent.tls).toEqual([{ hosts: ['www.pq.example.com'], secret: 'default/pq-mldsa' }, { hosts: ['www.pq.example.com'], secret: 'certs/shared' }]);
    expect(intent.policy).toEqual(expect.objectContaining({ pqMode: 'strict', groups: [['X25519MLKEM768']], protocols: ['TLSv1.3'] }));
  });

  it.each([
    ['a path type outside the enum', httpRoute('bad-type', { rules: [httpRule('/', 'web', 80, 'Glob')] }), /spec\.rules\[0\]\.matches\[0\]\.path\.type: Unsupported value: "Glob"/],
    ['an unknown field', { ...httpRoute('bad-field', { rules: [{ backendRefs: [{ name: 'web', port: 80, weigth: 5 } as never] }] }) }, /unknown field "spec\.rules\[0\]\.backendRefs\[0\]\.weigth"/],
    ['a wildcard inside a hostname', httpRoute('bad-host', { hostnames: ['www.*.example.com'], rules: [httpRule('/', 'web')] }), /spec\.hostnames\[0\]: Invalid value: "www\.\*\.example\.com"/],
    ['tls on an HTTP listener', gateway('http-tls', [{ ...httpListener('http'), tls: { mode: 'Terminate', certificateRefs: [{ name: 'pq-mldsa' }] } }]), /tls must not be specified for protocols \['HTTP', 'TCP', 'UDP'\]/],
    ['two listeners with one port, protocol and hostname', gateway('twins', [httpListener('one', 'a.example.com'), httpListener('two', 'a.example.com')]), /Combination of port, protocol and hostname must be unique for each listener/],
  ])('refuses %s', async (_what, object, message) => {
    const result = await apply(object);
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });
});
