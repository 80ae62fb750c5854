// The VPN gateway's lifecycle with real strongSwan and a real API server: PPKs (RFC 8784) that `qubesec vpn run` makes
// from the QRNG service (a real `qubesec qrng serve`) and rotates every 30 s while a site pings through the tunnel, a
// site still holding the previous PPK accepted until the next rotation and refused after it, failing closed while the
// service has no quantum source, a change of the listen ports (a charon restart), and the VpnGateway's deletion
// (everything unloaded, SAs terminated) and re-creation. Charons run in network namespaces with userspace ESP.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';
import type { V1Secret } from '@kubernetes/client-node';
import { startCluster, type TestCluster } from './cluster/cluster.js';
import { nodeHttps } from './lib/clients.js';
import { eventually, freePort, metricValue } from './lib/env.js';
import { Kube } from './lib/kube.js';
import { startTestQrngService, type TestQrngService } from './lib/qrng-service.js';
import { sitePeerConf, startPeerCharon, startVpnLab, type VpnHost, type VpnLab } from './lib/vpn-hosts.js';
import { testCa, tlsSecret, opaqueSecret, type TestCa } from '../controller/vpn/testing.js';
import { PROJECT_ROOT } from '../controller/project.js';

const NS = 'vpn';
const G = { group: 'qubesec.io', version: 'v1alpha1', namespace: NS };
const HYBRID_IKE = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';
const HYBRID_ESP = 'aes256gcm16-x25519-ke1_mlkem768';
const CLI = join(PROJECT_ROOT, 'dist', 'controller', 'cli', 'main.js');
const TOKEN = 'vpn-token-0123456789';
const ROTATION_MS = 30_000;
const GW_LAN = '198.18.210.1';

let cluster: TestCluster;
let kube: Kube;
let lab: VpnLab;
let gw: VpnHost;
/** site-b follows every rotation; site-c keeps the PPK it was given first (an operator who has not updated yet). */
let siteB: VpnHost;
let siteC: VpnHost;
let ca: TestCa;
let qrng: TestQrngService;
let gatewayProcess: ResultPromise;
let metricsPort: number;
const gatewayLog: string[] = [];
const profileDir = mkdtempSync(join(tmpdir(), 'qubesec-vpn-life-'));

const gatewayResource = (listen: Record<string, unknown> = {}) => ({
  apiVersion: 'qubesec.io/v1alpha1', kind: 'VpnGateway', metadata: { name: 'gw', namespace: NS },
  spec: {
    listen: { address: '198.18.200.1', ...listen }, localSubnets: ['198.18.210.0/24'], certificate: { secretName: 'gw-tls' },
    ppk: { generate: { rotationInterval: `${ROTATION_MS / 1000}s` } }, pools: [{ name: 'rw', subnet: '198.18.230.0/24' }],
  },
});
const peer = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'qubesec.io/v1alpha1', kind: 'VpnPeer', metadata: { name, namespace: NS }, spec: { gateway: 'gw', ...spec } });
const swanctl = (host: VpnHost, ...args: string[]) => host.run('swanctl', [...args, ...(host === gw ? ['--uri', 'unix:///run/qubesec-vpn/charon.vici'] : [])], { reject: false }).then((r) => r.stdout + r.stderr);
const metrics = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
const readyz = async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status;
const gatewayUid = async () => ((await kube.custom.getNamespacedCustomObject({ ...G, plural: 'vpngateways', name: 'gw' })) as { metadata: { uid: string } }).metadata.uid;

interface Ppks { id: string; hex: string; created: Date; previousId: string | undefined; secret: V1Secret }
/** The generated PPK Secret, decoded; undefined before it exists. */
async function ppks(): Promise<Ppks | undefined> {
  const secret = await kube.core.readNamespacedSecret({ namespace: NS, name: 'gw-ppk' }).catch(() => undefined);
  if (!secret?.data) return undefined;
  const text = (key: string) => (secret.data![key] === undefined ? undefined : Buffer.from(secret.data![key], 'base64').toString('utf8'));
  return { id: text('id')!, hex: Buffer.from(secret.data.ppk!, 'base64').toString('hex'), created: new Date(text('created')!), previousId: text('previous-id'), secret };
}
/** The next PPK after `than` (or the first one). */
const nextPpk = (than: string | undefined, timeoutMs = ROTATION_MS + 20_000) => eventually(async () => {
  const p = await ppks();
  return p && p.id !== than ? p : undefined;
}, timeoutMs, `a PPK after ${than ?? 'none'}`);
/** Resolves once the controller logged a load with these PPK ids (current first), after `from` log lines. */
const loadedPpks = (ids: string[], from = 0) => eventually(async () => (gatewayLog.slice(from).some((l) => l.includes('"msg":"VPN configuration loaded"') && l.includes(`"ppkIds":${JSON.stringify(ids)}`)) ? true : undefined), 15_000, `PPKs ${ids.join(', ')} loaded`);

