import type { V1Secret } from '@kubernetes/client-node';
import { readCredential, translateVpn, type VpnModel } from './model.js';
import { RenderError, renderClientProfile, renderStrongswanConf, renderSwanctl } from './render.js';
import { gatewayResource, lookup, opaqueSecret, peerResource, testCa, tlsSecret, type TestCa } from './testing.js';

let ca: TestCa;
let secrets: V1Secret[];
let model: VpnModel;

/** The settings of a rendered file as dotted keys (section.subsection.key = value), checking that braces balance. */
function settings(conf: string): Map<string, string> {
  const out = new Map<string, string>();
  const path: string[] = [];
  for (const raw of conf.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    let m: RegExpExecArray | null;
    if ((m = /^([A-Za-z0-9_.-]+) \{$/.exec(line))) path.push(m[1]!);
    else if (line === '}') expect(path.pop()).toBeDefined();
    else if ((m = /^([a-z_]+) = (.+)$/.exec(line))) out.set([...path, m[1]].join('.'), m[2]!);
    else throw new Error(`not a setting: ${line}`);
  }
  expect(path).toEqual([]);
  return out;
}

beforeAll(async () => {
  ca = await testCa();
  const siteCa = await testCa('CN=Site CA');
  secrets = [
    tlsSecret('gw-tls', await ca.issue('CN=gw.vpn.test'), ca.certificatePem),
    tlsSecret('alice-tls', await ca.issue('CN=alice'), ca.certificatePem),
    opaqueSecret('site-ca', { 'ca.crt': siteCa.certificatePem }),
    opaqueSecret('ppk', { ppk: Buffer.alloc(32, 0xab) }),
  ];
  const t = translateVpn(gatewayResource('gw', {
    listen: { address: '198.18.200.1' }, localSubnets: ['198.18.210.0/24'], certificate: { secretName: 'gw-tls' },
    ppk: { secretName: 'ppk', id: 'qubesec-ppk' }, pools: [{ name: 'rw', subnet: '198.18.230.0/24' }],
  }), [
    peerResource('site.b', { gateway: 'gw', site: { remoteAddress: '198.18.200.2', remoteSubnets: ['198.18.220.0/24', '198.18.222.0/24'], identity: 'CN=site-b', caSecretName: 'site-ca' } }),
    peerResource('alice', { gateway: 'gw', remoteAccess: { identity: 'CN=alice', allowedSubnets: ['198.18.210.0/25'], pool: 'rw', certificateSecretName: 'alice-tls' } }),
  ], lookup(secrets), new Date());
  expect(t.diagnostics).toEqual([]);
  model = t.model!;
});

describe('renderSwanctl', () => {
  it('writes one connection per peer with the hybrid proposals, childless in strict mode, the PPK and the pools', () => {
    const files = renderSwanctl(model);
    expect([...files.keys()].sort()).toEqual(['private/gateway.key', 'swanctl.conf', 'x509/gateway.crt', 'x509ca/gw-tls.crt', 'x509ca/site-ca.crt']);
    const s = settings(files.get('swanctl.conf')!);
    expect(s.get('connections.site_b.remote_addrs')).toBe('198.18.200.2');
    expect(s.get('connections.site_b.proposals')).toBe('aes256gcm16-prfsha384-x25519-ke1_mlkem768');
    expect(s.get('connections.site_b.childless')).toBe('force');
    // The responder names no ppk_id: charon takes the loaded PPK whose id the initiator sends.
    expect(s.get('connections.site_b.ppk_id')).toBeUndefined();
    expect(s.get('connections.site_b.ppk_required')).toBe('yes');
    expect(s.get('connections.site_b.remote.id')).toBe('"CN=site-b"');
    expect(s.get('connections.site_b.remote.cacerts')).toBe('site-ca.crt');
    expect(s.get('connections.site_b.local.id')).toBe('"CN=gw.vpn.test"');
    expect(s.get('connections.site_b.children.site_b.local_ts')).toBe('198.18.210.0/24');
    expect(s.get('connections.site_b.children.site_b.remote_ts')).toBe('198.18.220.0/24,198.18.222.0/24');
    expect(s.get('connections.site_b.children.site_b.esp_proposals')).toBe('aes256gcm16-x25519-ke1_mlkem768');
    expect(s.get('connections.site_b.pools')).toBeUndefined();
    expect(s.get('connections.alice.remote_addrs')).toBe('%any');
    expect(s.get('connections.alice.pools')).toBe('rw');
    expect(s.get('connections.alice.remote.cacerts')).toBe('gw-tls.crt');
    expect(s.get('connections.alice.children.alice.local_ts')).toBe('198.18.210.0/25');
    expect(s.get('connections.alice.children.alice.remote_ts')).toBe('dynamic');
    expect(s.get('pools.rw.addrs')).toBe('198.18.230.0/24');
    expect(s.get('secrets.ppk-qubesec-ppk.secret')).toBe(`0x${'ab'.repeat(32)}`);
    expect(s.get('secrets.private-gateway.file')).toBe('gateway.key');
  });

  it('refuses to render a value strongSwan would read as structure, even if a check upstream missed it', () => {
    const bad = { ...model, peers: [{ ...model.peers[0]!, identity: 'CN=x" }\nconnections {' }] };
    expect(() => renderSwanctl(bad)).toThrow(RenderError);
    expect(() => renderSwanctl(bad)).toThrow(/swanctl.connections\[0\].identity/);
  });
});

describe('renderStrongswanConf', () => {
  it('sets the ports, the vici socket and kernel-libipsec as asked', () => {
    const s = settings(renderStrongswanConf({ ikePort: 500, natPort: 4500 }, { libipsec: true, viciSocket: '/run/qubesec-vpn/charon.vici' }).replace(/^\s*include .*$/m, ''));
    expect(s.get('charon.port')).toBe('500');
    expect(s.get('charon.port_nat_t')).toBe('4500');
    expect(s.get('charon.plugins.kernel-libipsec.load')).toBe('yes');
    expect(s.get('charon.plugins.vici.socket')).toBe('unix:///run/qubesec-vpn/charon.vici');
  });
});

describe('renderClientProfile', () => {
  it("gives a remote-access user the gateway's proposals, a virtual IP request, its allowed subnets and the PPK", () => {
    const alice = model.peers.find((p) => p.ref.name === 'alice')!;
    const user = readCredential(secrets[1], 'alice-tls', 'spec.remoteAccess.certificateSecretName', new Date());
    const files = renderClientProfile(model.gateway, alice, user);
    expect([...files.keys()].sort()).toEqual(['private/client.key', 'swanctl.conf', 'x509/client.crt', 'x509ca/gateway-ca.crt']);
    const s = settings(files.get('swanctl.conf')!);
    expect(s.get('connections.qubesec-alice.remote_addrs')).toBe('198.18.200.1');
    expect(s.get('connections.qubesec-alice.vips')).toBe('0.0.0.0');
    expect(s.get('connections.qubesec-alice.childless')).toBe('prefer');
    expect(s.get('connections.qubesec-alice.remote.id')).toBe('"CN=gw.vpn.test"');
    expect(s.get('connections.qubesec-alice.children.qubesec-alice.remote_ts')).toBe('198.18.210.0/25');
    expect(s.get('secrets.ppk-qubesec-ppk.id')).toBe('qubesec-ppk');
    expect(files.get('x509ca/gateway-ca.crt')).toBe(model.gateway.ca!.pem);
  });

  it('over IPv6: IPv6 addresses and subnets in the connections and pool, and the profile asks for an IPv6 virtual IP', async () => {
    const t = translateVpn(gatewayResource('gw', {
      listen: { address: '2001:2:0:0::1' }, localSubnets: ['2001:2:0:10::/64'], certificate: { secretName: 'gw-tls' }, pools: [{ name: 'rw', subnet: '2001:2:0:30::/120' }],
    }), [
      peerResource('site-b', { gateway: 'gw', site: { remoteAddress: '2001:2::2', remoteSubnets: ['2001:2:0:20::/64'], identity: 'CN=site-b', caSecretName: 'site-ca' } }),
      peerResource('alice', { gateway: 'gw', remoteAccess: { identity: 'CN=alice', allowedSubnets: ['2001:2:0:10::/64'], pool: 'rw' } }),
    ], lookup(secrets), new Date());
    expect(t.diagnostics).toEqual([]);
    const s = settings(renderSwanctl(t.model!).get('swanctl.conf')!);
    expect(s.get('connections.site-b.local_addrs')).toBe('2001:2::1');
    expect(s.get('connections.site-b.remote_addrs')).toBe('2001:2::2');
    expect(s.get('connections.site-b.children.site-b.local_ts')).toBe('2001:2:0:10::/64');
    expect(s.get('connections.site-b.children.site-b.remote_ts')).toBe('2001:2:0:20::/64');
    expect(s.get('pools.rw.addrs')).toBe('2001:2:0:30::/120');
    const alice = t.model!.peers.find((p) => p.ref.name === 'alice')!;
    const user = readCredential(secrets[1], 'alice-tls', 'spec.remoteAccess.certificateSecretName', new Date());
    const profile = settings(renderClientProfile(t.model!.gateway, alice, user).get('swanctl.conf')!);
    expect(profile.get('connections.qubesec-alice.remote_addrs')).toBe('2001:2::1');
    expect(profile.get('connections.qubesec-alice.vips')).toBe('::');
  });

  it('refuses a site peer and a certificate that is not the identity', async () => {
    const site = model.peers.find((p) => p.type === 'site')!;
    const alice = model.peers.find((p) => p.ref.name === 'alice')!;
    const user = readCredential(secrets[1], 'alice-tls', 'f', new Date());
    expect(() => renderClientProfile(model.gateway, site, user)).toThrow(/is a site peer/);
    const bob = readCredential(tlsSecret('bob', await ca.issue('CN=bob')), 'bob', 'f', new Date());
    expect(() => renderClientProfile(model.gateway, alice, bob)).toThrow(/the certificate's subject "CN=bob" is not spec.remoteAccess.identity "CN=alice"/);
  });
});
