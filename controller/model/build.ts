// Intents + Services + EndpointSlices + checked certificates -> Model. Pure: the same inputs give the same model.
import { isIP } from 'node:net';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { BackendRef, IngressIntent, IntentRoute } from './ingress.js';
import { warning } from './ingress.js';
import { nameCoversHost } from './names.js';
import { samePolicy } from './pq.js';
import type { CertificatePair, Diagnostic, Endpoint, Location, Model, Server, TlsPolicy, Upstream } from './types.js';

export interface ClusterState {
  /** Keyed namespace/name. */
  services: ReadonlyMap<string, V1Service>;
  /** Keyed namespace/service-name (the kubernetes.io/service-name label). */
  endpointSlices: ReadonlyMap<string, readonly V1EndpointSlice[]>;
  /** Checked pairs keyed namespace/name; a Secret that is missing or never was good is absent. */
  certificates: ReadonlyMap<string, CertificatePair>;
}

export interface ModelInputs extends ClusterState {
  intents: readonly IngressIntent[];
  defaultPolicy: TlsPolicy;
  defaultCertificates: CertificatePair[];
}

export interface ModelResult {
  model: Model;
  diagnostics: Diagnostic[];
}

const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

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
      const upstream = upstreamFor(route.backend, inputs, upstreams, intent, diagnostics);
      server.locations.set(key, { route, intent, upstream });
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

  const model: Model = {
    servers: [...servers.values()].sort((a, b) => a.host.localeCompare(b.host)).map(finishServer(inputs.defaultCertificates)),
    upstreams: [...upstreams.values()].sort((a, b) => a.name.localeCompare(b.name)),
    defaultPolicy: inputs.defaultPolicy,
    defaultCertificates: inputs.defaultCertificates,
  };
  return { model, diagnostics };
}

interface ServerDraft {
  host: string;
  locations: Map<string, { route: IntentRoute; intent: IngressIntent; upstream: string }>;
  tls?: { policy: TlsPolicy; certificates: CertificatePair[]; owner: IngressIntent };
}

function finishServer(defaultCertificates: CertificatePair[]) {
  return (draft: ServerDraft): Server => {
    const locations: Location[] = [...draft.locations.values()]
      .map(({ route, intent, upstream }) => ({ match: route.match, path: route.path, upstream, ingress: intent.ref }))
      .sort((a, b) => a.path.localeCompare(b.path) || a.match.localeCompare(b.match));
    const server: Server = { host: draft.host, locations };
    if (draft.tls) {
      const certificates = draft.tls.certificates.length > 0 ? draft.tls.certificates : defaultCertificates;
      server.tls = { policy: draft.tls.policy, certificates };
    }
    return server;
  };
}

function upstreamFor(backend: BackendRef, inputs: ModelInputs, upstreams: Map<string, Upstream>, intent: IngressIntent, diagnostics: Diagnostic[]): string {
  const upstreamName = `${backend.namespace}_${backend.service}_${backend.port}`;
  if (upstreams.has(upstreamName)) return upstreamName;
  const serviceKey = `${backend.namespace}/${backend.service}`;
  const service = inputs.services.get(serviceKey);
  let endpoints: Endpoint[] = [];
  if (!service) {
    diagnostics.push(warning(intent.ref, 'ServiceNotFound', `Ingress ${name(intent)}: Service ${serviceKey} not found; its paths answer 503`));
  } else {
    const port = (service.spec?.ports ?? []).find((p) => (p.name ?? '') === backend.port || String(p.port) === backend.port);
    if (!port) {
      diagnostics.push(warning(intent.ref, 'ServicePortNotFound', `Ingress ${name(intent)}: Service ${serviceKey} has no port ${backend.port}; its paths answer 503`));
    } else {
      endpoints = readyEndpoints(inputs.endpointSlices.get(serviceKey) ?? [], port.name ?? '');
    }
  }
  upstreams.set(upstreamName, {
    name: upstreamName,
    service: { namespace: backend.namespace, name: backend.service, port: backend.port },
    endpoints,
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
