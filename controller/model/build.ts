// Intents + Services + EndpointSlices + checked certificates -> Model. Pure: the same inputs give the same model.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { BackendRef, IngressIntent, IntentRoute } from './ingress.js';
import { warning } from './ingress.js';
import { nameCoversHost } from './names.js';
import { samePolicy } from './pq.js';
import type { BackendTls, CaBundle, CertificatePair, ClientAuth, Diagnostic, Endpoint, Location, LocationAction, LocationPolicy, Model, RequestConditions, Server, TlsPolicy, Upstream } from './types.js';

export interface ClusterState {
  /** Keyed namespace/name. */
  services: ReadonlyMap<string, V1Service>;
  /** Keyed namespace/service-name (the kubernetes.io/service-name label). */
  endpointSlices: ReadonlyMap<string, readonly V1EndpointSlice[]>;
  /** Checked pairs keyed namespace/name (serving certificates, and client certificates for upstreams); a Secret that is missing or never was good is absent. */
  certificates: ReadonlyMap<string, CertificatePair>;
  /** Checked ca.crt bundles keyed namespace/name. */
  caBundles: ReadonlyMap<string, CaBundle>;
}

export interface ModelInputs extends ClusterState {
  /** Read only by builds without InputChanges. */
  intents: Iterable<IngressIntent>;
  defaultPolicy: TlsPolicy;
  defaultCertificates: CertificatePair[];
  /** --default-backend-service; port '' means the Service's first port. */
  defaultBackend?: BackendRef;
}

export interface ModelResult {
  model: Model;
  diagnostics: Diagnostic[];
}

/** The label that names an EndpointSlice's Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

interface RouteDraft {
  route: IntentRoute;
  intent: IngressIntent;
  /** Upstreams by role; absent for redirects. */
  upstream?: string;
  fallback?: string;
  errorUpstream?: string;
  /** Weighted backends' upstreams (Gateway API), the first being `upstream`. */
  backends?: { upstream: string; weight: number }[];
  /** Older intents first, then the order of the routes in their intent: the spec's last tie-breakers. */
  order: number;
}

interface ServerDraft {
  host: string;
  /** By match and path: the route that serves it. */
  locations: Map<string, RouteDraft>;
  /** By match and path: the routes that need the data plane to choose per request (Gateway API matches and filters). */
  branched: Map<string, RouteDraft[]>;
  tls?: { policy: TlsPolicy; certificates: CertificatePair[]; owner: IngressIntent; clientAuth?: ClientAuth; clientAuthOwner?: IngressIntent; clientAuthUnusable?: string };
}

/** Builds the model once, from scratch: a ModelBuilder with nothing kept. */
export function buildModel(inputs: ModelInputs): ModelResult {
  return new ModelBuilder().build(inputs);
}

/** A route's need of an upstream; `intent` is the oldest Ingress that needs it (Service problems are its diagnostics). */
interface UpstreamUse {
  backend: BackendRef;
  variant: UpstreamVariant;
  /** Absent for --default-backend-service when no Ingress routes to it. */
  intent?: IngressIntent;
}

/** What a host's server read from the inputs besides its Ingresses' intents, and what it found there. */
type Read =
  | { from: 'certificates' | 'caBundles'; key: string; found: unknown }
  | { from: 'defaultCertificates'; found: readonly CertificatePair[] }
  | { from: 'defaultBackend'; found: BackendRef | undefined };

/** One host's part of the model: its server, the diagnostics about it, and the upstreams its routes need. */
interface HostPiece {
  server: Server;
  diagnostics: Diagnostic[];
  /** By upstream name; a list, which takes less memory than a map per host. */
  upstreams: [string, UpstreamUse][];
  reads: Read[];
}

interface UpstreamPiece {
  use: UpstreamUse;
  service: V1Service | undefined;
  slices: readonly V1EndpointSlice[] | undefined;
  upstream: Upstream;
  /** ServiceNotFound or ServicePortNotFound, told to the use's Ingress. */
  problem?: { reason: string; message: string };
}

/**
 * What differs from the inputs of the builder's last build, by key, as the reconciler knows it from the source's
 * changes; a key may be named without its object having changed. The builder trusts it: a change left out is not
 * seen. Without it, every intent, read and upstream of the last build is compared with the inputs.
 */
export interface InputChanges {
  /** Per intentKey of an Ingress or route whose intent may have come, gone or changed: its intent now (none: gone). */
  intents: ReadonlyMap<string, IngressIntent | undefined>;
  /** namespace/name keys of ClusterState's maps whose entry may have changed (endpointSlices: the Service's key). */
  services: Iterable<string>;
  endpointSlices: Iterable<string>;
  certificates: Iterable<string>;
  caBundles: Iterable<string>;
}

/**
 * buildModel that keeps its pieces from one build to the next. A server depends only on the intents that name its
 * host (routes or spec.tls) and on the certificates, CA bundles and defaults it read; an upstream only on its Service,
 * that Service's EndpointSlices and the routes that need it. Intents and checked Secrets are immutable and handed out
 * as the same objects while unchanged (the translation cache, the reconciler's last good Secrets), so a piece is
 * rebuilt only when an intent of its host came or went or a read now finds another object; the rest of the model is
 * the same objects as in the last build (which also keeps their hashes in the applier and their blocks in the
 * renderer). Given the changes (InputChanges), a build looks at the pieces they touch and nothing else: indexes from
 * each read and each Service to the pieces that depend on it, and the sorted lists of servers and upstreams, are kept
 * up to date piece by piece. The result is the one buildModel gives for the same inputs, whatever the builds before
 * (builder.test.ts drives random changes, with and without InputChanges).
 */
