import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import { createLogger } from '../observability/log.js';
import { INITIAL_BACKOFF_MS, MAX_BACKOFF_MS, Reflector, type ListWatchClient } from './reflector.js';
import { LAST_APPLIED_ANNOTATION, stripUnread } from './source.js';

const obj = (name: string, resourceVersion: string): KubernetesObject => ({ metadata: { namespace: 'ns', name, resourceVersion } });
const listOf = (resourceVersion: string, ...items: KubernetesObject[]): KubernetesListObject<KubernetesObject> => ({ metadata: { resourceVersion }, items });
const apiError = (code: number) => Object.assign(new Error(`HTTP ${code}`), { code, statusCode: code });

type WatchScript = { events: [string, KubernetesObject | { code: number }][]; end?: Error | 'quiet' | 'closed' };

/** Answers lists and watches from scripts; once both are used up it waits for stop(), and `idle` resolves. */
function scripted(lists: (KubernetesListObject<KubernetesObject> | Error)[], watches: WatchScript[]) {
  let markIdle!: () => void;
  const idle = new Promise<void>((resolve) => (markIdle = resolve));
  const calls = { lists: 0, watchedFrom: [] as string[] };
  const untilAborted = (signal: AbortSignal) => {
    if (lists.length === 0 && watches.length === 0) markIdle();
    return new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
  };
  const client: ListWatchClient<KubernetesObject> = {
    async list(signal) {
      const next = lists.shift();
      if (next === undefined) return untilAborted(signal);
      calls.lists++;
      if (next instanceof Error) throw next;
      return next;
    },
    async watch(resourceVersion, onEvent, signal) {
      const next = watches.shift();
      if (next === undefined) return untilAborted(signal);
      calls.watchedFrom.push(resourceVersion);
      for (const [type, object] of next.events) onEvent(type, object as KubernetesObject);
      if (next.end instanceof Error) throw next.end;
      return next.end ?? 'closed';
    },
  };
  return { client, idle, calls };
}

function reflect(client: ListWatchClient<KubernetesObject>, strip?: (object: KubernetesObject) => void, optional = false) {
  const seen = { changes: 0, listFailures: 0, sleeps: [] as number[], syncedAtChange: [] as boolean[] };
  const reflector: Reflector<KubernetesObject> = new Reflector('things', client, () => {
    seen.changes++;
    seen.syncedAtChange.push(reflector.hasSynced);
  }, {
    log: createLogger('error', {}, () => undefined),
    onListFailure: () => seen.listFailures++,
    sleep: async (ms) => void seen.sleeps.push(ms),
    strip,
    optional,
  });
  reflector.start();
  return { reflector, seen };
}

const names = (r: Reflector<KubernetesObject>) => r.list().map((o) => `${o.metadata!.name}@${o.metadata!.resourceVersion}`);

