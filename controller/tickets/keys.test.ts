import fc from 'fast-check';
import { TICKET_KEY_BYTES, keysKept, nextCheckIn, rotate, rotationDue, type RotationPolicy, type TicketKey } from './keys.js';

const HOUR = 3600_000;
const DEFAULTS: RotationPolicy = { periodMs: 12 * HOUR, sessionTimeoutMs: 10 * 60_000 };
const T0 = new Date('2026-03-01T00:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
/** Recognisable keys: every byte is `n`. */
const key = (n: number) => Buffer.alloc(TICKET_KEY_BYTES, n);
const counter = () => {
  let n = 0;
  return () => key(++n);
};

describe('keysKept', () => {
  it('keeps the encrypting key and enough retired ones to outlive the session timeout', () => {
    expect(keysKept(DEFAULTS)).toBe(2);
    expect(keysKept({ periodMs: 10_000, sessionTimeoutMs: 30_000 })).toBe(4);
    expect(keysKept({ periodMs: 10_000, sessionTimeoutMs: 25_000 })).toBe(4);
    expect(keysKept({ periodMs: HOUR, sessionTimeoutMs: HOUR })).toBe(2);
  });
});

describe('rotationDue', () => {
  it('is true exactly when rotate puts a new key in front: no key, or the current one a period old', () => {
    const one = rotate(T0, [], DEFAULTS, counter());
    expect([rotationDue(T0, [], DEFAULTS), rotationDue(at(12 * HOUR - 1), one, DEFAULTS), rotationDue(at(12 * HOUR), one, DEFAULTS)]).toEqual([true, false, true]);
    for (const t of [0, 12 * HOUR - 1, 12 * HOUR, 30 * HOUR]) expect(rotate(at(t), one, DEFAULTS, counter())[0] !== one[0]).toBe(rotationDue(at(t), one, DEFAULTS));
  });
});

describe('rotate', () => {
  it('starts an empty set with one random 80-byte key from node:crypto', () => {
    const [first, ...rest] = rotate(T0, [], DEFAULTS);
    expect(rest).toEqual([]);
    expect(first!.created).toEqual(T0);
    expect(first!.bytes).toHaveLength(TICKET_KEY_BYTES);
    expect(rotate(T0, [], DEFAULTS)[0]!.bytes.equals(first!.bytes)).toBe(false);
  });

  it('returns the same set until a period has passed, then puts a new key in front and keeps the previous one', () => {
    const newKey = counter();
    const first = rotate(T0, [], DEFAULTS, newKey);
    expect(rotate(at(12 * HOUR - 1), first, DEFAULTS, newKey)).toBe(first);
    const second = rotate(at(12 * HOUR), first, DEFAULTS, newKey);
    expect(second.map((k) => k.bytes[0])).toEqual([2, 1]);
    expect(second[0]!.created).toEqual(at(12 * HOUR));
    const third = rotate(at(24 * HOUR), second, DEFAULTS, newKey);
    expect(third.map((k) => k.bytes[0])).toEqual([3, 2]);
  });

  it('drops keys beyond what the policy needs, as when the timeout was shortened', () => {
    const keys: TicketKey[] = [1, 2, 3, 4].map((n) => ({ bytes: key(n), created: T0 }));
    expect(rotate(at(1), keys, DEFAULTS).map((k) => k.bytes[0])).toEqual([1, 2]);
  });

  it('keeps every retired key for at least the session timeout after its retirement, however late the checks come', () => {
    const policy = fc.integer({ min: 1, max: 100 }).chain((periodMs) =>
      fc.record({ periodMs: fc.constant(periodMs), sessionTimeoutMs: fc.integer({ min: 1, max: periodMs * 8 }) }));
    fc.assert(
      fc.property(policy, fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 60 }), (policy, steps) => {
        let now = 0;
        let keys: readonly TicketKey[] = [];
        const retiredAt = new Map<Buffer, number>();
        for (const step of steps) {
          now += step;
          const next = rotate(at(now), keys, policy);
          if (next[0] !== keys[0] && keys[0]) retiredAt.set(keys[0].bytes, now);
          keys = next;
          for (const [bytes, retired] of retiredAt) {
            if (now < retired + policy.sessionTimeoutMs && !keys.some((k) => k.bytes === bytes)) return false;
          }
        }
        return keys.length <= keysKept(policy);
      }),
    );
  });
});

describe('nextCheckIn', () => {
  it('is the time left until the current key is due, 0 when it is or there is none, and at most a day', () => {
    const keys = [{ bytes: key(1), created: T0 }];
    expect(nextCheckIn(at(HOUR), keys, DEFAULTS)).toBe(11 * HOUR);
    expect(nextCheckIn(at(13 * HOUR), keys, DEFAULTS)).toBe(0);
    expect(nextCheckIn(T0, [], DEFAULTS)).toBe(0);
    expect(nextCheckIn(T0, keys, { periodMs: 30 * 24 * HOUR, sessionTimeoutMs: 60_000 })).toBe(24 * HOUR);
  });
});
