// The translation cache: what changed is translated again, what did not is not, and what is gone leaves it.
import type { V1ConfigMap, V1Ingress } from '@kubernetes/client-node';
import { translateIngress } from './model/ingress.js';
import { BUILTIN_TLS_DEFAULTS, type TlsDefaults } from './model/pq.js';
import { CAPABILITIES, ingress, route } from './model/testing.js';
import type { Model } from './model/types.js';
import { createLogger } from './observability/log.js';
import { createMetrics } from './observability/metrics.js';
import { Reconciler } from './reconciler.js';
import { emptySnapshot, type Snapshot } from './sources/source.js';
import { TranslationCache } from './translations.js';

function version(base: V1Ingress, resourceVersion: string | undefined, annotations?: Record<string, string>): V1Ingress {
  return { ...base, metadata: { ...base.metadata, resourceVersion, annotations: annotations ?? base.metadata?.annotations } };
}

const web = version(ingress('web', { rules: [route('a.example.com', '/', 'Prefix', 'svc')] }), '1');

/** A cache over the real translateIngress that counts its calls. */
function countingCache() {
  const calls: string[] = [];
  const cache = new TranslationCache((i, defaults) => {
    calls.push(`${i.metadata?.name}@${i.metadata?.resourceVersion}`);
    return translateIngress(i, defaults, CAPABILITIES);
  });
  return { cache, calls };
}

describe('TranslationCache', () => {
  it('translates an unchanged Ingress once', () => {
    const { cache, calls } = countingCache();
    const first = cache.get(web, BUILTIN_TLS_DEFAULTS);
    expect(cache.get(web, BUILTIN_TLS_DEFAULTS)).toBe(first);
    expect(cache.get({ ...web }, { ...BUILTIN_TLS_DEFAULTS })).toBe(first); // a relisted copy; equal defaults
    expect(calls).toEqual(['web@1']);
  });

  it('translates again an Ingress with a new resourceVersion, and serves what changed', () => {
    const { cache, calls } = countingCache();
    expect(cache.get(web, BUILTIN_TLS_DEFAULTS).intent?.policy.pqMode).toBe('hybrid');
    const strict = version(web, '2', { 'qubesec.io/pq-mode': 'strict' });
    expect(cache.get(strict, BUILTIN_TLS_DEFAULTS).intent?.policy.pqMode).toBe('strict');
    expect(calls).toEqual(['web@1', 'web@2']);
  });

  it('translates again when the defaults change', () => {
    const { cache, calls } = countingCache();
    expect(cache.get(web, BUILTIN_TLS_DEFAULTS).intent?.policy.protocols).toEqual(['TLSv1.3']);
    const tls12: TlsDefaults = { ...BUILTIN_TLS_DEFAULTS, minVersion: 'TLSv1.2' };
    expect(cache.get(web, tls12).intent?.policy.protocols).toEqual(['TLSv1.2', 'TLSv1.3']);
    expect(calls).toEqual(['web@1', 'web@1']);
  });

  it('translates again an Ingress deleted and created anew under the same name (new uid)', () => {
    const { cache, calls } = countingCache();
    cache.get(web, BUILTIN_TLS_DEFAULTS);
    cache.get({ ...web, metadata: { ...web.metadata, uid: 'uid-web-2' } }, BUILTIN_TLS_DEFAULTS);
    expect(calls).toEqual(['web@1', 'web@1']);
  });

  it('translates an Ingress without a resourceVersion every time and keeps nothing of it', () => {
    const { cache, calls } = countingCache();
    const unversioned = version(web, undefined);
    cache.get(unversioned, BUILTIN_TLS_DEFAULTS);
    cache.get(unversioned, BUILTIN_TLS_DEFAULTS);
    expect(calls).toEqual(['web@undefined', 'web@undefined']);
    expect(cache.size).toBe(0);
  });

  it('forgets the Ingresses that are gone', () => {
    const { cache } = countingCache();
    const api = version(ingress('api', { rules: [route('b.example.com', '/', 'Prefix', 'svc')] }), '1');
    cache.get(web, BUILTIN_TLS_DEFAULTS);
    cache.get(api, BUILTIN_TLS_DEFAULTS);
    cache.delete('default/web');
    expect(cache.size).toBe(1);
  });
});

describe('Reconciler syncs with cached translations', () => {
  const QUBESEC_CLASS = { metadata: { name: 'qubesec' }, spec: { controller: 'qubesec.io/ingress-controller' } };
  const defaultsMap = (minVersion: string, resourceVersion: string): V1ConfigMap =>
    ({ metadata: { namespace: 'qubesec', name: 'defaults', resourceVersion }, data: { 'tls-min-version': minVersion } });

  /** A reconciler over a snapshot the test replaces; resolves each sync with the model it applied. */
  async function running(initial: Snapshot) {
    let snapshot = initial;
    const models: Model[] = [];
    let changed = () => {};
    const reconciler = new Reconciler(
      { start: async (onChange) => void (changed = onChange), snapshot: () => snapshot, stop: async () => {} },
      { apply: async (model) => (models.push(model), { status: 'applied', hash: String(models.length) }), test: async () => undefined },
      { record: async () => {} },
      { controllerName: 'qubesec.io/ingress-controller', ingressClass: 'qubesec', tlsDefaults: BUILTIN_TLS_DEFAULTS, configMap: 'qubesec/defaults', capabilities: CAPABILITIES, defaultCertificates: [], debounceMs: 0 },
      createMetrics(),
      createLogger('error', {}, () => {}),
    );
    await reconciler.start();
    return {
      models,
      async sync(next: Partial<Snapshot>): Promise<Model> {
        snapshot = { ...snapshot, ...next };
        const synced = new Promise<void>((resolve) => (reconciler.onSynced = resolve));
        changed(); // as a source does after a change
        await synced;
        return models.at(-1)!;
      },
      stop: () => reconciler.stop(),
    };
  }

  const tlsWeb = (resourceVersion: string, annotations?: Record<string, string>) =>
    version(ingress('web', { tls: [{ hosts: ['a.example.com'], secretName: 'a' }], rules: [route('a.example.com', '/', 'Prefix', 'svc')] }), resourceVersion, annotations);
  const policyOf = (model: Model) => model.servers.find((s) => s.host === 'a.example.com')?.tls?.policy;
  const empty: Snapshot = { ...emptySnapshot(), ingressClasses: [QUBESEC_CLASS] };

  it('serves a changed annotation and a changed defaults ConfigMap at the next sync', async () => {
    const r = await running({ ...empty, ingresses: [tlsWeb('1')], configMaps: [defaultsMap('1.3', '1')] });
    try {
      expect(policyOf(r.models[0]!)).toMatchObject({ pqMode: 'hybrid', protocols: ['TLSv1.3'] });
      expect(policyOf(await r.sync({ configMaps: [defaultsMap('1.2', '2')] }))).toMatchObject({ pqMode: 'hybrid', protocols: ['TLSv1.2', 'TLSv1.3'] });
      expect(policyOf(await r.sync({ ingresses: [tlsWeb('2', { 'qubesec.io/pq-mode': 'strict' })] }))).toMatchObject({ pqMode: 'strict', protocols: ['TLSv1.3'] });
    } finally {
      await r.stop();
    }
  });

  it('stops serving a deleted Ingress', async () => {
    const r = await running({ ...empty, ingresses: [tlsWeb('1')] });
    try {
      expect(policyOf(await r.sync({ ingresses: [] }))).toBeUndefined();
    } finally {
      await r.stop();
    }
  });
});
