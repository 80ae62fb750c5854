// Leader-only: writes the status of Gateway API objects (gateway.ts decides what) through their status subresource.
// Each write carries the cached object's resourceVersion; a conflict means a newer version is on its way.
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { CoalescedWork } from '../coalescer.js';
import { GATEWAY_API_RESOURCES, GATEWAY_GROUP } from '../model/gateway-api.js';
import type { Logger } from '../observability/log.js';
import type { GatewayStatus } from '../reconciler.js';
import { errorText } from '../sources/kubernetes.js';
import type { Snapshot, Source } from '../sources/source.js';
import { publishedAddresses, type PublishFrom } from './addresses.js';
import { gatewayStatusPatches, type StatusHolder } from './gateway.js';

const RETRY_MS = 5000;

export class GatewayStatusWriter extends CoalescedWork {
  private readonly api: CustomObjectsApi;

  constructor(
    kc: KubeConfig,
    private readonly source: Source,
    private readonly status: () => GatewayStatus,
    private readonly controllerName: string,
    /** Where Gateway addresses come from (the publish flags); none: status.addresses is empty. */
    private readonly publish: PublishFrom | undefined,
    debounceMs: number,
    private readonly log: Logger,
  ) {
    super(debounceMs, (err) => log.error('Gateway API status sync failed', { error: err.stack ?? err.message }));
    this.api = kc.makeApiClient(CustomObjectsApi);
  }

  protected async sync(): Promise<void> {
    const snapshot: Snapshot = this.source.snapshot();
    const published = this.publish ? publishedAddresses(this.publish, snapshot.services) : { addresses: [] };
    const addresses = 'error' in published ? [] : published.addresses;
    const held = (list: Snapshot['gateways']) => list as unknown as StatusHolder[];
    const patches = gatewayStatusPatches(this.status(), { gatewayClasses: held(snapshot.gatewayClasses), gateways: held(snapshot.gateways), httpRoutes: held(snapshot.httpRoutes), grpcRoutes: held(snapshot.grpcRoutes), tlsRoutes: held(snapshot.tlsRoutes), backendTlsPolicies: held(snapshot.backendTlsPolicies) }, addresses, this.controllerName, new Date());
    let failed = false;
    for (const patch of patches) {
      if (this.stopped) return;
      // The resource as the Kubernetes source lists it.
      const { plural, version } = Object.values(GATEWAY_API_RESOURCES).find((r) => r.kind === patch.kind)!;
      const body = { metadata: { resourceVersion: patch.resourceVersion }, status: patch.status };
      const object = `${patch.kind} ${patch.namespace ? `${patch.namespace}/` : ''}${patch.name}`;
      try {
        const options = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
        if (patch.kind === 'GatewayClass') await this.api.patchClusterCustomObjectStatus({ group: GATEWAY_GROUP, version, plural, name: patch.name, body }, options);
        else await this.api.patchNamespacedCustomObjectStatus({ group: GATEWAY_GROUP, version, namespace: patch.namespace, plural, name: patch.name, body }, options);
        this.log.info('status updated', { object });
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (code === 409 || code === 404) continue;
        failed = true;
        this.log.warn('could not update status', { object, error: errorText(err) });
      }
    }
    this.syncAgainIn(failed ? RETRY_MS : undefined);
  }
}