export class ModelBuilder {
  /** The intents of the last build by namespace/name, and per host the ones that name it, oldest first. */
  private readonly intents = new Map<string, IngressIntent>();
  private readonly intentsByHost = new Map<string, IngressIntent[]>([['', []]]);
  private readonly hosts = new Map<string, HostPiece>();
  private readonly upstreams = new Map<string, UpstreamPiece>();
  /** Per read (readKey), the hosts whose server made it. */
  private readonly readers = new Map<string, Set<string>>();
  /** Per upstream name, the hosts whose pieces need it, with the use each made of it (lists: most have one). */
  private readonly users = new Map<string, [string, UpstreamUse][]>();
  /** Per Service (namespace/name), the upstreams built on it. */
  private readonly upstreamsOfService = new Map<string, string[]>();
  private readonly hostsWithDiagnostics = new Set<string>();
  private readonly upstreamsWithProblems = new Set<string>();
  private readonly servers = new SortedList<Server>((server) => server.host);
  private readonly upstreamList = new SortedList<Upstream>((upstream) => upstream.name);
  private defaultCertificates: readonly CertificatePair[] | undefined;
  private defaultBackend: BackendRef | undefined;
  private defaultName: string | undefined;
  private built = false;

  build(inputs: ModelInputs, changes?: InputChanges): ModelResult {
    const known = this.built && changes !== undefined;
    this.built = true;
    const changedHosts = known ? this.updateIntents(changes.intents) : this.index(inputs.intents);
    // The catch-all server is always there, named by an intent or not.
    if (!this.hosts.has('')) changedHosts.add('');

    // Hosts whose reads may find other objects now: all of them without changes, else the readers of what changed.
    const maybeStale = new Set<string>();
    const addReaders = (read: string) => {
      for (const host of this.readers.get(read) ?? []) maybeStale.add(host);
    };
    if (!known) {
      for (const host of this.hosts.keys()) maybeStale.add(host);
    } else {
      for (const key of changes.certificates) addReaders(readKey({ from: 'certificates', key }));
      for (const key of changes.caBundles) addReaders(readKey({ from: 'caBundles', key }));
      if (!sameElements(this.defaultCertificates, inputs.defaultCertificates)) addReaders(readKey({ from: 'defaultCertificates' }));
      if (!sameBackend(this.defaultBackend, inputs.defaultBackend)) addReaders(readKey({ from: 'defaultBackend' }));
    }
    this.defaultCertificates = inputs.defaultCertificates;
    this.defaultBackend = inputs.defaultBackend;

    const changedUpstreams = new Set<string>();
    for (const host of maybeStale) {
      const piece = this.hosts.get(host);
      if (piece && !changedHosts.has(host) && !piece.reads.every((read) => stillFound(read, inputs))) changedHosts.add(host);
    }
    for (const host of changedHosts) {
      const old = this.hosts.get(host);
      if (old) this.forget(host, old, changedUpstreams);
      const intents = this.intentsByHost.get(host);
      if (intents) this.keep(host, buildHost(host, intents, inputs), changedUpstreams);
    }

    const defaultName = inputs.defaultBackend && upstreamName(inputs.defaultBackend, {});
    if (defaultName !== this.defaultName) {
      if (this.defaultName) changedUpstreams.add(this.defaultName);
      if (defaultName) changedUpstreams.add(defaultName);
      this.defaultName = defaultName;
    }
    if (!known) {
      for (const name of this.upstreams.keys()) changedUpstreams.add(name);
    } else {
      for (const key of [...changes.services, ...changes.endpointSlices]) {
        for (const name of this.upstreamsOfService.get(key) ?? []) changedUpstreams.add(name);
      }
    }
    for (const name of changedUpstreams) this.updateUpstream(name, inputs);

    const diagnostics = [...this.hostsWithDiagnostics].sort((a, b) => a.localeCompare(b)).flatMap((host) => this.hosts.get(host)!.diagnostics);
    for (const upstream of [...this.upstreamsWithProblems].sort((a, b) => a.localeCompare(b))) {
      const { problem, use } = this.upstreams.get(upstream)!;
      const { reason, message } = problem!;
      if (use.intent) diagnostics.push(warning(use.intent.ref, reason, `${title(use.intent)}: ${message}`));
      else diagnostics.push(warning({ kind: 'Service', namespace: use.backend.namespace, name: use.backend.service }, reason, `--default-backend-service: ${message}`));
    }
    const model: Model = {
      servers: this.servers.items(),
      upstreams: this.upstreamList.items(),
      defaultPolicy: inputs.defaultPolicy,
      defaultCertificates: inputs.defaultCertificates,
      defaultBackend: defaultName,
    };
    return { model, diagnostics };
  }

