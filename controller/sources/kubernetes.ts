// Kubernetes source: list+watch informers (resourceVersion, relist after 410 Gone) with backoff on errors.
import {
  CoreV1Api,
  DiscoveryV1Api,
  KubeConfig,
  NetworkingV1Api,
  makeInformer,
  type Informer,
  type KubernetesListObject,
  type KubernetesObject,
  type ObjectCache,
} from '@kubernetes/client-node';
import type { Diagnostic } from '../model/types.js';
import type { Logger } from '../observability/log.js';
import type { EventRecorder, Snapshot, Source } from './source.js';

export interface KubernetesSourceOptions {
  /** Only this namespace's Ingresses, Services, EndpointSlices, Secrets; '' means all. */
  watchNamespace: string;
  /** namespace/name of the ConfigMap with global defaults, or ''. */
  configMap: string;
  /** namespace/name of the --publish-service Service, or ''; watched also outside the watched namespace. */
  publishService: string;
  /** Namespace of the session ticket Secret, or ''; its Secrets are watched also outside the watched namespace. */
  ticketSecretNamespace: string;
}

const MAX_BACKOFF_MS = 30_000;

/** A kubeconfig file, or '' for in-cluster (service account) or else the default kubeconfig. */
export function loadKubeConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

type Watched<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

export class KubernetesSource implements Source {
  private readonly informers: { name: string; informer: Watched<KubernetesObject> }[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(private readonly kc: KubeConfig, options: KubernetesSourceOptions, private readonly log: Logger) {
    const ns = options.watchNamespace;
    const net = kc.makeApiClient(NetworkingV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const scoped = (group: string, resource: string) => (ns ? `${group}/namespaces/${ns}/${resource}` : `${group}/${resource}`);
    this.add('ingressclasses', '/apis/networking.k8s.io/v1/ingressclasses', () => net.listIngressClass());
    this.add('ingresses', scoped('/apis/networking.k8s.io/v1', 'ingresses'), () =>
      ns ? net.listNamespacedIngress({ namespace: ns }) : net.listIngressForAllNamespaces());
    this.add('services', scoped('/api/v1', 'services'), () =>
      ns ? core.listNamespacedService({ namespace: ns }) : core.listServiceForAllNamespaces());
    this.add('endpointslices', scoped('/apis/discovery.k8s.io/v1', 'endpointslices'), () =>
      ns ? discovery.listNamespacedEndpointSlice({ namespace: ns }) : discovery.listEndpointSliceForAllNamespaces());
    this.add('secrets', scoped('/api/v1', 'secrets'), () =>
      ns ? core.listNamespacedSecret({ namespace: ns }) : core.listSecretForAllNamespaces());
    const publishNamespace = options.publishService.split('/')[0] ?? '';
    if (ns && options.publishService && publishNamespace !== ns) {
      this.add('publish-service', `/api/v1/namespaces/${publishNamespace}/services`, () => core.listNamespacedService({ namespace: publishNamespace }));
    }
    const ticketNamespace = options.ticketSecretNamespace;
    if (ns && ticketNamespace && ticketNamespace !== ns) {
      this.add('ticket-secrets', `/api/v1/namespaces/${ticketNamespace}/secrets`, () => core.listNamespacedSecret({ namespace: ticketNamespace }));
    }
    if (options.configMap) {
      const cmNamespace = options.configMap.split('/')[0] ?? '';
      this.add('configmaps', `/api/v1/namespaces/${cmNamespace}/configmaps`, () =>
        core.listNamespacedConfigMap({ namespace: cmNamespace }));
    }
  }

  private add<T extends KubernetesObject>(name: string, path: string, list: () => Promise<KubernetesListObject<T>>): void {
    const informer = makeInformer<T>(this.kc, path, list);
    this.informers.push({ name, informer: informer as unknown as Watched<KubernetesObject> });
  }

  async start(onChange: () => void): Promise<void> {
    await Promise.all(
      this.informers.map(async ({ name, informer }) => {
        for (const verb of ['add', 'update', 'delete'] as const) informer.on(verb, () => onChange());
        let backoffMs = 500;
        informer.on('connect', () => (backoffMs = 500));
        informer.on('error', (err: unknown) => {
          if (this.stopped) return;
          this.log.warn('watch failed; restarting', { resource: name, error: errorText(err), retryInMs: backoffMs });
          const timer = setTimeout(() => {
            this.timers.delete(timer);
            if (!this.stopped) informer.start().then(onChange, () => undefined);
          }, backoffMs);
          this.timers.add(timer);
          backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
        });
        await startWithRetry(informer, name, this.log, () => this.stopped);
      }),
    );
  }

  snapshot(): Snapshot {
    const list = (name: string) => (this.informers.find((i) => i.name === name)?.informer.list() ?? []) as never[];
    return {
      ingressClasses: list('ingressclasses'),
      ingresses: list('ingresses'),
      services: [...list('services'), ...list('publish-service')],
      endpointSlices: list('endpointslices'),
      secrets: [...list('secrets'), ...list('ticket-secrets')],
      configMaps: list('configmaps'),
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    await Promise.all(this.informers.map(({ informer }) => informer.stop()));
  }
}

async function startWithRetry(informer: Watched<KubernetesObject>, name: string, log: Logger, stopped: () => boolean): Promise<void> {
  for (let delay = 500; ; delay = Math.min(delay * 2, MAX_BACKOFF_MS)) {
    try {
      await informer.start();
      return;
    } catch (err) {
      if (stopped()) return;
      log.warn('initial list failed; retrying', { resource: name, error: errorText(err), retryInMs: delay });
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** An error as one line: for an API error, its status code and the API server's message (not client-node's dump). */
export function errorText(err: unknown): string {
  const { code, body } = (err ?? {}) as { code?: number; body?: unknown };
  if (code !== undefined) {
    let message: unknown = body;
    try {
      message = (typeof body === 'string' ? JSON.parse(body) : body)?.message ?? body;
    } catch {
      // a body that is not JSON is its own message
    }
    return `${code}: ${typeof message === 'string' ? message : JSON.stringify(message)}`;
  }
  if (err instanceof Error) return err.message;
  return typeof err === 'object' ? JSON.stringify(err) : String(err);
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
          involvedObject: { apiVersion: API_VERSIONS[d.object.kind], kind: d.object.kind, namespace: d.object.namespace, name: d.object.name, uid: d.object.uid },
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
  Ingress: 'networking.k8s.io/v1', Secret: 'v1', ConfigMap: 'v1', Service: 'v1',
  Certificate: 'qubesec.io/v1alpha1', Issuer: 'qubesec.io/v1alpha1', ClusterIssuer: 'qubesec.io/v1alpha1',
};
