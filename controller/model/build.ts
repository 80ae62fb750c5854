// Intents + Services + EndpointSlices + checked certificates -> Model. Pure: the same inputs give the same model.
import { isIP } from 'node:net';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { BackendRef, IngressIntent, IntentRoute } from './ingress.js';
import { warning } from './ingress.js';
import { nameCoversHost } from './names.js';
import { samePolicy } from './pq.js';
import type { CaBundle, CertificatePair, ClientAuth, Diagnostic, Endpoint, Location, LocationAction, LocationPolicy, Model, Server, TlsPolicy, Upstream } from './types.js';

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
  intents: readonly IngressIntent[];
  defaultPolicy: TlsPolicy;
  defaultCertificates: CertificatePair[];
  /** --default-backend-service; port '' means the Service's first port. */
  defaultBackend?: BackendRef;
}

export interface ModelResult {
  model: Model;
  diagnostics: Diagnostic[];
}

const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

interface RouteDraft {
  route: IntentRoute;
  intent: IngressIntent;
  /** Upstreams by role; absent for redirects. */
  upstream?: string;
  fallback?: string;
  errorUpstream?: string;
}

interface ServerDraft {
  host: string;
  locations: Map<string, RouteDraft>;
  tls?: { policy: TlsPolicy; certificates: CertificatePair[]; owner: IngressIntent; clientAuth?: ClientAuth; clientAuthOwner?: IngressIntent; clientAuthUnusable?: string };
}

export function buildModel(inputs: ModelInputs): ModelResult {
  const diagnostics: Diagnostic[] = [];
  const intents = [...inputs.intents].sort(byAge);
  const servers = new Map<string, ServerDraft>();
  const upstreams = new Map<string, Upstream>();
  const serverFor = (host: string): ServerDraft => {
    let server = servers.get(host);
    if (!server) {
      server = { host, locations: new Map() };
      servers.set(host, server);
    }
    return server;
  };
  serverFor('');

  for (const intent of intents) {
    const upstream = (backend: BackendRef, affinityCookie?: string) =>
      upstreamFor(backend, affinityCookie, inputs, upstreams, (reason, message) => diagnostics.push(warning(intent.ref, reason, `Ingress ${name(intent)}: ${message}`)));
    for (const route of intent.routes) {
      const server = serverFor(route.host);
      const key = `${route.match} ${route.path}`;
      const held = server.locations.get(key);
      if (held && held.route.precedence < route.precedence) continue;
      if (held && held.route.precedence === route.precedence) {
        if (held.intent !== intent || held.route.field !== route.field) {
          diagnostics.push(warning(intent.ref, 'Conflict', `Ingress ${name(intent)}: ${route.field} (${hostText(route.host)} ${route.match} ${route.path}) is already served by Ingress ${name(held.intent)}, which is older`));
        }
        continue;
      }
      const draft: RouteDraft = { route, intent };
      if (!route.redirect && !intent.proxy.redirect) {
        const { defaultBackend, errorCodes, affinityCookie } = intent.proxy;
        draft.upstream = upstream(route.backend, affinityCookie);
        const own = defaultBackend && { namespace: intent.ref.namespace, service: defaultBackend.service, port: defaultBackend.port };
        if (own) draft.fallback = upstream(own);
        if (errorCodes) draft.errorUpstream = draft.fallback ?? (inputs.defaultBackend && upstream(inputs.defaultBackend));
      }
      server.locations.set(key, draft);
    }
  }

  for (const intent of intents) {
    for (const entry of intent.tls) {
      for (const host of entry.hosts) {
        const server = serverFor(host);
        if (!server.tls) {
          server.tls = { policy: intent.policy, certificates: [], owner: intent };
        } else if (intent.policyFromAnnotations && !samePolicy(server.tls.policy, intent.policy) && server.tls.owner !== intent) {
          diagnostics.push(warning(intent.ref, 'Conflict', `Ingress ${name(intent)}: the TLS policy of host ${host} comes from Ingress ${name(server.tls.owner)}, which is older; this Ingress's qubesec.io annotations do not apply to it`));
        }
        addClientAuth(server.tls, intent, host, inputs, diagnostics);
        const pair = inputs.certificates.get(entry.secret);
        if (!pair) {
          diagnostics.push(warning(intent.ref, 'SecretNotUsable', `Ingress ${name(intent)}: Secret ${entry.secret} for host ${host} is missing or has never held a valid pair; serving the default certificate`));
          continue;
        }
        if (!pair.names.some((n) => nameCoversHost(n, host))) {
          diagnostics.push(warning(intent.ref, 'CertificateHostMismatch', `Ingress ${name(intent)}: the certificate in Secret ${entry.secret} (names ${pair.names.join(', ') || 'none'}) does not cover host ${host}`));
          continue;
        }
        const sameType = server.tls.certificates.find((c) => c.keyAlgorithm === pair.keyAlgorithm);
        if (sameType && sameType.fingerprint !== pair.fingerprint) {
          diagnostics.push(warning(intent.ref, 'DuplicateKeyType', `Ingress ${name(intent)}: host ${host} already has a ${pair.keyAlgorithm} certificate from Secret ${sameType.source}; Secret ${entry.secret} is not used (one certificate per key type)`));
        } else if (!sameType) {
          server.tls.certificates.push(pair);
        }
      }
    }
  }

  const defaultBackend = inputs.defaultBackend && upstreamFor(inputs.defaultBackend, undefined, inputs, upstreams, (reason, message) =>
    diagnostics.push(warning({ kind: 'Service', namespace: inputs.defaultBackend!.namespace, name: inputs.defaultBackend!.service }, reason, `--default-backend-service: ${message}`)));
  const model: Model = {
    servers: [...servers.values()].sort((a, b) => a.host.localeCompare(b.host)).map((draft) => finishServer(draft, inputs, diagnostics)),
    upstreams: [...upstreams.values()].sort((a, b) => a.name.localeCompare(b.name)),
    defaultPolicy: inputs.defaultPolicy,
    defaultCertificates: inputs.defaultCertificates,
    defaultBackend,
  };
  return { model, diagnostics };
}