function siteConf(host: VpnHost, id: string, lan: string, ppk: Ppks): string {
  return sitePeerConf({ localAddress: host.address, remoteAddress: gw.address, id, gatewayId: 'CN=gw.vpn.test', localSubnet: `${lan}/24`, remoteSubnet: '198.18.210.0/24', ike: HYBRID_IKE, esp: HYBRID_ESP, childless: 'prefer', ppkHex: ppk.hex, ppkId: ppk.id });
}
const confB = (ppk: Ppks) => siteConf(siteB, 'CN=site-b', '198.18.220.0', ppk);
const confC = (ppk: Ppks) => siteConf(siteC, 'CN=site-c', '198.18.221.0', ppk);

/** Loads a new swanctl.conf into a site's charon (its PPK too: swanctl unloads the secret it replaces). */
async function reload(host: VpnHost, conf: string): Promise<void> {
  host.write('/etc/swanctl/swanctl.conf', conf, 0o600);
  await host.run('swanctl', ['--load-all', '--noprompt']);
}
/** The gateway's IKE SA of a connection: its unique id and whether it has the PPK, or undefined without one. */
async function gatewaySa(connection: string): Promise<{ id: string; ppk: boolean } | undefined> {
  const out = await swanctl(gw, '--list-sas', '--ike', connection);
  const id = new RegExp(`${connection}: #(\\d+), ESTABLISHED`).exec(out)?.[1];
  return id ? { id, ppk: /KE1_ML_KEM_768\/PPK/.test(out) } : undefined;
}
/**
 * A site's operator takes a new PPK: loads it, brings up a new IKE SA with it (a reauthentication would run on the
 * established SA's own configuration, the old PPK id), then ends the old one: make before break.
 */
async function switchPpk(host: VpnHost, conf: string): Promise<void> {
  const old = /gw: #(\d+), ESTABLISHED/.exec((await host.run('swanctl', ['--list-sas'])).stdout)?.[1];
  await reload(host, conf);
  expect((await host.run('swanctl', ['--initiate', '--child', 'net', '--timeout', '10'])).stdout).toMatch(/CHILD_SA net\{\d+\} established/);
  if (old) await host.run('swanctl', ['--terminate', '--ike-id', old, '--timeout', '5'], { reject: false });
}
/** Reauthenticates a site's IKE SA (a new IKE_AUTH, with the PPK it holds) and returns the new SA's line. */
async function reauthenticate(host: VpnHost): Promise<string> {
  const before = /gw: #(\d+)/.exec((await host.run('swanctl', ['--list-sas'])).stdout)?.[1];
  await host.run('swanctl', ['--rekey', '--ike', 'gw', '--reauth']);
  return eventually(async () => {
    const out = (await host.run('swanctl', ['--list-sas'])).stdout;
    const id = /gw: #(\d+), ESTABLISHED/.exec(out)?.[1];
    return id && id !== before && /INSTALLED/.test(out) ? out : undefined;
  }, 20_000, `${host.name} reauthenticated`);
}
async function ping(host: VpnHost, source: string, seconds: number): Promise<{ sent: number; received: number }> {
  const r = await host.run('ping', ['-n', '-i', '0.2', '-w', String(seconds), '-W', '2', '-I', source, GW_LAN], { reject: false });
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  return { sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0) };
}
/** A process listed in the namespace may exit before its name is read (charon restarting): it is no charon then. */
const commOf = (pid: string) => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
};
const charonPids = async () => (await execa('ip', ['netns', 'pids', gw.netns])).stdout.split('\n').filter((pid) => pid && commOf(pid) === 'charon');
/** Blocks the service's pool gathered before a fault may still be served; resolves once it has seen the fault and refuses. */
const serviceRefusing = () => eventually(async () => {
  const reply = await nodeHttps(`https://127.0.0.1:${qrng.port}/v1/entropy`, { method: 'POST', ca: qrng.caPem, headers: { Authorization: `Bearer ${TOKEN}` } }, '{"block_size": 32}');
  return reply.status === 503 ? true : undefined;
}, 30_000, 'the service refusing');
const servedToVpn = async () => metricValue(await qrng.metrics(), 'qubesec_qrng_served_bytes_total{client="vpn"}');

