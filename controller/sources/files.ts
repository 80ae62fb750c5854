// Files source: the kinds a system reads (the ingress controller's Snapshot, the VPN's), from YAML/JSON manifests in a
// folder, followed with chokidar. Standalone mode for the demo, edge hosts and fast tests. A file that stops parsing
// keeps its last good objects.
import { readFile, readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import chokidar, { type FSWatcher } from 'chokidar';
import { parseAllDocuments } from 'yaml';
import type { KubernetesObject } from '@kubernetes/client-node';
import { GATEWAY_GROUP, GATEWAY_VERSION } from '../model/gateway-api.js';
import { checkNamespaceName, checkObjectName, checkServiceName, quote, shortened } from '../model/names.js';
import type { Diagnostic } from '../model/types.js';
import type { Logger } from '../observability/log.js';
import type { EventRecorder, Kinds, Snapshot, Source } from './source.js';

/** The kinds a files source reads: `apiVersion kind` -> the snapshot field holding them. */
export type ManifestKinds<S extends Kinds<S>> = Record<string, keyof S & string>;

/** What the ingress controller reads. */
export const INGRESS_KINDS: ManifestKinds<Snapshot> = {
  'networking.k8s.io/v1 IngressClass': 'ingressClasses',
  'networking.k8s.io/v1 Ingress': 'ingresses',
  'v1 Service': 'services',
  'discovery.k8s.io/v1 EndpointSlice': 'endpointSlices',
  'v1 Secret': 'secrets',
  'v1 ConfigMap': 'configMaps',
  [`${GATEWAY_GROUP}/${GATEWAY_VERSION} GatewayClass`]: 'gatewayClasses',
  [`${GATEWAY_GROUP}/${GATEWAY_VERSION} Gateway`]: 'gateways',
  [`${GATEWAY_GROUP}/${GATEWAY_VERSION} HTTPRoute`]: 'httpRoutes',
  [`${GATEWAY_GROUP}/${GATEWAY_VERSION} GRPCRoute`]: 'grpcRoutes',
  [`${GATEWAY_GROUP}/${GATEWAY_VERSION} TLSRoute`]: 'tlsRoutes',
  [`${GATEWAY_GROUP}/v1beta1 ReferenceGrant`]: 'referenceGrants',
  [`${GATEWAY_GROUP}/${GATEWAY_VERSION} ReferenceGrant`]: 'referenceGrants',
  [`${GATEWAY_GROUP}/${GATEWAY_VERSION} BackendTLSPolicy`]: 'backendTlsPolicies',
  'v1 Namespace': 'namespaces',
};

/** Kinds without a namespace (of those some system reads). */
const CLUSTER_SCOPED = new Set(['IngressClass', 'GatewayClass', 'Namespace']);

const MANIFEST = /\.(ya?ml|json)$/;

/**
 * Why the API server would refuse this object's metadata.name or namespace (their rules by kind: Service names are
 * RFC 1035 labels, namespaces RFC 1123 labels, other names RFC 1123 subdomains), or undefined. Names reach nginx.conf.
 */
export function checkMetadata(obj: KubernetesObject): string | undefined {
  const { name, namespace } = obj.metadata ?? {};
  if (!name) return 'metadata.name is required';
  const nameError = obj.kind === 'Service' ? checkServiceName(name) : checkObjectName(name);
  if (nameError) return `metadata.name: ${quote(name)} ${nameError}`;
  const namespaceError = namespace === undefined ? undefined : checkNamespaceName(namespace);
  return namespaceError && `metadata.namespace: ${quote(namespace!)} ${namespaceError}`;
}

export class FilesSource<S extends Kinds<S> = Snapshot> implements Source<S> {
  private readonly byFile = new Map<string, KubernetesObject[]>();
  private watcher: FSWatcher | undefined;
  private loads = 0;

  constructor(private readonly dir: string, private readonly log: Logger, private readonly kinds: ManifestKinds<S>) {}

  async start(onChange: () => void): Promise<void> {
    for (const file of await listManifests(this.dir)) await this.load(file);
    this.watcher = chokidar.watch(this.dir, { ignoreInitial: true, awaitWriteFinish: { stabilityThreshold: 50, pollInterval: 10 } });
    const reload = (file: string) => {
      if (!MANIFEST.test(file)) return;
      void this.load(file).then(onChange);
    };
    this.watcher.on('add', reload).on('change', reload).on('unlink', (file) => {
      if (this.byFile.delete(file)) onChange();
    });
    await new Promise<void>((resolve) => this.watcher!.once('ready', () => resolve()));
  }

  snapshot(): S {
    const snapshot: Record<string, KubernetesObject[]> = Object.fromEntries(Object.values(this.kinds).map((field) => [field, []]));
    for (const objects of this.byFile.values()) {
      for (const obj of objects) snapshot[this.kinds[`${obj.apiVersion} ${obj.kind}`]!]!.push(obj);
    }
    return snapshot as unknown as S;
  }

  async stop(): Promise<void> {
    await this.watcher?.close();
  }

  private async load(file: string): Promise<void> {
    const name = relative(this.dir, file);
    let text: string;
    let mtime: Date;
    try {
      [text, mtime] = await Promise.all([readFile(file, 'utf8'), stat(file).then((s) => s.mtime)]);
    } catch (err) {
      this.log.warn('cannot read manifest', { file: name, error: (err as Error).message });
      return;
    }
    const objects: KubernetesObject[] = [];
    const previous = this.byFile.get(file) ?? [];
    const resourceVersion = String(++this.loads);
    for (const [i, doc] of parseAllDocuments(text).entries()) {
      if (doc.errors.length > 0) {
        this.log.error('manifest does not parse; keeping its previous objects', { file: name, document: i, error: doc.errors[0]!.message });
        return;
      }
      const obj = doc.toJS() as KubernetesObject | null;
      if (obj === null || obj === undefined) continue;
      if (typeof obj !== 'object' || !Object.hasOwn(this.kinds, `${obj.apiVersion} ${obj.kind}`)) {
        this.log.warn('manifest document ignored: not a kind QubeSec reads', { file: name, document: i, kind: shortened(String(obj?.kind ?? '')), apiVersion: shortened(String(obj?.apiVersion ?? '')) });
        continue;
      }
      const refused = checkMetadata(obj);
      if (refused) {
        // As the API server refuses a write: this object keeps its previous version, if it had one; the rest loads.
        const uid = obj.metadata?.uid ?? `file:${name}#${i}`;
        const kept = previous.find((p) => p.metadata?.uid === uid);
        this.log.error(`manifest object refused; ${kept ? 'keeping its previous version' : 'it has no previous version'}`, { file: name, document: i, kind: obj.kind, error: refused });
        if (kept) objects.push(kept);
        continue;
      }
      // Fill in what the API server would: a namespace, a uid, a creation time (the file's, for conflict order), and
      // a resourceVersion new at every load, so what the reconciler caches per object is redone for a changed file.
      const metadata = obj.metadata!; // checkMetadata found a name in it
      metadata.namespace = CLUSTER_SCOPED.has(obj.kind!) ? undefined : (metadata.namespace ?? 'default');
      metadata.uid ??= `file:${name}#${i}`;
      metadata.creationTimestamp ??= mtime;
      metadata.resourceVersion = resourceVersion;
      objects.push(obj);
    }
    this.byFile.set(file, objects);
  }
}

async function listManifests(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && MANIFEST.test(e.name))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** Standalone mode has no API server to hold Events: they become log lines. */
export class LogEventRecorder implements EventRecorder {
  constructor(private readonly log: Logger) {}

  async record(d: Diagnostic): Promise<void> {
    const fields = { event: d.reason, object: `${d.object.kind} ${d.object.namespace}/${d.object.name}`, message: d.message };
    if (d.type === 'Warning') this.log.warn('event', fields);
    else this.log.info('event', fields);
  }
}