  /** Brings intents and intentsByHost to `intents`; returns the hosts whose intents changed. */
  private index(intents: Iterable<IngressIntent>): Set<string> {
    const next = new Map<string, IngressIntent | undefined>();
    for (const intent of intents) next.set(intentKey(intent), intent);
    for (const key of this.intents.keys()) if (!next.has(key)) next.set(key, undefined);
    return this.updateIntents(next);
  }

  private updateIntents(changes: ReadonlyMap<string, IngressIntent | undefined>): Set<string> {
    const changed = new Set<string>();
    for (const [key, intent] of changes) {
      const old = this.intents.get(key);
      if (old === intent) continue;
      if (old) {
        for (const host of hostsOf(old)) {
          changed.add(host);
          const list = this.intentsByHost.get(host)!;
          list.splice(list.indexOf(old), 1);
          if (list.length === 0 && host !== '') this.intentsByHost.delete(host);
        }
        this.intents.delete(key);
      }
      if (intent) {
        for (const host of hostsOf(intent)) {
          changed.add(host);
          let list = this.intentsByHost.get(host);
          if (!list) this.intentsByHost.set(host, (list = []));
          list.splice(insertionPoint(list, intent, byAge), 0, intent);
        }
        this.intents.set(key, intent);
      }
    }
    return changed;
  }

  /** Takes a host's piece out of the indexes; the upstreams it needed are to be looked at again. */
  private forget(host: string, piece: HostPiece, changedUpstreams: Set<string>): void {
    this.hosts.delete(host);
    this.servers.remove(piece.server);
    this.hostsWithDiagnostics.delete(host);
    for (const read of piece.reads) {
      // A piece may read one thing twice: the first pass took it out.
      const key = readKey(read);
      const readers = this.readers.get(key);
      readers?.delete(host);
      if (readers?.size === 0) this.readers.delete(key);
    }
    for (const [upstream] of piece.upstreams) {
      changedUpstreams.add(upstream);
      const users = this.users.get(upstream)!.filter(([user]) => user !== host);
      if (users.length > 0) this.users.set(upstream, users);
      else this.users.delete(upstream);
    }
  }

  private keep(host: string, piece: HostPiece, changedUpstreams: Set<string>): void {
    this.hosts.set(host, piece);
    this.servers.add(piece.server);
    if (piece.diagnostics.length > 0) this.hostsWithDiagnostics.add(host);
    for (const read of piece.reads) {
      const key = readKey(read);
      let readers = this.readers.get(key);
      if (!readers) this.readers.set(key, (readers = new Set()));
      readers.add(host);
    }
    for (const [upstream, use] of piece.upstreams) {
      changedUpstreams.add(upstream);
      const users = this.users.get(upstream);
      if (users) users.push([host, use]);
      else this.users.set(upstream, [[host, use]]);
    }
  }

  /** The upstream `name` as buildModel would make it now: needed first by its oldest user, or gone. */
  private updateUpstream(upstream: string, inputs: ModelInputs): void {
    let use: UpstreamUse | undefined;
    for (const [, candidate] of this.users.get(upstream) ?? []) {
      if (!use || byAge(candidate.intent!, use.intent!) < 0) use = candidate;
    }
    if (!use && upstream === this.defaultName) use = { backend: inputs.defaultBackend!, variant: {} };
    const piece = this.upstreams.get(upstream);
    if (piece && use && upstreamHolds(piece, use, inputs)) {
      // The same upstream, needed first by another Ingress now: its problems are told to that one.
      if (piece.use.intent !== use.intent) this.upstreams.set(upstream, { ...piece, use });
      return;
    }
    if (piece) {
      this.upstreams.delete(upstream);
      this.upstreamList.remove(piece.upstream);
      this.upstreamsWithProblems.delete(upstream);
      const service = serviceKeyOf(piece.use.backend);
      const ofService = this.upstreamsOfService.get(service)!.filter((name) => name !== upstream);
      if (ofService.length > 0) this.upstreamsOfService.set(service, ofService);
      else this.upstreamsOfService.delete(service);
    }
    if (!use) return;
    const built = buildUpstream(upstream, use, inputs);
    this.upstreams.set(upstream, built);
    this.upstreamList.add(built.upstream);
    if (built.problem) this.upstreamsWithProblems.add(upstream);
    const service = serviceKeyOf(use.backend);
    const ofService = this.upstreamsOfService.get(service);
    if (ofService) ofService.push(upstream);
    else this.upstreamsOfService.set(service, [upstream]);
  }
}

/**
 * Items in localeCompare order of their keys, kept between builds: a build that adds or removes a few pays for those
 * alone, and hands out a copy (a model's arrays never change once built) only when something changed.
 */
class SortedList<T> {
  private readonly list: T[] = [];
  private copy: T[] | undefined;

  constructor(private readonly keyOf: (item: T) => string) {}

  add(item: T): void {
    this.list.splice(this.firstAtOrAfter(this.keyOf(item)), 0, item);
    this.copy = undefined;
  }

  remove(item: T): void {
    let at = this.firstAtOrAfter(this.keyOf(item));
    while (this.list[at] !== item) at++;
    this.list.splice(at, 1);
    this.copy = undefined;
  }

  items(): T[] {
    return (this.copy ??= [...this.list]);
  }