/** Client certificate checks are a server setting in NGINX: the oldest Ingress of the host that asks sets them. */
function addClientAuth(tls: NonNullable<ServerDraft['tls']>, intent: IngressIntent, host: string, inputs: ModelInputs, diagnostics: Diagnostic[]): void {
  const wanted = intent.proxy.clientAuth;
  if (!wanted || tls.clientAuthOwner === intent) return;
  if (tls.clientAuthOwner) {
    const held = tls.clientAuthOwner.proxy.clientAuth!;
    if (held.secret !== wanted.secret || held.verify !== wanted.verify || held.depth !== wanted.depth) {
      diagnostics.push(warning(intent.ref, 'Conflict', `Ingress ${name(intent)}: client certificate checks of host ${host} come from Ingress ${name(tls.clientAuthOwner)}, which is older; this Ingress's auth-tls annotations do not apply to it`));
    }
    return;
  }
  tls.clientAuthOwner = intent;
  const ca = wanted.secret === undefined ? undefined : inputs.caBundles.get(wanted.secret);
  if (!ca && wanted.verify !== 'optional_no_ca') {
    tls.clientAuthUnusable = `Secret ${wanted.secret} has no usable ca.crt for client certificate checks`;
    diagnostics.push(warning(intent.ref, 'ClientCANotUsable', `Ingress ${name(intent)}: ${tls.clientAuthUnusable}; host ${host} answers 503 until it has one`));
    return;
  }
  tls.clientAuth = { verify: wanted.verify, depth: wanted.depth, ca, passCertificate: wanted.passCertificate };
}

function finishServer(draft: ServerDraft, inputs: ModelInputs, diagnostics: Diagnostic[]): Server {
  const hasTls = draft.tls !== undefined;
  const locations: Location[] = [...draft.locations.values()]
    .map((d) => ({ match: d.route.match, path: d.route.path, ingress: d.intent.ref, policy: policyOf(d.intent, hasTls), action: actionOf(d, draft, inputs, diagnostics) }))
    .sort((a, b) => a.path.localeCompare(b.path) || a.match.localeCompare(b.match));
  const server: Server = { host: draft.host, locations };
  if (draft.tls) {
    const certificates = draft.tls.certificates.length > 0 ? draft.tls.certificates : inputs.defaultCertificates;
    server.tls = { policy: draft.tls.policy, certificates, clientAuth: draft.tls.clientAuth };
  }
  return server;
}

