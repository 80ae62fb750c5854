// The VPN image in a Pod that `helm install charts/qubesec-vpn` created, on a real node (e2e/node: kubelet,
// containerd, runc, CNI): the gateway charon with userspace ESP (libipsec: this kernel has no xfrm ESP) serves a
// VpnGateway whose certificate QubeSec's PKI issued, and a road-warrior client, a charon of its own in a network
// namespace this test creates and routes to the Pod network, is configured only from `qubesec vpn client-config`.
// Nothing in the gateway Pod is test code: the status it writes goes through the real API server.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { execa } from 'execa';
import { PROJECT_ROOT } from '../controller/project.js';
import type { PeerStatus } from '../controller/vpn/status.js';
import { opaqueSecret, testCa, tlsSecret } from '../controller/vpn/testing.js';
import { eventually } from './lib/env.js';
import { readProfile, startPeerCharon, startVpnLab, type VpnHost, type VpnLab } from './lib/vpn-hosts.js';
import { startNode, type TestNode } from './node/node.js';

const CHART = join(PROJECT_ROOT, 'charts', 'qubesec-vpn');
const CLI = join(PROJECT_ROOT, 'dist', 'controller', 'cli', 'main.js');
const NS = 'vpn';
/** What e2e/node/images.sh builds and scripts/run.sh passes in QUBESEC_NODE_IMAGES. */
const VPN_IMAGE = { repository: 'qubesec.local/qubesec-vpn', tag: 'e2e' };
const CONTROLLER_IMAGE = 'qubesec.local/qubesec-controller:e2e';
/** The node's Pod network (e2e/node/node.ts), the gateway's local subnet. */
const POD_NETWORK = '198.19.0.0/24';
/** The client's link to this host (198.18.250.0/30), and the virtual IPs the gateway hands out. */
const CLIENT_LINK = '198.18.250';
const POOL = '198.18.251.0/24';
const METRICS_PORT = 10256;
const G = { group: 'qubesec.io', version: 'v1alpha1', namespace: NS };

let node: TestNode;
let lab: VpnLab;
let client: VpnHost;
let gatewayAddress: string;
let backendAddress: string;
let poolRoute = false;
const profileDir = mkdtempSync(join(tmpdir(), 'qubesec-vpn-node-profile-'));

const status = async (name: string) => ((await node.kube.custom.getNamespacedCustomObject({ ...G, plural: 'vpnpeers', name })) as { status?: PeerStatus }).status;
const gatewayPods = async (): Promise<V1Pod[]> => (await node.kube.core.listNamespacedPod({ namespace: NS, labelSelector: 'app.kubernetes.io/name=qubesec-vpn' })).items;

async function ping(address: string, count: number): Promise<{ sent: number; received: number }> {
  const r = await client.run('ping', ['-n', '-c', String(count), '-i', '0.2', '-W', '2', address], { reject: false });
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  return { sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0) };
}

/**
 * Every unicast IP packet on the client's link (its own IGMP reports aside) while `action` runs (tcpdump in the
 * client's namespace), and what `action` returned. The link carries the IKE SA's own traffic only if the tunnel holds
 * everything else.
 */
async function onTheWire<T>(action: () => Promise<T>): Promise<{ wire: string[]; result: T }> {
  const capture = client.run('timeout', ['6', 'tcpdump', '-i', 'eth0', '-nn', '-l', 'ip and not ip multicast'], { reject: false });
  await new Promise((r) => setTimeout(r, 1000));
  const result = await action();
  const wire = (await capture).stdout.split('\n').filter(Boolean);
  return { wire, result };
}
/** Lines of a capture that are not ESP in UDP (or IKE on the same port) between the client and the gateway Pod. */
const notTunnel = (wire: string[]) => wire.filter((l) => !new RegExp(`IP ${escape(`${CLIENT_LINK}.2`)}\\.4500 > ${escape(gatewayAddress)}\\.4500: |IP ${escape(gatewayAddress)}\\.4500 > ${escape(`${CLIENT_LINK}.2`)}\\.4500: `).test(l));
const esp = (wire: string[]) => wire.filter((l) => /: UDP-encap: ESP\(spi=0x[0-9a-f]+,seq=0x[0-9a-f]+\)/.test(l));
const escape = (address: string) => address.replaceAll('.', '\\.');