  private firstAtOrAfter(key: string): number {
    let low = 0;
    let high = this.list.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.keyOf(this.list[middle]!).localeCompare(key) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}

function insertionPoint<T>(sorted: readonly T[], item: T, compare: (a: T, b: T) => number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compare(sorted[middle]!, item) <= 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** The hosts whose servers an intent takes part in: its rules', its spec.tls entries' and its passthrough's. */
function hostsOf(intent: IngressIntent): Set<string> {
  const hosts = new Set(intent.routes.map((route) => route.host));
  for (const entry of intent.tls) for (const host of entry.hosts) hosts.add(host);
  for (const host of intent.passthrough?.hosts ?? []) hosts.add(host);
  return hosts;
}

/** Names a read for the index of readers: what it read, not what it found. */
function readKey(read: Pick<Read, 'from'> & { key?: string }): string {
  return read.key === undefined ? read.from : `${read.from} ${read.key}`;
}

function serviceKeyOf(backend: BackendRef): string {
  return `${backend.namespace}/${backend.service}`;
}

function stillFound(read: Read, inputs: ModelInputs): boolean {
  switch (read.from) {
    case 'certificates':
    case 'caBundles':
      return inputs[read.from].get(read.key) === read.found;
    case 'defaultCertificates':
      return sameElements(read.found, inputs.defaultCertificates);
    case 'defaultBackend':
      return sameBackend(read.found, inputs.defaultBackend);
  }
}

function sameElements<T>(a: readonly T[] | undefined, b: readonly T[] | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.length === b.length && a.every((item, i) => item === b[i]));
}

function sameBackend(a: BackendRef | undefined, b: BackendRef | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.namespace === b.namespace && a.service === b.service && a.port === b.port);
}

/** The inputs a host's server reads, each read recorded (HostPiece.reads). */
class RecordedInputs {
  readonly reads: Read[] = [];

  constructor(private readonly inputs: ModelInputs) {}

  certificate(key: string): CertificatePair | undefined {
    const found = this.inputs.certificates.get(key);
    this.reads.push({ from: 'certificates', key, found });
    return found;
  }

  caBundle(key: string): CaBundle | undefined {
    const found = this.inputs.caBundles.get(key);
    this.reads.push({ from: 'caBundles', key, found });
    return found;
  }

  get defaultCertificates(): CertificatePair[] {
    this.reads.push({ from: 'defaultCertificates', found: this.inputs.defaultCertificates });
    return this.inputs.defaultCertificates;
  }

  get defaultBackend(): BackendRef | undefined {
    this.reads.push({ from: 'defaultBackend', found: this.inputs.defaultBackend });
    return this.inputs.defaultBackend;
  }
}

/**
 * The server of one host from the intents that name it, oldest first: a path goes to the oldest Ingress that claims
 * it with the best precedence, the TLS policy and client certificate checks to the oldest with spec.tls for the host.
 */
