// ModelBuilder keeps pieces between builds; whatever happened before, a build must give what a build from scratch
// gives. Random changes (Ingresses, Services, EndpointSlices, Secrets, defaults) from a seeded generator, compared
// with buildModel at every step.
import type { V1EndpointSlice, V1HTTPIngressPath, V1Ingress, V1Service } from '@kubernetes/client-node';
import { ModelBuilder, buildModel, type InputChanges, type ModelInputs } from './build.js';
import { checkCaSecret, checkTlsSecret } from './certificates.js';
import { translateIngress, type BackendRef, type IngressIntent } from './ingress.js';
import { BUILTIN_TLS_DEFAULTS, defaultPolicy } from './pq.js';
import { CA_SECRET } from './proxy-annotations.cases.js';
import { INGRESS_NGINX_PREFIX as N } from './proxy-annotations.js';
import { CAPABILITIES, endpointSlice, seededRandom as random, service, tlsSecret } from './testing.js';
import type { CaBundle, CertificatePair, Model } from './types.js';

const NOW = new Date('2026-11-28T00:00:00Z');
const STEPS = 400;

function pair(secret: string, file: string): CertificatePair {
  const checked = checkTlsSecret(tlsSecret(secret, file), NOW);
  if ('error' in checked) throw new Error(checked.error);
  return checked.pair;
}

function caBundle(): CaBundle {
  const checked = checkCaSecret(CA_SECRET, NOW);
  if ('error' in checked) throw new Error(checked.error);
  return checked.ca;
}

const HOSTS = ['', 'pq.example.com', 'a.pq.example.com', 'b.pq.example.com', 'other.example.com', '*.pq.example.com'];
const PATHS = ['/', '/api', '/static'];
const PATH_TYPES = ['Prefix', 'Exact', 'ImplementationSpecific'];
const SERVICES = ['web', 'api', 'errors', 'gone'];
const SECRETS = ['mldsa', 'ecdsa', 'spare'];
const ANNOTATIONS: Record<string, string>[] = [
  { [`${N}affinity`]: 'cookie', [`${N}session-cookie-name`]: 'route' },
  { [`${N}default-backend`]: 'errors', [`${N}custom-http-errors`]: '404,503' },
  { [`${N}custom-http-errors`]: '503' },
  { [`${N}auth-tls-secret`]: 'default/ca' },
  { [`${N}auth-tls-secret`]: 'default/ca', [`${N}auth-tls-verify-depth`]: '2' },
  { [`${N}backend-protocol`]: 'HTTPS', [`${N}proxy-ssl-secret`]: 'default/ca', [`${N}proxy-ssl-verify`]: 'on' },
  { [`${N}backend-protocol`]: 'HTTPS', [`${N}proxy-ssl-secret`]: 'default/spare' },
  { [`${N}app-root`]: '/home' },
  { [`${N}force-ssl-redirect`]: 'true' },
  { 'qubesec.io/pq-mode': 'strict' },
  { [`${N}limit-rps`]: '10' },
];

type Touched = Record<Exclude<keyof InputChanges, 'intents'>, Set<string>>;

/** A random cluster and a random change to it, as the reconciler's inputs. */
class World {
  /** Keys whose entries changed since the last InputChanges: what the reconciler learns from the source's events. */
  private touched: Touched = { services: new Set(), endpointSlices: new Set(), certificates: new Set(), caBundles: new Set() };
  /** The intents of the inputs that changes() was last asked about. */
  private lastIntents = new Map<string, IngressIntent>();
  private readonly ingresses = new Map<string, V1Ingress>();
  private readonly intents = new Map<string, IngressIntent>();
  private readonly services = new Map<string, V1Service>();
  private readonly slices = new Map<string, V1EndpointSlice[]>();
  private readonly certificates = new Map<string, CertificatePair>();
  private readonly caBundles = new Map<string, CaBundle>();
  private defaultCertificates: CertificatePair[];
  private defaultBackend: BackendRef | undefined;
  private readonly pairs: Record<string, () => CertificatePair> = {
    mldsa: () => pair('mldsa', 'mldsa65'),
    ecdsa: () => pair('ecdsa', 'ecdsa'),
    spare: () => pair('spare', this.pick(['mldsa65', 'ecdsa', 'mldsa44-other'])),
  };

