// The signature policies in a cluster: informers over SignaturePolicies and what they name (Secrets, ConfigMaps,
// Issuers, ClusterIssuers, Namespaces for selectors), the model built from them, the webhook's answer per request with
// its metrics and audit Events, and (on the leader) the policies' Ready conditions.
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type V1ConfigMap,
  type V1Namespace,
  type V1Secret,
} from '@kubernetes/client-node';
import { readReview, type ReviewReply } from '../admission/review.js';
import { Coalescer } from '../coalescer.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import { GROUP, VERSION, mergeCondition, type IssuerResource } from '../pki/resources.js';
import { errorText, reflectorHooks } from '../sources/kubernetes.js';
import { Reflector, kubernetesListWatch, type ListOptions } from '../sources/reflector.js';
import type { EventRecorder } from '../sources/source.js';
import { POLICY_PLURAL, readyCondition, translatePolicy, type SignaturePolicyModel, type SignaturePolicyResource } from './policy.js';
import { reviewSignatures, type PolicyView, type SignatureReview } from './review.js';

export interface SignaturePoliciesOptions {
  /** Exempt from every policy, with its service accounts (the controller must never lock itself out). */
  controllerNamespace: string;
  /** Where ClusterIssuers' CA Secrets live (--cluster-resource-namespace). */
  clusterResourceNamespace: string;
  debounceMs: number;
}

const AUDIT_EVENT_REASON = 'SignatureAudit';

export class SignaturePolicies {
  private readonly reflectors = new Map<string, Reflector<KubernetesObject>>();
  private readonly custom: CustomObjectsApi;
  /** The model and the Namespaces' labels, rebuilt on the first request after a change. */
  private model: { policies: SignaturePolicyModel[]; namespaceLabels: Map<string, Record<string, string>> } | undefined;
  private statusCoalescer: Coalescer | undefined;

