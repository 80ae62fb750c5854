// The reconciler against a fake data plane that refuses some configurations, as `nginx -t` would: the Ingress to
// blame fails alone, with one Event, and is tried again with backoff.
import { jest } from '@jest/globals';
import type { V1Ingress } from '@kubernetes/client-node';
import { RETRY_FIRST_MS } from './acceptance.js';
import { BUILTIN_TLS_DEFAULTS } from './model/pq.js';
import { CAPABILITIES, ingress, route } from './model/testing.js';
import type { Diagnostic, Model } from './model/types.js';
import { createLogger } from './observability/log.js';
import { createMetrics } from './observability/metrics.js';
import { REFUSED_BY_NGINX, Reconciler } from './reconciler.js';
import { emptySnapshot, type Snapshot } from './sources/source.js';

const QUBESEC_CLASS = { metadata: { name: 'qubesec' }, spec: { controller: 'qubesec.io/ingress-controller' } };
const REFUSED_PATH = '/(unclosed';
const NGINX_ERROR = 'nginx -t refused the configuration: pcre2_compile() failed: missing closing parenthesis';

const at = (name: string, path: string, resourceVersion: string): V1Ingress => {
  const base = ingress(name, { rules: [route(`${name}.example.com`, path, 'ImplementationSpecific', 'svc')] });
  return { ...base, metadata: { ...base.metadata, resourceVersion } };
};
/** Ingress names with a location in the model. */
const served = (model: Model | undefined) => [...new Set(model?.servers.flatMap((s) => s.locations.map((l) => l.ingress.name)))].sort();

async function running(ingresses: V1Ingress[]) {
  let snapshot: Snapshot = { ...emptySnapshot(), ingressClasses: [QUBESEC_CLASS], ingresses };
  const nginx = { refuses: (model: Model) => model.servers.some((s) => s.locations.some((l) => l.path === REFUSED_PATH)), reloads: true, tests: 0, applied: [] as Model[] };
  const events: Diagnostic[] = [];
  const metrics = createMetrics();
  let changed = () => {};
  const reconciler = new Reconciler(
    { start: async (onChange) => void (changed = onChange), snapshot: () => snapshot, stop: async () => {} },
    {
      apply: async (model) => {
        if (nginx.refuses(model)) return { status: 'failed', hash: '', error: NGINX_ERROR, refused: true };
        if (!nginx.reloads) return { status: 'failed', hash: '', error: 'NGINX did not take the new configuration: workers still report "old"', refused: false };
        nginx.applied.push(model);
        return { status: 'applied', hash: String(nginx.applied.length) };
      },
      test: async (model) => (nginx.tests++, nginx.refuses(model) ? NGINX_ERROR : undefined),
    },
    { record: async (d) => void events.push(d) },
    { controllerName: 'qubesec.io/ingress-controller', ingressClass: 'qubesec', tlsDefaults: BUILTIN_TLS_DEFAULTS, configMap: '', capabilities: CAPABILITIES, defaultCertificates: [], debounceMs: 0 },
    metrics,
    createLogger('error', {}, () => {}),
  );
  const synced = () => new Promise<void>((resolve) => (reconciler.onSynced = resolve));
  const first = synced();
  await reconciler.start();
  await first;
  return {
    nginx,
    events,
    reconciler,
    refusals: () => events.filter((e) => e.reason === REFUSED_BY_NGINX).map((e) => `${e.object.name}: ${e.message}`),
    retries: async () => (await metrics.applyRetries.get()).values[0]?.value ?? 0,
    /** Replaces the snapshot's Ingresses and waits for the sync. */
    async sync(next: V1Ingress[]) {
      snapshot = { ...snapshot, ingresses: next };
      const done = synced();
      changed(); // as a source does after a change
      await jest.advanceTimersByTimeAsync(1); // the debounce: a 0 ms timer fires after 1 ms
      await done;
    },
    /** Waits for the retry the reconciler set itself, with fake timers. */
    async retry(afterMs: number) {
      const done = synced();
      await jest.advanceTimersByTimeAsync(afterMs);
      await jest.advanceTimersByTimeAsync(1);
      await done;
    },
  };
}