  constructor(private readonly next: () => number) {
    for (let i = 0; i < 8; i++) this.putIngress(`ing-${i}`);
    for (const name of SERVICES.slice(0, 3)) this.putService(name);
    for (const secret of SECRETS) this.certificates.set(`default/${secret}`, this.pairs[secret]!());
    this.caBundles.set('default/ca', caBundle());
    this.defaultCertificates = [pair('default', 'ecdsa')];
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  private chance(p: number): boolean {
    return this.next() < p;
  }

  private putIngress(name: string): void {
    const paths = (): V1HTTPIngressPath[] => Array.from({ length: 1 + Math.floor(this.next() * 2) }, () => ({
      path: this.pick(PATHS),
      pathType: this.pick(PATH_TYPES),
      backend: { service: { name: this.pick(SERVICES), port: this.chance(0.5) ? { number: 80 } : { name: 'http' } } },
    }));
    const hosts = [...new Set(Array.from({ length: 1 + Math.floor(this.next() * 2) }, () => this.pick(HOSTS)))];
    const annotations = Object.assign({}, ...Array.from({ length: Math.floor(this.next() * 3) }, () => this.pick(ANNOTATIONS))) as Record<string, string>;
    const tlsHosts = hosts.filter((h) => h !== '' && this.chance(0.7));
    const ingress: V1Ingress = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      // Few distinct times: ties are decided by name.
      metadata: { name, namespace: 'default', uid: `uid-${name}`, annotations, creationTimestamp: new Date(Date.UTC(2026, 0, 1 + Math.floor(this.next() * 4))) },
      spec: {
        ingressClassName: 'qubesec',
        rules: hosts.map((host) => (host === '' ? { http: { paths: paths() } } : { host, http: { paths: paths() } })),
        tls: tlsHosts.length === 0 ? undefined : SECRETS.filter(() => this.chance(0.5)).map((secret) => ({ hosts: tlsHosts, secretName: secret })),
      },
    };
    const { intent } = translateIngress(ingress, BUILTIN_TLS_DEFAULTS, CAPABILITIES, this.defaultBackend !== undefined);
    this.ingresses.set(name, ingress);
    if (intent) this.intents.set(name, intent);
    else this.intents.delete(name);
  }

  private putService(name: string): void {
    this.services.set(`default/${name}`, service(name, this.chance(0.8) ? [{ name: 'http', port: 80 }] : [{ name: 'grpc', port: 81 }]));
    const ready = Array.from({ length: Math.floor(this.next() * 3) }, (_, i) => ({ ip: `10.0.0.${1 + Math.floor(this.next() * 3) + i}`, ready: this.chance(0.8) }));
    this.slices.set(`default/${name}`, [endpointSlice(name, { name: 'http', port: 8080 }, ready)]);
  }

  /** One to three random changes. */
  change(): void {
    const touch = (map: keyof Touched, key: string) => this.touched[map].add(key);
    for (let n = 1 + Math.floor(this.next() * 3); n > 0; n--) {
      const what = this.pick(['ingress', 'ingress', 'ingress', 'delete', 'same', 'service', 'endpoints', 'secret', 'ca', 'defaults', 'backend']);
      const name = `ing-${Math.floor(this.next() * 10)}`;
      if (what === 'ingress') this.putIngress(name);
      else if (what === 'delete') this.intents.delete(name);
      else if (what === 'same') {
        // The same content translated again (a new resourceVersion): a new intent object, equal to the last.
        const ingress = this.ingresses.get(name);
        const intent = ingress && translateIngress(ingress, BUILTIN_TLS_DEFAULTS, CAPABILITIES, this.defaultBackend !== undefined).intent;
        if (intent) this.intents.set(name, intent);
      } else if (what === 'service') {
        const name = this.pick(SERVICES);
        if (this.chance(0.3)) {
          this.services.delete(`default/${name}`);
          this.slices.delete(`default/${name}`);
        } else {
          this.putService(name);
        }
        touch('services', `default/${name}`);
        touch('endpointSlices', `default/${name}`);
      } else if (what === 'endpoints') {
        const key = `default/${this.pick(SERVICES)}`;
        const slices = this.slices.get(key);
        if (slices) this.slices.set(key, [...slices, endpointSlice(key.slice(8), { name: 'http', port: 8080 }, [{ ip: `10.0.1.${Math.floor(this.next() * 9)}` }])]);
        touch('endpointSlices', key);
      } else if (what === 'secret') {
        const secret = this.pick(SECRETS);
        if (this.chance(0.3)) this.certificates.delete(`default/${secret}`);
        else this.certificates.set(`default/${secret}`, this.pairs[secret]!());
        touch('certificates', `default/${secret}`);
      } else if (what === 'ca') {
        if (this.chance(0.4)) this.caBundles.delete('default/ca');
        else this.caBundles.set('default/ca', caBundle());
        touch('caBundles', 'default/ca');
      } else if (what === 'defaults') {
        // A new array each sync (the session ticket Secret's pairs), sometimes other pairs.
        this.defaultCertificates = this.chance(0.5) ? [...this.defaultCertificates] : [pair('default', this.pick(['ecdsa', 'mldsa65']))];
      } else {
        this.defaultBackend = this.pick([undefined, { namespace: 'default', service: 'errors', port: '' }, { namespace: 'default', service: 'web', port: 'http' }]);
      }
    }
  }

