// PPKs (RFC 8784) that QubeSec makes and rotates for a VpnGateway (spec.ppk.generate), and the Secret that holds them,
// read and written as data. The Secret holds the current PPK (the one clients send, the one client-config exports)
// and the one before it, which the gateway still accepts until the next rotation replaces it (one interval of grace),
// so a peer that has not fetched the new one yet keeps connecting. Each PPK has its own id (the base id and its
// creation time): a responder picks the PPK by the id the initiator sends. Pure: the bytes and the time come in.
import type { V1OwnerReference, V1Secret } from '@kubernetes/client-node';

/** 256 bits, as RFC 8784 asks. */
export const PPK_BYTES = 32;

export interface Ppk {
  id: string;
  bytes: Buffer;
  created: Date;
}

/** What a generated PPK Secret holds: the current PPK, and the previous one until the next rotation. */
export interface StoredPpks {
  current: Ppk;
  previous: Ppk | undefined;
}

/** spec.ppk.generate with its defaults (model.ts parses and checks it). */
export interface PpkGeneration {
  secretName: string;
  /** Each PPK's id is this, a dash and its creation time: qubesec-ppk-20261201T213600Z. */
  baseId: string;
  intervalMs: number;
}

/** The Secret's keys: id, ppk and created of the current PPK; the same with "previous-" for the one before. */
const FIELDS = ['id', 'ppk', 'created'] as const;
const GENERATED_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** The id of a PPK made at `created`, to the second (rotations are at least 10 s apart). */
export function ppkId(baseId: string, created: Date): string {
  return `${baseId}-${created.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '')}`;
}

function ownedBy(secret: V1Secret, gatewayUid: string | undefined): boolean {
  return gatewayUid !== undefined && (secret.metadata?.ownerReferences ?? []).some((o) => o.kind === 'VpnGateway' && o.uid === gatewayUid);
}

function readPpk(secret: V1Secret, prefix: '' | 'previous-'): Ppk | { error: string } | undefined {
  const [id, bytes, created] = FIELDS.map((f) => secret.data?.[`${prefix}${f}`]).map((v) => (v === undefined ? undefined : Buffer.from(v, 'base64')));
  if (!id && !bytes && !created) return undefined;
  const idText = id?.toString('utf8') ?? '';
  const createdAt = new Date(created?.toString('utf8') ?? '');
  if (!GENERATED_ID.test(idText)) return { error: `has no valid ${prefix}id` };
  if (!bytes || bytes.length !== PPK_BYTES) return { error: `has a ${prefix}ppk of ${bytes?.length ?? 0} bytes, not ${PPK_BYTES}` };
  if (Number.isNaN(createdAt.getTime())) return { error: `has no valid ${prefix}created time` };
  return { id: idText, bytes, created: createdAt };
}

/** The PPKs in a Secret this gateway made, or why it cannot be used (said of the Secret: "which ..."). */
export function readStoredPpks(secret: V1Secret, gatewayUid: string | undefined): StoredPpks | { error: string } {
  if (!ownedBy(secret, gatewayUid)) {
    return { error: 'is not owned by this VpnGateway (QubeSec makes and rotates only its own PPK Secret: delete that one, or name another in spec.ppk.secretName)' };
  }
  const current = readPpk(secret, '');
  const previous = readPpk(secret, 'previous-');
  if (!current) return { error: 'holds no current PPK (keys id, ppk, created)' };
  if ('error' in current) return current;
  if (previous && 'error' in previous) return previous;
  return { current, previous };
}

/** Milliseconds until the next rotation is due: 0 when there is no PPK yet or the current one is an interval old. */
export function rotationDueInMs(stored: StoredPpks | undefined, intervalMs: number, now: Date): number {
  return stored ? Math.max(0, stored.current.created.getTime() + intervalMs - now.getTime()) : 0;
}

const encode = (ppk: Ppk, prefix: '' | 'previous-'): Record<string, string> => ({
  [`${prefix}id`]: Buffer.from(ppk.id).toString('base64'),
  [`${prefix}ppk`]: ppk.bytes.toString('base64'),
  [`${prefix}created`]: Buffer.from(ppk.created.toISOString()).toString('base64'),
});

/**
 * The Secret after a rotation: `bytes` (drawn from the entropy source) as the current PPK, the current one as the
 * previous, the one before that gone. A new Secret is owned by the gateway (deleted with it); an existing one keeps
 * its metadata (resourceVersion: a write over a stale view fails with 409).
 */
export function rotatedPpkSecret(
  gateway: { name: string; namespace: string; uid: string },
  generation: PpkGeneration,
  existing: V1Secret | undefined,
  stored: StoredPpks | undefined,
  bytes: Buffer,
  now: Date,
): V1Secret {
  if (bytes.length !== PPK_BYTES) throw new Error(`a PPK is ${PPK_BYTES} bytes, not ${bytes.length}`);
  // No blockOwnerDeletion: setting it needs update on vpngateways/finalizers where owner references are enforced.
  const owner: V1OwnerReference = { apiVersion: 'qubesec.io/v1alpha1', kind: 'VpnGateway', name: gateway.name, uid: gateway.uid, controller: true };
  const current: Ppk = { id: ppkId(generation.baseId, now), bytes, created: now };
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: existing?.metadata ?? { name: generation.secretName, namespace: gateway.namespace, ownerReferences: [owner], labels: { 'app.kubernetes.io/managed-by': 'qubesec' } },
    data: { ...encode(current, ''), ...(stored ? encode(stored.current, 'previous-') : {}) },
  };
}