  constructor(kc: KubeConfig, private readonly options: SignaturePoliciesOptions, private readonly recorder: EventRecorder, private readonly metrics: Metrics, private readonly log: Logger) {
    const core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    const customList = (plural: string) => (o: ListOptions) => this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural }, o) as Promise<KubernetesListObject<KubernetesObject>>;
    const add = (name: string, path: string, list: (o: ListOptions) => Promise<KubernetesListObject<KubernetesObject>>) => {
      const resource = `signatures/${name}`;
      const onChange = () => {
        this.model = undefined;
        this.statusCoalescer?.schedule();
      };
      this.reflectors.set(name, new Reflector(resource, kubernetesListWatch(kc, path, list), onChange, reflectorHooks(resource, metrics, log)));
    };
    add(POLICY_PLURAL, `/apis/${GROUP}/${VERSION}/${POLICY_PLURAL}`, customList(POLICY_PLURAL));
    add('secrets', '/api/v1/secrets', (o) => core.listSecretForAllNamespaces({}, o));
    add('configmaps', '/api/v1/configmaps', (o) => core.listConfigMapForAllNamespaces({}, o));
    add('issuers', `/apis/${GROUP}/${VERSION}/issuers`, customList('issuers'));
    add('clusterissuers', `/apis/${GROUP}/${VERSION}/clusterissuers`, customList('clusterissuers'));
    add('namespaces', '/api/v1/namespaces', (o) => core.listNamespace({}, o));
  }

  /** Starts the informers and returns at once: until every first list is in, reviews fail closed (view()). */
  start(): void {
    for (const reflector of this.reflectors.values()) reflector.start();
  }

  async stop(): Promise<void> {
    await this.stopStatus();
    await Promise.all([...this.reflectors.values()].map((r) => r.stop()));
  }

  /** What reviews decide from. */
  view(): PolicyView {
    const pending = [...this.reflectors.values()].filter((r) => !r.hasSynced).map((r) => r.name);
    if (pending.length > 0) return { synced: false, pending };
    this.model ??= this.buildModel();
    const { policies, namespaceLabels } = this.model;
    return { synced: true, policies, namespaceLabels: (namespace) => namespaceLabels.get(namespace) ?? {} };
  }

  /** The webhook's handler for VALIDATE_SIGNATURES_PATH. */
  async answer(body: string): Promise<ReviewReply> {
    const read = readReview(body);
    if ('status' in read) return read;
    const view = this.view();
    const review = await reviewSignatures(read.request, view, { controllerNamespace: this.options.controllerNamespace });
    if (!view.synced && !review.verdict.allowed) this.metrics.signatureUndecided.inc();
    this.observe(review, read.request.dryRun);
    return read.answer(review.verdict);
  }

  /** Leader only: keeps every policy's Ready condition and trustedSigners up to date. */
  startStatus(): void {
    this.statusCoalescer ??= new Coalescer(() => this.writeStatus(), this.options.debounceMs, (err) => this.log.error('signature policy status failed', { error: err.stack ?? err.message }));
    void Promise.all([...this.reflectors.values()].map((r) => r.synced)).then(() => this.statusCoalescer?.schedule());
  }

  async stopStatus(): Promise<void> {
    const coalescer = this.statusCoalescer;
    this.statusCoalescer = undefined;
    await coalescer?.stop();
  }

  private observe(review: SignatureReview, dryRun: boolean): void {
    for (const outcome of review.outcomes) {
      this.metrics.signatureDecisions.inc({ policy: outcome.policy, mode: outcome.mode, result: outcome.result });
      if (outcome.verificationSeconds > 0) this.metrics.signatureVerification.observe({ mode: outcome.mode }, outcome.verificationSeconds);
      // Audit mode's record is an Event on the object (kubectl describe shows it; cluster-scoped objects: in default).
      // A dry run leaves no trace (the webhook is registered with sideEffects NoneOnDryRun).
      if (outcome.mode === 'audit' && outcome.result !== 'verified' && !dryRun) {
        const { apiVersion, kind, namespace, name } = review.object;
        void this.recorder.record({ object: { apiVersion, kind, namespace: namespace || 'default', name }, type: 'Warning', reason: AUDIT_EVENT_REASON, message: outcome.message });
      }
    }
  }

  private buildModel(): NonNullable<SignaturePolicies['model']> {
    const lookups = this.lookups();
    return {
      policies: this.list<SignaturePolicyResource>(POLICY_PLURAL).map((p) => translatePolicy(p, lookups)),
      namespaceLabels: new Map(this.list<V1Namespace>('namespaces').map((n) => [n.metadata?.name ?? '', n.metadata?.labels ?? {}])),
    };
  }

  private list<T>(name: string): T[] {
    return (this.reflectors.get(name)?.list() ?? []) as T[];
  }

  private lookups() {
    const find = <T extends KubernetesObject>(name: string, namespace: string, objectName: string) =>
      this.list<T>(name).find((o) => (o.metadata?.namespace ?? '') === namespace && o.metadata?.name === objectName);
    return {
      secret: (namespace: string, name: string) => find<V1Secret>('secrets', namespace, name),
      configMap: (namespace: string, name: string) => find<V1ConfigMap>('configmaps', namespace, name),
      issuer: (kind: 'Issuer' | 'ClusterIssuer', namespace: string, name: string) =>
        find<IssuerResource & KubernetesObject>(kind === 'Issuer' ? 'issuers' : 'clusterissuers', namespace, name),
      clusterResourceNamespace: this.options.clusterResourceNamespace,
    };
  }

  private async writeStatus(): Promise<void> {
    const view = this.view();
    if (!view.synced) return;
    const resources = new Map(this.list<SignaturePolicyResource>(POLICY_PLURAL).map((r) => [r.metadata.name, r]));
    for (const policy of view.policies) {
      const resource = resources.get(policy.name);
      if (!resource || !this.statusCoalescer) continue;
      const conditions = mergeCondition(resource.status?.conditions, readyCondition(policy), resource.metadata.generation);
      const status = { ...resource.status, conditions, trustedSigners: policy.trustedSigners };
      if (JSON.stringify(status) === JSON.stringify(resource.status)) continue;
      await this.custom.replaceClusterCustomObjectStatus({ group: GROUP, version: VERSION, plural: POLICY_PLURAL, name: policy.name, body: { ...resource, status } })
        .catch((err: unknown) => this.log.warn('could not update signature policy status', { policy: policy.name, error: errorText(err) }));
    }
  }
}
