import { isolate, offeredVersion, retryDelay, versionsOf, type Isolation, type Verdict } from './acceptance.js';

/** Runs isolate() against a fake NGINX: `refuses` gives its message for a try (the changed keys in it), or undefined. */
function run(changed: string[], refuses: (keys: string[]) => Verdict): { result: Isolation; tries: string[][] } {
  const tries: string[][] = [];
  const steps = isolate(changed);
  let step = steps.next();
  while (!step.done) {
    tries.push(step.value);
    step = steps.next(refuses(step.value));
  }
  return { result: step.value, tries };
}

/** NGINX names the first bad directive it reads: here, the first bad key of the try. */
const refusingKeys = (...bad: string[]) => (keys: string[]) => {
  const first = keys.find((k) => bad.includes(k));
  return first && `nginx -t refused the configuration: bad regex in ${first}`;
};

describe('isolate', () => {
  it('tries every change at once, and once only when NGINX accepts them', () => {
    const { result, tries } = run(['a', 'b', 'c'], () => undefined);
    expect(result).toEqual({ accepted: ['a', 'b', 'c'], refused: new Map() });
    expect(tries).toEqual([['a', 'b', 'c']]);
  });

  it("blames the one refused change among eight, with NGINX's message about it, in at most 2 + 2·log2(8) tries", () => {
    const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
    const { result, tries } = run(keys, refusingKeys('f'));
    expect(result).toEqual({ accepted: ['a', 'b', 'c', 'd', 'e', 'g', 'h'], refused: new Map([['f', 'nginx -t refused the configuration: bad regex in f']]) });
    expect(tries.length).toBe(6);
    // The accepted versions alone are tried before anything is blamed.
    expect(tries[1]).toEqual([]);
  });

  it('blames each of several refused changes with its own message, and accepts the rest', () => {
    const { result } = run(['a', 'b', 'c', 'd', 'e'], refusingKeys('b', 'e'));
    expect(result).toEqual({
      accepted: ['a', 'c', 'd'],
      refused: new Map([['b', 'nginx -t refused the configuration: bad regex in b'], ['e', 'nginx -t refused the configuration: bad regex in e']]),
    });
  });

  it('blames one of two changes that NGINX accepts alone but refuses together (a duplicate), and keeps the other', () => {
    const { result } = run(['x', 'y', 'z'], (keys) => (keys.includes('x') && keys.includes('z') ? 'duplicate zone' : undefined));
    expect(result).toEqual({ accepted: ['x', 'y'], refused: new Map([['z', 'duplicate zone']]) });
  });

  it('blames no Ingress when NGINX refuses the accepted versions alone, or when nothing changed', () => {
    expect(run(['a', 'b'], () => 'certificate file unreadable')).toEqual({ result: { failed: 'certificate file unreadable' }, tries: [['a', 'b'], []] });
    expect(run([], () => 'workers did not answer')).toEqual({ result: { failed: 'workers did not answer' }, tries: [[]] });
  });
});

describe('offeredVersion', () => {
  const v = (name: string) => ({ name });
  const [a1, a2, b1, c1] = [v('a1'), v('a2'), v('b1'), v('c1')];

  it('offers a changed version over the accepted one, and holds back a refused version until a retry', () => {
    const refused = { version: c1, error: 'bad regex' };
    expect(offeredVersion(a2, a1, undefined, false)).toBe(a2);
    expect(offeredVersion(b1, b1, undefined, false)).toBeUndefined();
    expect(offeredVersion(c1, undefined, refused, false)).toBeUndefined();
    expect(offeredVersion(c1, undefined, refused, true)).toBe(c1);
    // A new version of a refused Ingress is offered at once.
    expect(offeredVersion(a2, undefined, refused, false)).toBe(a2);
  });

  it('offers nothing for an Ingress that translation now rejects: its accepted version keeps serving', () => {
    expect(offeredVersion(undefined, a1, undefined, false)).toBeUndefined();
  });
});

describe('versionsOf', () => {
  const v = (name: string) => ({ name });
  const [a1, a2, b1, c1] = [v('a1'), v('a2'), v('b1'), v('c1')];

  it('builds a try from the accepted versions and the chosen changes', () => {
    const offered = { accepted: new Map([['a', a1], ['b', b1]]), changed: new Map([['a', a2], ['c', c1]]) };
    expect(versionsOf(offered, [])).toEqual([a1, b1]);
    expect(versionsOf(offered, ['a', 'c'])).toEqual([a2, b1, c1]);
  });
});

describe('retryDelay', () => {
  it('doubles from 1 s and stops at 5 min', () => {
    expect([1, 2, 3, 4].map(retryDelay)).toEqual([1000, 2000, 4000, 8000]);
    expect(retryDelay(30)).toBe(300_000);
  });
});