/** The backend behind the gateway: the controller image's echo server, answering with its Pod's name. */
const backendPod = {
  apiVersion: 'v1', kind: 'Pod', metadata: { name: 'echo', namespace: NS, labels: { app: 'echo' } },
  spec: {
    terminationGracePeriodSeconds: 1,
    containers: [{
      name: 'echo', image: CONTROLLER_IMAGE, imagePullPolicy: 'Never',
      command: ['node', '--input-type=module', '-e', "const { startEchoBackend } = await import('/opt/qubesec/dist/controller/cli/echo-backend.js'); await startEchoBackend('echo', 8080, '0.0.0.0');"],
      ports: [{ name: 'http', containerPort: 8080 }],
      readinessProbe: { httpGet: { path: '/', port: 'http' as never }, periodSeconds: 1 },
    }],
  },
};

beforeAll(async () => {
  const images = process.env.QUBESEC_NODE_IMAGES;
  if (!images) throw new Error('QUBESEC_NODE_IMAGES is not set: run the e2e tests through `npm test` (scripts/run.sh builds the images)');
  node = await startNode(images);
  await node.kubectl(['create', 'namespace', NS]);

  // ECDSA P-384 certificates from QubeSec's PKI code (controller/pki), as strongSwan 6.1 authenticates; the gateway's
  // Secret carries the CA the exported profile trusts.
  const ca = await testCa('CN=QubeSec VPN CA');
  for (const secret of [
    tlsSecret('gw-tls', await ca.issue('CN=gw.vpn.test'), ca.certificatePem, NS),
    tlsSecret('alice-tls', await ca.issue('CN=alice'), ca.certificatePem, NS),
    opaqueSecret('gw-ppk', { ppk: Buffer.alloc(32, 7) }, NS),
  ]) await node.kube.apply(secret);
  await node.kube.apply(backendPod);

  // No kube-proxy or load balancer here: the client dials the gateway Pod's own address (ClusterIP Service).
  await node.helm(NS, ['install', 'edge', CHART, '--set', 'gateway.name=gw', '--set', `image.repository=${VPN_IMAGE.repository}`, '--set', `image.tag=${VPN_IMAGE.tag}`,
    '--set', 'image.pullPolicy=Never', '--set', 'libipsec=true', '--set', 'forwarding=true', '--set', 'service.type=ClusterIP', '--set', 'statusIntervalMs=1000']);
  gatewayAddress = await eventually(async () => (await gatewayPods())[0]?.status?.podIP, 120_000, 'the gateway Pod\'s address')
    .catch(async (err: Error) => { throw new Error(`${err.message}\n${await node.podReport(NS)}`); });
  await node.kube.apply({
    apiVersion: 'qubesec.io/v1alpha1', kind: 'VpnGateway', metadata: { name: 'gw', namespace: NS },
    spec: {
      listen: { address: gatewayAddress }, localSubnets: [POD_NETWORK], pqMode: 'strict', certificate: { secretName: 'gw-tls' },
      ppk: { secretName: 'gw-ppk', id: 'qubesec-ppk' }, pools: [{ name: 'rw', subnet: POOL }],
    },
  });
  await node.kube.apply({
    apiVersion: 'qubesec.io/v1alpha1', kind: 'VpnPeer', metadata: { name: 'alice', namespace: NS },
    spec: { gateway: 'gw', remoteAccess: { identity: 'CN=alice', allowedSubnets: [POD_NETWORK], pool: 'rw', certificateSecretName: 'alice-tls' } },
  });
  await eventually(async () => ((await gatewayPods())[0]?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? true : undefined), 120_000, 'the gateway Pod Ready')
    .catch(async (err: Error) => { throw new Error(`${err.message}\n${await node.podReport(NS)}`); });
  backendAddress = await eventually(async () => {
    const pod = await node.kube.core.readNamespacedPod({ namespace: NS, name: 'echo' });
    return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? pod.status.podIP : undefined;
  }, 120_000, 'the backend Pod Ready');

  // The client: this host routes its link to the Pod network (the node's bridge), and the backend's replies to the
  // virtual IPs back to the gateway Pod, as a cluster's network would route a gateway's pool.
  lab = await startVpnLab(['client'], { routedFromHost: { prefix: CLIENT_LINK } });
  client = lab.host('client');
  await execa('ip', ['route', 'add', POOL, 'via', gatewayAddress]);
  poolRoute = true;
}, 10 * 60_000);