beforeAll(async () => {
  cluster = await startCluster();
  kube = new Kube(cluster.kc);
  await kube.installVpnCrds();
  await kube.core.createNamespace({ body: { metadata: { name: NS } } });
  qrng = await startTestQrngService([], { vpn: TOKEN });
  await writeFile(join(qrng.dir, 'vpn-token'), `${TOKEN}\n`);
  lab = await startVpnLab(['gw', 'site-b', 'site-c']);
  [gw, siteB, siteC] = [lab.host('gw'), lab.host('site-b'), lab.host('site-c')];
  await gw.run('ip', ['addr', 'add', `${GW_LAN}/32`, 'dev', 'lo']);
  await siteB.run('ip', ['addr', 'add', '198.18.220.1/32', 'dev', 'lo']);
  await siteC.run('ip', ['addr', 'add', '198.18.221.1/32', 'dev', 'lo']);
  ca = await testCa('CN=QubeSec VPN CA');
  for (const s of [
    tlsSecret('gw-tls', await ca.issue('CN=gw.vpn.test'), ca.certificatePem, NS),
    tlsSecret('alice-tls', await ca.issue('CN=alice'), ca.certificatePem, NS),
    opaqueSecret('site-ca', { 'ca.crt': ca.certificatePem }, NS),
  ]) await kube.apply(s);
  await kube.apply(gatewayResource());
  await kube.apply(peer('site-b', { site: { remoteAddress: siteB.address, remoteSubnets: ['198.18.220.0/24'], identity: 'CN=site-b', caSecretName: 'site-ca' } }));
  await kube.apply(peer('site-c', { site: { remoteAddress: siteC.address, remoteSubnets: ['198.18.221.0/24'], identity: 'CN=site-c', caSecretName: 'site-ca' } }));
  await kube.apply(peer('alice', { remoteAccess: { identity: 'CN=alice', allowedSubnets: ['198.18.210.0/24'], pool: 'rw', certificateSecretName: 'alice-tls' } }));

  gatewayProcess = execa(process.execPath, [CLI, 'vpn', 'run', '--kubeconfig', cluster.kubeconfigPath, '--namespace', NS, '--gateway', 'gw',
    '--root', gw.root, '--netns', gw.netns, '--libipsec', '--debounce-ms', '200', '--status-interval-ms', '1000', '--log-level', 'debug',
    '--entropy-source', `https://127.0.0.1:${qrng.port}`, '--entropy-source-ca', join(qrng.dir, 'ca.pem'), '--entropy-source-token-file', join(qrng.dir, 'vpn-token'),
    '--metrics-address', '127.0.0.1', '--metrics-port', String(metricsPort = await freePort())],
  { reject: false, stdin: 'ignore', buffer: false });
  createInterface({ input: gatewayProcess.stderr! }).on('line', (line) => {
    gatewayLog.push(line);
    if (process.env.QUBESEC_E2E_LOGS) process.stderr.write(`${line}\n`);
  });
}, 300_000);

afterAll(async () => {
  gatewayProcess?.kill('SIGTERM');
  await gatewayProcess;
  await lab?.stop();
  await qrng?.stop();
  await cluster?.stop();
  rmSync(profileDir, { recursive: true, force: true });
}, 60_000);

let first: Ppks;
let second: Ppks;
let third: Ppks;

