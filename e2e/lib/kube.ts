// Thin helpers over the real API server: apply (create or replace), delete, CRDs, and Events about an object.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubernetesObjectApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { execa } from 'execa';
import { parseAllDocuments } from 'yaml';
import { PROJECT_ROOT } from '../../controller/project.js';
import { GROUP, VERSION } from '../../controller/pki/resources.js';
import { eventually } from './env.js';

export class Kube {
  readonly objects: KubernetesObjectApi;
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;

  constructor(kc: KubeConfig) {
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
  async createCrd(crd: KubernetesObject, server: string, token: string): Promise<void> {
    const result = await execa('curl', ['-sSk', '-X', 'POST', '-H', `Authorization: Bearer ${token}`, '-H', 'Content-Type: application/json',
      '--data-binary', '@-', '-w', '\n%{http_code}', `${server}/apis/apiextensions.k8s.io/v1/customresourcedefinitions`], { input: JSON.stringify(crd) });
    const code = result.stdout.split('\n').pop();
    if (code !== '201') throw new Error(`creating CRD ${crd.metadata?.name} failed (${code}): ${result.stdout}`);
  }

  /** The qubesec.io CRDs from charts/qubesec/crds, once the API server serves them. */
  async installQubesecCrds(server: string, token: string): Promise<void> {
    for (const file of ['issuers.yaml', 'certificates.yaml']) {
      for (const doc of parseAllDocuments(await readFile(join(PROJECT_ROOT, 'charts', 'qubesec', 'crds', file), 'utf8'))) await this.createCrd(doc.toJS(), server, token);
    }
    await eventually(async () => (await this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'certificates' }), true), 30_000, 'CRDs established');
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