afterAll(async () => {
  if (poolRoute) await execa('ip', ['route', 'del', POOL], { reject: false });
  await lab?.stop();
  await node?.stop();
  rmSync(profileDir, { recursive: true, force: true });
}, 120_000);

describe('the VPN image, installed by helm, on a real node', () => {
  it('runs the gateway as root with only NET_ADMIN and NET_BIND_SERVICE, a read-only root, no privilege escalation and seccomp', async () => {
    const pod = (await gatewayPods())[0]!;
    const pid = await node.containerPid(pod.status!.containerStatuses![0]!.containerID!);
    const charon = (await execa('pgrep', ['-P', String(pid), '-x', 'charon'])).stdout.trim();
    expect(charon).toMatch(/^\d+$/);
    // CAP_NET_BIND_SERVICE is bit 10, CAP_NET_ADMIN bit 12: the chart's two, in the bounding set of both; the
    // controller holds both, charon (which drops what it does not use once it runs) at most those.
    const granted = (1n << 10n) | (1n << 12n);
    for (const p of [pid, Number(charon)]) {
      const text = readFileSync(`/proc/${p}/status`, 'utf8');
      const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
      const set = (name: string) => BigInt(`0x${field(name)}`);
      expect(field('Uid')?.split(/\s+/)).toEqual(['0', '0', '0', '0']);
      expect(set('CapBnd').toString(16)).toBe(granted.toString(16));
      expect((set('CapPrm') & ~granted).toString(16)).toBe('0');
      expect(set('CapEff') & (1n << 12n)).toBe(1n << 12n);
      if (p === pid) expect([set('CapPrm'), set('CapEff')].map((c) => c.toString(16))).toEqual([granted.toString(16), granted.toString(16)]);
      expect(field('NoNewPrivs')).toBe('1');
      expect(field('Seccomp')).toBe('2');
      const root = readFileSync(`/proc/${p}/mountinfo`, 'utf8').split('\n').map((l) => l.split(' ')).find((cols) => cols[4] === '/');
      expect(root?.[5]?.split(',')).toContain('ro');
    }
    // The image's strongSwan is the pinned one.
    const version = await execa('chroot', [`/proc/${pid}/root`, 'dpkg-query', '-W', '-f', '${Version}', 'strongswan-charon']);
    const pin = /^strongswan-charon=(\S+)$/m.exec(readFileSync(join(PROJECT_ROOT, 'vpn', 'packages.txt'), 'utf8'))?.[1];
    expect(version.stdout).toBe(pin);
  });

  it('connects the road warrior configured only by `qubesec vpn client-config`: X25519 + ML-KEM-768 and the PPK', async () => {
    const out = await execa(process.execPath, [CLI, 'vpn', 'client-config', 'alice', '--namespace', NS, '--out', profileDir, '--kubeconfig', node.cluster.kubeconfigPath]);
    expect(out.stdout).toMatch(/wrote the profile of VpnPeer vpn\/alice/);
    const files = readProfile(profileDir);
    const { 'swanctl.conf': conf, ...rest } = files;
    expect(conf).toContain(`remote_addrs = ${gatewayAddress}`);
    // The client's own host settings, not the profile's: the tunnel's remote subnet (the Pod network) holds the
    // gateway's own address, for which kernel-libipsec installs no route unless allow_peer_ts is set; then charon's own
    // packets (IKE, ESP in UDP) must skip that route, by a mark (strongSwan's documented fwmark pair).
    await startPeerCharon(client, conf!, rest, '  plugins {\n    kernel-libipsec {\n      allow_peer_ts = yes\n    }\n    socket-default {\n      fwmark = 0x42\n    }\n    kernel-netlink {\n      fwmark = !0x42\n    }\n  }\n');
    const initiated = await client.run('swanctl', ['--initiate', '--child', 'qubesec-alice', '--timeout', '20'], { reject: false });
    expect([initiated.exitCode, initiated.stdout]).toEqual([0, expect.stringMatching(/installing new virtual IP 198\.18\.251\.\d+/)]);
    const sas = (await client.run('swanctl', ['--list-sas'])).stdout;
    expect(sas).toMatch(/AES_GCM_16-256\/PRF_HMAC_SHA2_384\/CURVE_25519\/KE1_ML_KEM_768\/PPK/);
    expect(sas).toMatch(/INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-256\/CURVE_25519\/KE1_ML_KEM_768/);
  });

  it('carries ping and HTTP to the gateway Pod from the virtual IP, as ESP in UDP 4500 on the wire only', async () => {
    const { wire, result } = await onTheWire(async () => [
      await ping(gatewayAddress, 5),
      (await client.run('curl', ['-sS', '--max-time', '3', `http://${gatewayAddress}:${METRICS_PORT}/healthz`], { reject: false })).stdout,
    ]);
    expect(result).toEqual([{ sent: 5, received: 5 }, 'ok']);
    expect(notTunnel(wire)).toEqual([]);
    // 5 echo requests and 5 replies, and the HTTP exchange's TCP segments.
    expect(esp(wire).length).toBeGreaterThanOrEqual(14);
  });

  it('reaches a second Pod behind the gateway (the chart\'s forwarding: the Pod\'s net.ipv4.ip_forward)', async () => {
    const { wire, result } = await onTheWire(async () => [
      await ping(backendAddress, 3),
      (await client.run('curl', ['-sS', '--max-time', '3', `http://${backendAddress}:8080/`], { reject: false })).stdout,
    ]);
    expect(result[0]).toEqual({ sent: 3, received: 3 });
    expect(JSON.parse(result[1] as string)).toMatchObject({ backend: 'echo' });
    expect(notTunnel(wire)).toEqual([]);
    expect(esp(wire).length).toBeGreaterThanOrEqual(10);
  });

  it('reports the SA in the VpnPeer status, written by the gateway Pod through the API server', async () => {
    const s = await eventually(async () => {
      const st = await status('alice');
      return st?.connected && (st.children[0]?.bytesIn ?? 0) > 0 ? st : undefined;
    }, 20_000, 'alice connected with traffic');
    expect(s).toMatchObject({ connected: true, postQuantum: true, remoteAddress: `${CLIENT_LINK}.2`, ike: { encryption: 'AES_GCM_16-256', prf: 'PRF_HMAC_SHA2_384', keyExchanges: ['CURVE_25519', 'ML_KEM_768'], ppk: true } });
    expect(s.children.find((c) => c.state === 'INSTALLED')).toMatchObject({ encryption: 'AES_GCM_16-256', keyExchanges: ['CURVE_25519', 'ML_KEM_768'] });
    expect(s.conditions[0]).toMatchObject({ type: 'Ready', status: 'True', reason: 'Connected' });
  });
});
