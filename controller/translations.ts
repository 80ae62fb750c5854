// Translations of the Ingresses of the last sync, so a sync translates only the Ingresses that changed. The API server
// gives an object a new resourceVersion on every change (the files source does on every load), so uid and
// resourceVersion name one content; the defaults are compared by value, as a ConfigMap edit makes new ones.
import type { V1Ingress } from '@kubernetes/client-node';
import type { IngressTranslation } from './model/ingress.js';
import type { TlsDefaults } from './model/pq.js';
import { keyOf } from './sources/source.js';

interface Entry {
  uid: string | undefined;
  resourceVersion: string;
  defaults: string;
  translation: IngressTranslation;
}

export class TranslationCache {
  private readonly entries = new Map<string, Entry>();
  private defaultsText = { of: undefined as TlsDefaults | undefined, text: '' };

  constructor(private readonly translate: (ingress: V1Ingress, defaults: TlsDefaults) => IngressTranslation) {}

  /** The translation of `ingress` with `defaults`: the cached one when neither changed. */
  get(ingress: V1Ingress, defaults: TlsDefaults): IngressTranslation {
    const key = keyOf(ingress);
    const uid = ingress.metadata?.uid;
    const resourceVersion = ingress.metadata?.resourceVersion;
    const defaultsText = this.textOf(defaults);
    const cached = this.entries.get(key);
    if (cached && resourceVersion && cached.uid === uid && cached.resourceVersion === resourceVersion && cached.defaults === defaultsText) {
      return cached.translation;
    }
    const translation = this.translate(ingress, defaults);
    // Without a resourceVersion nothing tells a changed object from the same one: translate it every time.
    if (resourceVersion) this.entries.set(key, { uid, resourceVersion, defaults: defaultsText, translation });
    else this.entries.delete(key);
    return translation;
  }

  /** Forgets an Ingress (namespace/name): deleted, or no longer of our class. */
  delete(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }

  /** One sync passes the same defaults object for every Ingress: serialize it once. */
  private textOf(defaults: TlsDefaults): string {
    if (this.defaultsText.of !== defaults) this.defaultsText = { of: defaults, text: JSON.stringify(defaults) };
    return this.defaultsText.text;
  }
}
