import type { V1Secret } from '@kubernetes/client-node';
import { parseAddress, parseSubnet, overlaps, contains, type Subnet } from './addresses.js';
import { parseIdentity, proposals, translateVpn, type VpnGatewaySpec, type VpnPeerSpec } from './model.js';
import { gatewayResource, lookup, opaqueSecret, peerResource, testCa, tlsSecret, type TestCa } from './testing.js';

let ca: TestCa;
let otherCa: TestCa;
let secrets: V1Secret[];
const now = new Date();

const gatewaySpec = (extra: Partial<VpnGatewaySpec> = {}): VpnGatewaySpec => ({
  listen: { address: '198.18.200.1' },
  localSubnets: ['198.18.210.0/24'],
  certificate: { secretName: 'gw-tls' },
  pools: [{ name: 'rw', subnet: '198.18.230.0/24' }],
  ...extra,
});
const site = (extra: Partial<NonNullable<VpnPeerSpec['site']>> = {}): VpnPeerSpec => ({
  gateway: 'gw',
  site: { remoteAddress: '198.18.200.2', remoteSubnets: ['198.18.220.0/24'], identity: 'CN=site-b', caSecretName: 'site-ca', ...extra },
});
const user = (extra: Partial<NonNullable<VpnPeerSpec['remoteAccess']>> = {}): VpnPeerSpec => ({
  gateway: 'gw',
  remoteAccess: { identity: 'CN=alice, O=Example', allowedSubnets: ['198.18.210.0/25'], pool: 'rw', ...extra },
});
const translate = (spec: VpnGatewaySpec, peers: ReturnType<typeof peerResource>[] = [], extraSecrets: V1Secret[] = []) =>
  translateVpn(gatewayResource('gw', spec), peers, lookup([...secrets, ...extraSecrets]), now);
const messages = (t: ReturnType<typeof translate>) => t.diagnostics.map((d) => `${d.object.kind}/${d.object.name}: ${d.message}`);

beforeAll(async () => {
  ca = await testCa();
  otherCa = await testCa('CN=Site B CA');
  secrets = [
    tlsSecret('gw-tls', await ca.issue('CN=gw.vpn.example, O=QubeSec'), ca.certificatePem),
    opaqueSecret('site-ca', { 'ca.crt': otherCa.certificatePem }),
    opaqueSecret('ppk', { ppk: Buffer.alloc(32, 7) }),
  ];
});

describe('addresses', () => {
  it('parses subnets canonically and refuses host bits, junk and injections', () => {
    expect((parseSubnet('198.18.210.0/24') as Subnet).text).toBe('198.18.210.0/24');
    expect((parseSubnet('2001:db8:0:0::/64') as Subnet).text).toBe('2001:db8::/64');
    expect(parseSubnet('198.18.210.1/24')).toMatch(/host bits set \(the network is 198.18.210.0\/24\)/);
    expect(parseSubnet('198.18.210.0/33')).toMatch(/prefix longer than 32/);
    expect(parseSubnet('198.18.210.0/24,0.0.0.0/0')).toMatch(/not a subnet/);
    expect(parseSubnet('198.18.210.0/24\n}')).toMatch(/CIDR/);
    expect(parseAddress('198.18.200.01')).toMatch(/not an IP address/);
    expect(parseAddress('%any')).toMatch(/not an IP address/);
  });

  it('finds overlaps and containment', () => {
    const s = (t: string) => parseSubnet(t) as Subnet;
    expect(overlaps(s('198.18.0.0/15'), s('198.18.210.0/24'))).toBe(true);
    expect(overlaps(s('198.18.210.0/24'), s('198.18.211.0/24'))).toBe(false);
    expect(overlaps(s('198.18.210.0/24'), s('::/0'))).toBe(false);
    expect(contains(s('198.18.210.0/24'), s('198.18.210.128/25'))).toBe(true);
    expect(contains(s('198.18.210.128/25'), s('198.18.210.0/24'))).toBe(false);
  });
});

describe('identities', () => {
  it('accepts distinguished names and DNS names, canonically spaced', () => {
    expect(parseIdentity('CN=alice,O=Example')).toBe('CN=alice, O=Example');
    expect(parseIdentity('vpn.example.com')).toBe('vpn.example.com');
  });

  it.each([
    ['CN=a"b', /may hold only/],
    ['CN=*', /may hold only/],
    ['CN=alice\n}', /may hold only/],
    ['XX=alice', /not a distinguished name attribute/],
    ['*.example.com', /neither a distinguished name/],
    ['alice smith', /neither a distinguished name/],
  ])('refuses %j', (raw, problem) => {
    expect(parseIdentity(raw)).toEqual({ error: expect.stringMatching(problem) });
  });
});

