// What every source (Kubernetes informers, a folder of manifests) gives the rest of the controller. Snapshot is the
// ingress controller's; another system (the VPN) defines its own kinds and reads them through the same Source.
import type {
  KubernetesObject,
  V1Endpoint,
  V1ConfigMap,
  V1EndpointSlice,
  V1Ingress,
  V1IngressClass,
  V1Namespace,
  V1Secret,
  V1Service,
} from '@kubernetes/client-node';
import { SERVICE_NAME_LABEL } from '../model/build.js';
import { CA_FIELD, PAIR_FIELDS } from '../model/certificates.js';
import { CREATED_FIELD, DEFAULT_CERTIFICATES_FIELD, KEYS_FIELD } from '../tickets/secret.js';
import type { Diagnostic } from '../model/types.js';

export interface Snapshot {
  ingressClasses: readonly V1IngressClass[];
  ingresses: readonly V1Ingress[];
  services: readonly V1Service[];
  endpointSlices: readonly V1EndpointSlice[];
  secrets: readonly V1Secret[];
  configMaps: readonly V1ConfigMap[];
  /**
   * Gateway API (model/gateway-api.ts types; the API server's schema checked them, a manifest file did not). Empty
   * when the cluster does not serve the kind. Namespaces: their labels, for allowedRoutes selectors.
   */
  gatewayClasses: readonly KubernetesObject[];
  gateways: readonly KubernetesObject[];
  httpRoutes: readonly KubernetesObject[];
  grpcRoutes: readonly KubernetesObject[];
  tlsRoutes: readonly KubernetesObject[];
  referenceGrants: readonly KubernetesObject[];
  backendTlsPolicies: readonly KubernetesObject[];
  namespaces: readonly V1Namespace[];
}

/** A snapshot with no objects: tests and sources fill in what they have. */
export function emptySnapshot(): Snapshot {
  return { ingressClasses: [], ingresses: [], services: [], endpointSlices: [], secrets: [], configMaps: [], gatewayClasses: [], gateways: [], httpRoutes: [], grpcRoutes: [], tlsRoutes: [], referenceGrants: [], backendTlsPolicies: [], namespaces: [] };
}

/** What a source holds (its snapshot's shape): for each kind it reads, its objects. */
export type Kinds<S> = { [K in keyof S]: readonly KubernetesObject[] };

/**
 * One object of a source that came, changed (`object` now) or went (no `object`): what an informer's event says.
 * `kind` names its list in the snapshot, `key` is keyOf(object).
 */
export interface Change<S> {
  kind: keyof S;
  key: string;
  object?: KubernetesObject;
}

export interface Source<S extends Kinds<S> = Snapshot> {
  /**
   * Resolves once the first full state of every kind is loaded, and never on a partial one (it waits through failed
   * lists); calls onChange after every change from then on, never before. With a Change when the change is one
   * object (a watch event); without one when any object of any kind may have changed (a relist, a folder reload).
   */
  start(onChange: (change?: Change<S>) => void): Promise<void>;
  snapshot(): S;
  stop(): Promise<void>;
}

/** Tells users about their objects: Kubernetes Events in a cluster, log lines in standalone mode. */
export interface EventRecorder {
  record(diagnostic: Diagnostic): Promise<void>;
}

/** Items of a kind, keyed namespace/name, kept in arrival order. */
export function keyOf(obj: { metadata?: { namespace?: string; name?: string } }): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

/** kubectl apply's copy of the whole object in an annotation: as large again as the object. */
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * Drops managedFields and kubectl's last-applied annotation, which nothing of the ingress side reads, so that the
 * cache holds about half as much (both are often larger than the spec). Every other annotation stays: the model
 * reads them. What writes objects back must then not send a cached object whole: a status PUT without an
 * annotation removes it (tried on kube-apiserver 1.36; an omitted managedFields is kept), so StatusWriter patches.
 */
