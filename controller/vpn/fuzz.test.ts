// Property: whatever a VpnPeer or VpnGateway holds, translation either refuses it with a diagnostic naming the object,
// or the rendered swanctl.conf has exactly the structure the template makes (the same sections and keys, one
// connection per valid peer) with no value that strongSwan would read as more than one. fast-check generates hostile
// identities, subnets, addresses, pool names and PPK ids and shrinks any counterexample.
import type { V1Secret } from '@kubernetes/client-node';
import fc from 'fast-check';
import { translateVpn, type VpnPeerSpec } from './model.js';
import { renderSwanctl } from './render.js';
import { gatewayResource, lookup, opaqueSecret, peerResource, testCa, tlsSecret } from './testing.js';

const RUNS = 1000;
let secrets: V1Secret[];

beforeAll(async () => {
  const ca = await testCa();
  secrets = [
    tlsSecret('gw-tls', await ca.issue('CN=gw'), ca.certificatePem),
    opaqueSecret('site-ca', { 'ca.crt': ca.certificatePem }),
    opaqueSecret('ppk', { ppk: Buffer.alloc(32, 1) }),
  ];
});

/** Strings built from what breaks configuration files: quotes, braces, '=', '#', separators, white space, unicode. */
const hostile = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'aZ09 .-_@,=:;/"\'{}#\\\n\r\t*%[]$`'.split('')), maxLength: 24 }),
  fc.string({ maxLength: 24 }),
  fc.constantFrom('CN=alice', 'CN=a, O=b', '198.18.220.0/24', '198.18.200.9', '::1', '0.0.0.0/0', 'rw', '%any', 'vpn.example.com'),
);
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
/** Mostly a well-formed value (so that many peers get through to rendering), sometimes a hostile one. */
const mostly = (valid: fc.Arbitrary<string>) => fc.oneof({ arbitrary: valid, weight: 4 }, { arbitrary: hostile, weight: 1 });
const address = mostly(fc.ipV4());
const subnet = mostly(fc.integer({ min: 0, max: 255 }).map((n) => `198.18.${n}.0/24`));
const identity = mostly(fc.oneof(fc.nat(99).map((n) => `CN=peer-${n}`), fc.constantFrom('CN=a b, O=Example', 'peer.example.com')));
const name = mostly(fc.constantFrom('rw', 'pool-2', 'qubesec-ppk'));

const peerSpec: fc.Arbitrary<VpnPeerSpec> = fc.oneof(
  fc.record({ gateway: fc.constant('gw'), site: fc.record({ remoteAddress: maybe(address), remoteSubnets: maybe(fc.array(subnet, { maxLength: 3 })), identity: maybe(identity), caSecretName: fc.constant('site-ca') }) }),
  fc.record({ gateway: fc.constant('gw'), remoteAccess: fc.record({ identity: maybe(identity), allowedSubnets: maybe(fc.array(mostly(fc.constantFrom('198.18.210.0/24', '198.18.210.128/25')), { maxLength: 2 })), pool: maybe(name) }) }),
);

/** Every "key = value" line's key path, checking that braces balance and that every line is a section, a key or a comment. */
function structure(conf: string): string[] {
  const keys: string[] = [];
  const path: string[] = [];
  for (const raw of conf.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    let m: RegExpExecArray | null;
    if ((m = /^([A-Za-z0-9_-]+) \{$/.exec(line))) path.push(m[1]!);
    else if (line === '}') path.pop();
    else if ((m = /^([a-z_]+) = ("[^"\\{}#]*"|[^\s"\\{}#]+)$/.exec(line))) keys.push([...path, m[1]].join('.'));
    else throw new Error(`not one setting: ${JSON.stringify(line)}`);
  }
  expect(path).toEqual([]);
  return keys;
}

describe('VPN rendering under hostile input', () => {
  it('refuses or renders exactly the template structure', () => {
    let runsWithPeers = 0;
    fc.assert(fc.property(fc.array(peerSpec, { maxLength: 4 }), name, name, (specs, poolName, ppkId) => {
      const gateway = gatewayResource('gw', {
        listen: { address: '198.18.200.1' }, localSubnets: ['198.18.210.0/24'], certificate: { secretName: 'gw-tls' },
        pools: [{ name: poolName, subnet: '198.18.230.0/24' }], ppk: { secretName: 'ppk', id: ppkId },
      });
      const peers = specs.map((spec, i) => peerResource(`peer-${i}`, spec));
      const { model, diagnostics } = translateVpn(gateway, peers, lookup(secrets), new Date());
      if (!model) {
        expect(diagnostics.map((d) => d.object.kind)).toEqual(['VpnGateway']);
        return;
      }
      const refused = new Set(diagnostics.map((d) => d.object.name));
      expect(model.peers.map((p) => p.ref.name).sort()).toEqual(peers.map((p) => p.metadata.name!).filter((n) => !refused.has(n)).sort());
      if (model.peers.length > 0) runsWithPeers++;
      const keys = structure(renderSwanctl(model).get('swanctl.conf')!);
      const connections = new Set(keys.filter((k) => k.startsWith('connections.')).map((k) => k.split('.')[1]));
      expect([...connections].sort()).toEqual(model.peers.map((p) => p.connection).sort());
      for (const key of keys) expect(key).toMatch(/^(connections\.[a-z0-9_-]+\.(version|local_addrs|remote_addrs|local_port|proposals|childless|rekey_time|mobike|send_certreq|pools|ppk_id|ppk_required|local\.(auth|certs|id)|remote\.(auth|id|cacerts)|children\.[a-z0-9_-]+\.(local_ts|remote_ts|esp_proposals|rekey_time|start_action|dpd_action))|pools\.[a-z0-9-]+\.addrs|secrets\.(private-gateway\.file|ppk-[A-Za-z0-9_-]+\.(id|secret)))$/);
    }), { numRuns: RUNS });
    // Not vacuous: valid peers were rendered in a fair share of the runs.
    expect(runsWithPeers).toBeGreaterThan(RUNS / 20);
  });
});