describe('Reconciler when NGINX refuses an Ingress', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('serves the Ingresses that came with it, keeps the accepted version of the refused one, and reports it once', async () => {
    const r = await running([at('keep', '/v1', '1')]);
    try {
      expect(served(r.nginx.applied.at(-1))).toEqual(['keep']);
      // keep changes to a version NGINX refuses; second is new in the same sync.
      await r.sync([at('keep', REFUSED_PATH, '2'), at('second', '/', '1')]);
      const model = r.nginx.applied.at(-1)!;
      expect(served(model)).toEqual(['keep', 'second']);
      expect(model.servers.find((s) => s.host === 'keep.example.com')?.locations.map((l) => l.path)).toEqual(['/v1']);
      expect(r.refusals()).toEqual([`keep: Ingress default/keep: NGINX refused this version (its last accepted version keeps serving): ${NGINX_ERROR}`]);
      expect(r.events.filter((e) => e.object.name === 'second')).toEqual([]);
      expect([...r.reconciler.served].sort()).toEqual(['default/keep', 'default/second']);

      // An unrelated change neither tries the refused version again nor repeats its Event.
      const tests = r.nginx.tests;
      await r.sync([at('keep', REFUSED_PATH, '2'), at('second', '/', '1'), at('third', '/', '1')]);
      expect(served(r.nginx.applied.at(-1))).toEqual(['keep', 'second', 'third']);
      expect(r.nginx.tests).toBe(tests);
      expect(r.refusals()).toHaveLength(1);

      // Fixed: the new version serves.
      await r.sync([at('keep', '/v3', '3'), at('second', '/', '1'), at('third', '/', '1')]);
      expect(r.nginx.applied.at(-1)!.servers.find((s) => s.host === 'keep.example.com')?.locations.map((l) => l.path)).toEqual(['/v3']);
    } finally {
      await r.reconciler.stop();
    }
  });

  it('tries the refused version again with backoff though nothing changed, and serves it once NGINX takes it', async () => {
    const r = await running([at('new', REFUSED_PATH, '1'), at('other', '/', '1')]);
    try {
      expect(served(r.nginx.applied.at(-1))).toEqual(['other']);
      expect(r.refusals()).toEqual([`new: Ingress default/new: NGINX refused this version (it is not served): ${NGINX_ERROR}`]);
      await r.retry(RETRY_FIRST_MS);
      expect(await r.retries()).toBe(1);
      expect(served(r.nginx.applied.at(-1))).toEqual(['other']);
      expect(r.refusals()).toHaveLength(1);
      // The next retry waits twice as long.
      await jest.advanceTimersByTimeAsync(RETRY_FIRST_MS);
      expect(await r.retries()).toBe(1);
      // What NGINX refused was outside the Ingress (say, a module now loaded): the retry serves it.
      r.nginx.refuses = () => false;
      await r.retry(RETRY_FIRST_MS);
      expect(await r.retries()).toBe(2);
      expect(served(r.nginx.applied.at(-1))).toEqual(['new', 'other']);
    } finally {
      await r.reconciler.stop();
    }
  });

  it('blames no Ingress, with one Event for all, when NGINX refuses even the accepted versions or does not take a reload', async () => {
    const r = await running([at('a', '/', '1')]);
    try {
      const reloadFailed = () => r.events.filter((e) => e.reason === 'ReloadFailed').map((e) => `${e.object.name}: ${e.message}`);
      // Say a default every configuration holds: NGINX refuses the accepted versions too.
      r.nginx.refuses = () => true;
      await r.sync([at('a', '/', '1'), at('b', '/', '1'), at('c', '/', '1'), at('d', '/', '1')]);
      expect(reloadFailed()).toEqual([`b: the data plane refused the new configuration; the previous one keeps serving: ${NGINX_ERROR} (the changes of 3 Ingresses wait, this one's among them)`]);
      expect(r.refusals()).toEqual([]);
      expect(served(r.nginx.applied.at(-1))).toEqual(['a']);

      // A reload NGINX does not take is no configuration's fault: nothing is tried to find one.
      r.nginx.refuses = () => false;
      r.nginx.reloads = false;
      const tests = r.nginx.tests;
      await r.sync([at('a', '/', '1'), at('e', '/', '1')]);
      expect(r.nginx.tests).toBe(tests);
      expect(reloadFailed()).toHaveLength(2);
      expect(r.refusals()).toEqual([]);
    } finally {
      await r.reconciler.stop();
    }
  });
});
