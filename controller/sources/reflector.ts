// One kind's list+watch, kept in memory (kube-rs' reflector store, client-go's informer). client-node 2.x's ListWatch
// resolves start() even when the first list fails and then holds nothing, so nothing could tell a full view from an
// empty one; here `synced` resolves only when a list has come in whole (kube-rs InitDone, client-go HasSynced).
import { Observable, Watch, type ConfigurationOptions, type KubeConfig, type KubernetesListObject, type KubernetesObject, type ObservableMiddleware } from '@kubernetes/client-node';
import type { Logger } from '../observability/log.js';
import { keyOf } from './source.js';

export const INITIAL_BACKOFF_MS = 500;
export const MAX_BACKOFF_MS = 30_000;
/** As kube-apiserver's own --request-timeout: a list that has not answered by then is stuck (a stalled connection). */
const LIST_TIMEOUT_MS = 60_000;

/** The two calls of the API a reflector makes: a list, and a watch that streams events until it ends. */
export interface ListWatchClient<T extends KubernetesObject> {
  list(signal: AbortSignal): Promise<KubernetesListObject<T>>;
  /**
   * Resolves when the watch ends without error: 'quiet' when the client closed it after a while without events (the
   * connection may be dead; that wait was throttle enough), 'closed' when the server ended it. Rejects on error.
   */
  watch(resourceVersion: string, onEvent: (type: string, object: T) => void, signal: AbortSignal): Promise<'quiet' | 'closed'>;
}

export interface ReflectorHooks {
  log: Logger;
  /** Every failed list, initial or relist: qubesec_source_list_failures_total. */
  onListFailure?: () => void;
  /** The first list is in: qubesec_source_synced. */
  onSynced?: () => void;
  /** Waits between retries; tests count the waits instead of taking them. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Drops what the reflector's users never read from each object as it comes in (source.ts stripUnread), before it is kept. */
  strip?: (object: KubernetesObject) => void;
  /**
   * The API server may not serve the resource (a CRD not installed: 404) or let us read it (RBAC without its rule:
   * 403): such a list counts as an empty one, and the resource is listed again every MAX_BACKOFF_MS.
   */
  optional?: boolean;
}

/** A watch that ended with 410 Gone (its resourceVersion is older than etcd keeps): only a new list can resume. */
class Gone extends Error {}

export class Reflector<T extends KubernetesObject> {
  private readonly store = new Map<string, T>();
  private readonly abort = new AbortController();
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private markSynced!: () => void;
  private running: Promise<void> | undefined;
  /** Resolves once the first list is in the store; never before, whatever fails. */
  readonly synced = new Promise<void>((resolve) => (this.markSynced = resolve));
  hasSynced = false;

  constructor(
    readonly name: string,
    private readonly client: ListWatchClient<T>,
    /**
     * Called after the store changed: with the key and the object now (none once deleted) after a watch event, with
     * nothing after a relist that changed something (one that found everything as it was calls nothing).
     */
    private readonly onChange: (key?: string, object?: T) => void,
    private readonly hooks: ReflectorHooks,
  ) {
    this.sleep = hooks.sleep ?? abortableSleep;
  }

  start(): void {
    this.running ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  list(): T[] {
    return [...this.store.values()];
  }

  private async run(): Promise<void> {
    const { signal } = this.abort;
    const log = this.hooks.log;
    let backoffMs = INITIAL_BACKOFF_MS;
    const wait = async () => {
      await this.sleep(backoffMs, signal).catch(() => undefined);
      backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
    };
    let resourceVersion = '';
    while (!signal.aborted) {
      if (!resourceVersion) {
        let listed: KubernetesListObject<T>;
        try {
          listed = await this.client.list(signal);
        } catch (err) {
          if (signal.aborted) return;
          const code = (err as { code?: number }).code;
          if (this.hooks.optional && (code === 404 || code === 403)) {
            if (!this.hasSynced || this.store.size > 0) {
              const why = code === 404 ? 'the API server does not serve this resource' : 'RBAC does not let this controller list this resource';
              log[code === 404 ? 'info' : 'warn'](`${why}; none are read until it does`, { resource: this.name, listAgainInMs: MAX_BACKOFF_MS });
            }
            this.replace([]);
            this.setSynced();
            await this.sleep(MAX_BACKOFF_MS, signal).catch(() => undefined);
            continue;
          }
          this.hooks.onListFailure?.();
          log.warn(this.hasSynced ? 'list failed; the last full list stays in use; retrying' : 'initial list failed; nothing acts on this kind until it is in; retrying',
            { resource: this.name, error: errorText(err), retryInMs: backoffMs });
          await wait();
          continue;
        }
        resourceVersion = listed.metadata?.resourceVersion ?? '';
        this.replace(listed.items ?? []);
        backoffMs = INITIAL_BACKOFF_MS;
        this.setSynced();
        if (!resourceVersion) {
          // Nothing to watch from: list again, but never in a tight loop.
          await wait();
          continue;
        }
      }
      let events = 0;
      try {
        const end = await this.client.watch(resourceVersion, (type, object) => {
          if (type === 'ERROR') {
            if ((object as { code?: number }).code === 410) throw new Gone('410 Gone');
            throw new Error(`watch error event: ${(object as { message?: string }).message ?? JSON.stringify(object)}`);
          }
          events++;
          backoffMs = INITIAL_BACKOFF_MS; // the watch came through
          resourceVersion = object.metadata?.resourceVersion ?? resourceVersion;
          this.apply(type, object);
        }, signal);
        // Ended cleanly: resume from the last resourceVersion. A server that ends watches at once, again and again,
        // gets them back more and more slowly.
        if (events === 0 && end === 'closed') await wait();
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof Gone || (err as { statusCode?: number; code?: number }).statusCode === 410 || (err as { code?: number }).code === 410) {
          log.info('watch expired (410 Gone); relisting', { resource: this.name });
          resourceVersion = '';
          // A watch that expires before its first event, right after a list, would otherwise relist in a tight loop.
          if (events === 0) await wait();
          continue;
        }
        log.warn('watch failed; retrying', { resource: this.name, error: errorText(err), retryInMs: backoffMs });
        await wait();
      }
    }
  }