describe('proposals', () => {
  it('strict has no ke1_none; compatible adds it; ML-KEM-1024 is selectable', () => {
    expect(proposals('strict', 'ml-kem-768')).toEqual({ ike: ['aes256gcm16-prfsha384-x25519-ke1_mlkem768'], esp: ['aes256gcm16-x25519-ke1_mlkem768'] });
    expect(proposals('compatible', 'ml-kem-768').ike).toEqual(['aes256gcm16-prfsha384-x25519-ke1_mlkem768-ke1_none']);
    expect(proposals('strict', 'ml-kem-1024').esp).toEqual(['aes256gcm16-x25519-ke1_mlkem1024']);
  });
});

describe('translateVpn', () => {
  it('translates a gateway with a site peer and a remote-access user', () => {
    const t = translate(gatewaySpec({ ppk: { secretName: 'ppk', id: 'qubesec-ppk' } }), [peerResource('site-b', site()), peerResource('alice', user())]);
    expect(t.diagnostics).toEqual([]);
    const gw = t.model!.gateway;
    expect(gw).toMatchObject({ listenAddress: '198.18.200.1', ikePort: 500, natPort: 4500, pqMode: 'strict', childless: 'force', keyExchange: 'ml-kem-768' });
    expect(gw.credential.identity).toBe('CN=gw.vpn.example, O=QubeSec');
    expect(gw.ppk).toEqual({ id: 'qubesec-ppk', keys: [{ id: 'qubesec-ppk', hex: '07'.repeat(32) }], required: true, rotation: undefined });
    const [alice, sitePeer] = t.model!.peers; // same age: by name
    expect(sitePeer).toMatchObject({ type: 'site', connection: 'site-b', identity: 'CN=site-b', remoteAddress: '198.18.200.2', ca: { file: 'site-ca.crt' } });
    expect(sitePeer!.remoteSubnets.map((s) => s.text)).toEqual(['198.18.220.0/24']);
    expect(alice).toMatchObject({ type: 'remoteAccess', identity: 'CN=alice, O=Example', pool: 'rw', remoteAddress: undefined, ca: { file: 'gw-tls.crt' } });
    expect(alice!.localSubnets.map((s) => s.text)).toEqual(['198.18.210.0/25']);
  });

  it('compatible mode accepts ke1_none and lets the IKE_AUTH CHILD_SA be made', () => {
    const gw = translate(gatewaySpec({ pqMode: 'compatible' })).model!.gateway;
    expect(gw.childless).toBe('allow');
    expect(gw.espProposals[0]).toMatch(/-ke1_none$/);
  });

  it.each([
    [{ listen: { address: '198.18.200.1; }' } }, 'spec.listen.address "198.18.200.1; }" is not an IP address'],
    [{ listen: { address: '198.18.200.1', port: 70000 } }, 'spec.listen.port is not a port number'],
    [{ pqMode: 'lax' }, 'spec.pqMode "lax" is not one of strict, compatible'],
    [{ keyExchange: 'kyber' }, 'spec.keyExchange "kyber" is not one of'],
    [{ localSubnets: ['198.18.210.0/24', '198.18.210.128/25'] }, 'spec.localSubnets lists overlapping subnets'],
    [{ certificate: { secretName: 'missing' } }, 'spec.certificate.secretName names Secret "missing", which does not exist'],
    [{ pools: [{ name: 'rw', subnet: '198.18.210.0/26' }] }, 'spec.pools[0].subnet 198.18.210.0/26 overlaps spec.localSubnets'],
    [{ ppk: { secretName: 'short-ppk', id: 'p' } }, 'whose ppk has 16 bytes (RFC 8784 wants at least 32)'],
    [{ ppk: { secretName: 'ppk', id: 'p p' } }, 'spec.ppk.id "p p" may hold only'],
    [{ ppk: { id: 'p' } }, 'spec.ppk.secretName is required'],
    [{ ppk: { generate: { rotationInterval: '30d' } } }, 'spec.ppk.generate.rotationInterval "30d" is not a whole number of seconds from 10s to 8760h, like 720h'],
    [{ ppk: { generate: { rotationInterval: '5s' } } }, 'spec.ppk.generate.rotationInterval "5s" is not'],
    [{ ppk: { generate: { rotationInterval: '1500ms' } } }, 'spec.ppk.generate.rotationInterval "1500ms" is not'],
    [{ ppk: { generate: {}, id: 'x'.repeat(48) } }, 'may hold only 1-47 letters, digits, _ and - with spec.ppk.generate'],
    [{ ppk: { generate: {}, secretName: 'Bad_Name' } }, 'spec.ppk.secretName'],
    [{ ppk: { generate: {} } }, 'spec.ppk.generate is set and Secret "gw-ppk" is not made yet'],
    [{ ppk: { generate: {}, secretName: 'ppk' } }, 'spec.ppk.secretName names Secret "ppk", which is not owned by this VpnGateway'],
  ])('refuses a bad gateway %j, loading nothing', (extra, message) => {
    const t = translate(gatewaySpec(extra as Partial<VpnGatewaySpec>), [peerResource('site-b', site())], [opaqueSecret('short-ppk', { ppk: Buffer.alloc(16) })]);
    expect(t.model).toBeUndefined();
    expect(t.diagnostics.map((d) => [d.object.kind, d.object.name])).toEqual([['VpnGateway', 'gw']]);
    expect(t.diagnostics[0]!.message).toContain(message);
  });

  it('refuses an ML-DSA gateway certificate, saying strongSwan 6.1 cannot authenticate with it', async () => {
    const mldsa = tlsSecret('mldsa-tls', await ca.issue('CN=gw', 'ml-dsa-65'));
    const t = translate(gatewaySpec({ certificate: { secretName: 'mldsa-tls' } }), [], [mldsa]);
    expect(messages(t)[0]).toMatch(/ml-dsa-65 certificate: strongSwan 6.1 has no ML-DSA authentication, issue an ECDSA P-384/);
  });

  it.each([
    ['overlapping the gateway', site({ remoteSubnets: ['198.18.210.0/28'] }), "spec.site.remoteSubnets 198.18.210.0/28 overlaps the gateway's local subnet 198.18.210.0/24"],
    ['overlapping a pool', site({ remoteSubnets: ['198.18.230.0/24'] }), "overlaps the gateway's pool rw"],
    ['with an unknown CA', site({ caSecretName: 'nope' }), 'spec.site.caSecretName names Secret "nope", which does not exist (unknown CA)'],
    ['with a CA Secret holding a leaf', site({ caSecretName: 'gw-tls-leaf' }), 'holds a certificate that is not a CA'],
    ['with a malformed identity', site({ identity: 'CN=site-b" }' }), 'spec.site.identity "CN=site-b\\" }": the value of CN may hold only'],
    ['with a bad address', site({ remoteAddress: '%any' }), 'spec.site.remoteAddress "%any" is not an IP address'],
    ['with both kinds', { ...site(), remoteAccess: user().remoteAccess }, 'spec must hold exactly one of site and remoteAccess'],
    ['reaching outside the gateway', user({ allowedSubnets: ['198.18.211.0/24'] }), "198.18.211.0/24 is not inside the gateway's local subnets"],
    ['with an unknown pool', user({ pool: 'other' }), 'spec.remoteAccess.pool "other" is not a pool of VpnGateway "gw"'],
  ])('fails a peer %s alone; the others keep working', (_what, spec, message) => {
    const leafAsCa = opaqueSecret('gw-tls-leaf', { 'ca.crt': Buffer.from(secrets[0]!.data!['tls.crt']!, 'base64') });
    const t = translate(gatewaySpec(), [peerResource('good', site({ remoteSubnets: ['198.18.221.0/24'], remoteAddress: '198.18.200.9', identity: 'CN=good' })), peerResource('bad', spec)], [leafAsCa]);
    expect(t.model!.peers.map((p) => p.ref.name)).toEqual(['good']);
    expect(t.diagnostics.map((d) => [d.object.kind, d.object.name, d.reason])).toEqual([['VpnPeer', 'bad', 'Invalid']]);
    expect(t.diagnostics[0]!.message).toContain(message);
  });

  it('between two peers that collide, the later one fails and the older keeps its tunnel', () => {
    const older = peerResource('older', site(), 'vpn', '2026-01-01T00:00:00Z');
    const newer = peerResource('newer', site({ remoteAddress: '198.18.200.7', identity: 'CN=site-c', remoteSubnets: ['198.18.220.128/25'] }), 'vpn', '2026-02-01T00:00:00Z');
    const sameIdentity = peerResource('twin', site({ remoteAddress: '198.18.200.8', remoteSubnets: ['198.18.222.0/24'] }), 'vpn', '2026-03-01T00:00:00Z');
    const t = translate(gatewaySpec(), [sameIdentity, newer, older]);
    expect(t.model!.peers.map((p) => p.ref.name)).toEqual(['older']);
    expect(messages(t)).toEqual([
      'VpnPeer/newer: spec.site.remoteSubnets 198.18.220.128/25 overlaps 198.18.220.0/24 of VpnPeer "older"',
      'VpnPeer/twin: spec.site.identity "CN=site-b" is already the identity of VpnPeer "older"',
    ]);
  });

  it('ignores peers of other gateways and namespaces', () => {
    const t = translate(gatewaySpec(), [peerResource('x', { ...site(), gateway: 'other' }), peerResource('y', site(), 'elsewhere')]);
    expect(t.model!.peers).toEqual([]);
    expect(t.diagnostics).toEqual([]);
  });
});
