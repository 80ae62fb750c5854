// One active gateway among replicas (`qubesec vpn run --leader-election`): two processes for one VpnGateway, each with
// its charon's network namespace, against a real API server. The one holding the Lease runs charon and is ready; the
// standby runs no charon, loads and writes nothing and is not ready; when the active one stops, the standby takes the
// Lease, starts charon and loads, and the site connects to it (the gateway's address moved, as a Service would send
// IKE to the now-ready replica).
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { startCluster, type TestCluster } from './cluster/cluster.js';
import { eventually, freePort } from './lib/env.js';
import { Kube } from './lib/kube.js';
import { sitePeerConf, startVpnLab, type VpnHost, type VpnLab } from './lib/vpn-hosts.js';
import { testCa, tlsSecret, opaqueSecret, type TestCa } from '../controller/vpn/testing.js';
import { PROJECT_ROOT } from '../controller/project.js';

const NS = 'vpn';
const G = { group: 'qubesec.io', version: 'v1alpha1', namespace: NS };
const CLI = join(PROJECT_ROOT, 'dist', 'controller', 'cli', 'main.js');
const GW_ADDRESS = '198.18.200.1';

let cluster: TestCluster;
let kube: Kube;
let lab: VpnLab;
let site: VpnHost;
let ca: TestCa;

interface Replica { host: VpnHost; process: ResultPromise; metricsPort: number; log: string[] }
const replicas: Replica[] = [];

async function startReplica(host: VpnHost): Promise<Replica> {
  const metricsPort = await freePort();
  const child = execa(process.execPath, [CLI, 'vpn', 'run', '--kubeconfig', cluster.kubeconfigPath, '--namespace', NS, '--gateway', 'gw',
    '--root', host.root, '--netns', host.netns, '--libipsec', '--debounce-ms', '200', '--status-interval-ms', '1000',
    '--leader-election', '--election-ttl', '6s', '--metrics-address', '127.0.0.1', '--metrics-port', String(metricsPort)],
  { reject: false, stdin: 'ignore', buffer: false });
  const replica = { host, process: child, metricsPort, log: [] as string[] };
  createInterface({ input: child.stderr! }).on('line', (line) => {
    replica.log.push(line);
    if (process.env.QUBESEC_E2E_LOGS) process.stderr.write(`${host.name}: ${line}\n`);
  });
  replicas.push(replica);
  await eventually(async () => (await fetch(`http://127.0.0.1:${metricsPort}/healthz`).then((r) => r.ok, () => false)) || undefined, 20_000, `${host.name}'s metrics server`);
  return replica;
}
const readyz = (r: Replica) => fetch(`http://127.0.0.1:${r.metricsPort}/readyz`).then((res) => res.status);
const charons = async (host: VpnHost) => (await execa('ip', ['netns', 'pids', host.netns])).stdout.split('\n').filter((pid) => pid && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'charon');
const logged = (r: Replica, msg: string) => r.log.some((l) => l.includes(`"msg":"${msg}"`));

beforeAll(async () => {
  cluster = await startCluster();
  kube = new Kube(cluster.kc);
  await kube.installVpnCrds();
  await kube.core.createNamespace({ body: { metadata: { name: NS } } });
  lab = await startVpnLab(['gw-a', 'gw-b', 'site']);
  site = lab.host('site');
  await site.run('ip', ['addr', 'add', '198.18.220.1/32', 'dev', 'lo']);
  for (const name of ['gw-a', 'gw-b']) await lab.host(name).run('ip', ['addr', 'add', '198.18.210.1/32', 'dev', 'lo']);
  ca = await testCa('CN=QubeSec VPN CA');
  await kube.apply(tlsSecret('gw-tls', await ca.issue('CN=gw.vpn.test'), ca.certificatePem, NS));
  await kube.apply(opaqueSecret('site-ca', { 'ca.crt': ca.certificatePem }, NS));
  await kube.apply({
    apiVersion: 'qubesec.io/v1alpha1', kind: 'VpnGateway', metadata: { name: 'gw', namespace: NS },
    spec: { listen: { address: GW_ADDRESS }, localSubnets: ['198.18.210.0/24'], certificate: { secretName: 'gw-tls' } },
  });
  await kube.apply({
    apiVersion: 'qubesec.io/v1alpha1', kind: 'VpnPeer', metadata: { name: 'site-b', namespace: NS },
    spec: { gateway: 'gw', site: { remoteAddress: site.address, remoteSubnets: ['198.18.220.0/24'], identity: 'CN=site-b', caSecretName: 'site-ca' } },
  });
  const cert = await ca.issue('CN=site-b');
  site.write('/etc/strongswan.d/zz-qubesec-test.conf', 'charon {\n  plugins {\n    kernel-libipsec {\n      load = yes\n    }\n  }\n}\n');
  site.write('/etc/swanctl/swanctl.conf', sitePeerConf({
    localAddress: site.address, remoteAddress: GW_ADDRESS, id: 'CN=site-b', gatewayId: 'CN=gw.vpn.test', localSubnet: '198.18.220.0/24', remoteSubnet: '198.18.210.0/24',
    ike: 'aes256gcm16-prfsha384-x25519-ke1_mlkem768', esp: 'aes256gcm16-x25519-ke1_mlkem768', childless: 'prefer',
  }), 0o600);
  site.write('/etc/swanctl/x509ca/gw-ca.crt', ca.certificatePem);
  site.write('/etc/swanctl/x509/me.crt', cert.certificatePem);
  site.write('/etc/swanctl/private/me.key', cert.keyPem, 0o600);
  site.spawn('/usr/lib/ipsec/charon', []);
  await eventually(async () => ((await site.run('swanctl', ['--stats'], { reject: false })).exitCode === 0 ? true : undefined), 10_000, "the site's charon");
  await site.run('swanctl', ['--load-all', '--noprompt']);
}, 300_000);

