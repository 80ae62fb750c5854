// Kubernetes source: one reflector (list, then watch from its resourceVersion; relist after 410 Gone) per kind, with
// capped exponential backoff on errors. start() resolves only when every kind's first list is in, and no change is
// reported before that: nothing decides from a partial view.
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubeConfig,
  NetworkingV1Api,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { GATEWAY_API_RESOURCES, GATEWAY_GROUP } from '../model/gateway-api.js';
import type { Diagnostic } from '../model/types.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import { Reflector, errorText, kubernetesListWatch, type ListOptions, type ReflectorHooks } from './reflector.js';
import { stripperOf, type Change, type EventRecorder, type Snapshot, type Source } from './source.js';

export { errorText } from './reflector.js';

export interface KubernetesSourceOptions {
  /** Only this namespace's Ingresses, Services, EndpointSlices, Secrets; '' means all. */
  watchNamespace: string;
  /** namespace/name of the ConfigMap with global defaults, or ''. */
  configMap: string;
  /** namespace/name of the --publish-service Service, or ''; watched also outside the watched namespace. */
  publishService: string;
  /** Namespace of the session ticket Secret, or ''; its Secrets are watched also outside the watched namespace. */
  ticketSecretNamespace: string;
  /** Gateway API is served: ConfigMaps of every watched namespace, which BackendTLSPolicies name as CAs, not only the defaults'. */
  caConfigMaps?: boolean;
  /** How long a list may go unanswered before it is abandoned and retried; kube-apiserver's own limit by default. */
  listTimeoutMs?: number;
}

/** A kubeconfig file, or '' for in-cluster (service account) or else the default kubeconfig. */
export function loadKubeConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

/** What a reflector reports to logs and metrics, under its resource name. */
export function reflectorHooks(resource: string, metrics: Metrics, log: Logger): ReflectorHooks {
  metrics.sourceSynced.set({ resource }, 0);
  metrics.sourceListFailures.inc({ resource }, 0);
  return { log, onListFailure: () => metrics.sourceListFailures.inc({ resource }), onSynced: () => metrics.sourceSynced.set({ resource }, 1) };
}

export class KubernetesSource implements Source {
  private readonly reflectors: Reflector<KubernetesObject>[] = [];
  /** Replaced by start() once every kind has synced; changes before that reach no one. */
  private onChange: (change?: Change<Snapshot>) => void = () => undefined;
  private readonly stopping = Promise.withResolvers<void>();
  private stopped = false;

