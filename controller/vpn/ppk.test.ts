import type { V1Secret } from '@kubernetes/client-node';
import { ppkGeneration, readCredential, translateVpn, type VpnGatewaySpec } from './model.js';
import { PPK_BYTES, ppkId, readStoredPpks, rotatedPpkSecret, rotationDueInMs, type PpkGeneration } from './ppk.js';
import { renderClientProfile, renderSwanctl } from './render.js';
import { gatewayResource, lookup, peerResource, testCa, tlsSecret } from './testing.js';

const GATEWAY = { name: 'gw', namespace: 'vpn', uid: 'uid-gw' };
const GENERATION: PpkGeneration = { secretName: 'gw-ppk', baseId: 'qubesec-ppk', intervalMs: 3600_000 };
const T0 = new Date('2026-12-01T10:00:00.123Z');
const later = (ms: number) => new Date(T0.getTime() + ms);
const bytes = (n: number) => Buffer.alloc(PPK_BYTES, n);
const data = (secret: V1Secret, key: string) => Buffer.from(secret.data![key]!, 'base64').toString('utf8');

/** The Secret after `rounds` rotations, an interval apart, with key bytes 1, 2, ... */
function rotated(rounds: number): V1Secret {
  let secret: V1Secret | undefined;
  for (let i = 0; i < rounds; i++) {
    const stored = secret ? readStoredPpks(secret, GATEWAY.uid) : undefined;
    if (stored && 'error' in stored) throw new Error(stored.error);
    secret = rotatedPpkSecret(GATEWAY, GENERATION, secret, stored, bytes(i + 1), later(i * GENERATION.intervalMs));
  }
  return secret!;
}

describe('generated PPK Secret', () => {
  it('is made owned by the VpnGateway, with an id naming its creation time', () => {
    const secret = rotated(1);
    expect(secret.metadata).toMatchObject({ name: 'gw-ppk', namespace: 'vpn', ownerReferences: [{ kind: 'VpnGateway', name: 'gw', uid: 'uid-gw', controller: true }] });
    expect(data(secret, 'id')).toBe('qubesec-ppk-20261201T100000Z');
    expect(Object.keys(secret.data!).sort()).toEqual(['created', 'id', 'ppk']);
    expect(readStoredPpks(secret, GATEWAY.uid)).toEqual({ current: { id: 'qubesec-ppk-20261201T100000Z', bytes: bytes(1), created: T0 }, previous: undefined });
  });

  it('rotates: the new PPK in front, the current one kept as the previous, the one before it gone', () => {
    const twice = readStoredPpks(rotated(2), GATEWAY.uid);
    expect(twice).toMatchObject({ current: { id: 'qubesec-ppk-20261201T110000Z', bytes: bytes(2) }, previous: { id: 'qubesec-ppk-20261201T100000Z', bytes: bytes(1) } });
    const thrice = readStoredPpks(rotated(3), GATEWAY.uid);
    expect(thrice).toMatchObject({ current: { bytes: bytes(3) }, previous: { bytes: bytes(2) } });
    // An existing Secret keeps its metadata, so the write carries the resourceVersion it was read at.
    const existing = { ...rotated(1), metadata: { ...rotated(1).metadata, resourceVersion: '42' } };
    expect(rotatedPpkSecret(GATEWAY, GENERATION, existing, undefined, bytes(9), T0).metadata?.resourceVersion).toBe('42');
  });

  it('is due when there is none, and an interval after the current one was made', () => {
    const stored = readStoredPpks(rotated(1), GATEWAY.uid);
    if ('error' in stored) throw new Error(stored.error);
    expect(rotationDueInMs(undefined, GENERATION.intervalMs, T0)).toBe(0);
    expect(rotationDueInMs(stored, GENERATION.intervalMs, later(1000))).toBe(GENERATION.intervalMs - 1000);
    expect(rotationDueInMs(stored, GENERATION.intervalMs, later(GENERATION.intervalMs + 5))).toBe(0);
  });

  it('is refused when another owns it, or when it does not read', () => {
    const foreign = { ...rotated(1), metadata: { name: 'gw-ppk', namespace: 'vpn' } };
    expect(readStoredPpks(foreign, GATEWAY.uid)).toEqual({ error: expect.stringMatching(/^is not owned by this VpnGateway/) });
    expect(readStoredPpks(rotated(1), 'uid-other-gw')).toEqual({ error: expect.stringMatching(/^is not owned/) });
    const short = rotated(1);
    short.data!.ppk = Buffer.alloc(16).toString('base64');
    expect(readStoredPpks(short, GATEWAY.uid)).toEqual({ error: 'has a ppk of 16 bytes, not 32' });
    const badId = rotated(2);
    badId.data!['previous-id'] = Buffer.from('x y').toString('base64');
    expect(readStoredPpks(badId, GATEWAY.uid)).toEqual({ error: 'has no valid previous-id' });
    expect(() => rotatedPpkSecret(GATEWAY, GENERATION, undefined, undefined, Buffer.alloc(16), T0)).toThrow(/32 bytes, not 16/);
  });

  it('ids are unique to the second and fit strongSwan', () => {
    expect(ppkId('p', new Date('2026-01-02T03:04:05.999Z'))).toBe('p-20260102T030405Z');
    expect(ppkId('x'.repeat(47), T0)).toHaveLength(64);
  });
});

