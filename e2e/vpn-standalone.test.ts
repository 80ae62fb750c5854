// The VPN gateway without Kubernetes, over IPv6: `qubesec vpn run --manifests DIR` reads its VpnGateway, VpnPeers and
// Secrets from a folder of YAML (an edge site, a host outside a cluster) and drives the gateway's charon (sid strongSwan
// 6.1, userspace ESP through kernel-libipsec) in a network namespace; the underlay, the subnets behind both sites and
// the virtual-IP pool are IPv6 (2001:2::/48, RFC 5180's benchmarking range). A remote site runs a hand-written
// swanctl.conf; a road warrior the profile `qubesec vpn client-config --manifests` exports from the same folder.
// Changing a file reloads charon without a restart; a file that stops parsing keeps its last good objects.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';
import { stringify } from 'yaml';
import { eventually, freePort } from './lib/env.js';
import { readProfile, sitePeerConf, startPeerCharon, startVpnLab, type VpnHost, type VpnLab } from './lib/vpn-hosts.js';
import { testCa, tlsSecret, opaqueSecret, type TestCa } from '../controller/vpn/testing.js';
import type { PeerStatus } from '../controller/vpn/status.js';
import { PROJECT_ROOT } from '../controller/project.js';

const NS = 'edge';
const GW_LAN = '2001:2:0:10::1';
const SITE_LAN = '2001:2:0:20::1';
const POOL = '2001:2:0:30::/120';
const HYBRID_IKE = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';
const HYBRID_ESP = 'aes256gcm16-x25519-ke1_mlkem768';
const CLI = join(PROJECT_ROOT, 'dist', 'controller', 'cli', 'main.js');
const ppk = Buffer.alloc(32, 7);

let lab: VpnLab;
let gw: VpnHost;
let site: VpnHost;
let rw: VpnHost;
let legacy: VpnHost;
let ca: TestCa;
let siteCa: TestCa;
let gatewayProcess: ResultPromise;
let http: ResultPromise;
let metricsPort: number;
const base = mkdtempSync(join(tmpdir(), 'qubesec-vpn-standalone-'));
const manifests = join(base, 'manifests');
const statusFile = join(base, 'status', 'vpn.json');
const profileDir = join(base, 'profile');
/** The gateway controller's log lines (JSON). */
const gatewayLog: string[] = [];

const gatewaySpec = {
  listen: { address: '' }, localSubnets: ['2001:2:0:10::/64'], pqMode: 'strict', certificate: { secretName: 'gw-tls' },
  ppk: { secretName: 'gw-ppk', id: 'qubesec-ppk' }, pools: [{ name: 'rw', subnet: POOL }],
};
const object = (kind: string, name: string, spec: object) => ({ apiVersion: 'qubesec.io/v1alpha1', kind, metadata: { name, namespace: NS }, spec });
const sitePeer = (name: string, remoteAddress: string, subnet: string, identity: string) => object('VpnPeer', name, { gateway: 'gw', site: { remoteAddress, remoteSubnets: [subnet], identity, caSecretName: 'site-ca' } });
const writeManifest = (file: string, ...docs: object[]) => writeFileSync(join(manifests, file), docs.map((d) => stringify(d)).join('---\n'));
const swanctl = (host: VpnHost, ...args: string[]) => host.run('swanctl', [...args, ...(host === gw ? ['--uri', 'unix:///run/qubesec-vpn/charon.vici'] : [])], { reject: false }).then((r) => r.stdout + r.stderr);
const statusOf = (key: string): Record<string, unknown> | undefined => {
  try {
    return (JSON.parse(readFileSync(statusFile, 'utf8')) as Record<string, Record<string, unknown>>)[key];
  } catch {
    return undefined;
  }
};
const logSince = (from: number, pattern: RegExp) => eventually(async () => gatewayLog.slice(from).find((l) => pattern.test(l)), 15_000, `a log line ${pattern}`);
/** Resolves once the controller logged that it loaded exactly `peers` (in any order), after `from` log lines. */
const loadedPeers = (from: number, peers: string[]) => eventually(async () => (gatewayLog.slice(from).some((l) => {
  if (!l.includes('"msg":"VPN configuration loaded"')) return false;
  const entry = JSON.parse(l) as { msg?: string; peers?: string[] };
  return entry.msg === 'VPN configuration loaded' && JSON.stringify([...entry.peers!].sort()) === JSON.stringify([...peers].sort());
}) ? true : undefined), 15_000, `a configuration with peers ${peers.join(', ')} loaded`);
const charonPids = async () => (await execa('ip', ['netns', 'pids', gw.netns])).stdout.split('\n').filter((pid) => pid && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'charon');

