// Which version of each Ingress a sync offers the data plane, and, when NGINX refuses the result, which changed
// Ingresses to blame. Pure: the reconciler runs the tests (`nginx -t`) that isolate() asks for and hands back verdicts.

/** A version NGINX refused, with NGINX's message. */
export interface Refusal<V> {
  version: V;
  error: string;
}

export interface Offer<V> {
  /** Per Ingress, the version the data plane last accepted: what serves when its change is refused. */
  accepted: Map<string, V>;
  /** Per Ingress, a version not yet accepted, to try over `accepted`. */
  changed: Map<string, V>;
}

/**
 * Of one Ingress of ours, the version to offer over its accepted one, or undefined: its version now (undefined:
 * translation rejected it, so only its accepted version may serve) unless that is the accepted one. A version NGINX
 * refused is offered again only on a retry, so that an unrelated sync (an endpoint change, another Ingress) neither
 * reloads for it nor pays to isolate it again. Versions are compared by identity: the translation cache hands out
 * the same object while an Ingress is unchanged.
 */
export function offeredVersion<V>(version: V | undefined, accepted: V | undefined, refused: Refusal<V> | undefined, retry: boolean): V | undefined {
  if (version === undefined || version === accepted) return undefined;
  if (!retry && refused?.version === version) return undefined;
  return version;
}

/** The versions of one try: every accepted version, replaced by the changed version of the Ingresses in `keys`. */
export function versionsOf<V>(offered: Offer<V>, keys: Iterable<string>): V[] {
  const versions = new Map(offered.accepted);
  for (const key of keys) versions.set(key, offered.changed.get(key)!);
  return [...versions.values()];
}

/** NGINX's message when it refused a try, undefined when it accepted it. */
export type Verdict = string | undefined;

/**
 * ok: the changed Ingresses in `accepted` go together with the accepted versions, those in `refused` were refused
 * (each with NGINX's message about a try that held it and nothing else new but accepted changes). failed: NGINX
 * refused even the accepted versions alone (a Secret, a default, NGINX itself): no Ingress can be blamed.
 */
export type Isolation = { accepted: string[]; refused: Map<string, string> } | { failed: string };

/**
 * Yields the changed Ingresses to try together with the accepted versions, and receives each try's verdict. The
 * first try is every change (the normal apply); only when it is refused do the accepted versions get a try alone,
 * then halves of the changes, recursively: k refused among n changes cost at most 2 + 2k·log2(n) tries.
 */
export function* isolate(changed: readonly string[]): Generator<string[], Isolation, Verdict> {
  const all = yield [...changed];
  if (all === undefined) return { accepted: [...changed], refused: new Map() };
  if (changed.length === 0) return { failed: all };
  const alone = yield [];
  if (alone !== undefined) return { failed: alone };
  const accepted: string[] = [];
  const refused = new Map<string, string>();
  // `keys` together with `accepted` are known refused, with `error`.
  function* blame(keys: readonly string[], error: string): Generator<string[], void, Verdict> {
    if (keys.length === 1) {
      refused.set(keys[0]!, error);
      return;
    }
    const half = keys.slice(0, Math.ceil(keys.length / 2));
    const rest = keys.slice(half.length);
    const refusedBefore = refused.size;
    yield* tryAll(half);
    // The first half went through whole: the refusal lies in the rest, with the error already seen.
    if (refused.size === refusedBefore) yield* blame(rest, error);
    else yield* tryAll(rest);
  }
  function* tryAll(keys: readonly string[]): Generator<string[], void, Verdict> {
    const error = yield [...accepted, ...keys];
    if (error === undefined) accepted.push(...keys);
    else yield* blame(keys, error);
  }
  yield* blame(changed, all);
  return { accepted, refused };
}

export const RETRY_FIRST_MS = 1_000;
export const RETRY_MAX_MS = 300_000;

/** How long after the `failures`th failure in a row (1, 2, ...) to try again: doubling from 1 s, at most 5 min. */
export function retryDelay(failures: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.max(0, failures - 1));
}