describe('Reflector', () => {
  it('of an optional resource takes a 404 for an empty list, is synced, lists again at the cap, and reads the objects once served', async () => {
    const { client, idle, calls } = scripted([apiError(404), apiError(404), listOf('5', obj('a', '5'))], []);
    const { reflector, seen } = reflect(client, undefined, true);
    await reflector.synced;
    await idle;
    expect(calls.lists).toBe(3);
    expect(seen.listFailures).toBe(0);
    expect(seen.sleeps).toEqual([MAX_BACKOFF_MS, MAX_BACKOFF_MS]);
    expect(names(reflector)).toEqual(['a@5']);
    expect(seen.syncedAtChange).toEqual([true]);
    await reflector.stop();
  });

  it('of an optional resource takes a 403 (RBAC without its rule) for an empty list too', async () => {
    const { client, idle } = scripted([apiError(403)], []);
    const { reflector, seen } = reflect(client, undefined, true);
    await reflector.synced;
    await idle;
    expect(reflector.list()).toEqual([]);
    expect(seen.listFailures).toBe(0);
    await reflector.stop();
  });

  it('of a required resource a 404 is a failed list: not synced', async () => {
    const { client, idle } = scripted([apiError(404)], []);
    const { reflector, seen } = reflect(client);
    await idle;
    expect(reflector.hasSynced).toBe(false);
    expect(seen.listFailures).toBe(1);
    await reflector.stop();
  });

  it('is synced only once a list came in whole: failed lists count, retry with doubling backoff up to the cap, and leave nothing in the store', async () => {
    const failures = Array.from({ length: 8 }, () => apiError(500));
    const { client, idle } = scripted([...failures, listOf('10', obj('a', '1'), obj('b', '1'))], []);
    const { reflector, seen } = reflect(client);
    let syncedEarly = false;
    void reflector.synced.then(() => (syncedEarly = seen.listFailures < 8));
    await reflector.synced;
    await idle;
    expect(syncedEarly).toBe(false);
    expect(seen.listFailures).toBe(8);
    expect(seen.sleeps).toEqual([500, 1000, 2000, 4000, 8000, 16000, MAX_BACKOFF_MS, MAX_BACKOFF_MS]);
    expect(names(reflector)).toEqual(['a@1', 'b@1']);
    // The first list is one change, reported as the store fills, before `synced` resolves: users wait for `synced`.
    expect(seen.changes).toBe(1);
    await reflector.stop();
  });

  it('relists after 410 Gone (an ERROR event or the watch request\'s status) and reports a change only when the list differs', async () => {
    const { client, idle, calls } = scripted(
      [listOf('10', obj('a', '1'), obj('b', '1')), listOf('20', obj('a', '2'), obj('b', '1')), listOf('30', obj('a', '2'))],
      [
        { events: [['MODIFIED', obj('a', '2')], ['ERROR', { code: 410 }]] },
        { events: [], end: apiError(410) },
      ],
    );
    const { reflector, seen } = reflect(client);
    await idle;
    expect(calls.lists).toBe(3);
    expect(calls.watchedFrom).toEqual(['10', '20']);
    // list, MODIFIED a, (relist: same objects, no change), relist without b
    expect(seen.changes).toBe(3);
    expect(names(reflector)).toEqual(['a@2']);
    // Only the watch that expired before any event waits before relisting.
    expect(seen.sleeps).toEqual([INITIAL_BACKOFF_MS]);
    await reflector.stop();
  });

  it('keeps the last full list through watch failures, backing off and resuming from the last resourceVersion without a relist', async () => {
    const cut = () => new Error('socket hang up');
    const { client, idle, calls } = scripted(
      [listOf('10', obj('a', '1'))],
      [
        { events: [], end: cut() },
        { events: [], end: cut() },
        { events: [['BOOKMARK', obj('', '15')], ['ADDED', obj('b', '16')]], end: cut() },
        { events: [], end: cut() },
      ],
    );
    const { reflector, seen } = reflect(client);
    await idle;
    expect(calls.lists).toBe(1);
    expect(calls.watchedFrom).toEqual(['10', '10', '10', '16']);
    // An event resets the backoff: the watch came through.
    expect(seen.sleeps).toEqual([INITIAL_BACKOFF_MS, 2 * INITIAL_BACKOFF_MS, INITIAL_BACKOFF_MS, 2 * INITIAL_BACKOFF_MS]);
    expect(names(reflector)).toEqual(['a@1', 'b@16']);
    expect(seen.listFailures).toBe(0);
    await reflector.stop();
  });

  it('rewatches a quiet watch at once, and backs off only from watches the server keeps ending without events', async () => {
    const { client, idle, calls } = scripted(
      [listOf('10', obj('a', '1'))],
      [{ events: [], end: 'quiet' }, { events: [], end: 'quiet' }, { events: [], end: 'closed' }, { events: [], end: 'closed' }],
    );
    const { reflector, seen } = reflect(client);
    await idle;
    expect(calls.watchedFrom).toEqual(['10', '10', '10', '10']);
    expect(seen.sleeps).toEqual([INITIAL_BACKOFF_MS, 2 * INITIAL_BACKOFF_MS]);
    await reflector.stop();
  });

  it('never reports synced when stopped before a list came in', async () => {
    const { client, idle } = scripted([apiError(503)], []);
    const { reflector, seen } = reflect(client);
    await idle;
    await reflector.stop();
    expect(reflector.hasSynced).toBe(false);
    expect(seen.changes).toBe(0);
  });

  it('keeps listed and watched objects without managedFields and kubectl\'s last-applied copy, every other annotation kept', async () => {
    const heavy = (name: string, resourceVersion: string): KubernetesObject => ({
      metadata: {
        namespace: 'ns', name, resourceVersion,
        annotations: { [LAST_APPLIED_ANNOTATION]: '{"spec":{}}', 'nginx.ingress.kubernetes.io/limit-rps': '10' },
        managedFields: [{ manager: 'kubectl', operation: 'Update', fieldsType: 'FieldsV1', fieldsV1: {} }],
      },
    });
    const { client, idle } = scripted([listOf('10', heavy('a', '1'))], [{ events: [['ADDED', heavy('b', '11')]] }]);
    const { reflector } = reflect(client, stripUnread);
    await idle;
    expect(reflector.list().map((o) => o.metadata)).toEqual([
      { namespace: 'ns', name: 'a', resourceVersion: '1', annotations: { 'nginx.ingress.kubernetes.io/limit-rps': '10' } },
      { namespace: 'ns', name: 'b', resourceVersion: '11', annotations: { 'nginx.ingress.kubernetes.io/limit-rps': '10' } },
    ]);
    await reflector.stop();
  });
});
