// The post-quantum VPN with real strongSwan: `qubesec vpn run` against a real API server drives the gateway's charon
// (sid strongSwan 6.1, OpenSSL 3.6, userspace ESP through kernel-libipsec: this kernel has no xfrm ESP) in a network
// namespace; a remote site, a road warrior (with the profile `qubesec vpn client-config` exports) and a classical
// peer run their own charons with hand-written swanctl.conf, as other people's peers would.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';
import type { V1Secret } from '@kubernetes/client-node';
import { startCluster, type TestCluster } from './cluster/cluster.js';
import { eventually, freePort } from './lib/env.js';
import { Kube } from './lib/kube.js';
import { readProfile, sitePeerConf, startPeerCharon, startVpnLab, type VpnHost, type VpnLab } from './lib/vpn-hosts.js';
import { testCa, tlsSecret, opaqueSecret, type TestCa } from '../controller/vpn/testing.js';
import type { PeerStatus } from '../controller/vpn/status.js';
import { PROJECT_ROOT } from '../controller/project.js';
import { createLogger } from '../controller/observability/log.js';
import { createMetrics } from '../controller/observability/metrics.js';
import { PkiController } from '../controller/pki/controller.js';
import { ppkFingerprint } from '../controller/vpn/controller.js';
import { KubernetesEventRecorder } from '../controller/sources/kubernetes.js';

const NS = 'vpn';
const G = { group: 'qubesec.io', version: 'v1alpha1', namespace: NS };
const GW_LAN = '198.18.210.1';
const SITE_LAN = '198.18.220.1';
const LEGACY_LAN = '198.18.221.1';
const HYBRID_IKE = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';
const HYBRID_ESP = 'aes256gcm16-x25519-ke1_mlkem768';
const CLI = join(PROJECT_ROOT, 'dist', 'controller', 'cli', 'main.js');

let cluster: TestCluster;
let kube: Kube;
let lab: VpnLab;
let gw: VpnHost;
let site: VpnHost;
let rw: VpnHost;
let legacy: VpnHost;
let ca: TestCa;
let siteCa: TestCa;
let gatewayProcess: ResultPromise;
let pki: PkiController;
let http: ResultPromise;
let ppk = Buffer.alloc(32, 1);
let metricsPort: number;
/** A series of the gateway's /metrics by name and labels (in any order). */
async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const line = text.split('\n').find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return Number(line?.split(' ').at(-1) ?? NaN);
}
/** The gateway controller's log lines (JSON). */
const gatewayLog: string[] = [];
/** Resolves once the controller logged that it loaded a configuration in `pqMode`, after `from` log lines. */
const loaded = (pqMode: string, from: number) => eventually(async () => (gatewayLog.slice(from).some((l) => l.includes('"msg":"VPN configuration loaded"') && l.includes(`"pqMode":"${pqMode}"`)) ? true : undefined), 15_000, `a ${pqMode} configuration loaded`);
const profileDir = mkdtempSync(join(tmpdir(), 'qubesec-vpn-profile-'));

const gatewayResource = (pqMode: 'strict' | 'compatible') => ({
  apiVersion: 'qubesec.io/v1alpha1', kind: 'VpnGateway', metadata: { name: 'gw', namespace: NS },
  spec: {
    listen: { address: '198.18.200.1' }, localSubnets: ['198.18.210.0/24'], pqMode, certificate: { secretName: 'gw-tls' },
    ppk: { secretName: 'gw-ppk', id: 'qubesec-ppk' }, pools: [{ name: 'rw', subnet: '198.18.230.0/24' }],
  },
});
const peer = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'qubesec.io/v1alpha1', kind: 'VpnPeer', metadata: { name, namespace: NS }, spec: { gateway: 'gw', ...spec } });
const status = async (name: string) => ((await kube.custom.getNamespacedCustomObject({ ...G, plural: 'vpnpeers', name })) as { status?: PeerStatus }).status;
const swanctl = (host: VpnHost, ...args: string[]) => host.run('swanctl', [...args, ...(host === gw ? ['--uri', 'unix:///run/qubesec-vpn/charon.vici'] : [])], { reject: false }).then((r) => r.stdout + r.stderr);
const ppkSecret = () => opaqueSecret('gw-ppk', { ppk }, NS);
/** The serial number of the certificate in the gw-tls Secret (the PKI's), lower-case hex, or undefined before one. */
async function gatewayCertificate(): Promise<string | undefined> {
  const secret = await kube.core.readNamespacedSecret({ namespace: NS, name: 'gw-tls' }).catch(() => undefined);
  const pem = secret?.data?.['tls.crt'];
  return pem ? new X509Certificate(Buffer.from(pem, 'base64')).serialNumber.toLowerCase() : undefined;
}