describe('PPKs made and rotated by QubeSec', () => {
  it('makes the PPK Secret from the QRNG service, owned by the VpnGateway; sites holding it come up with /PPK', async () => {
    first = await nextPpk(undefined, 30_000);
    expect(first.id).toMatch(/^qubesec-ppk-\d{8}T\d{6}Z$/);
    expect(first.hex).toHaveLength(64);
    expect(first.previousId).toBeUndefined();
    expect(first.secret.metadata?.ownerReferences).toEqual([{ apiVersion: 'qubesec.io/v1alpha1', kind: 'VpnGateway', name: 'gw', uid: await gatewayUid(), controller: true }]);
    expect(await servedToVpn()).toBeGreaterThanOrEqual(32);
    const made = (await kube.eventNotes(NS, 'VpnGateway', 'gw')).find((e) => e.startsWith('PpkRotated'));
    expect(made).toMatch(new RegExp(`^PpkRotated: made the PPK in Secret vpn/gw-ppk from https://127\\.0\\.0\\.1:${qrng.port}: peers now send ${first.id} `));
    await loadedPpks([first.id]);
    const files = { 'x509ca/gw-ca.crt': ca.certificatePem };
    const b = await ca.issue('CN=site-b');
    const c = await ca.issue('CN=site-c');
    await startPeerCharon(siteB, confB(first), { ...files, 'x509/me.crt': b.certificatePem, 'private/me.key': b.keyPem });
    await startPeerCharon(siteC, confC(first), { ...files, 'x509/me.crt': c.certificatePem, 'private/me.key': c.keyPem });
    for (const site of [siteB, siteC]) expect((await site.run('swanctl', ['--initiate', '--child', 'net'])).stdout).toMatch(/CHILD_SA net\{\d+\} established/);
    expect(await gatewaySa('site-b')).toMatchObject({ ppk: true });
    expect(await gatewaySa('site-c')).toMatchObject({ ppk: true });
  });

  it('rotates on the interval while a site pings: SAs stay; the site with the new PPK and the one with the previous both reauthenticate', async () => {
    const saB = (await gatewaySa('site-b'))!.id;
    const saC = (await gatewaySa('site-c'))!.id;
    const mark = gatewayLog.length;
    // From now until a few seconds after the rotation is due.
    const pinging = ping(siteB, '198.18.220.1', Math.ceil((first.created.getTime() + ROTATION_MS - Date.now()) / 1000) + 12);
    second = await nextPpk(first.id);
    expect(second.previousId).toBe(first.id);
    expect(second.hex).not.toBe(first.hex);
    await loadedPpks([second.id, first.id], mark);
    // The load touched no established SA.
    expect((await gatewaySa('site-b'))?.id).toBe(saB);
    expect((await gatewaySa('site-c'))?.id).toBe(saC);
    // site-b's operator takes the new PPK; site-c's has not yet, and is still accepted (charon logs the id it used).
    await switchPpk(siteB, confB(second));
    expect(await gatewaySa('site-b')).toMatchObject({ ppk: true });
    expect(gatewayLog.slice(mark).some((l) => l.includes('<site-b|') && l.includes(`using PPK for PPK_ID '${second.id}'`))).toBe(true);
    expect(await reauthenticate(siteC)).toMatch(/KE1_ML_KEM_768\/PPK/);
    expect(gatewayLog.slice(mark).some((l) => l.includes('<site-c|') && l.includes(`using PPK for PPK_ID '${first.id}'`))).toBe(true);
    const { sent, received } = await pinging;
    expect(sent).toBeGreaterThan(40);
    // At most what one rekey may cost.
    expect(sent - received).toBeLessThanOrEqual(2);
    expect(metricValue(await metrics(), 'qubesec_vpn_ppk_rotations_total{result="ok"}')).toBe(2);
    expect(metricValue(await metrics(), 'qubesec_vpn_ppk_age_seconds')).toBeLessThan(ROTATION_MS / 1000);
  }, 90_000);

  it('client-config exports the current PPK', async () => {
    const out = await execa(process.execPath, [CLI, 'vpn', 'client-config', 'alice', '--namespace', NS, '--out', profileDir, '--kubeconfig', cluster.kubeconfigPath]);
    expect(out.stdout).toMatch(/wrote the profile of VpnPeer vpn\/alice/);
    const conf = readFileSync(join(profileDir, 'swanctl.conf'), 'utf8');
    expect(conf).toContain(`ppk_id = ${second.id}\n`);
    expect(conf).toContain(`secret = 0x${second.hex}\n`);
    expect(conf).not.toContain(first.hex);
  });

  it('refuses the PPK rotated out at the next rotation, with an AuthenticationFailed Event naming it', async () => {
    const mark = gatewayLog.length;
    third = await nextPpk(second.id);
    expect(third.previousId).toBe(second.id);
    await loadedPpks([third.id, second.id], mark);
    await siteC.run('swanctl', ['--terminate', '--ike', 'gw'], { reject: false });
    const refused = await siteC.run('swanctl', ['--initiate', '--child', 'net', '--timeout', '10'], { reject: false });
    expect(refused.stdout + refused.stderr).toMatch(/AUTHENTICATION_FAILED/);
    const note = await eventually(async () => (await kube.eventNotes(NS, 'VpnPeer', 'site-c')).find((e) => e.startsWith('AuthenticationFailed')), 15_000, 'the AuthenticationFailed Event');
    expect(note).toBe(`AuthenticationFailed: ${siteC.address} (CN=site-c) failed IKE_AUTH: PPK required but no PPK found for '${first.id}' (the gateway accepts PPK ${third.id} and ${second.id}: the peer needs the current one, ${third.id})`);
    // site-b holds the previous PPK now: still accepted.
    expect(await reauthenticate(siteB)).toMatch(/KE1_ML_KEM_768\/PPK/);
    expect(gatewayLog.slice(mark).some((l) => l.includes('<site-b|') && l.includes(`using PPK for PPK_ID '${second.id}'`))).toBe(true);
  }, 90_000);

  it('fails closed while the QRNG service has no quantum source: the current PPK stays, EntropyUnavailable; rotates once it is back', async () => {
    qrng.source.fault = 'unavailable';
    await serviceRefusing();
    const current = (await ppks())!;
    const due = current.created.getTime() + ROTATION_MS;
    const note = await eventually(async () => (await kube.eventNotes(NS, 'VpnGateway', 'gw')).find((e) => e.startsWith('EntropyUnavailable')), ROTATION_MS + 20_000, 'the EntropyUnavailable Event');
    expect(Date.now()).toBeGreaterThanOrEqual(due);
    expect(note).toMatch(new RegExp(`^EntropyUnavailable: no new PPK for Secret vpn/gw-ppk: no randomness from https://127\\.0\\.0\\.1:${qrng.port}: .*503.*; the current PPK ${current.id} stays until one can be drawn$`));
    expect(metricValue(await metrics(), 'qubesec_vpn_ppk_rotations_total{result="failed"}')).toBeGreaterThanOrEqual(1);
    // It retries every 5 s; nothing is written meanwhile, and the SAs stay.
    await new Promise((r) => setTimeout(r, 6000));
    expect((await ppks())?.id).toBe(current.id);
    expect(metricValue(await metrics(), 'qubesec_vpn_ppk_rotations_total{result="failed"}')).toBeGreaterThanOrEqual(2);
    expect(await gatewaySa('site-b')).toMatchObject({ ppk: true });
    qrng.source.fault = 'none';
    const next = await nextPpk(current.id, 30_000);
    expect(next.previousId).toBe(current.id);
  }, 90_000);
});