  private setSynced(): void {
    if (this.hasSynced) return;
    this.hasSynced = true;
    this.hooks.log.info('initial list done', { resource: this.name, objects: this.store.size });
    this.hooks.onSynced?.();
    this.markSynced();
  }

  private apply(type: string, object: T): void {
    this.hooks.strip?.(object);
    const key = keyOf(object);
    if (type === 'DELETED') {
      if (this.store.delete(key)) this.onChange(key);
    } else if (type === 'ADDED' || type === 'MODIFIED') {
      const current = this.store.get(key);
      this.store.set(key, object);
      if (!sameVersion(current, object)) this.onChange(key, object);
    }
    // BOOKMARK: only its resourceVersion counts.
  }

  /** A list replaces the store in place (keys keep their order); it is a change only if some object differs. */
  private replace(items: T[]): void {
    if (this.hooks.strip) for (const item of items) this.hooks.strip(item);
    const listed = new Map(items.map((item) => [keyOf(item), item]));
    let changed = false;
    for (const key of this.store.keys()) {
      if (!listed.has(key)) {
        this.store.delete(key);
        changed = true;
      }
    }
    for (const [key, item] of listed) {
      if (!sameVersion(this.store.get(key), item)) changed = true;
      this.store.set(key, item);
    }
    if (changed) this.onChange();
  }
}

function sameVersion(a: KubernetesObject | undefined, b: KubernetesObject): boolean {
  return a !== undefined && a.metadata?.resourceVersion !== undefined && a.metadata.resourceVersion === b.metadata?.resourceVersion;
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Per-call options of client-node's generated APIs: they give a list its signal (stop, or the list timeout). */
export type ListOptions = ConfigurationOptions<ObservableMiddleware>;

function listOptions(signal: AbortSignal, timeoutMs: number): ListOptions {
  const timed = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
  return {
    middleware: [{
      pre: (request) => {
        request.setSignal(timed);
        return new Observable(Promise.resolve(request));
      },
      post: (response) => new Observable(Promise.resolve(response)),
    }],
    middlewareMergeStrategy: 'append',
  };
}

/** A client on the API server: `list` calls a generated API's list method, the watch streams `path`. */
export function kubernetesListWatch<T extends KubernetesObject>(kc: KubeConfig, path: string, list: (options: ListOptions) => Promise<KubernetesListObject<T>>, listTimeoutMs = LIST_TIMEOUT_MS): ListWatchClient<T> {
  const watcher = new Watch(kc);
  return {
    list: (signal) => list(listOptions(signal, listTimeoutMs)),
    watch: (resourceVersion, onEvent, signal) => new Promise<'quiet' | 'closed'>((resolve, reject) => {
      let request: AbortController | undefined;
      let ended = false;
      // client-node hands out a watch's AbortController only once the server answered: a stop() before that ends
      // our side at once, and the request is aborted when it answers.
      const onAbort = () => done(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      const done = (err: unknown) => {
        if (ended) return;
        ended = true;
        signal.removeEventListener('abort', onAbort);
        request?.abort();
        // client-node ends a watch that was quiet for 30 s with a TimeoutError: that is a clean end, not a failure.
        if (!err) resolve('closed');
        else if ((err as Error).name === 'TimeoutError') resolve('quiet');
        else reject(err as Error);
      };
      const handle = (type: string, object: T) => {
        if (ended) return;
        try {
          onEvent(type, object);
        } catch (err) {
          done(err);
        }
      };
      watcher.watch(path, { resourceVersion, allowWatchBookmarks: true }, handle, done).then((controller) => {
        request = controller;
        if (ended) controller.abort();
      }, done);
    }),
  };
}

/** An error as one line: for an API error, its status code and the API server's message (not client-node's dump). */
export function errorText(err: unknown): string {
  const { code, body } = (err ?? {}) as { code?: number; body?: unknown };
  if (code !== undefined) {
    let message: unknown = body;
    try {
      message = (typeof body === 'string' ? JSON.parse(body) : body)?.message ?? body;
    } catch {
      // a body that is not JSON is its own message
    }
    return `${code}: ${typeof message === 'string' ? message : JSON.stringify(message)}`;
  }
  if (err instanceof Error) return err.message;
  return typeof err === 'object' ? JSON.stringify(err) : String(err);
}