function buildHost(host: string, intents: readonly IngressIntent[], all: ModelInputs): HostPiece {
  const inputs = new RecordedInputs(all);
  const diagnostics: Diagnostic[] = [];
  const draft: ServerDraft = { host, locations: new Map(), branched: new Map() };
  const uses = new Map<string, UpstreamUse>();
  let order = 0;

  // TLS passthrough takes the host's TLS connections by their SNI, before any handshake: the oldest TLSRoute for it
  // serves it, and nothing else can (a server block would never see its TLS connections).
  const passing = intents.find((i) => i.passthrough?.hosts.includes(host));
  if (passing) {
    for (const other of intents) {
      if (other !== passing) diagnostics.push(warning(other.ref, 'Conflict', `${title(other)}: host ${host} is passed through (TLS, by SNI) to ${title(passing)}, which is ${other.passthrough ? 'older' : 'a TLSRoute'}; it is not served for that host`));
    }
    const backends = passing.passthrough!.backends.map((b) => {
      if (b.refused) return { upstream: '', weight: b.weight };
      const name = upstreamName(b.backend, {});
      if (!uses.has(name)) uses.set(name, { backend: b.backend, variant: {}, intent: passing });
      return { upstream: name, weight: b.weight };
    });
    return { server: { host, locations: [], passthrough: { backends } }, diagnostics: diagnostics.slice(), upstreams: Array.from(uses), reads: [] };
  }

  for (const intent of intents) {
    const upstream = (backend: BackendRef, variant: UpstreamVariant = {}) => {
      const name = upstreamName(backend, variant);
      if (!uses.has(name)) uses.set(name, { backend, variant, intent });
      return name;
    };
    for (const route of intent.routes) {
      if (route.host !== host) continue;
      const key = `${route.match} ${route.path}`;
      if (branches(route)) {
        const variant = { affinityCookie: intent.proxy.affinityCookie, tls: upstreamTlsKey(intent, route) };
        // A refused backend has no upstream: '' answers 500. A redirect has none at all.
        const backends = route.redirectTo ? [] : (route.backends ?? [{ backend: route.backend, weight: 1 }]).map((b) => ({ upstream: b.refused ? '' : upstream(b.backend, variant), weight: b.weight }));
        const list = draft.branched.get(key) ?? [];
        list.push({ route, intent, upstream: backends[0]?.upstream ?? '', backends, order: order++ });
        draft.branched.set(key, list);
        continue;
      }
      const held = draft.locations.get(key);
      if (held && held.route.precedence < route.precedence) continue;
      if (held && held.route.precedence === route.precedence) {
        if (held.intent !== intent || held.route.field !== route.field) {
          diagnostics.push(warning(intent.ref, 'Conflict', `${title(intent)}: ${route.field} (${hostText(route.host)} ${route.match} ${route.path}) is already served by ${title(held.intent)}, which is older`));
        }
        continue;
      }
      const routeDraft: RouteDraft = { route, intent, order: order++ };
      if (!route.redirect && !intent.proxy.redirect) {
        const { defaultBackend, errorCodes, affinityCookie } = intent.proxy;
        const tls = upstreamTlsKey(intent, route);
        routeDraft.upstream = upstream(route.backend, { affinityCookie, tls });
        const own = defaultBackend && { namespace: intent.ref.namespace, service: defaultBackend.service, port: defaultBackend.port };
        if (own) routeDraft.fallback = upstream(own, { tls });
        // Error pages are plain HTTP requests (as ingress-nginx's), so never through a TLS upstream's connection pool.
        if (errorCodes) routeDraft.errorUpstream = own ? upstream(own) : inputs.defaultBackend && upstream(inputs.defaultBackend);
      }
      draft.locations.set(key, routeDraft);
    }
  }

  for (const intent of intents) {
    for (const entry of intent.tls) {
      for (const entryHost of entry.hosts) {
        if (entryHost !== host) continue;
        if (!draft.tls) {
          draft.tls = { policy: intent.policy, certificates: [], owner: intent };
        } else if (intent.policyFromAnnotations && !samePolicy(draft.tls.policy, intent.policy) && draft.tls.owner !== intent) {
          diagnostics.push(warning(intent.ref, 'Conflict', `${title(intent)}: the TLS policy of host ${host} comes from ${title(draft.tls.owner)}, which is older; this Ingress's qubesec.io annotations do not apply to it`));
        }
        addClientAuth(draft.tls, intent, host, inputs, diagnostics);
        const pair = inputs.certificate(entry.secret);
        if (!pair) {
          diagnostics.push(warning(intent.ref, 'SecretNotUsable', `${title(intent)}: Secret ${entry.secret} for host ${host} is missing or has never held a valid pair; serving the default certificate`));
          continue;
        }
        if (!pair.names.some((n) => nameCoversHost(n, host))) {
          diagnostics.push(warning(intent.ref, 'CertificateHostMismatch', `${title(intent)}: the certificate in Secret ${entry.secret} (names ${pair.names.join(', ') || 'none'}) does not cover host ${host}`));
          continue;
        }
        const sameType = draft.tls.certificates.find((c) => c.keyAlgorithm === pair.keyAlgorithm);
        if (sameType && sameType.fingerprint !== pair.fingerprint) {
          diagnostics.push(warning(intent.ref, 'DuplicateKeyType', `${title(intent)}: host ${host} already has a ${pair.keyAlgorithm} certificate from Secret ${sameType.source}; Secret ${entry.secret} is not used (one certificate per key type)`));
        } else if (!sameType) {
          draft.tls.certificates.push(pair);
        }
      }
    }
  }

  const server = finishServer(draft, inputs, diagnostics);
  // Copies to their length, not the lists push grew (room for 17 items; a spread literal too): thousands are kept.
  return { server, diagnostics: diagnostics.slice(), upstreams: Array.from(uses), reads: inputs.reads.slice() };
}

/** Client certificate checks are a server setting in NGINX: the oldest Ingress of the host that asks sets them. */
function addClientAuth(tls: NonNullable<ServerDraft['tls']>, intent: IngressIntent, host: string, inputs: RecordedInputs, diagnostics: Diagnostic[]): void {
  const wanted = intent.proxy.clientAuth;
  if (!wanted || tls.clientAuthOwner === intent) return;
  if (tls.clientAuthOwner) {
    const held = tls.clientAuthOwner.proxy.clientAuth!;
    if (held.secret !== wanted.secret || held.verify !== wanted.verify || held.depth !== wanted.depth) {
      diagnostics.push(warning(intent.ref, 'Conflict', `${title(intent)}: client certificate checks of host ${host} come from ${title(tls.clientAuthOwner)}, which is older; this Ingress's auth-tls annotations do not apply to it`));
    }
    return;
  }
  tls.clientAuthOwner = intent;
  const ca = wanted.secret === undefined ? undefined : inputs.caBundle(wanted.secret);
  if (!ca && wanted.verify !== 'optional_no_ca') {
    tls.clientAuthUnusable = `Secret ${wanted.secret} has no usable ca.crt for client certificate checks`;
    diagnostics.push(warning(intent.ref, 'ClientCANotUsable', `${title(intent)}: ${tls.clientAuthUnusable}; host ${host} answers 503 until it has one`));
    return;
  }
  tls.clientAuth = { verify: wanted.verify, depth: wanted.depth, ca, passCertificate: wanted.passCertificate };
}