describe('a gateway with spec.ppk.generate', () => {
  const spec = (ppk: VpnGatewaySpec['ppk']): VpnGatewaySpec => ({
    listen: { address: '198.18.200.1' }, localSubnets: ['198.18.210.0/24'], certificate: { secretName: 'gw-tls' }, pools: [{ name: 'rw', subnet: '198.18.230.0/24' }], ppk,
  });

  it('defaults to the Secret <gateway>-ppk, base id qubesec-ppk, 720h', () => {
    expect(ppkGeneration(gatewayResource('gw', spec({ generate: {} })))).toEqual({ secretName: 'gw-ppk', baseId: 'qubesec-ppk', intervalMs: 720 * 3600_000 });
    expect(ppkGeneration(gatewayResource('gw', spec({ generate: { rotationInterval: '90s' }, secretName: 'mine', id: 'site' })))).toEqual({ secretName: 'mine', baseId: 'site', intervalMs: 90_000 });
    expect(ppkGeneration(gatewayResource('gw', spec({ secretName: 'ppk', id: 'p' })))).toBeUndefined();
    // Invalid: nothing to make (translateVpn says why).
    expect(ppkGeneration(gatewayResource('gw', spec({ generate: { rotationInterval: 'soon' } })))).toBeUndefined();
  });

  it('loads the current and the previous PPK and exports the current one to clients', async () => {
    const ca = await testCa();
    const secrets = [tlsSecret('gw-tls', await ca.issue('CN=gw'), ca.certificatePem), tlsSecret('alice-tls', await ca.issue('CN=alice'), ca.certificatePem), rotated(2)];
    const alice = peerResource('alice', { gateway: 'gw', remoteAccess: { identity: 'CN=alice', allowedSubnets: ['198.18.210.0/24'], pool: 'rw' } });
    const t = translateVpn(gatewayResource('gw', spec({ generate: { rotationInterval: '1h' } })), [alice], lookup(secrets), later(GENERATION.intervalMs + 1000));
    expect(t.diagnostics).toEqual([]);
    const ppk = t.model!.gateway.ppk!;
    expect(ppk).toEqual({
      id: 'qubesec-ppk-20261201T110000Z',
      keys: [{ id: 'qubesec-ppk-20261201T110000Z', hex: '02'.repeat(32) }, { id: 'qubesec-ppk-20261201T100000Z', hex: '01'.repeat(32) }],
      required: true,
      rotation: { created: later(GENERATION.intervalMs), intervalMs: 3600_000 },
    });
    const conf = renderSwanctl(t.model!).get('swanctl.conf')!;
    expect(conf).toContain('ppk-qubesec-ppk-20261201T110000Z {\n        id = qubesec-ppk-20261201T110000Z\n        secret = 0x' + '02'.repeat(32));
    expect(conf).toContain('ppk-qubesec-ppk-20261201T100000Z {\n        id = qubesec-ppk-20261201T100000Z\n        secret = 0x' + '01'.repeat(32));
    expect(conf).not.toMatch(/ppk_id/);
    const user = readCredential(secrets[1], 'alice-tls', 'f', new Date());
    const client = renderClientProfile(t.model!.gateway, t.model!.peers[0]!, user).get('swanctl.conf')!;
    expect(client).toMatch(/ppk_id = qubesec-ppk-20261201T110000Z\n/);
    expect(client).toContain(`secret = 0x${'02'.repeat(32)}`);
    expect(client).not.toContain('01'.repeat(32));
  });
});