describe('the gateway', () => {
  it('restarts charon when the listen ports change (it binds them only at start), says so in an Event, and binds the new ones', async () => {
    const pids = await charonPids();
    expect(pids).toHaveLength(1);
    await kube.apply(gatewayResource({ port: 1500, natTraversalPort: 4501 }));
    const note = await eventually(async () => (await kube.eventNotes(NS, 'VpnGateway', 'gw')).find((e) => e.startsWith('Restarting')), 15_000, 'the Restarting Event');
    expect(note).toBe('Restarting: the listen ports change from 500/4500 to 1500/4501, which charon binds only at start: restarting charon, so every SA drops and peers connect again');
    const bound = await eventually(async () => {
      const out = (await gw.run('ss', ['-ulnH'])).stdout;
      return /:1500\b/.test(out) && /:4501\b/.test(out) ? out : undefined;
    }, 20_000, 'charon on the new ports');
    expect(bound).not.toMatch(/:500\b/);
    const restarted = await charonPids();
    expect(restarted).toHaveLength(1);
    expect(restarted).not.toEqual(pids);
    expect(await eventually(async () => {
      const conns = await swanctl(gw, '--list-conns');
      return /site-b:/.test(conns) ? conns : undefined;
    }, 15_000, 'the connections loaded into the new charon')).toMatch(/198\.18\.200\.1\[1500\]/);
    // Back to the defaults: another restart, and the sites connect again.
    await kube.apply(gatewayResource());
    await eventually(async () => (/:500\b/.test((await gw.run('ss', ['-ulnH'])).stdout) && /site-b:/.test(await swanctl(gw, '--list-conns')) ? true : undefined), 20_000, 'charon on 500 again');
    const current = (await ppks())!;
    await reload(siteB, confB(current));
    await siteB.run('swanctl', ['--terminate', '--ike', 'gw'], { reject: false });
    expect((await siteB.run('swanctl', ['--initiate', '--child', 'net', '--timeout', '10'])).stdout).toMatch(/CHILD_SA net\{\d+\} established/);
    expect((await ping(siteB, '198.18.220.1', 2)).received).toBeGreaterThan(0);
  }, 90_000);

  it('when the VpnGateway is deleted, terminates its SAs, unloads everything and is not ready; created again, it loads again', async () => {
    expect(await gatewaySa('site-b')).toBeDefined();
    expect(await readyz()).toBe(200);
    await kube.custom.deleteNamespacedCustomObject({ ...G, plural: 'vpngateways', name: 'gw' });
    const note = await eventually(async () => (await kube.eventNotes(NS, 'VpnGateway', 'gw')).find((e) => e.startsWith('Unloaded')), 15_000, 'the Unloaded Event');
    expect(note).toMatch(/^Unloaded: VpnGateway vpn\/gw was deleted: unloaded its 3 connections from charon and terminated 1 IKE SA; not ready until it is created again$/);
    expect(await swanctl(gw, '--list-sas')).not.toMatch(/ESTABLISHED/);
    expect(await swanctl(gw, '--list-conns')).not.toMatch(/site-b:|site-c:|alice:/);
    expect(await swanctl(gw, '--list-certs')).not.toMatch(/CN=gw\.vpn\.test/);
    expect(await swanctl(gw, '--list-pools')).not.toMatch(/rw/);
    // The gateway sent its DELETE: the site's SA is gone too, and nothing gets through.
    await eventually(async () => (/ESTABLISHED/.test((await siteB.run('swanctl', ['--list-sas'])).stdout) ? undefined : true), 10_000, "site-b's SA gone");
    expect((await ping(siteB, '198.18.220.1', 2)).received).toBe(0);
    expect(await readyz()).toBe(503);
    expect(gatewayLog.some((l) => l.includes('was deleted: unloaded its 3 connections'))).toBe(true);
    const peerStatus = await eventually(async () => {
      const p = (await kube.custom.getNamespacedCustomObject({ ...G, plural: 'vpnpeers', name: 'site-b' })) as { status?: { connected: boolean; conditions: { reason: string; message: string }[] } };
      return p.status?.conditions[0]?.reason === 'GatewayDeleted' ? p.status : undefined;
    }, 15_000, "site-b's status after the deletion");
    expect(peerStatus).toMatchObject({ connected: false, conditions: [{ message: 'VpnGateway "gw" was deleted: nothing of it is loaded in charon' }] });

    // Created again (a new object: the PPK Secret the old one owned is garbage-collected in a cluster; this API server
    // runs no garbage collector, so the test deletes it as the collector would).
    await kube.core.deleteNamespacedSecret({ namespace: NS, name: 'gw-ppk' });
    // First while the QRNG service serves nothing: no PPK, so nothing is loaded (fail closed), and the status says why.
    qrng.source.fault = 'unavailable';
    await serviceRefusing();
    await kube.apply(gatewayResource());
    const waiting = await eventually(async () => {
      const g = (await kube.custom.getNamespacedCustomObject({ ...G, plural: 'vpngateways', name: 'gw' })) as { status?: { conditions?: { status: string; reason: string }[] } };
      return g.status?.conditions?.[0]?.reason === 'EntropyUnavailable' ? g.status.conditions[0] : undefined;
    }, 20_000, 'the gateway EntropyUnavailable');
    expect(waiting.status).toBe('False');
    expect(await readyz()).toBe(503);
    expect(await swanctl(gw, '--list-conns')).not.toMatch(/site-b:/);
    expect(await ppks()).toBeUndefined();
    qrng.source.fault = 'none';
    const fresh = await nextPpk(undefined, 30_000);
    expect(fresh.secret.metadata?.ownerReferences?.[0]?.uid).toBe(await gatewayUid());
    await eventually(async () => (/site-b:/.test(await swanctl(gw, '--list-conns')) ? true : undefined), 15_000, 'the connections loaded again');
    await eventually(async () => ((await readyz()) === 200 ? true : undefined), 15_000, 'ready again');
    await reload(siteB, confB(fresh));
    expect((await siteB.run('swanctl', ['--initiate', '--child', 'net', '--timeout', '10'])).stdout).toMatch(/CHILD_SA net\{\d+\} established/);
    expect((await ping(siteB, '198.18.220.1', 2)).received).toBeGreaterThan(0);
  }, 90_000);
});