async function ping(host: VpnHost, source: string | undefined, count: number): Promise<{ sent: number; received: number }> {
  const r = await host.run('ping', ['-6', '-n', '-c', String(count), '-i', '0.2', '-W', '2', ...(source ? ['-I', source] : []), GW_LAN], { reject: false });
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  return { sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0) };
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return Number(line?.split(' ').at(-1) ?? NaN);
}

beforeAll(async () => {
  lab = await startVpnLab(['gw', 'site', 'rw', 'legacy'], { family: 6 });
  [gw, site, rw, legacy] = [lab.host('gw'), lab.host('site'), lab.host('rw'), lab.host('legacy')];
  await gw.run('ip', ['addr', 'add', `${GW_LAN}/128`, 'dev', 'lo']);
  await site.run('ip', ['addr', 'add', `${SITE_LAN}/128`, 'dev', 'lo']);
  http = execa('ip', ['netns', 'exec', gw.netns, process.execPath, '-e', `require('http').createServer((q, s) => s.end('behind the gateway\\n')).listen(8080, '${GW_LAN}')`], { reject: false });

  ca = await testCa('CN=QubeSec VPN CA');
  siteCa = await testCa('CN=Site B CA');
  // The folder: one file for the gateway, one per peer, one with the Secrets, as an operator would keep them.
  mkdirSync(manifests);
  writeManifest('secrets.yaml',
    tlsSecret('gw-tls', await ca.issue('CN=gw.edge.test'), ca.certificatePem, NS),
    tlsSecret('alice-tls', await ca.issue('CN=alice'), ca.certificatePem, NS),
    opaqueSecret('site-ca', { 'ca.crt': siteCa.certificatePem }, NS),
    opaqueSecret('gw-ppk', { ppk }, NS));
  writeManifest('gateway.yaml', object('VpnGateway', 'gw', { ...gatewaySpec, listen: { address: gw.address } }));
  writeManifest('site-b.yaml', sitePeer('site-b', site.address, '2001:2:0:20::/64', 'CN=site-b'));
  writeManifest('legacy.yaml', sitePeer('legacy', legacy.address, '2001:2:0:22::/64', 'CN=legacy'));
  writeManifest('alice.yaml', object('VpnPeer', 'alice', { gateway: 'gw', remoteAccess: { identity: 'CN=alice', allowedSubnets: ['2001:2:0:10::/64'], pool: 'rw', certificateSecretName: 'alice-tls' } }));
  // Not a kind the gateway reads: logged and ignored.
  writeManifest('notes.yaml', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'notes', namespace: NS }, data: { owner: 'edge team' } });

  gatewayProcess = execa(process.execPath, [CLI, 'vpn', 'run', '--manifests', manifests, '--namespace', NS, '--gateway', 'gw',
    '--root', gw.root, '--netns', gw.netns, '--libipsec', '--debounce-ms', '200', '--status-interval-ms', '1000', '--log-level', 'debug',
    '--status-file', statusFile, '--metrics-address', '127.0.0.1', '--metrics-port', String(metricsPort = await freePort())],
  { reject: false, stdin: 'ignore', buffer: false });
  createInterface({ input: gatewayProcess.stderr! }).on('line', (line) => {
    gatewayLog.push(line);
    if (process.env.QUBESEC_E2E_LOGS) process.stderr.write(`${line}\n`);
  });
  await eventually(async () => (/site-b:/.test(await swanctl(gw, '--list-conns')) ? true : undefined), 30_000, 'the gateway loaded its connections');

  const siteCert = await siteCa.issue('CN=site-b');
  await startPeerCharon(site, sitePeerConf({
    localAddress: site.address, remoteAddress: gw.address, id: 'CN=site-b', gatewayId: 'CN=gw.edge.test', localSubnet: '2001:2:0:20::/64',
    remoteSubnet: '2001:2:0:10::/64', ike: HYBRID_IKE, esp: HYBRID_ESP, childless: 'prefer', ppkHex: ppk.toString('hex'),
  }), { 'x509ca/gw-ca.crt': ca.certificatePem, 'x509/me.crt': siteCert.certificatePem, 'private/me.key': siteCert.keyPem });
  // A classical peer: X25519 only.
  const legacyCert = await siteCa.issue('CN=legacy');
  await startPeerCharon(legacy, sitePeerConf({
    localAddress: legacy.address, remoteAddress: gw.address, id: 'CN=legacy', gatewayId: 'CN=gw.edge.test', localSubnet: '2001:2:0:22::/64',
    remoteSubnet: '2001:2:0:10::/64', ike: 'aes256gcm16-prfsha384-x25519', esp: 'aes256gcm16-x25519', childless: 'allow', ppkHex: ppk.toString('hex'),
  }), { 'x509ca/gw-ca.crt': ca.certificatePem, 'x509/me.crt': legacyCert.certificatePem, 'private/me.key': legacyCert.keyPem });
}, 120_000);

