// The Secret the leader writes and every replica reads (standalone: one kept in memory): what replicas must share for a
// TLS session made on one to resume on another. The ticket keys, and the default certificate: NGINX binds a session to
// a context it derives from the certificates of the listener's default server, so replicas that each made a default
// certificate of their own would not resume each other's sessions (docs/pq-tls.md#session-resumption).
import type { V1Secret } from '@kubernetes/client-node';
import { checkPair, secretData } from '../model/certificates.js';
import { quote } from '../model/names.js';
import type { CertificatePair } from '../model/types.js';
import { TICKET_KEY_BYTES, type TicketKey } from './keys.js';

/** The keys end to end, the encrypting one first; their creation times, one RFC 3339 line each. */
export const KEYS_FIELD = 'tickets.key';
export const CREATED_FIELD = 'created';
/** Each default pair as its private key, then its certificate (PEM). */
export const DEFAULT_CERTIFICATES_FIELD = 'default-certificates.pem';

export interface SecretRef {
  namespace: string;
  name: string;
}

export interface SharedTlsState {
  ticketKeys: readonly TicketKey[];
  /** None: each replica serves a default certificate of its own (standalone mode: there is one). */
  defaultCertificates: readonly CertificatePair[];
}

export const NOTHING_SHARED: SharedTlsState = { ticketKeys: [], defaultCertificates: [] };

export function sharedSecret(ref: SecretRef, state: SharedTlsState): V1Secret {
  const data: Record<string, string> = {
    [KEYS_FIELD]: Buffer.concat(state.ticketKeys.map((k) => k.bytes)).toString('base64'),
    [CREATED_FIELD]: Buffer.from(state.ticketKeys.map((k) => k.created.toISOString()).join('\n')).toString('base64'),
  };
  if (state.defaultCertificates.length > 0) {
    const pem = state.defaultCertificates.map((p) => `${p.keyPem.trim()}\n${p.certificatePem.trim()}\n`).join('');
    data[DEFAULT_CERTIFICATES_FIELD] = Buffer.from(pem).toString('base64');
  }
  return { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { ...ref, labels: { 'app.kubernetes.io/managed-by': 'qubesec' } }, data };
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$/;
const PEM_BLOCK = /-----BEGIN ([A-Z ]+)-----[^-]+-----END \1-----/g;

/** The Secret's content, or what is wrong with it: the message names the Secret and the field, never a key. */
export function readSharedSecret(secret: V1Secret, now: Date): SharedTlsState | { error: string } {
  const source = `${secret.metadata?.namespace ?? ''}/${secret.metadata?.name ?? ''}`;
  const ticketKeys = readTicketKeys(secret, `Secret ${source}`);
  if ('error' in ticketKeys) return ticketKeys;
  const defaultCertificates = readDefaultCertificates(secret, source, now);
  if ('error' in defaultCertificates) return defaultCertificates;
  return { ticketKeys, defaultCertificates };
}

function readTicketKeys(secret: V1Secret, source: string): TicketKey[] | { error: string } {
  const field = (name: string): Buffer | { error: string } => {
    const value = secret.data?.[name];
    if (value === undefined) return { error: `${source}: data.${name} is required` };
    return BASE64.test(value) ? Buffer.from(value, 'base64') : { error: `${source}: data.${name} is not base64` };
  };
  const bytes = field(KEYS_FIELD);
  if ('error' in bytes) return bytes;
  if (bytes.length === 0 || bytes.length % TICKET_KEY_BYTES !== 0) {
    return { error: `${source}: data.${KEYS_FIELD} holds ${bytes.length} bytes, not one or more ${TICKET_KEY_BYTES}-byte keys` };
  }
  const created = field(CREATED_FIELD);
  if ('error' in created) return created;
  const times = created.toString('utf8').split('\n');
  const count = bytes.length / TICKET_KEY_BYTES;
  if (times.length !== count) return { error: `${source}: data.${CREATED_FIELD} lists ${times.length} creation times for ${count} keys` };
  const keys: TicketKey[] = [];
  for (const [i, time] of times.entries()) {
    const date = new Date(time);
    if (!RFC3339.test(time) || Number.isNaN(date.getTime())) {
      return { error: `${source}: line ${i + 1} of data.${CREATED_FIELD} is not an RFC 3339 time: ${quote(time)}` };
    }
    keys.push({ bytes: bytes.subarray(i * TICKET_KEY_BYTES, (i + 1) * TICKET_KEY_BYTES), created: date });
  }
  return keys;
}

function readDefaultCertificates(secret: V1Secret, source: string, now: Date): CertificatePair[] | { error: string } {
  const pem = secretData(secret, DEFAULT_CERTIFICATES_FIELD);
  if (pem === undefined) return [];
  const blocks = [...pem.matchAll(PEM_BLOCK)];
  const pairs: CertificatePair[] = [];
  for (let i = 0; i < blocks.length; i += 2) {
    const [key, certificate] = [blocks[i]!, blocks[i + 1]];
    if (!key[1]!.endsWith('PRIVATE KEY') || certificate?.[1] !== 'CERTIFICATE') break;
    const fields = { key: `${DEFAULT_CERTIFICATES_FIELD} (key ${pairs.length + 1})`, certificate: `${DEFAULT_CERTIFICATES_FIELD} (certificate ${pairs.length + 1})` };
    const checked = checkPair(source, `${certificate[0]}\n`, `${key[0]}\n`, now, fields);
    if ('error' in checked) return checked;
    pairs.push(checked.pair);
  }
  if (pairs.length === 0 || pairs.length * 2 !== blocks.length) {
    return { error: `Secret ${source}: data.${DEFAULT_CERTIFICATES_FIELD} holds ${blocks.length} PEM blocks, not pairs of a private key and then its certificate` };
  }
  return pairs;
}

/** The Secret's content while it reads well; its last good content while it is missing or does not. */
export class LastGoodSharedState {
  private lastGood = NOTHING_SHARED;

  read(secret: V1Secret | undefined, now: Date): { state: SharedTlsState; error?: string } {
    if (!secret) return { state: this.lastGood };
    const read = readSharedSecret(secret, now);
    if ('error' in read) return { state: this.lastGood, error: read.error };
    this.lastGood = read;
    return { state: read };
  }
}