export function stripUnread(object: KubernetesObject): void {
  const metadata = object.metadata;
  if (!metadata) return;
  delete metadata.managedFields;
  if (metadata.annotations && LAST_APPLIED_ANNOTATION in metadata.annotations) delete metadata.annotations[LAST_APPLIED_ANNOTATION];
}

/** The only endpoint conditions the model reads; one object each, shared by every endpoint. */
const READY: Record<string, V1Endpoint['conditions']> = { true: { ready: true }, false: { ready: false }, undefined: {} };

/**
 * stripUnread, and of an EndpointSlice also everything but what the model reads (model/build.ts readyEndpoints and
 * endpointSliceService): its Service label, address type, ports, and each endpoint's addresses and ready condition.
 * Topology, Pod references and the other labels are most of a slice; at 10,000 Ingresses they took more memory than
 * the Ingresses themselves. Nothing else reads EndpointSlices from the ingress source.
 */
export function stripEndpointSlice(slice: V1EndpointSlice): void {
  stripUnread(slice);
  const metadata = slice.metadata;
  if (metadata) {
    const service = metadata.labels?.[SERVICE_NAME_LABEL];
    metadata.labels = service === undefined ? undefined : { [SERVICE_NAME_LABEL]: service };
    delete metadata.annotations;
    delete metadata.ownerReferences;
  }
  slice.endpoints = (slice.endpoints ?? []).map((endpoint) => ({ addresses: endpoint.addresses, conditions: READY[String(endpoint.conditions?.ready)] }));
}

/** The Secret fields the ingress side reads: pairs and CA certificates (model/certificates.ts), the shared ticket Secret's. */
const READ_SECRET_FIELDS = new Set<string>([PAIR_FIELDS.certificate, PAIR_FIELDS.key, CA_FIELD, KEYS_FIELD, CREATED_FIELD, DEFAULT_CERTIFICATES_FIELD]);

/**
 * stripUnread, and of a Secret's data only the fields the ingress side reads: the source lists every Secret, and a
 * Helm release or an image pull Secret is mostly fields no Ingress can name. The ticket rotator replaces the shared
 * Secret's data whole, so what it sends back is unaffected.
 */
export function stripSecret(secret: V1Secret): void {
  stripUnread(secret);
  const read = (fields: Record<string, string> | undefined) => fields && Object.fromEntries(Object.entries(fields).filter(([field]) => READ_SECRET_FIELDS.has(field)));
  secret.data = read(secret.data);
  if (secret.stringData) secret.stringData = read(secret.stringData);
}

/**
 * stripUnread, and of a Service only what the ingress side reads: its ports' names and numbers (model/build.ts) and,
 * for --publish-service (status/addresses.ts), its type, cluster IP, external IPs and name, and load balancer status.
 */
export function stripService(service: V1Service): void {
  stripUnread(service);
  const spec = service.spec;
  if (!spec) return;
  service.spec = {
    type: spec.type,
    ports: spec.ports?.map((port) => ({ name: port.name, port: port.port })),
    clusterIP: spec.clusterIP,
    externalIPs: spec.externalIPs,
    externalName: spec.externalName,
  };
  service.status = service.status?.loadBalancer ? { loadBalancer: service.status.loadBalancer } : undefined;
}

/** Of a Namespace only its name and labels: allowedRoutes selectors read the labels. */
export function stripNamespace(namespace: KubernetesObject): void {
  const { name, uid, resourceVersion, labels } = namespace.metadata ?? {};
  namespace.metadata = { name, uid, resourceVersion, labels };
  delete (namespace as { spec?: unknown }).spec;
  delete (namespace as { status?: unknown }).status;
}

/** What the ingress source keeps of an object it lists under `kind` in the snapshot. */
export function stripperOf(kind: keyof Snapshot): (object: KubernetesObject) => void {
  const strips: Partial<Record<keyof Snapshot, (object: never) => void>> = { endpointSlices: stripEndpointSlice, services: stripService, secrets: stripSecret, namespaces: stripNamespace };
  return (strips[kind] ?? stripUnread) as (object: KubernetesObject) => void;
}