  constructor(private readonly kc: KubeConfig, private readonly options: KubernetesSourceOptions, private readonly metrics: Metrics, private readonly log: Logger) {
    const ns = options.watchNamespace;
    const net = kc.makeApiClient(NetworkingV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const scoped = (group: string, resource: string) => (ns ? `${group}/namespaces/${ns}/${resource}` : `${group}/${resource}`);
    this.add('ingressclasses', 'ingressClasses', '/apis/networking.k8s.io/v1/ingressclasses', (o) => net.listIngressClass({}, o));
    this.add('ingresses', 'ingresses', scoped('/apis/networking.k8s.io/v1', 'ingresses'), (o) =>
      ns ? net.listNamespacedIngress({ namespace: ns }, o) : net.listIngressForAllNamespaces({}, o));
    this.add('services', 'services', scoped('/api/v1', 'services'), (o) =>
      ns ? core.listNamespacedService({ namespace: ns }, o) : core.listServiceForAllNamespaces({}, o));
    this.add('endpointslices', 'endpointSlices', scoped('/apis/discovery.k8s.io/v1', 'endpointslices'), (o) =>
      ns ? discovery.listNamespacedEndpointSlice({ namespace: ns }, o) : discovery.listEndpointSliceForAllNamespaces({}, o));
    this.add('secrets', 'secrets', scoped('/api/v1', 'secrets'), (o) =>
      ns ? core.listNamespacedSecret({ namespace: ns }, o) : core.listSecretForAllNamespaces({}, o));
    const publishNamespace = options.publishService.split('/')[0] ?? '';
    if (ns && options.publishService && publishNamespace !== ns) {
      this.add('publish-service', 'services', `/api/v1/namespaces/${publishNamespace}/services`, (o) => core.listNamespacedService({ namespace: publishNamespace }, o));
    }
    const ticketNamespace = options.ticketSecretNamespace;
    if (ns && ticketNamespace && ticketNamespace !== ns) {
      this.add('ticket-secrets', 'secrets', `/api/v1/namespaces/${ticketNamespace}/secrets`, (o) => core.listNamespacedSecret({ namespace: ticketNamespace }, o));
    }
    const cmNamespace = options.configMap.split('/')[0] ?? '';
    if (options.caConfigMaps) {
      this.add('configmaps', 'configMaps', scoped('/api/v1', 'configmaps'), (o) =>
        ns ? core.listNamespacedConfigMap({ namespace: ns }, o) : core.listConfigMapForAllNamespaces({}, o));
    }
    if (options.configMap && !(options.caConfigMaps && (!ns || cmNamespace === ns))) {
      this.add('defaults-configmap', 'configMaps', `/api/v1/namespaces/${cmNamespace}/configmaps`, (o) => core.listNamespacedConfigMap({ namespace: cmNamespace }, o));
    }
    // Gateway API is the cluster's to install: a kind it does not serve is an empty list, looked for again later.
    const custom = kc.makeApiClient(CustomObjectsApi);
    for (const [kind, { plural, version, namespaced }] of Object.entries(GATEWAY_API_RESOURCES)) {
      const group = GATEWAY_GROUP;
      const list = (o: ListOptions) => (namespaced && ns
        ? custom.listNamespacedCustomObject({ group, version, namespace: ns, plural }, o)
        : custom.listClusterCustomObject({ group, version, plural }, o)) as Promise<KubernetesListObject<KubernetesObject>>;
      this.add(plural, kind as keyof typeof GATEWAY_API_RESOURCES, namespaced ? scoped(`/apis/${group}/${version}`, plural) : `/apis/${group}/${version}/${plural}`, list, true);
    }
    this.add('namespaces', 'namespaces', '/api/v1/namespaces', (o) => core.listNamespace({}, o), true);
  }

  /** A reflector of resource `name` whose objects the snapshot lists under `kind`; `optional`: a 404 or 403 lists none. */
  private add<T extends KubernetesObject>(name: string, kind: keyof Snapshot, path: string, list: (options: ListOptions) => Promise<KubernetesListObject<T>>, optional = false): void {
    const client = kubernetesListWatch<T>(this.kc, path, list, this.options.listTimeoutMs);
    const onChange = (key?: string, object?: T) => this.onChange(key === undefined ? undefined : { kind, key, object });
    const reflector = new Reflector<T>(name, client, onChange, { ...reflectorHooks(name, this.metrics, this.log), strip: stripperOf(kind), optional });
    this.reflectors.push(reflector as unknown as Reflector<KubernetesObject>);
  }

  async start(onChange: (change?: Change<Snapshot>) => void): Promise<void> {
    for (const reflector of this.reflectors) reflector.start();
    const pending = () => this.reflectors.filter((r) => !r.hasSynced).map((r) => r.name);
    this.log.info('waiting for the first full list of every kind', { resources: pending() });
    await Promise.race([Promise.all(this.reflectors.map((r) => r.synced)), this.stopping.promise]);
    if (this.stopped) throw new Error(`stopped before the first full list of ${pending().join(', ')}`);
    this.onChange = onChange;
  }

  snapshot(): Snapshot {
    const list = (name: string) => (this.reflectors.find((r) => r.name === name)?.list() ?? []) as never[];
    return {
      ingressClasses: list('ingressclasses'),
      ingresses: list('ingresses'),
      services: [...list('services'), ...list('publish-service')],
      endpointSlices: list('endpointslices'),
      secrets: [...list('secrets'), ...list('ticket-secrets')],
      configMaps: [...list('configmaps'), ...list('defaults-configmap')],
      gatewayClasses: list(GATEWAY_API_RESOURCES.gatewayClasses.plural),
      gateways: list(GATEWAY_API_RESOURCES.gateways.plural),
      httpRoutes: list(GATEWAY_API_RESOURCES.httpRoutes.plural),
      grpcRoutes: list(GATEWAY_API_RESOURCES.grpcRoutes.plural),
      tlsRoutes: list(GATEWAY_API_RESOURCES.tlsRoutes.plural),
      referenceGrants: list(GATEWAY_API_RESOURCES.referenceGrants.plural),
      backendTlsPolicies: list(GATEWAY_API_RESOURCES.backendTlsPolicies.plural),
      namespaces: list('namespaces'),
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.resolve();
    this.onChange = () => undefined;
    await Promise.all(this.reflectors.map((r) => r.stop()));
  }
}

/** Writes core/v1 Events, which kubectl describe shows with the object. */
export class KubernetesEventRecorder implements EventRecorder {
  private readonly core: CoreV1Api;

  constructor(kc: KubeConfig, private readonly controllerName: string, private readonly instance: string, private readonly log: Logger) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  async record(d: Diagnostic): Promise<void> {
    const now = new Date();
    try {
      await this.core.createNamespacedEvent({
        namespace: d.object.namespace,
        body: {
          metadata: { generateName: `${d.object.name}.`, namespace: d.object.namespace },
          involvedObject: { apiVersion: d.object.apiVersion ?? API_VERSIONS[d.object.kind], kind: d.object.kind, namespace: d.object.namespace, name: d.object.name, uid: d.object.uid },
          reason: d.reason,
          message: d.message.slice(0, 1024),
          type: d.type,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
          source: { component: this.controllerName },
          reportingComponent: this.controllerName,
          reportingInstance: this.instance,
        },
      });
    } catch (err) {
      this.log.warn('could not write Event', { error: errorText(err), reason: d.reason });
    }
  }
}

const API_VERSIONS: Record<string, string> = {
  Ingress: 'networking.k8s.io/v1', Secret: 'v1', ConfigMap: 'v1', Service: 'v1', Pod: 'v1',
  Certificate: 'qubesec.io/v1alpha1', Issuer: 'qubesec.io/v1alpha1', ClusterIssuer: 'qubesec.io/v1alpha1', SignaturePolicy: 'qubesec.io/v1alpha1',
  VpnGateway: 'qubesec.io/v1alpha1', VpnPeer: 'qubesec.io/v1alpha1',
  ...Object.fromEntries(Object.values(GATEWAY_API_RESOURCES).map((r) => [r.kind, `${GATEWAY_GROUP}/${r.version}`])),
};
