// The decisions of Lease-based leader election, as client-go's leaderelection package makes them. Pure: the elector
// (elector.ts) reads and writes the Lease; these say what to write.
import { V1MicroTime, type V1LeaseSpec } from '@kubernetes/client-node';

export interface ElectionTimings {
  /** How long a Lease holds after its last renewal (spec.leaseDurationSeconds). */
  leaseDurationSeconds: number;
  /** The leader stops leading when it could not renew for this long: less than the lease, so it stops first. */
  renewDeadlineMs: number;
  /** Time between attempts to acquire or renew. */
  retryPeriodMs: number;
}

/**
 * --election-ttl (parsed by config.ts) as the lease duration; the renew deadline and retry period keep client-go's
 * default ratios (15 s / 10 s / 2 s), so a short TTL in tests shortens all three.
 */
export function electionTimings(ttlMs: number): ElectionTimings {
  return { leaseDurationSeconds: ttlMs / 1000, renewDeadlineMs: (ttlMs * 2) / 3, retryPeriodMs: (ttlMs * 2) / 15 };
}

/**
 * Whether another replica holds the Lease and its term still runs. Judged from when this replica saw the Lease's last
 * change (`observedAtMs`, its own monotonic clock), not from the holder's renewTime, so clocks that differ between
 * machines do not matter. An empty holder is a released Lease.
 */
export function heldByAnother(current: V1LeaseSpec | undefined, identity: string, observedAtMs: number, nowMs: number): boolean {
  const holder = current?.holderIdentity ?? '';
  return holder !== '' && holder !== identity && observedAtMs + (current?.leaseDurationSeconds ?? 0) * 1000 > nowMs;
}

/** The Lease as this replica writes it to acquire it, or to renew it when it holds it already. */
export function claim(current: V1LeaseSpec | undefined, identity: string, now: Date, leaseDurationSeconds: number): V1LeaseSpec {
  const renewing = current?.holderIdentity === identity;
  const transitions = current?.leaseTransitions ?? 0;
  return {
    holderIdentity: identity,
    leaseDurationSeconds,
    acquireTime: renewing ? current?.acquireTime : new V1MicroTime(now.getTime()),
    renewTime: new V1MicroTime(now.getTime()),
    leaseTransitions: current && !renewing ? transitions + 1 : transitions,
  };
}

/** The Lease handed back on a clean shutdown: no holder, so the next candidate takes it at its next try. */
export function released(current: V1LeaseSpec, now: Date): V1LeaseSpec {
  return { ...current, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: new V1MicroTime(now.getTime()), renewTime: new V1MicroTime(now.getTime()) };
}
