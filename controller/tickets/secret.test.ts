import type { V1Secret } from '@kubernetes/client-node';
import { checkTlsSecret } from '../model/certificates.js';
import { tlsSecret } from '../model/testing.js';
import type { CertificatePair, Diagnostic } from '../model/types.js';
import { TICKET_KEY_BYTES, type TicketKey } from './keys.js';
import { CREATED_FIELD, DEFAULT_CERTIFICATES_FIELD, KEYS_FIELD, LastGoodSharedState, readSharedSecret, sharedSecret, type SharedTlsState } from './secret.js';
import { ServedSessionResumption } from './served.js';

const NOW = new Date('2026-03-01T02:00:00.000Z');
const REF = { namespace: 'qubesec', name: 'qubesec-session-tickets' };
/** Recognisable keys: every byte is `n`. */
const key = (n: number, created = NOW): TicketKey => ({ bytes: Buffer.alloc(TICKET_KEY_BYTES, n), created });
const b64 = (text: string) => Buffer.from(text).toString('base64');

function pair(fixture: 'mldsa65' | 'ecdsa'): CertificatePair {
  const checked = checkTlsSecret(tlsSecret('default', fixture), NOW);
  if ('error' in checked) throw new Error(checked.error);
  return { ...checked.pair, source: 'qubesec/qubesec-session-tickets' };
}

const STATE: SharedTlsState = {
  ticketKeys: [key(7, new Date('2026-03-01T01:00:00.000Z')), key(6, new Date('2026-03-01T00:00:00.000Z'))],
  defaultCertificates: [pair('mldsa65'), pair('ecdsa')],
};
/** The good Secret with fields replaced, or removed where `undefined`. */
const withData = (data: Record<string, string | undefined>): V1Secret => {
  const good = sharedSecret(REF, STATE);
  const fields = Object.entries({ ...good.data, ...data }).filter((entry): entry is [string, string] => entry[1] !== undefined);
  return { ...good, data: Object.fromEntries(fields) };
};

describe('the shared Secret', () => {
  it('holds the keys end to end, encrypting key first, their creation times and the default pairs, and reads back the same', () => {
    const secret = sharedSecret(REF, STATE);
    expect(Buffer.from(secret.data![KEYS_FIELD]!, 'base64')).toEqual(Buffer.concat([key(7).bytes, key(6).bytes]));
    expect(Buffer.from(secret.data![CREATED_FIELD]!, 'base64').toString()).toBe('2026-03-01T01:00:00.000Z\n2026-03-01T00:00:00.000Z');
    expect(Buffer.from(secret.data![DEFAULT_CERTIFICATES_FIELD]!, 'base64').toString()).toMatch(/^-----BEGIN PRIVATE KEY-----[^]+-----BEGIN CERTIFICATE-----[^]+-----BEGIN PRIVATE KEY-----[^]+-----BEGIN CERTIFICATE-----[^]+-----\n$/);
    expect(readSharedSecret(secret, NOW)).toEqual(STATE);
  });

  it('may hold no default certificate: each replica then keeps its own', () => {
    const secret = sharedSecret(REF, { ...STATE, defaultCertificates: [] });
    expect(Object.keys(secret.data!)).toEqual([KEYS_FIELD, CREATED_FIELD]);
    expect(readSharedSecret(secret, NOW)).toEqual({ ...STATE, defaultCertificates: [] });
  });

  const ecdsaKey = Buffer.from(STATE.defaultCertificates[1]!.keyPem).toString('base64');
  it.each([
    ['data.tickets.key is required', { [KEYS_FIELD]: undefined }],
    ['data.tickets.key is not base64', { [KEYS_FIELD]: 'not base64!' }],
    ['data.tickets.key holds 100 bytes, not one or more 80-byte keys', { [KEYS_FIELD]: Buffer.alloc(100).toString('base64') }],
    ['data.tickets.key holds 0 bytes, not one or more 80-byte keys', { [KEYS_FIELD]: '' }],
    ['data.created lists 1 creation times for 2 keys', { [CREATED_FIELD]: b64('2026-03-01T00:00:00Z') }],
    ['line 2 of data.created is not an RFC 3339 time: "yesterday"', { [CREATED_FIELD]: b64('2026-03-01T00:00:00Z\nyesterday') }],
    ['data.default-certificates.pem holds 1 PEM blocks, not pairs of a private key and then its certificate', { [DEFAULT_CERTIFICATES_FIELD]: ecdsaKey }],
    ['data.default-certificates.pem (key 1) does not match the certificate in data.default-certificates.pem (certificate 1)', {
      [DEFAULT_CERTIFICATES_FIELD]: b64(`${STATE.defaultCertificates[1]!.keyPem}${STATE.defaultCertificates[0]!.certificatePem}`),
    }],
  ])('refuses a Secret with "%s", naming the Secret and the field', (message, data) => {
    expect(readSharedSecret(withData(data), NOW)).toEqual({ error: `Secret qubesec/qubesec-session-tickets: ${message}` });
  });

  it('serves the last good content while the Secret is missing or does not read well', () => {
    const lastGood = new LastGoodSharedState();
    expect(lastGood.read(undefined, NOW)).toEqual({ state: { ticketKeys: [], defaultCertificates: [] } });
    expect(lastGood.read(sharedSecret(REF, STATE), NOW)).toEqual({ state: STATE });
    expect(lastGood.read(withData({ [KEYS_FIELD]: 'AAAA' }), NOW)).toEqual({ state: STATE, error: expect.stringContaining('holds 3 bytes') });
    expect(lastGood.read(undefined, NOW)).toEqual({ state: STATE });
  });
});

