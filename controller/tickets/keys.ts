// TLS session ticket keys as NGINX reads them (ssl_session_ticket_key: 80 bytes, AES-256 tickets), in an ordered set:
// the first key encrypts new tickets, the others only decrypt tickets issued before the last rotations. Rotation is a
// pure function (the new key's bytes come from node:crypto), unit-tested without I/O.
import { randomBytes } from 'node:crypto';

export const TICKET_KEY_BYTES = 80;
/** At most this many retired keys: a rotation period far below the session timeout is refused at start. */
export const MAX_RETIRED_KEYS = 8;
/** Timers cannot wait longer than 24.8 days; a longer period is checked again after a day. */
const MAX_CHECK_INTERVAL_MS = 24 * 3600_000;

export interface TicketKey {
  bytes: Buffer;
  created: Date;
}

export interface RotationPolicy {
  /** Time between new encrypting keys. */
  periodMs: number;
  /** How long a session may be resumed (ssl_session_timeout): a retired key must decrypt its tickets that long. */
  sessionTimeoutMs: number;
}

/**
 * The encrypting key plus enough retired ones: a key retired at a rotation is dropped `retired` periods later, when
 * the last ticket it encrypted (issued just before that rotation) has outlived the session timeout.
 */
export function keysKept(policy: RotationPolicy): number {
  return 1 + Math.ceil(policy.sessionTimeoutMs / policy.periodMs);
}

/** True when `rotate` would put a new key in front: there is none, or the current one is a period old. */
export function rotationDue(now: Date, keys: readonly TicketKey[], policy: RotationPolicy): boolean {
  const current = keys[0];
  return current === undefined || now.getTime() - current.created.getTime() >= policy.periodMs;
}

/**
 * The set at `now`: a fresh encrypting key in front when there is none or the current one is a period old, and no
 * more keys than keysKept. Returns `keys` itself when nothing changes, so callers write only real changes.
 */
export function rotate(now: Date, keys: readonly TicketKey[], policy: RotationPolicy, newKey: () => Buffer = () => randomBytes(TICKET_KEY_BYTES)): readonly TicketKey[] {
  const kept = keysKept(policy);
  if (rotationDue(now, keys, policy)) {
    return [{ bytes: newKey(), created: now }, ...keys].slice(0, kept);
  }
  return keys.length > kept ? keys.slice(0, kept) : keys;
}

/** Milliseconds until `keys` must be looked at again: when its current key is due (at most a day from now). */
export function nextCheckIn(now: Date, keys: readonly TicketKey[], policy: RotationPolicy): number {
  const due = keys[0] === undefined ? 0 : keys[0].created.getTime() + policy.periodMs - now.getTime();
  return Math.min(Math.max(due, 0), MAX_CHECK_INTERVAL_MS);
}