afterAll(async () => {
  gatewayProcess?.kill('SIGTERM');
  await gatewayProcess;
  http?.kill('SIGTERM');
  await http;
  await lab?.stop();
  rmSync(base, { recursive: true, force: true });
}, 60_000);

describe('a gateway from a folder of manifests, over IPv6', () => {
  let pidsAtStart: string[];

  it('ignores kinds it does not read, and loads what the folder holds', async () => {
    expect(gatewayLog.some((l) => l.includes('not a kind QubeSec reads') && l.includes('"kind":"ConfigMap"'))).toBe(true);
    await loadedPeers(0, ['site-b', 'legacy', 'alice']);
  });

  it('site to site: X25519 + ML-KEM-768 and the PPK over an IPv6 underlay, ping and HTTP between IPv6 subnets', async () => {
    pidsAtStart = await charonPids();
    expect(pidsAtStart).toHaveLength(1);
    expect((await site.run('swanctl', ['--initiate', '--child', 'net'])).stdout).toMatch(/CHILD_SA net\{\d+\} established/);
    const sas = await swanctl(gw, '--list-sas', '--ike', 'site-b');
    expect(sas).toMatch(/remote\s+'CN=site-b' @ 2001:2::2\[4500\]/);
    expect(sas).toMatch(/AES_GCM_16-256\/PRF_HMAC_SHA2_384\/CURVE_25519\/KE1_ML_KEM_768\/PPK/);
    expect(sas).toMatch(/site-b: #\d+, reqid \d+, INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-256\/CURVE_25519\/KE1_ML_KEM_768/);
    expect(sas).toMatch(/local\s+2001:2:0:10::\/64/);
    expect(sas).toMatch(/remote\s+2001:2:0:20::\/64/);
    const capture = site.run('tcpdump', ['-i', 'eth0', '-nn', '-c', '4', '-l', 'udp', 'port', '4500'], { reject: false });
    await new Promise((r) => setTimeout(r, 1000));
    expect(await ping(site, SITE_LAN, 4)).toEqual({ sent: 4, received: 4 });
    expect((await capture).stdout).toMatch(/2001:2::2\.4500 > 2001:2::1\.4500: UDP-encap: ESP\(spi=0x[0-9a-f]+,seq=0x[0-9a-f]+\)/);
    expect((await site.run('curl', ['-sS', '--max-time', '5', '--interface', SITE_LAN, `http://[${GW_LAN}]:8080/`])).stdout).toBe('behind the gateway');
  });

  it('reports status to the status file, the log and /metrics (no API server)', async () => {
    const s = await eventually(async () => {
      const st = statusOf(`vpnpeers/${NS}/site-b`) as PeerStatus | undefined;
      return st?.connected ? st : undefined;
    }, 15_000, 'site-b connected in the status file');
    expect(s).toMatchObject({ connected: true, postQuantum: true, remoteAddress: site.address, ike: { keyExchanges: ['CURVE_25519', 'ML_KEM_768'], ppk: true }, conditions: [{ reason: 'Connected' }] });
    expect(statusOf(`vpngateways/${NS}/gw`)).toMatchObject({ pqMode: 'strict', peers: 3, invalidPeers: 0, conditions: [{ type: 'Ready', status: 'True', reason: 'Loaded' }] });
    expect(gatewayLog.some((l) => l.includes('"msg":"status"') && l.includes(`"object":"vpnpeers/${NS}/site-b"`) && l.includes('"reason":"Connected"'))).toBe(true);
    expect(await metric('qubesec_vpn_ready', { object: `vpnpeers/${NS}/site-b`, reason: 'Connected' })).toBe(1);
    expect(await metric('qubesec_vpn_ike_sas', { peer: 'site-b', key_exchange: 'hybrid' })).toBe(1);
  });

  it('refuses the classical IPv6 peer with NO_PROPOSAL_CHOSEN: an Event in the log names it and what it offered', async () => {
    const from = gatewayLog.length;
    const result = await legacy.run('swanctl', ['--initiate', '--child', 'net', '--timeout', '10'], { reject: false });
    expect(result.stdout + result.stderr).toMatch(/NO_PROPOSAL_CHOSEN/);
    const event = await logSince(from, /"msg":"event".*"event":"ProposalRefused"/);
    expect(event).toContain('"object":"VpnPeer edge/legacy"');
    expect(event).toContain(`2001:2::4 offered IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/CURVE_25519 (no ML-KEM): refused with NO_PROPOSAL_CHOSEN, strict mode requires ${HYBRID_IKE}`);
    expect(await metric('qubesec_vpn_proposals_refused_total', { peer: 'legacy', offered_ml_kem: 'false' })).toBeGreaterThanOrEqual(1);
  });

  it('remote access: the profile exported from the folder gets an IPv6 virtual IP from the pool and reaches the gateway', async () => {
    const out = await execa(process.execPath, [CLI, 'vpn', 'client-config', 'alice', '--manifests', manifests, '--namespace', NS, '--out', profileDir]);
    expect(out.stdout).toMatch(/wrote the profile of VpnPeer edge\/alice/);
    const files = readProfile(profileDir);
    const { 'swanctl.conf': conf, ...rest } = files;
    expect(conf).toMatch(/remote_addrs = 2001:2::1\n/);
    expect(conf).toMatch(/vips = ::\n/);
    await startPeerCharon(rw, conf!, rest);
    expect((await rw.run('swanctl', ['--initiate', '--child', 'qubesec-alice'])).stdout).toMatch(/installing new virtual IP 2001:2:0:30::[0-9a-f]+/);
    const sas = (await rw.run('swanctl', ['--list-sas'])).stdout;
    expect(sas).toMatch(/KE1_ML_KEM_768\/PPK/);
    expect(sas).toMatch(/local\s+'CN=alice' @ 2001:2::3\[4500\] \[2001:2:0:30::[0-9a-f]+\]/);
    expect(await ping(rw, undefined, 3)).toEqual({ sent: 3, received: 3 });
    expect((await rw.run('curl', ['-sS', '--max-time', '5', `http://[${GW_LAN}]:8080/`])).stdout).toBe('behind the gateway');
    const s = await eventually(async () => {
      const st = statusOf(`vpnpeers/${NS}/alice`) as PeerStatus | undefined;
      return st?.connected ? st : undefined;
    }, 15_000, 'alice connected in the status file');
    expect(s).toMatchObject({ postQuantum: true, remoteAddress: rw.address, ike: { ppk: true } });
  });

  it('reloads a changed file without restarting charon; established SAs stay', async () => {
    const from = gatewayLog.length;
    const saBefore = /site-b: #(\d+), ESTABLISHED/.exec(await swanctl(gw, '--list-sas', '--ike', 'site-b'))?.[1];
    writeManifest('site-c.yaml', sitePeer('site-c', '2001:2::9', '2001:2:0:21::/64', 'CN=site-c'));
    await loadedPeers(from, ['site-b', 'legacy', 'alice', 'site-c']);
    expect(await swanctl(gw, '--list-conns')).toMatch(/site-c:/);
    expect(await swanctl(gw, '--list-sas', '--ike', 'site-b')).toContain(`site-b: #${saBefore}, ESTABLISHED`);
    // A file removed: its peer is unloaded.
    const removed = gatewayLog.length;
    rmSync(join(manifests, 'site-c.yaml'));
    await loadedPeers(removed, ['site-b', 'legacy', 'alice']);
    expect(await swanctl(gw, '--list-conns')).not.toMatch(/site-c:/);
    expect(await charonPids()).toEqual(pidsAtStart);
    expect(await ping(site, SITE_LAN, 2)).toEqual({ sent: 2, received: 2 });
  });

  it('a file that stops parsing keeps its last good objects; a bad object fails alone with a clear message', async () => {
    const from = gatewayLog.length;
    writeFileSync(join(manifests, 'site-b.yaml'), 'apiVersion: qubesec.io/v1alpha1\nkind: VpnPeer\nmetadata: { name: site-b\nspec: [\n');
    const broken = await logSince(from, /manifest does not parse; keeping its previous objects/);
    expect(broken).toContain('"file":"site-b.yaml"');
    // A peer that overlaps site-b: invalid, reported by name and field; site-b keeps working.
    writeManifest('overlap.yaml', sitePeer('overlap', '2001:2::9', '2001:2:0:20:8000::/65', 'CN=other'));
    const invalid = await logSince(from, /"msg":"event".*"object":"VpnPeer edge\/overlap"/);
    expect(invalid).toContain('spec.site.remoteSubnets 2001:2:0:20:8000::/65 overlaps 2001:2:0:20::/64 of VpnPeer \\"site-b\\"');
    const s = await eventually(async () => {
      const st = statusOf(`vpnpeers/${NS}/overlap`) as PeerStatus | undefined;
      return st?.conditions[0]?.reason === 'Invalid' ? st : undefined;
    }, 15_000, 'overlap Invalid in the status file');
    expect(s.conditions[0]!.message).toMatch(/overlaps 2001:2:0:20::\/64/);
    expect(await swanctl(gw, '--list-conns')).toMatch(/site-b:/);
    expect(await ping(site, SITE_LAN, 2)).toEqual({ sent: 2, received: 2 });
    expect(await metric('qubesec_vpn_ready', { object: `vpngateways/${NS}/gw`, reason: 'Loaded' })).toBe(1);
    expect(await charonPids()).toEqual(pidsAtStart);
  });
});