function finishServer(draft: ServerDraft, inputs: RecordedInputs, diagnostics: Diagnostic[]): Server {
  const hasTls = draft.tls !== undefined;
  const plain = (d: RouteDraft): Location => ({ match: d.route.match, path: d.route.path, ingress: d.intent.ref, policy: policyOf(d.intent, hasTls), action: actionOf(d, draft, inputs, diagnostics) });
  const locations: Location[] = [...draft.locations].filter(([key]) => !draft.branched.has(key)).map(([, d]) => plain(d));
  for (const [key, list] of draft.branched) {
    const held = draft.locations.get(key);
    locations.push(branchedLocation(held ? [...list, held] : list, hasTls, plain, diagnostics));
  }
  locations.sort((a, b) => a.path.localeCompare(b.path) || a.match.localeCompare(b.match));
  const server: Server = { host: draft.host, locations };
  if (draft.tls) {
    const certificates = draft.tls.certificates.length > 0 ? draft.tls.certificates : inputs.defaultCertificates;
    server.tls = { policy: draft.tls.policy, certificates: certificates.slice(), clientAuth: draft.tls.clientAuth };
  } else if (draft.host !== '') {
    // force-ssl-redirect sends a host without spec.tls to HTTPS: serve it there with the default certificates, as
    // ingress-nginx does, or the redirect leads to the catch-all server's 404.
    const forcing = [...draft.locations.values()].find((d) => d.intent.proxy.httpsRedirect === 'always');
    if (forcing) server.tls = { policy: forcing.intent.policy, certificates: inputs.defaultCertificates };
  }
  return server;
}

/** Whether a route needs the data plane to choose per request: conditions besides its path, weights, header edits, rewrites or timeouts. */
function branches(route: IntentRoute): boolean {
  return route.conditions !== undefined || route.backends !== undefined || route.requestHeaders !== undefined || route.responseHeaders !== undefined
    || route.rewrite !== undefined || route.timeoutMs !== undefined || (route.redirectTo !== undefined && route.redirect === undefined);
}

const NO_CONDITIONS: RequestConditions = { headers: [], queryParams: [] };

/** The spec's precedence after the path: a method match, then the most header matches, then the most query matches. */
function specificity(c: RequestConditions | undefined): [number, number, number] {
  return c ? [c.method === undefined ? 0 : 1, c.headers.length, c.queryParams.length] : [0, 0, 0];
}

/**
 * One location for the routes that share a match and path when one of them needs a choice per request: each route is a
 * branch, in the spec's order (path precedence, specificity, then older first). The branches share the location's
 * proxy settings and checks, which are the first route's: a route whose Ingress or listener asks for others is not
 * served there, with a Conflict; so is a later route with the same conditions, which could never be chosen.
 */
function branchedLocation(drafts: RouteDraft[], hasTls: boolean, plain: (d: RouteDraft) => Location, diagnostics: Diagnostic[]): Location {
  // A redirect NGINX would answer alone, which also has its parts (Gateway API), becomes a branch that redirects.
  const asBranch = (d: RouteDraft): RouteDraft => (d.upstream === undefined && d.route.redirectTo ? { ...d, route: { ...d.route, redirect: undefined }, upstream: '', backends: [] } : d);
  const sorted = drafts.map(asBranch).sort((a, b) => {
    const [x, y] = [specificity(a.route.conditions), specificity(b.route.conditions)];
    return a.route.precedence - b.route.precedence || y[0] - x[0] || y[1] - x[1] || y[2] - x[2] || a.order - b.order;
  });
  const first = sorted[0]!;
  const location = plain(first);
  const where = (d: RouteDraft) => `${d.route.field} (${hostText(d.route.host)} ${d.route.match} ${d.route.path})`;
  if (location.action.kind !== 'proxy') {
    // A redirect of the same path precedence answers every request of the path: the branches under it never serve.
    if (first.upstream === undefined) {
      for (const d of sorted.slice(1).filter((x) => x.route.precedence === first.route.precedence)) {
        diagnostics.push(warning(d.intent.ref, 'Conflict', `${title(d.intent)}: ${where(d)} shares its path with ${title(first.intent)}, which redirects every request of it; it is not served`));
      }
    }
    return location;
  }
  const settings = settingsOf(first.intent, hasTls);
  const kept: RouteDraft[] = [];
  const seen = new Map<string, RouteDraft>();
  for (const d of sorted) {
    if (d.upstream === undefined || settingsOf(d.intent, hasTls) !== settings || !sameBackendTls(d.route.backendTls, first.route.backendTls)) {
      // A route of lower path precedence is shadowed here anyway (an Exact path beats a prefix's implied one).
      if (d.route.precedence === first.route.precedence) {
        diagnostics.push(warning(d.intent.ref, 'Conflict', `${title(d.intent)}: ${where(d)} shares its path with ${title(first.intent)}, whose ${d.upstream === undefined ? 'route proxies' : 'proxy settings differ'}; it is not served`));
      }
      continue;
    }
    const key = `${d.route.precedence} ${JSON.stringify(d.route.conditions ?? null)}`;
    const held = seen.get(key);
    if (held) {
      if (held.intent !== d.intent) diagnostics.push(warning(d.intent.ref, 'Conflict', `${title(d.intent)}: ${where(d)} is already served with the same conditions by ${title(held.intent)}, which is older`));
      continue;
    }
    seen.set(key, d);
    kept.push(d);
  }
  location.action.branches = kept.map((d) => ({
    conditions: d.route.conditions ?? NO_CONDITIONS,
    backends: d.backends ?? [{ upstream: d.upstream!, weight: 1 }],
    requestHeaders: d.route.requestHeaders,
    responseHeaders: d.route.responseHeaders,
    rewrite: d.route.rewrite,
    timeoutMs: d.route.timeoutMs,
    redirect: d.route.redirectTo,
  }));
  return location;
}