  /**
   * What changed since the last call, for `inputs`: the intents that differ from the last inputs' and the keys
   * touched since, and (as the reconciler may) some keys that did not change at all.
   */
  changes(inputs: ModelInputs): InputChanges {
    const now = new Map([...inputs.intents].map((intent) => [`${intent.ref.namespace}/${intent.ref.name}`, intent]));
    const intents = new Map<string, IngressIntent | undefined>();
    for (const [key, intent] of now) if (this.lastIntents.get(key) !== intent || this.chance(0.1)) intents.set(key, intent);
    for (const key of this.lastIntents.keys()) if (!now.has(key)) intents.set(key, undefined);
    this.lastIntents = now;
    const extra = (keys: readonly string[]) => keys.filter(() => this.chance(0.1)).map((k) => `default/${k}`);
    const touched = this.touched;
    this.touched = { services: new Set(), endpointSlices: new Set(), certificates: new Set(), caBundles: new Set() };
    return {
      intents,
      services: [...touched.services, ...extra(SERVICES)],
      endpointSlices: [...touched.endpointSlices, ...extra(SERVICES)],
      certificates: [...touched.certificates, ...extra(SECRETS)],
      caBundles: [...touched.caBundles, ...extra(['ca'])],
    };
  }

  /** The inputs of a sync, or of one of its tries: sometimes only some of the intents. */
  inputs(): ModelInputs {
    const intents = [...this.intents.values()];
    return {
      intents: this.chance(0.15) ? intents.filter(() => this.chance(0.6)) : intents,
      services: new Map(this.services),
      endpointSlices: new Map(this.slices),
      certificates: new Map(this.certificates),
      caBundles: new Map(this.caBundles),
      defaultPolicy: defaultPolicy(BUILTIN_TLS_DEFAULTS, CAPABILITIES),
      defaultCertificates: this.defaultCertificates,
      defaultBackend: this.defaultBackend,
    };
  }
}

describe('ModelBuilder', () => {
  it.each([1, 2, 3, 4])('gives the model and diagnostics of a build from scratch after every random change (seed %i)', (seed) => {
    const world = new World(random(seed));
    // One builder compares every piece with the inputs; the other is told what changed (InputChanges), as in a sync.
    const comparing = new ModelBuilder();
    const told = new ModelBuilder();
    let kept = 0;
    let last: Model | undefined;
    for (let step = 0; step < STEPS; step++) {
      const inputs = world.inputs();
      const scratch = buildModel(inputs);
      const fromComparing = comparing.build(inputs);
      const fromTold = told.build(inputs, world.changes(inputs));
      try {
        expect(fromComparing).toEqual(scratch);
        expect(fromTold).toEqual(scratch);
      } catch (err) {
        throw new Error(`seed ${seed}, step ${step}: ${(err as Error).message}`, { cause: err });
      }
      kept += fromTold.model.servers.filter((s, i) => s === last?.servers[i]).length;
      last = fromTold.model;
      world.change();
    }
    // The comparison means something only if pieces were kept (and changes were made): both happen.
    expect(kept).toBeGreaterThan(STEPS);
  });

  it('keeps the servers and upstreams of hosts and Services that did not change, as the same objects', () => {
    const world = new World(random(9));
    const builder = new ModelBuilder();
    const inputs = world.inputs();
    const first = builder.build(inputs).model;
    const again = builder.build({ ...inputs, services: new Map(inputs.services), certificates: new Map(inputs.certificates) }).model;
    expect(again.servers).toHaveLength(first.servers.length);
    again.servers.forEach((server, i) => expect(server).toBe(first.servers[i]));
    again.upstreams.forEach((upstream, i) => expect(upstream).toBe(first.upstreams[i]));
  });
});