function siteConf(host: VpnHost, id: string, lan: string, ike: string, esp: string, childless: string): string {
  return sitePeerConf({ localAddress: host.address, remoteAddress: gw.address, id, gatewayId: 'CN=gw.vpn.test', localSubnet: `${lan}/24`, remoteSubnet: '198.18.210.0/24', ike, esp, childless, ppkHex: ppk.toString('hex') });
}

async function ping(host: VpnHost, source: string | undefined, count: number, interval = '0.2'): Promise<{ sent: number; received: number }> {
  const r = await host.run('ping', ['-n', '-c', String(count), '-i', interval, '-W', '2', ...(source ? ['-I', source] : []), GW_LAN], { reject: false });
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  return { sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0) };
}

/** The line of the gateway's CHILD_SA of a connection in `swanctl --list-sas`: its unique id, mode and ESP algorithms. */
async function childLine(connection: string): Promise<string> {
  const out = await swanctl(gw, '--list-sas', '--ike', connection);
  return out.split('\n').find((l) => /^\s+\S+: #\d+, reqid \d+/.test(l)) ?? '';
}

beforeAll(async () => {
  cluster = await startCluster();
  kube = new Kube(cluster.kc);
  await kube.installVpnCrds();
  await kube.core.createNamespace({ body: { metadata: { name: NS } } });
  lab = await startVpnLab(['gw', 'site', 'rw', 'legacy']);
  [gw, site, rw, legacy] = [lab.host('gw'), lab.host('site'), lab.host('rw'), lab.host('legacy')];
  await gw.run('ip', ['addr', 'add', `${GW_LAN}/32`, 'dev', 'lo']);
  await site.run('ip', ['addr', 'add', `${SITE_LAN}/32`, 'dev', 'lo']);
  await legacy.run('ip', ['addr', 'add', `${LEGACY_LAN}/32`, 'dev', 'lo']);
  // An HTTP server behind the gateway, on its LAN address (Node from the host, in the gateway's namespace).
  http = execa('ip', ['netns', 'exec', gw.netns, process.execPath, '-e', `require('http').createServer((q, s) => s.end('behind the gateway\\n')).listen(8080, '${GW_LAN}')`], { reject: false });

  // Certificates from QubeSec's PKI code (controller/pki/x509.ts): ECDSA P-384, as strongSwan 6.1 authenticates.
  ca = await testCa('CN=QubeSec VPN CA');
  siteCa = await testCa('CN=Site B CA');
  // The gateway's certificate is issued and renewed by QubeSec's PKI controller (a Certificate of a CA Issuer), every
  // 10 s (2 min lifetime, renewed 110 s before it ends): every test below runs across renewals.
  await kube.installQubesecCrds();
  const log = createLogger('warn', { component: 'pki' });
  pki = new PkiController(cluster.kc, { clusterResourceNamespace: NS, debounceMs: 100, defaultAlgorithm: 'ecdsa-p384' }, new KubernetesEventRecorder(cluster.kc, 'qubesec-pki', 'e2e', log), createMetrics(), log);
  await pki.start();
  await kube.apply(tlsSecret('vpn-ca', { certificatePem: ca.certificatePem, keyPem: ca.keyPem }, undefined, NS));
  await kube.apply({ apiVersion: 'qubesec.io/v1alpha1', kind: 'Issuer', metadata: { name: 'vpn-ca', namespace: NS }, spec: { ca: { secretName: 'vpn-ca' } } });
  await kube.apply({
    apiVersion: 'qubesec.io/v1alpha1', kind: 'Certificate', metadata: { name: 'gw-tls', namespace: NS },
    spec: { secretName: 'gw-tls', commonName: 'gw.vpn.test', algorithm: 'ecdsa-p384', usages: 'server-client', duration: '2m', renewBefore: '110s', issuerRef: { name: 'vpn-ca' } },
  });
  await eventually(async () => (await gatewayCertificate()) ?? undefined, 30_000, 'the gateway certificate issued by the PKI');
  const secrets: V1Secret[] = [
    tlsSecret('alice-tls', await ca.issue('CN=alice'), ca.certificatePem, NS),
    opaqueSecret('site-ca', { 'ca.crt': siteCa.certificatePem }, NS),
    ppkSecret(),
  ];
  for (const s of secrets) await kube.apply(s);
  await kube.apply(gatewayResource('strict'));
  await kube.apply(peer('site-b', { site: { remoteAddress: site.address, remoteSubnets: ['198.18.220.0/24'], identity: 'CN=site-b', caSecretName: 'site-ca' } }));
  await kube.apply(peer('legacy', { site: { remoteAddress: legacy.address, remoteSubnets: ['198.18.221.0/24'], identity: 'CN=legacy', caSecretName: 'site-ca' } }));
  await kube.apply(peer('alice', { remoteAccess: { identity: 'CN=alice', allowedSubnets: ['198.18.210.0/24'], pool: 'rw', certificateSecretName: 'alice-tls' } }));

  gatewayProcess = execa(process.execPath, [CLI, 'vpn', 'run', '--kubeconfig', cluster.kubeconfigPath, '--namespace', NS, '--gateway', 'gw',
    '--root', gw.root, '--netns', gw.netns, '--libipsec', '--debounce-ms', '200', '--status-interval-ms', '1000', '--log-level', 'debug',
    '--metrics-address', '127.0.0.1', '--metrics-port', String(metricsPort = await freePort())],
  { reject: false, stdin: 'ignore', buffer: false });
  createInterface({ input: gatewayProcess.stderr! }).on('line', (line) => {
    gatewayLog.push(line);
    if (process.env.QUBESEC_E2E_LOGS) process.stderr.write(`${line}\n`);
  });
  await eventually(async () => (/site-b:/.test(await swanctl(gw, '--list-conns')) ? true : undefined), 30_000, 'the gateway loaded its connections');

  const siteCert = await siteCa.issue('CN=site-b');
  const gwCa = { 'x509ca/gw-ca.crt': ca.certificatePem };
  await startPeerCharon(site, siteConf(site, 'CN=site-b', '198.18.220.0', HYBRID_IKE, HYBRID_ESP, 'prefer'), { ...gwCa, 'x509/me.crt': siteCert.certificatePem, 'private/me.key': siteCert.keyPem });
  const legacyCert = await siteCa.issue('CN=legacy');
  // A classical peer: X25519 only, and a CHILD_SA in IKE_AUTH as most peers make it.
  await startPeerCharon(legacy, siteConf(legacy, 'CN=legacy', '198.18.221.0', 'aes256gcm16-prfsha384-x25519', 'aes256gcm16-x25519', 'allow'), { ...gwCa, 'x509/me.crt': legacyCert.certificatePem, 'private/me.key': legacyCert.keyPem });
}, 300_000);

afterAll(async () => {
  gatewayProcess?.kill('SIGTERM');
  await gatewayProcess;
  await pki?.stop();
  http?.kill('SIGTERM');
  await http;
  await lab?.stop();
  await cluster?.stop();
  rmSync(profileDir, { recursive: true, force: true });
}, 60_000);

const charonPids = async () => (await execa('ip', ['netns', 'pids', gw.netns])).stdout.split('\n').filter((pid) => pid && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'charon');

describe('site to site through the strict gateway', () => {
  let pidsAtStart: string[];

  it('comes up with X25519 + ML-KEM-768 and the PPK on the IKE SA and on the CHILD_SA, made by CREATE_CHILD_SA (childless)', async () => {
    pidsAtStart = await charonPids();
    expect(pidsAtStart).toHaveLength(1);
    expect(await site.run('swanctl', ['--initiate', '--child', 'net']).then((r) => r.stdout)).toMatch(/CHILD_SA net\{\d+\} established/);
    const sas = await swanctl(gw, '--list-sas', '--ike', 'site-b');
    expect(sas).toMatch(/site-b: #\d+, ESTABLISHED, IKEv2/);
    expect(sas).toMatch(/AES_GCM_16-256\/PRF_HMAC_SHA2_384\/CURVE_25519\/KE1_ML_KEM_768\/PPK/);
    expect(sas).toMatch(/site-b: #\d+, reqid \d+, INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-256\/CURVE_25519\/KE1_ML_KEM_768/);
  });

  it('carries ping and HTTP, as ESP in UDP 4500 on the wire', async () => {
    const capture = site.run('tcpdump', ['-i', 'eth0', '-nn', '-c', '6', '-l', 'udp', 'port', '4500'], { reject: false });
    await new Promise((r) => setTimeout(r, 1000));
    expect(await ping(site, SITE_LAN, 5)).toEqual({ sent: 5, received: 5 });
    const wire = (await capture).stdout;
    expect(wire).toMatch(/198\.18\.200\.2\.4500 > 198\.18\.200\.1\.4500: UDP-encap: ESP\(spi=0x[0-9a-f]+,seq=0x[0-9a-f]+\)/);
    expect(wire).not.toMatch(/ICMP/);
    const curl = await site.run('curl', ['-sS', '--max-time', '5', '--interface', SITE_LAN, `http://${GW_LAN}:8080/`]);
    expect(curl.stdout).toBe('behind the gateway');
  });

  it('rekeys the CHILD_SA and the IKE SA with the hybrid exchange again', async () => {
    const before = await childLine('site-b');
    await swanctl(gw, '--rekey', '--child', 'site-b');
    const after = await eventually(async () => {
      const line = await childLine('site-b');
      return line && line !== before ? line : undefined;
    }, 15_000, 'a rekeyed CHILD_SA');
    expect(after).toMatch(/KE1_ML_KEM_768/);
    const ikeBefore = /site-b: #(\d+)/.exec(await swanctl(gw, '--list-sas', '--ike', 'site-b'))?.[1];
    await swanctl(gw, '--rekey', '--ike', 'site-b');
    const rekeyed = await eventually(async () => {
      const out = await swanctl(gw, '--list-sas', '--ike', 'site-b');
      const id = /site-b: #(\d+), ESTABLISHED/.exec(out)?.[1];
      return id && id !== ikeBefore ? out : undefined;
    }, 15_000, 'a rekeyed IKE SA');
    expect(rekeyed).toMatch(/CURVE_25519\/KE1_ML_KEM_768\/PPK/);
    expect(await ping(site, SITE_LAN, 3)).toEqual({ sent: 3, received: 3 });
  });

  it('reports the SA in the VpnPeer status', async () => {
    const s = await eventually(async () => {
      const st = await status('site-b');
      return st?.connected && (st.children[0]?.bytesIn ?? 0) > 0 ? st : undefined;
    }, 15_000, 'site-b status');
    expect(s).toMatchObject({ connected: true, postQuantum: true, remoteAddress: site.address, ike: { encryption: 'AES_GCM_16-256', prf: 'PRF_HMAC_SHA2_384', keyExchanges: ['CURVE_25519', 'ML_KEM_768'] } });
    expect(s.children.find((c) => c.state === 'INSTALLED')).toMatchObject({ encryption: 'AES_GCM_16-256', keyExchanges: ['CURVE_25519', 'ML_KEM_768'] });
    expect(s.conditions[0]).toMatchObject({ type: 'Ready', status: 'True', reason: 'Connected' });
  });

  it('refuses the classical peer with NO_PROPOSAL_CHOSEN and says why in an Event', async () => {
    const out = await legacy.run('swanctl', ['--initiate', '--child', 'net', '--timeout', '10'], { reject: false });
    expect(out.stdout + out.stderr).toMatch(/NO_PROPOSAL_CHOSEN/);
    const notes = await eventually(async () => {
      const n = await kube.eventNotes(NS, 'VpnPeer', 'legacy');
      return n.some((e) => e.startsWith('ProposalRefused')) ? n : undefined;
    }, 15_000, 'the ProposalRefused Event');
    expect(notes.find((e) => e.startsWith('ProposalRefused'))).toMatch(/198\.18\.200\.4 offered IKE:AES_GCM_16_256\/PRF_HMAC_SHA2_384\/CURVE_25519 \(no ML-KEM\): refused with NO_PROPOSAL_CHOSEN, strict mode requires aes256gcm16-prfsha384-x25519-ke1_mlkem768/);
    expect((await status('legacy'))?.connected).toBe(false);
    expect(await metric('qubesec_vpn_proposals_refused_total', { peer: 'legacy', offered_ml_kem: 'false' })).toBeGreaterThanOrEqual(1);
  });

  it('in compatible mode accepts the classical peer and reports it classical, without restarting charon or dropping the site', async () => {
    const siteSa = /site-b: #(\d+), ESTABLISHED/.exec(await swanctl(gw, '--list-sas', '--ike', 'site-b'))?.[1];
    const mark = gatewayLog.length;
    await kube.apply(gatewayResource('compatible'));
    await loaded('compatible', mark);
    expect((await legacy.run('swanctl', ['--initiate', '--child', 'net', '--timeout', '10'])).stdout).toMatch(/CHILD_SA net\{\d+\} established/);
    const s = await eventually(async () => ((await status('legacy'))?.connected ? status('legacy') : undefined), 15_000, 'legacy status');
    expect(s).toMatchObject({ connected: true, postQuantum: false, ike: { keyExchanges: ['CURVE_25519'] } });
    expect(s!.conditions[0]).toMatchObject({ reason: 'ConnectedClassical' });
    expect((await kube.eventNotes(NS, 'VpnPeer', 'legacy')).some((e) => /^Classical: .*not post-quantum/.test(e))).toBe(true);
    expect(await ping(legacy, LEGACY_LAN, 3)).toEqual({ sent: 3, received: 3 });
    expect(await metric('qubesec_vpn_ike_sas', { peer: 'legacy', key_exchange: 'classical' })).toBe(1);
    expect(await metric('qubesec_vpn_ike_sas', { peer: 'site-b', key_exchange: 'hybrid' })).toBe(1);
    // The same charon, and the site's IKE SA untouched by the reload.
    expect(await charonPids()).toEqual(pidsAtStart);
    expect(await swanctl(gw, '--list-sas', '--ike', 'site-b')).toContain(`site-b: #${siteSa}, ESTABLISHED`);
    await legacy.run('swanctl', ['--terminate', '--ike', 'gw']);
    const strictMark = gatewayLog.length;
    await kube.apply(gatewayResource('strict'));
    await loaded('strict', strictMark);
  });

  it('strict: a hybrid IKE SA does not let a classical CHILD_SA through, nor one made in IKE_AUTH without its own exchange', async () => {
    legacy.write('/etc/swanctl/swanctl.conf', siteConf(legacy, 'CN=legacy', '198.18.221.0', HYBRID_IKE, 'aes256gcm16-x25519', 'prefer'), 0o600);
    await legacy.run('swanctl', ['--load-conns']);
    const classicalChild = await legacy.run('swanctl', ['--initiate', '--child', 'net', '--timeout', '10'], { reject: false });
    expect(classicalChild.stdout + classicalChild.stderr).toMatch(/NO_PROPOSAL_CHOSEN/);
    const notes = await eventually(async () => {
      const n = (await kube.eventNotes(NS, 'VpnPeer', 'legacy')).filter((e) => e.includes('offered ESP:'));
      return n.length > 0 ? n : undefined;
    }, 15_000, 'the CHILD_SA ProposalRefused Event');
    expect(notes[0]).toMatch(/^ProposalRefused: 198\.18\.200\.4 offered ESP:AES_GCM_16_256\/CURVE_25519\/NO_EXT_SEQ \(no ML-KEM\): refused with NO_PROPOSAL_CHOSEN, strict mode requires aes256gcm16-x25519-ke1_mlkem768$/);
    await legacy.run('swanctl', ['--terminate', '--ike', 'gw'], { reject: false });
    // childless = never: the CHILD_SA would come with IKE_AUTH, keyed from the IKE SA with no exchange of its own.
    legacy.write('/etc/swanctl/swanctl.conf', siteConf(legacy, 'CN=legacy', '198.18.221.0', HYBRID_IKE, HYBRID_ESP, 'never'), 0o600);
    await legacy.run('swanctl', ['--load-conns']);
    const inAuth = await legacy.run('swanctl', ['--initiate', '--child', 'net', '--timeout', '10'], { reject: false });
    expect(inAuth.exitCode).not.toBe(0);
    expect(gatewayLog.some((l) => l.includes('peer did not initiate a childless IKE_SA'))).toBe(true);
    expect(await swanctl(gw, '--list-sas', '--ike', 'legacy')).not.toMatch(/INSTALLED/);
    await legacy.run('swanctl', ['--terminate', '--ike', 'gw'], { reject: false });
  });

  it('reports a peer that fails authentication (a PPK it does not share) with the reason', async () => {
    const wrong = siteConf(legacy, 'CN=legacy', '198.18.221.0', HYBRID_IKE, HYBRID_ESP, 'prefer').replace(/secret = 0x[0-9a-f]+/, `secret = 0x${'ee'.repeat(32)}`);
    legacy.write('/etc/swanctl/swanctl.conf', wrong, 0o600);
    await legacy.run('swanctl', ['--load-all', '--noprompt']);
    const result = await legacy.run('swanctl', ['--initiate', '--child', 'net', '--timeout', '10'], { reject: false });
    expect(result.stdout + result.stderr).toMatch(/AUTHENTICATION_FAILED/);
    const notes = await eventually(async () => {
      const n = (await kube.eventNotes(NS, 'VpnPeer', 'legacy')).filter((e) => e.startsWith('AuthenticationFailed'));
      return n.length > 0 ? n : undefined;
    }, 15_000, 'the AuthenticationFailed Event');
    expect(notes[0]).toBe('AuthenticationFailed: 198.18.200.4 (CN=legacy) failed IKE_AUTH: signature validation failed, looking for another key (the gateway uses PPK qubesec-ppk: a peer holding another value for it fails exactly so)');
    expect(await metric('qubesec_vpn_authentications_failed_total', { peer: 'legacy' })).toBeGreaterThanOrEqual(1);
    await legacy.run('swanctl', ['--terminate', '--ike', 'gw'], { reject: false });
  });

  it("takes the PKI's renewed certificates and a rotated PPK while pinging: established SAs stay, the reauthentication uses both", async () => {
    const listed = async () => (await swanctl(gw, '--list-certs')).toLowerCase().replace(/:/g, '');
    const saBefore = /site-b: #(\d+), ESTABLISHED/.exec(await swanctl(gw, '--list-sas', '--ike', 'site-b'))?.[1];
    const pinging = ping(site, SITE_LAN, 100, '0.2');
    const first = (await gatewayCertificate())!;
    // A renewal by the PKI (every 10 s here) reaches charon while the ping runs...
    const renewed = await eventually(async () => {
      const serial = await gatewayCertificate();
      return serial && serial !== first && (await listed()).includes(serial.replace(/^0+/, '')) ? serial : undefined;
    }, 20_000, 'a renewed certificate loaded');
    // ...and the PPK is rotated, in the gateway's Secret and by the site's operator.
    ppk = Buffer.alloc(32, 2);
    await kube.apply(ppkSecret());
    site.write('/etc/swanctl/swanctl.conf', siteConf(site, 'CN=site-b', '198.18.220.0', HYBRID_IKE, HYBRID_ESP, 'prefer'), 0o600);
    await site.run('swanctl', ['--load-creds', '--noprompt']);
    const fingerprint = `"ppkFingerprint":"${ppkFingerprint(ppk)}"`;
    await eventually(async () => (gatewayLog.some((l) => l.includes('"msg":"VPN configuration loaded"') && l.includes(fingerprint)) ? true : undefined), 15_000, 'the rotated PPK loaded');
    // The loads left the established IKE SA alone.
    expect(await swanctl(gw, '--list-sas', '--ike', 'site-b')).toContain(`site-b: #${saBefore}, ESTABLISHED`);
    const before = /gw: #(\d+)/.exec((await site.run('swanctl', ['--list-sas'])).stdout)?.[1];
    await site.run('swanctl', ['--rekey', '--ike', 'gw', '--reauth']);
    const after = await eventually(async () => {
      const out = (await site.run('swanctl', ['--list-sas'])).stdout;
      const id = /gw: #(\d+), ESTABLISHED/.exec(out)?.[1];
      return id && id !== before && /PPK/.test(out) ? out : undefined;
    }, 20_000, 'the reauthenticated IKE SA');
    expect(after).toMatch(/KE1_ML_KEM_768\/PPK/);
    expect(renewed).not.toBe(first);
    const { sent, received } = await pinging;
    // At most what one rekey may cost (make-before-break keeps even that near zero).
    expect(sent).toBe(100);
    expect(sent - received).toBeLessThanOrEqual(2);
    expect(await charonPids()).toEqual(pidsAtStart);
  }, 60_000);
});

describe('remote access with the exported profile', () => {
  it('exports a profile that a Linux strongSwan client loads, gets a virtual IP and reaches the allowed subnet', async () => {
    const out = await execa(process.execPath, [CLI, 'vpn', 'client-config', 'alice', '--namespace', NS, '--out', profileDir, '--kubeconfig', cluster.kubeconfigPath]);
    expect(out.stdout).toMatch(/wrote the profile of VpnPeer vpn\/alice/);
    const files = readProfile(profileDir);
    expect(Object.keys(files).sort()).toEqual(['private/client.key', 'swanctl.conf', 'x509/client.crt', 'x509ca/gateway-ca.crt']);
    expect(statSync(join(profileDir, 'private/client.key')).mode & 0o077).toBe(0);
    const { 'swanctl.conf': conf, ...rest } = files;
    await startPeerCharon(rw, conf!, rest);
    expect((await rw.run('swanctl', ['--initiate', '--child', 'qubesec-alice'])).stdout).toMatch(/installing new virtual IP 198\.18\.230\.\d+/);
    const sas = (await rw.run('swanctl', ['--list-sas'])).stdout;
    expect(sas).toMatch(/KE1_ML_KEM_768\/PPK/);
    expect(sas).toMatch(/local\s+'CN=alice' @ 198\.18\.200\.3\[4500\] \[198\.18\.230\.\d+\]/);
    expect(await ping(rw, undefined, 3)).toEqual({ sent: 3, received: 3 });
    expect((await rw.run('curl', ['-sS', '--max-time', '5', `http://${GW_LAN}:8080/`])).stdout).toBe('behind the gateway');
    const s = await eventually(async () => ((await status('alice'))?.connected ? status('alice') : undefined), 15_000, 'alice status');
    expect(s).toMatchObject({ connected: true, postQuantum: true, ike: { ppk: true } });
  });
});

describe('bad resources', () => {
  it('fail alone with a clear condition and Event; the others keep working', async () => {
    await kube.apply(peer('overlapping', { site: { remoteAddress: '198.18.200.9', remoteSubnets: ['198.18.220.128/25'], identity: 'CN=other', caSecretName: 'site-ca' } }));
    await kube.apply(peer('unknown-ca', { site: { remoteAddress: '198.18.200.10', remoteSubnets: ['198.18.222.0/24'], identity: 'CN=x', caSecretName: 'no-such-ca' } }));
    await kube.apply(peer('bad-identity', { remoteAccess: { identity: 'CN=bob" }', allowedSubnets: ['198.18.210.0/24'], pool: 'rw' } }));
    const expected: Record<string, RegExp> = {
      overlapping: /spec\.site\.remoteSubnets 198\.18\.220\.128\/25 overlaps 198\.18\.220\.0\/24 of VpnPeer "site-b"/,
      'unknown-ca': /spec\.site\.caSecretName names Secret "no-such-ca", which does not exist \(unknown CA\)/,
      'bad-identity': /spec\.remoteAccess\.identity "CN=bob\\" }": the value of CN may hold only/,
    };
    for (const [name, message] of Object.entries(expected)) {
      const s = await eventually(async () => ((await status(name))?.conditions?.[0]?.reason === 'Invalid' ? status(name) : undefined), 15_000, `${name} status`);
      expect(s!.conditions[0]!.message).toMatch(message);
      expect((await kube.eventNotes(NS, 'VpnPeer', name)).some((e) => e.startsWith('Invalid: ') && message.test(e))).toBe(true);
    }
    const conns = await swanctl(gw, '--list-conns');
    expect(conns).toMatch(/site-b:/);
    expect(conns).not.toMatch(/overlapping:|unknown-ca:|bad-identity:/);
    expect(await metric('qubesec_vpn_invalid_peers', {})).toBe(3);
    const gateway = await eventually(async () => {
      const g = (await kube.custom.getNamespacedCustomObject({ ...G, plural: 'vpngateways', name: 'gw' })) as { status?: { invalidPeers?: number; peers?: number; pqMode?: string; conditions?: { reason: string; message: string }[] } };
      return g.status?.invalidPeers === 3 ? g.status : undefined;
    }, 15_000, 'the gateway status');
    expect(gateway).toMatchObject({ peers: 3, pqMode: 'strict', conditions: [{ reason: 'Loaded', message: '3 peers loaded into charon, 3 invalid (see their status)' }] });
    expect(await ping(site, SITE_LAN, 3)).toEqual({ sent: 3, received: 3 });
  });
});