/** Routes with other BackendTLSPolicies cannot share a location: its TLS to the pods is one setting. */
function sameBackendTls(a: BackendTls | undefined, b: BackendTls | undefined): boolean {
  return a === b || JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** What a location's directives take from an intent: routes with other settings cannot share one. */
const settingsOfIntent = new WeakMap<IngressIntent, [string?, string?]>();

function settingsOf(intent: IngressIntent, hasTls: boolean): string {
  let ofIntent = settingsOfIntent.get(intent);
  if (!ofIntent) settingsOfIntent.set(intent, (ofIntent = []));
  return (ofIntent[hasTls ? 1 : 0] ??= JSON.stringify([intent.proxy, policyOf(intent, hasTls), intent.proxy.upstreamTls ? intent.policy : null]));
}

/** Per intent, its locations' policy without and with TLS: one object for all the locations of an Ingress. */
const policies = new WeakMap<IngressIntent, [LocationPolicy?, LocationPolicy?]>();

function policyOf(intent: IngressIntent, hasTls: boolean): LocationPolicy {
  let ofIntent = policies.get(intent);
  if (!ofIntent) policies.set(intent, (ofIntent = []));
  return (ofIntent[hasTls ? 1 : 0] ??= makePolicy(intent, hasTls));
}

function makePolicy(intent: IngressIntent, hasTls: boolean): LocationPolicy {
  const p = intent.proxy;
  // One zone per Ingress: its locations share the limit, as in ingress-nginx.
  const zone = `${intent.ref.namespace}_${intent.ref.name}`;
  return {
    httpsRedirect: p.httpsRedirect === 'always' || (p.httpsRedirect === 'tls-hosts' && hasTls),
    deny: p.deny,
    allow: p.allow,
    rateLimit: p.rateLimit && { zone: `${zone}_rps`, ...p.rateLimit },
    connectionLimit: p.connectionLimit === undefined ? undefined : { zone: `${zone}_conn`, connections: p.connectionLimit },
    cors: p.cors,
  };
}

function actionOf(d: RouteDraft, server: ServerDraft, inputs: RecordedInputs, diagnostics: Diagnostic[]): LocationAction {
  const { route, intent } = d;
  const p = intent.proxy;
  if (server.tls?.clientAuthUnusable) return { kind: 'unavailable', reason: server.tls.clientAuthUnusable };
  const redirect = route.redirect ?? p.redirect;
  if (redirect || d.upstream === undefined) return { kind: 'redirect', ...redirect! };
  const backendTls = route.backendTls;
  if (backendTls && 'unusable' in backendTls) {
    diagnostics.push(warning(intent.ref, 'BackendTLSPolicyNotUsable', `${title(intent)}: ${route.field} answers 503: ${backendTls.unusable}`));
    return { kind: 'unavailable', reason: backendTls.unusable };
  }
  const action: LocationAction = {
    kind: 'proxy',
    upstream: d.upstream,
    protocol: backendTls ? (p.protocol === 'GRPC' ? 'GRPCS' : 'HTTPS') : p.protocol,
    rewrite: p.rewrite,
    upstreamHost: p.upstreamHost,
    forwardedPrefix: p.forwardedPrefix,
    tuning: p.tuning,
    fallback: d.fallback,
    errorPages: d.errorUpstream && p.errorCodes ? { codes: p.errorCodes, upstream: d.errorUpstream } : undefined,
  };
  if (p.upstreamTls) {
    const wanted = p.upstreamTls;
    const ca = wanted.secret === undefined ? undefined : inputs.caBundle(wanted.secret);
    if (wanted.verify && !ca) {
      const reason = `Secret ${wanted.secret} has no usable ca.crt to verify the upstream's certificate`;
      diagnostics.push(warning(intent.ref, 'UpstreamCANotUsable', `${title(intent)}: ${reason}; ${route.field} answers 503 until it has one`));
      return { kind: 'unavailable', reason };
    }
    action.tls = {
      policy: intent.policy,
      serverName: wanted.serverName ?? `${route.backend.service}.${route.backend.namespace}.svc`,
      sendServerName: wanted.sendServerName,
      verify: wanted.verify && ca ? { ca, depth: wanted.depth } : undefined,
      clientCertificate: wanted.secret === undefined ? undefined : inputs.certificate(wanted.secret),
    };
  }
  // The pod is verified against the policy's CAs for its hostname, offered the route's key-exchange groups.
  if (backendTls) action.tls = { policy: intent.policy, serverName: backendTls.serverName, sendServerName: true, verify: { ca: backendTls.ca, depth: BACKEND_TLS_VERIFY_DEPTH } };
  return action;
}

/** How deep a pod's chain may go under the CAs a BackendTLSPolicy names (NGINX's default, 1, allows no intermediate CA). */
const BACKEND_TLS_VERIFY_DEPTH = 4;

/** What makes routes to one Service need separate NGINX upstreams. */
interface UpstreamVariant {
  affinityCookie?: string;
  /** upstreamTlsKey of the route. */
  tls?: string;
}

/**
 * Identifies the TLS that a route speaks to the pods (backend-protocol HTTPS or GRPCS, a BackendTLSPolicy), or undefined for
 * plain protocols. NGINX keeps idle connections and TLS sessions per upstream, so two routes with different TLS
 * settings must not share one: otherwise a route reuses a connection that another route verified against another
 * CA, name, client certificate or set of groups, and its own checks never run.
 */
function upstreamTlsKey(intent: IngressIntent, route: IntentRoute): string | undefined {
  const tls = route.backendTls ?? intent.proxy.upstreamTls;
  if (!tls) return undefined;
  const identity = JSON.stringify([intent.proxy.protocol, tls, intent.policy.groups, intent.policy.protocols]);
  return createHash('sha256').update(identity).digest('hex').slice(0, 12);
}

/** Affinity is a property of the NGINX upstream, so a sticky and a plain route to one Service need two upstreams. */
function upstreamName(backend: BackendRef, { affinityCookie, tls }: UpstreamVariant): string {
  return `${backend.namespace}_${backend.service}_${backend.port || 'first'}${affinityCookie ? `_sticky_${affinityCookie}` : ''}${tls ? `_tls_${tls}` : ''}`;
}

function buildUpstream(upstreamName: string, use: UpstreamUse, inputs: ClusterState): UpstreamPiece {
  const { backend, variant } = use;
  const serviceKey = `${backend.namespace}/${backend.service}`;
  const service = inputs.services.get(serviceKey);
  const slices = inputs.endpointSlices.get(serviceKey);
  let endpoints: Endpoint[] = [];
  let problem: UpstreamPiece['problem'];
  if (!service) {
    problem = { reason: 'ServiceNotFound', message: `Service ${serviceKey} not found; its paths answer 503` };
  } else {
    const ports = service.spec?.ports ?? [];
    const port = backend.port === '' ? ports[0] : ports.find((p) => (p.name ?? '') === backend.port || String(p.port) === backend.port);
    if (!port) {
      problem = { reason: 'ServicePortNotFound', message: `Service ${serviceKey} has no port ${backend.port || '(none)'}; its paths answer 503` };
    } else {
      endpoints = readyEndpoints(slices ?? [], port.name ?? '');
    }
  }
  const upstream: Upstream = {
    name: upstreamName,
    service: { namespace: backend.namespace, name: backend.service, port: backend.port },
    endpoints,
    affinityCookie: variant.affinityCookie,
  };
  return { use, service, slices, upstream, problem };
}

/** Whether a kept upstream is still the one buildUpstream would make: same Service, EndpointSlices and need. */
function upstreamHolds(piece: UpstreamPiece, use: UpstreamUse, inputs: ClusterState): boolean {
  const serviceKey = `${use.backend.namespace}/${use.backend.service}`;
  const held = piece.use;
  return sameBackend(held.backend, use.backend) && held.variant.affinityCookie === use.variant.affinityCookie && held.variant.tls === use.variant.tls
    && piece.service === inputs.services.get(serviceKey) && sameElements(piece.slices, inputs.endpointSlices.get(serviceKey));
}

/** Ready endpoints for the Service port named portName ('' for a single unnamed port), deduplicated and sorted. */
export function readyEndpoints(slices: readonly V1EndpointSlice[], portName: string): Endpoint[] {
  const seen = new Map<string, Endpoint>();
  for (const slice of slices) {
    if (slice.addressType === 'FQDN') continue;
    const port = (slice.ports ?? []).find((p) => (p.name ?? '') === portName)?.port;
    if (port === undefined) continue;
    for (const endpoint of slice.endpoints ?? []) {
      if (endpoint.conditions?.ready === false) continue;
      for (const address of endpoint.addresses) {
        // Only IP literals reach the data plane; the API server checks this too, manifest files do not.
        if (isIP(address) !== 0) seen.set(`${address}|${port}`, { address, port });
      }
    }
  }
  return [...seen.values()].sort((a, b) => a.address.localeCompare(b.address) || a.port - b.port);
}

export function endpointSliceService(slice: V1EndpointSlice): string | undefined {
  const service = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
  return service ? `${slice.metadata?.namespace ?? 'default'}/${service}` : undefined;
}

function byAge(a: IngressIntent, b: IngressIntent): number {
  return a.created.localeCompare(b.created) || name(a).localeCompare(name(b));
}

function name(intent: Pick<IngressIntent, 'ref'>): string {
  return `${intent.ref.namespace}/${intent.ref.name}`;
}

/**
 * Identifies an intent among all the builder holds: namespace/name for an Ingress, the kind before it for the other
 * sources (an HTTPRoute may share an Ingress's namespace and name).
 */
export function intentKey(intent: Pick<IngressIntent, 'ref'>): string {
  return intent.ref.kind === 'Ingress' ? name(intent) : `${intent.ref.kind} ${name(intent)}`;
}

/** The intent's object in messages: "Ingress default/web", "HTTPRoute default/web". */
function title(intent: IngressIntent): string {
  return `${intent.ref.kind} ${name(intent)}`;
}

function hostText(host: string): string {
  return host === '' ? '(any host)' : host;
}