afterAll(async () => {
  for (const r of replicas) r.process.kill('SIGTERM');
  await Promise.all(replicas.map((r) => r.process));
  await lab?.stop();
  await cluster?.stop();
}, 60_000);

async function connect(): Promise<void> {
  await site.run('swanctl', ['--terminate', '--ike', 'gw', '--force'], { reject: false });
  const up = await site.run('swanctl', ['--initiate', '--child', 'net', '--timeout', '10'], { reject: false });
  expect(up.stdout).toMatch(/CHILD_SA net\{\d+\} established/);
  const ping = await site.run('ping', ['-n', '-c', '3', '-i', '0.2', '-W', '2', '-I', '198.18.220.1', '198.18.210.1'], { reject: false });
  expect(ping.stdout).toMatch(/3 packets transmitted, 3 received/);
}

describe('two replicas of one gateway', () => {
  let active: Replica;
  let standby: Replica;

  it('the replica holding the Lease runs charon, loads and is ready; the standby runs nothing and is not ready', async () => {
    active = await startReplica(lab.host('gw-a'));
    await eventually(async () => ((await readyz(active)) === 200 ? true : undefined), 30_000, 'the first replica ready');
    standby = await startReplica(lab.host('gw-b'));
    // Long enough for the standby to try the Lease a few times (every 0.8 s at a 6 s TTL).
    await new Promise((r) => setTimeout(r, 4000));
    expect(await readyz(standby)).toBe(503);
    expect(await charons(standby.host)).toEqual([]);
    expect(await charons(active.host)).toHaveLength(1);
    expect(logged(active, 'became leader; starting leader-only work')).toBe(true);
    expect(logged(standby, 'became leader; starting leader-only work')).toBe(false);
    expect(logged(standby, 'VPN configuration loaded')).toBe(false);
    const lease = await cluster.kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: NS, name: 'qubesec-vpn-gw' });
    expect(lease.spec?.holderIdentity).toMatch(/_[0-9a-f]{8}$/);
    const gateway = (await kube.custom.getNamespacedCustomObject({ ...G, plural: 'vpngateways', name: 'gw' })) as { status?: { conditions?: { reason: string }[] } };
    expect(gateway.status?.conditions?.[0]?.reason).toBe('Loaded');
    await connect();
  }, 90_000);

  it('when the active replica stops, the standby takes the Lease, starts charon, loads, and the site connects to it', async () => {
    active.process.kill('SIGTERM');
    const ended = await active.process;
    expect([ended.exitCode, ended.signal]).toEqual([0, undefined]);
    expect(logged(active, 'released the lease')).toBe(true);
    expect(await charons(active.host)).toEqual([]);
    // The gateway's address moves to the new active replica (a Service sends IKE to the ready Pod).
    await active.host.run('ip', ['addr', 'del', `${GW_ADDRESS}/24`, 'dev', 'eth0']);
    await standby.host.run('ip', ['addr', 'add', `${GW_ADDRESS}/24`, 'dev', 'eth0']);
    await site.run('ip', ['neigh', 'flush', 'all']);
    await eventually(async () => ((await readyz(standby)) === 200 ? true : undefined), 30_000, 'the standby ready');
    expect(await charons(standby.host)).toHaveLength(1);
    expect(logged(standby, 'became leader; starting leader-only work')).toBe(true);
    await connect();
  }, 90_000);
});