function policyOf(intent: IngressIntent, hasTls: boolean): LocationPolicy {
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

function actionOf(d: RouteDraft, server: ServerDraft, inputs: ModelInputs, diagnostics: Diagnostic[]): LocationAction {
  const { route, intent } = d;
  const p = intent.proxy;
  if (server.tls?.clientAuthUnusable) return { kind: 'unavailable', reason: server.tls.clientAuthUnusable };
  const redirect = route.redirect ?? p.redirect;
  if (redirect || d.upstream === undefined) return { kind: 'redirect', ...redirect! };
  const action: LocationAction = {
    kind: 'proxy',
    upstream: d.upstream,
    protocol: p.protocol,
    rewrite: p.rewrite,
    upstreamHost: p.upstreamHost,
    forwardedPrefix: p.forwardedPrefix,
    tuning: p.tuning,
    fallback: d.fallback,
    errorPages: d.errorUpstream && p.errorCodes ? { codes: p.errorCodes, upstream: d.errorUpstream } : undefined,
  };
  if (p.upstreamTls) {
    const wanted = p.upstreamTls;
    const ca = wanted.secret === undefined ? undefined : inputs.caBundles.get(wanted.secret);
    if (wanted.verify && !ca) {
      const reason = `Secret ${wanted.secret} has no usable ca.crt to verify the upstream's certificate`;
      diagnostics.push(warning(intent.ref, 'UpstreamCANotUsable', `Ingress ${name(intent)}: ${reason}; ${route.field} answers 503 until it has one`));
      return { kind: 'unavailable', reason };
    }
    action.tls = {
      policy: intent.policy,
      serverName: wanted.serverName ?? `${route.backend.service}.${route.backend.namespace}.svc`,
      sendServerName: wanted.sendServerName,
      verify: wanted.verify && ca ? { ca, depth: wanted.depth } : undefined,
      clientCertificate: wanted.secret === undefined ? undefined : inputs.certificates.get(wanted.secret),
    };
  }
  return action;
}

type Report = (reason: string, message: string) => void;

function upstreamFor(backend: BackendRef, affinityCookie: string | undefined, inputs: ModelInputs, upstreams: Map<string, Upstream>, report: Report): string {
  // Affinity is a property of the NGINX upstream, so a sticky and a plain route to one Service need two upstreams.
  const upstreamName = `${backend.namespace}_${backend.service}_${backend.port || 'first'}${affinityCookie ? `_sticky_${affinityCookie}` : ''}`;
  if (upstreams.has(upstreamName)) return upstreamName;
  const serviceKey = `${backend.namespace}/${backend.service}`;
  const service = inputs.services.get(serviceKey);
  let endpoints: Endpoint[] = [];
  if (!service) {
    report('ServiceNotFound', `Service ${serviceKey} not found; its paths answer 503`);
  } else {
    const ports = service.spec?.ports ?? [];
    const port = backend.port === '' ? ports[0] : ports.find((p) => (p.name ?? '') === backend.port || String(p.port) === backend.port);
    if (!port) {
      report('ServicePortNotFound', `Service ${serviceKey} has no port ${backend.port || '(none)'}; its paths answer 503`);
    } else {
      endpoints = readyEndpoints(inputs.endpointSlices.get(serviceKey) ?? [], port.name ?? '');
    }
  }
  upstreams.set(upstreamName, {
    name: upstreamName,
    service: { namespace: backend.namespace, name: backend.service, port: backend.port },
    endpoints,
    affinityCookie,
  });
  return upstreamName;
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

function name(intent: IngressIntent): string {
  return `${intent.ref.namespace}/${intent.ref.name}`;
}

function hostText(host: string): string {
  return host === '' ? '(any host)' : host;
}
