// Leader-only: writes status.loadBalancer of Ingresses from the source's snapshot and what the reconciler serves.
// Each write carries the Ingress's resourceVersion; a conflict means a newer version is on its way to the snapshot.
import { NetworkingV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { CoalescedWork } from '../coalescer.js';
import type { Logger } from '../observability/log.js';
import { errorText } from '../sources/kubernetes.js';
import type { Source } from '../sources/source.js';
import { publishedAddresses, statusUpdates, type PublishFrom } from './addresses.js';

const RETRY_MS = 5000;

export class StatusWriter extends CoalescedWork {
  private readonly api: NetworkingV1Api;
  private lastError = '';

  constructor(
    kc: KubeConfig,
    private readonly source: Source,
    /** namespace/name of the Ingresses the running configuration serves. */
    private readonly served: () => ReadonlySet<string>,
    private readonly publish: PublishFrom,
    debounceMs: number,
    private readonly log: Logger,
  ) {
    super(debounceMs, (err) => log.error('status sync failed', { error: err.stack ?? err.message }));
    this.api = kc.makeApiClient(NetworkingV1Api);
  }

  protected async sync(): Promise<void> {
    const snapshot = this.source.snapshot();
    const published = publishedAddresses(this.publish, snapshot.services);
    if ('error' in published) {
      if (published.error !== this.lastError) this.log.warn('not publishing Ingress status', { error: published.error });
      this.lastError = published.error;
      return;
    }
    this.lastError = '';
    let failed = false;
    for (const { ingress, loadBalancer } of statusUpdates(snapshot.ingresses, this.served(), published.addresses)) {
      // Leadership can end during a sync; no write after that.
      if (this.stopped) return;
      const [namespace, name] = [ingress.metadata!.namespace!, ingress.metadata!.name!];
      try {
        // A merge patch of status alone, with the resourceVersion as precondition: the cached Ingress lacks what the
        // source strips (stripUnread), and a PUT of it would remove kubectl's last-applied annotation.
        const body = { metadata: { resourceVersion: ingress.metadata!.resourceVersion }, status: { loadBalancer: { ingress: loadBalancer } } };
        await this.api.patchNamespacedIngressStatus({ namespace, name, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
        this.log.info('Ingress status updated', { ingress: `${namespace}/${name}`, loadBalancer: loadBalancer.map((a) => a.ip ?? a.hostname) });
      } catch (err) {
        if ((err as { code?: number }).code === 409) continue;
        failed = true;
        this.log.warn('could not update Ingress status', { ingress: `${namespace}/${name}`, error: errorText(err) });
      }
    }
    this.syncAgainIn(failed ? RETRY_MS : undefined);
  }
}
