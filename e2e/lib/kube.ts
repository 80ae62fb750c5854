// Thin helpers over the real API server: apply (create or replace), delete, and Events about an object.
import { CoreV1Api, KubernetesObjectApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';

export class Kube {
  readonly objects: KubernetesObjectApi;
  readonly core: CoreV1Api;

  constructor(kc: KubeConfig) {
    this.objects = KubernetesObjectApi.makeApiClient(kc);
    this.core = kc.makeApiClient(CoreV1Api);
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