describe('ServedSessionResumption', () => {
  const options = { timeoutSeconds: 600, tickets: true, ticketSecret: REF };
  const good = sharedSecret(REF, STATE);
  const bad = { ...withData({ [KEYS_FIELD]: Buffer.alloc(81).toString('base64') }), metadata: { ...good.metadata, uid: 'uid-1' } };

  it('serves the keys and the default certificate of the named Secret only', () => {
    const other = sharedSecret({ namespace: 'default', name: REF.name }, { ticketKeys: [key(1)], defaultCertificates: [] });
    const diagnostics: Diagnostic[] = [];
    expect(new ServedSessionResumption(options).model([other, good], NOW, diagnostics)).toEqual({
      resumption: { timeoutSeconds: 600, tickets: true, ticketKeys: [key(7).bytes, key(6).bytes] },
      defaultCertificates: STATE.defaultCertificates,
    });
    expect(diagnostics).toEqual([]);
  });

  it('warns on the Secret when it turns bad and keeps its last good content; says so when there is none', () => {
    const served = new ServedSessionResumption(options);
    served.model([good], NOW, []);
    const diagnostics: Diagnostic[] = [];
    expect(served.model([bad], NOW, diagnostics).resumption.ticketKeys).toEqual([key(7).bytes, key(6).bytes]);
    expect(diagnostics).toEqual([{
      object: { kind: 'Secret', namespace: 'qubesec', name: 'qubesec-session-tickets', uid: 'uid-1' },
      type: 'Warning',
      reason: 'InvalidSessionTicketSecret',
      message: 'Secret qubesec/qubesec-session-tickets: data.tickets.key holds 81 bytes, not one or more 80-byte keys; its last good content keeps serving',
    }]);
    const fresh: Diagnostic[] = [];
    expect(new ServedSessionResumption(options).model([bad], NOW, fresh)).toEqual({ resumption: { timeoutSeconds: 600, tickets: true, ticketKeys: [] }, defaultCertificates: undefined });
    expect(fresh[0]!.message).toMatch(/; until it is fixed, each NGINX encrypts tickets with keys of its own$/);
  });

  it('turns tickets off without reading the Secret', () => {
    const diagnostics: Diagnostic[] = [];
    expect(new ServedSessionResumption({ ...options, tickets: false }).model([bad], NOW, diagnostics)).toEqual({ resumption: { timeoutSeconds: 600, tickets: false, ticketKeys: [] } });
    expect(diagnostics).toEqual([]);
  });
});
