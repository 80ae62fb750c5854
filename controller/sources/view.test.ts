// SourceView against a source whose snapshot the test changes: what update() reports must be what changed.
import type { V1Service } from '@kubernetes/client-node';
import type { Change, Source } from './source.js';
import { SourceView } from './view.js';

interface Kinds {
  services: readonly V1Service[];
  secrets: readonly V1Service[];
}

const service = (name: string, resourceVersion?: string): V1Service => ({ metadata: { namespace: 'default', name, uid: `uid-${name}`, resourceVersion } });

function fakeSource(initial: Kinds) {
  let state = initial;
  let snapshots = 0;
  const source: Source<Kinds> = { start: async () => {}, snapshot: () => (snapshots++, state), stop: async () => {} };
  return { source, set: (next: Kinds) => (state = next), snapshots: () => snapshots };
}

const keys = (changed: { services: ReadonlySet<string>; secrets: ReadonlySet<string> }) => ({ services: [...changed.services].sort(), secrets: [...changed.secrets].sort() });

describe('SourceView', () => {
  it('reads the whole snapshot first, then only the objects the source told about', () => {
    const web = service('web', '1');
    const fake = fakeSource({ services: [web, service('api', '1')], secrets: [] });
    const view = new SourceView(fake.source);
    view.note({ kind: 'services', key: 'default/web', object: web }); // before the first update: in the snapshot anyway
    expect(keys(view.update())).toEqual({ services: ['default/api', 'default/web'], secrets: [] });
    const web2 = service('web', '2');
    const changes: Change<Kinds>[] = [
      { kind: 'services', key: 'default/web', object: service('web', '1b') },
      { kind: 'services', key: 'default/web', object: web2 }, // the last one of a key wins
      { kind: 'services', key: 'default/api' }, // deleted
      { kind: 'services', key: 'default/gone' }, // deleted, never held: no change
    ];
    for (const change of changes) view.note(change);
    expect(keys(view.update())).toEqual({ services: ['default/api', 'default/web'], secrets: [] });
    expect(view.get('services', 'default/web')).toBe(web2);
    expect([...view.of('services').keys()]).toEqual(['default/web']);
    expect(fake.snapshots()).toBe(1);
    expect(keys(view.update())).toEqual({ services: [], secrets: [] });
  });

  it('after a reset, reports every key it holds or held as changed', () => {
    const fake = fakeSource({ services: [service('web', '1'), service('api', '1')], secrets: [service('token', '1')] });
    const view = new SourceView(fake.source);
    view.update();
    view.reset();
    fake.set({ services: [service('web', '1')], secrets: [service('token', '1')] });
    expect(keys(view.update())).toEqual({ services: ['default/api', 'default/web'], secrets: ['default/token'] });
    expect(keys(view.update())).toEqual({ services: [], secrets: [] });
  });

  it('after a change of anything, compares the whole snapshot by resourceVersion', () => {
    const fake = fakeSource({ services: [service('web', '1'), service('api', '1'), service('plain')], secrets: [] });
    const view = new SourceView(fake.source);
    view.update();
    // A relist: new objects, one with a new version, one gone, one new; one without a resourceVersion is a change.
    fake.set({ services: [service('web', '1'), service('api', '2'), service('plain')], secrets: [service('token', '7')] });
    view.note();
    expect(keys(view.update())).toEqual({ services: ['default/api', 'default/plain'], secrets: ['default/token'] });
    expect(fake.snapshots()).toBe(2);
  });
});
