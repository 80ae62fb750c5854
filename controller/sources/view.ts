// A source's objects by kind and key, brought up to date from its changes: a sync reads what changed since the last
// one, and finds any object by key, without copying or walking the rest (a snapshot copies every list).
import type { KubernetesObject } from '@kubernetes/client-node';
import { keyOf, type Change, type Kinds, type Source } from './source.js';

type Objects<S extends Kinds<S>> = { [K in keyof S]: Map<string, S[K][number]> };

/** Per kind, the keys whose object came, went or changed (another resourceVersion). */
export type ChangedKeys<S> = { [K in keyof S]: ReadonlySet<string> };

export class SourceView<S extends Kinds<S>> {
  private objects: Objects<S> | undefined;
  /** Changes noted since the last update, the last per key winning; undefined: take the whole snapshot. */
  private pending: Map<keyof S, Map<string, KubernetesObject | undefined>> | undefined;
  /** After a reset: the next update reports every key. */
  private reportAll = false;

  constructor(private readonly source: Source<S>) {}

  /** For Source.start's onChange: a change of one object, or (none) of anything. */
  note(change?: Change<S>): void {
    if (!change) {
      this.pending = undefined;
      return;
    }
    if (!this.objects || !this.pending) return;
    let ofKind = this.pending.get(change.kind);
    if (!ofKind) this.pending.set(change.kind, (ofKind = new Map()));
    ofKind.set(change.key, change.object);
  }

  /**
   * Takes in the changes noted since the last update (the first update, and one after a change of anything, reads
   * the whole snapshot and compares it with what was held); returns the keys that changed.
   */
  update(): ChangedKeys<S> {
    const pending = this.pending;
    this.pending = new Map();
    if (!this.objects || !pending) return this.reload();
    const objects = this.objects;
    const changed = {} as { [K in keyof S]: Set<string> };
    for (const kind of Object.keys(objects) as (keyof S)[]) changed[kind] = new Set();
    for (const [kind, ofKind] of pending) {
      const held = objects[kind];
      // A kind the snapshot does not list is none of its readers' business.
      if (!held) continue;
      for (const [key, object] of ofKind) {
        if (object === undefined) {
          if (held.delete(key)) changed[kind].add(key);
          continue;
        }
        if (!sameVersion(held.get(key), object)) changed[kind].add(key);
        held.set(key, object as S[keyof S][number]);
      }
    }
    return changed;
  }

  /** The next update reads the whole snapshot and reports every key it holds or held as changed. */
  reset(): void {
    this.pending = undefined;
    this.reportAll = true;
  }

  get<K extends keyof S>(kind: K, key: string): S[K][number] | undefined {
    return this.objects?.[kind].get(key);
  }

  /** The objects of one kind by key, in the source's order; the map changes with each update. */
  of<K extends keyof S>(kind: K): ReadonlyMap<string, S[K][number]> {
    return this.objects![kind];
  }

  private reload(): ChangedKeys<S> {
    const snapshot = this.source.snapshot();
    const before = this.objects;
    const objects = {} as Objects<S>;
    const changed = {} as { [K in keyof S]: Set<string> };
    for (const kind of Object.keys(snapshot) as (keyof S)[]) {
      const next = new Map<string, S[keyof S][number]>();
      for (const object of snapshot[kind] as readonly S[keyof S][number][]) next.set(keyOf(object), object);
      const held = before?.[kind];
      const keys = new Set<string>();
      for (const [key, object] of next) if (this.reportAll || !sameVersion(held?.get(key), object)) keys.add(key);
      for (const key of held?.keys() ?? []) if (!next.has(key)) keys.add(key);
      objects[kind] = next;
      changed[kind] = keys;
    }
    this.objects = objects;
    this.reportAll = false;
    return changed;
  }
}

/** The same object, or the same version of it: the API server gives every change a new resourceVersion. */
function sameVersion(a: KubernetesObject | undefined, b: KubernetesObject): boolean {
  return a === b || (a !== undefined && a.metadata?.resourceVersion !== undefined && a.metadata.resourceVersion === b.metadata?.resourceVersion && a.metadata.uid === b.metadata?.uid);
}
