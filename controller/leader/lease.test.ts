import type { V1LeaseSpec } from '@kubernetes/client-node';
import { claim, electionTimings, heldByAnother, released } from './lease.js';

const NOW = new Date('2026-03-01T12:00:00.123Z');
const held = (holder: string, extra: Partial<V1LeaseSpec> = {}): V1LeaseSpec => ({
  holderIdentity: holder,
  leaseDurationSeconds: 15,
  acquireTime: new Date('2026-03-01T11:00:00Z'),
  renewTime: new Date('2026-03-01T11:59:58Z'),
  leaseTransitions: 4,
  ...extra,
});

describe('electionTimings', () => {
  it('keeps client-go\'s 15 s / 10 s / 2 s ratios', () => {
    expect(electionTimings(15_000)).toEqual({ leaseDurationSeconds: 15, renewDeadlineMs: 10_000, retryPeriodMs: 2000 });
    expect(electionTimings(60_000)).toEqual({ leaseDurationSeconds: 60, renewDeadlineMs: 40_000, retryPeriodMs: 8000 });
    expect(electionTimings(3000).retryPeriodMs).toBe(400);
  });
});

describe('heldByAnother', () => {
  it('holds while the lease duration has not passed since this replica saw the last change', () => {
    expect(heldByAnother(held('b'), 'a', 1000, 1000 + 14_999)).toBe(true);
    expect(heldByAnother(held('b'), 'a', 1000, 1000 + 15_000)).toBe(false);
  });

  it('ignores the holder\'s renewTime, so a skewed clock on another machine changes nothing', () => {
    expect(heldByAnother(held('b', { renewTime: new Date('2020-01-01T00:00:00Z') }), 'a', 1000, 2000)).toBe(true);
  });

  it('is false for our own lease, a released lease, and no lease', () => {
    expect(heldByAnother(held('a'), 'a', 1000, 2000)).toBe(false);
    expect(heldByAnother(held(''), 'a', 1000, 2000)).toBe(false);
    expect(heldByAnother(undefined, 'a', 1000, 2000)).toBe(false);
  });
});

describe('claim', () => {
  it('creates a first lease with no transitions', () => {
    const spec = claim(undefined, 'a', NOW, 15);
    expect(spec).toEqual({ holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: NOW, renewTime: NOW, leaseTransitions: 0 });
  });

  it('renews its own lease: same acquireTime and transitions, new renewTime and duration', () => {
    const current = held('a');
    const spec = claim(current, 'a', NOW, 3);
    expect(spec).toEqual({ holderIdentity: 'a', leaseDurationSeconds: 3, acquireTime: current.acquireTime, renewTime: NOW, leaseTransitions: 4 });
  });

  it('takes over an expired or released lease as a new transition', () => {
    expect(claim(held('b'), 'a', NOW, 15)).toEqual(expect.objectContaining({ holderIdentity: 'a', acquireTime: NOW, leaseTransitions: 5 }));
    expect(claim(released(held('b'), NOW), 'a', NOW, 15)).toEqual(expect.objectContaining({ holderIdentity: 'a', leaseTransitions: 5 }));
  });

  it('writes times with microseconds, as the Lease API\'s MicroTime wants them', () => {
    expect(JSON.stringify(claim(undefined, 'a', NOW, 15).renewTime)).toBe('"2026-03-01T12:00:00.123000Z"');
  });
});

describe('released', () => {
  it('empties the holder and keeps the transition count', () => {
    expect(released(held('a'), NOW)).toEqual(expect.objectContaining({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 4 }));
  });
});
