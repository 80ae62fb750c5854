// Thin helpers over the real API server: apply (create or replace), delete, raw requests, CRDs, and Events about an object.
import { readFile } from 'node:fs/promises';
import type { RequestOptions } from 'node:https';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubernetesObjectApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { PROJECT_ROOT } from '../../controller/project.js';
import { GROUP, VERSION } from '../../controller/pki/resources.js';
import { nodeHttps } from './clients.js';
import { eventually } from './env.js';
import { serviceFor } from './objects.js';

export class Kube {
  readonly objects: KubernetesObjectApi;
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;

  constructor(private readonly kc: KubeConfig) {
    this.objects = KubernetesObjectApi.makeApiClient(kc);
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
  }

  async apply<T extends KubernetesObject>(obj: T): Promise<void> {
    try {
      const current = await this.objects.read(obj as never);
      await this.objects.replace({ ...obj, metadata: { ...obj.metadata, resourceVersion: current.metadata?.resourceVersion } } as never);
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
      await this.objects.create(obj as never);
    }
  }

  /**
   * Creates a CustomResourceDefinition as JSON, untouched. client-node's serializer maps JSON-schema keys through its
   * models and drops `enum`, `default` and `x-kubernetes-*`, which would leave the schema unenforced.
   */
  async createCrd(crd: KubernetesObject): Promise<void> {
    const result = await this.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
    if (result.status !== 201) throw new Error(`creating CRD ${crd.metadata?.name} failed (${result.status}): ${result.body}`);
  }

  /** The qubesec.io CRDs from charts/qubesec/crds, once the API server serves them. */
  async installQubesecCrds(): Promise<void> {
    await this.installCrds('qubesec', ['issuers.yaml', 'certificates.yaml', 'signaturepolicies.yaml'], 'certificates');
  }

  /** The VPN's CRDs from charts/qubesec-vpn/crds (VpnGateway, VpnPeer), once the API server serves them. */
  async installVpnCrds(): Promise<void> {
    await this.installCrds('qubesec-vpn', ['vpngateways.yaml', 'vpnpeers.yaml'], 'vpnpeers');
  }

  private async installCrds(chart: string, files: string[], plural: string): Promise<void> {
    for (const file of files) {
      for (const doc of parseAllDocuments(await readFile(join(PROJECT_ROOT, 'charts', chart, 'crds', file), 'utf8'))) await this.createCrd(doc.toJS());
    }
    await eventually(async () => (await this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural }), true), 30_000, 'CRDs established');
  }

  /**
   * A request as JSON, untouched by client-node's models. Returns the parsed body, and the Warning headers' texts
   * (where admission webhooks' warnings arrive).
   */
  async request(method: string, path: string, body?: unknown): Promise<{ status: number; body: string; json: Record<string, unknown>; warnings: string[] }> {
    const options: RequestOptions = { method, headers: { 'Content-Type': 'application/json', Accept: 'application/json' } };
    await this.kc.applyToHTTPSOptions(options);
    const reply = await nodeHttps(`${this.kc.getCurrentCluster()!.server}${path}`, options, body === undefined ? undefined : JSON.stringify(body));
    const warnings = reply.rawHeaders.filter((_, i) => i % 2 === 1 && reply.rawHeaders[i - 1]!.toLowerCase() === 'warning')
      .map((value) => /^\d{3} \S+ "(.*)"$/.exec(value)?.[1]?.replace(/\\(.)/g, '$1') ?? value);
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(reply.body) as Record<string, unknown>;
    } catch {
      // Not JSON (an error page): `body` has the text.
    }
    return { status: reply.status, body: reply.body, json, warnings };
  }

  /** Service `name` (port http) with an EndpointSlice of one ready Pod at address:port. */
  async publishService(name: string, port: number, address: string, namespace = 'default'): Promise<void> {
    const { service, slice } = serviceFor(name, port, address, namespace);
    await this.apply(service);
    await this.apply(slice);
  }

  async delete(obj: KubernetesObject): Promise<void> {
    await this.objects.delete(obj as never).catch((err: { code?: number }) => {
      if (err.code !== 404) throw err;
    });
  }

  /** Notes (messages) of Events about the named object. */
  async eventNotes(namespace: string, kind: string, name: string): Promise<string[]> {
    const list = await this.core.listNamespacedEvent({ namespace });
    return list.items.filter((e) => e.involvedObject.kind === kind && e.involvedObject.name === name).map((e) => `${e.reason}: ${e.message ?? ''}`);
  }
}
