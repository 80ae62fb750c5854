// Where the VPN gateway's objects come from, and where their status goes: its namespace's VpnGateways, VpnPeers and
// Secrets from the API server (one reflector each) or from a folder of manifests (the shared files source, for edge
// sites and hosts outside a cluster). The controller consumes one VpnSnapshot from either and knows nothing else of them.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesListObject, type KubernetesObject, type V1Secret } from '@kubernetes/client-node';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import type { ManifestKinds } from '../sources/files.js';
import { reflectorHooks } from '../sources/kubernetes.js';
import { Reflector, kubernetesListWatch, type ListOptions } from '../sources/reflector.js';
import type { Source } from '../sources/source.js';
import { GROUP, VERSION, type VpnGatewayResource, type VpnPeerResource } from './model.js';

/** What the gateway reads: the objects of its namespace (a source may hold others; the controller picks its own). */
export interface VpnSnapshot {
  vpnGateways: readonly VpnGatewayResource[];
  vpnPeers: readonly VpnPeerResource[];
  secrets: readonly V1Secret[];
}

/** The kinds of a VPN manifest folder (for FilesSource). */
export const VPN_KINDS: ManifestKinds<VpnSnapshot> = {
  [`${GROUP}/${VERSION} VpnGateway`]: 'vpnGateways',
  [`${GROUP}/${VERSION} VpnPeer`]: 'vpnPeers',
  'v1 Secret': 'secrets',
};

/** One namespace's VpnGateways, VpnPeers and Secrets, each kind through its own reflector. */
export class KubernetesVpnSource implements Source<VpnSnapshot> {
  private readonly reflectors: Record<keyof VpnSnapshot, Reflector<KubernetesObject>>;
  /** Replaced by start() once every kind has synced: changes before that reach no one. */
  private onChange: () => void = () => undefined;

  constructor(kc: KubeConfig, namespace: string, metrics: Metrics, log: Logger) {
    const custom = kc.makeApiClient(CustomObjectsApi);
    const core = kc.makeApiClient(CoreV1Api);
    const listCustom = (plural: string) => (o: ListOptions) => custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural }, o) as Promise<KubernetesListObject<KubernetesObject>>;
    const reflector = (name: string, path: string, list: (o: ListOptions) => Promise<KubernetesListObject<KubernetesObject>>) => {
      const resource = `vpn/${name}`;
      return new Reflector(resource, kubernetesListWatch(kc, path, list), () => this.onChange(), reflectorHooks(resource, metrics, log));
    };
    this.reflectors = {
      vpnGateways: reflector('vpngateways', `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/vpngateways`, listCustom('vpngateways')),
      vpnPeers: reflector('vpnpeers', `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/vpnpeers`, listCustom('vpnpeers')),
      secrets: reflector('secrets', `/api/v1/namespaces/${namespace}/secrets`, (o) => core.listNamespacedSecret({ namespace }, o) as Promise<KubernetesListObject<KubernetesObject>>),
    };
  }

  async start(onChange: () => void): Promise<void> {
    const all = Object.values(this.reflectors);
    for (const r of all) r.start();
    await Promise.all(all.map((r) => r.synced));
    this.onChange = onChange;
  }

  snapshot(): VpnSnapshot {
    return {
      vpnGateways: this.reflectors.vpnGateways.list() as VpnGatewayResource[],
      vpnPeers: this.reflectors.vpnPeers.list() as VpnPeerResource[],
      secrets: this.reflectors.secrets.list() as V1Secret[],
    };
  }

  async stop(): Promise<void> {
    await Promise.all(Object.values(this.reflectors).map((r) => r.stop()));
  }
}

export type VpnPlural = 'vpnpeers' | 'vpngateways';

/** Where a VpnGateway's or VpnPeer's status goes once it changed: the API server, or the log (and a file). Rejects on failure. */
export interface VpnStatusWriter {
  write(plural: VpnPlural, resource: VpnGatewayResource | VpnPeerResource, status: object): Promise<void>;
}

export class KubernetesStatusWriter implements VpnStatusWriter {
  private readonly custom: CustomObjectsApi;

  constructor(kc: KubeConfig) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
  }

  async write(plural: VpnPlural, resource: VpnGatewayResource | VpnPeerResource, status: object): Promise<void> {
    // With the watched resourceVersion: an object edited meanwhile answers 409 and gets its status at the next tick.
    await this.custom.replaceNamespacedCustomObjectStatus({
      group: GROUP, version: VERSION, namespace: resource.metadata.namespace!, plural, name: resource.metadata.name!, body: { ...resource, status },
    });
  }
}

/**
 * Standalone mode has no API server to hold status: each change is a log line, and with a path, the status of every
 * object is kept in one JSON file ({"vpngateways/NS/NAME": status, ...}), replaced whole (written aside, then renamed)
 * so a reader never sees half of it.
 */
export class LogStatusWriter implements VpnStatusWriter {
  private readonly all: Record<string, object> = {};

  constructor(private readonly log: Logger, private readonly statusFile: string) {}

  async write(plural: VpnPlural, resource: VpnGatewayResource | VpnPeerResource, status: object): Promise<void> {
    const key = statusKey(plural, resource);
    this.log.info('status', { object: key, status });
    if (!this.statusFile) return;
    this.all[key] = status;
    mkdirSync(dirname(this.statusFile), { recursive: true });
    writeFileSync(`${this.statusFile}.tmp`, `${JSON.stringify(this.all, null, 2)}\n`);
    renameSync(`${this.statusFile}.tmp`, this.statusFile);
  }
}

export function statusKey(plural: VpnPlural, resource: VpnGatewayResource | VpnPeerResource): string {
  return `${plural}/${resource.metadata.namespace}/${resource.metadata.name}`;
}
