// A real single-node Kubernetes cluster for e2e tests, started and torn down by the tests themselves: etcd and
// kube-apiserver (e2e/cluster), kube-controller-manager, kube-scheduler, and a kubelet that runs Pods on containerd +
// runc with CNI bridge networking. No Docker and no kube-proxy: Pods reach the API server through one DNAT rule for
// the `kubernetes` Service, and tests reach Pods at their addresses on the node's bridge. Everything the node changes
// on the host (processes, mounts, network namespaces, the bridge, iptables rules, sysctls, cgroups) is undone by
// stop(), and by the next start if a run was killed before it could stop.
import { mkdir, readFile, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type Result, type ResultPromise } from 'execa';
import { KUBERNETES_SERVICE_IP, NODE_NAME, startCluster, type TestCluster } from '../cluster/cluster.js';
import { eventually, freePort, kubeBinary, rootfs } from '../lib/env.js';
import { Kube } from '../lib/kube.js';

/** The node's bridge and Pod range, from 198.18.0.0/15 like every test address (e2e/lib/netns.ts uses 198.18.x). */
export const NODE_BRIDGE = 'qsnode0';
const POD_SUBNET = '198.19.0.0/24';
export const NODE_ADDRESS = '198.19.0.1';
/** The archive, among those e2e/node/images.sh writes, of the pause image each Pod sandbox starts from. */
const PAUSE_ARCHIVE = 'pause.tar';
/** Host settings the kubelet changes, restored at stop. */
export const KUBELET_SYSCTLS = ['kernel/panic', 'kernel/panic_on_oops', 'vm/overcommit_memory'];
const IPTABLES = ['iptables', 'ip6tables'];
/** Tables the kubelet writes to; restoring one that had no rules before (not in the saved text) empties it. */
const IPTABLES_TABLES = ['filter', 'nat', 'mangle'];
/** A node's working folder; its name carries the test process's PID, so a later run can tell a dead run's leftovers. */
export const NODE_DIR_PREFIX = '/tmp/qubesec-node-';
const CHAIN = 'QUBESEC-NODE';

export interface TestNode {
  cluster: TestCluster;
  kube: Kube;
  /** kubectl as the cluster's admin; rejects on a non-zero exit with kubectl's output. */
  kubectl(args: string[], input?: string): Promise<Result>;
  /** Host PID of a container's main process, from a Pod's containerStatuses[].containerID. */
  containerPid(containerId: string): Promise<number>;
  /** The Pods of a namespace with their Events and their containers' last log lines, for failure messages. */
  podReport(namespace: string): Promise<string>;
  /** helm ($HELM) as the cluster's admin on `namespace`; rejects with helm's output and what the Pods did. */
  helm(namespace: string, args: string[]): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the node with the images of `imagesDir` (docker-archive tars, as e2e/node/images.sh writes them) and of
 * `moreImageDirs` loaded into containerd, where the kubelet finds them without a pull (no registry is reachable).
 */
export async function startNode(imagesDir: string, moreImageDirs: string[] = []): Promise<TestNode> {
  await sweepDeadRuns();
  const dir = `${NODE_DIR_PREFIX}${process.pid}`;
  await mkdir(dir, { recursive: true });
  const children = new Map<string, ResultPromise>();
  const exited = new Map<string, Result>();
  let cluster: TestCluster | undefined;
  const containerdSocket = join(dir, 'containerd.sock');
  const ctr = containerdClient(containerdSocket);

  const stop = async () => {
    // Pods first, while the kubelet still runs: it stops their containers and tears their networks down through CNI.
    if (cluster && children.has('kubelet')) await drainPods(new Kube(cluster.kc)).catch(() => {});
    const stopChild = async (name: string) => {
      const child = children.get(name);
      if (!child || exited.has(name)) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await child;
      clearTimeout(timer);
    };
    for (const name of ['kubelet', 'kube-scheduler', 'kube-controller-manager']) await stopChild(name);
    if (children.has('containerd')) await removeContainers(ctr).catch(() => {});
    await stopChild('containerd');
    await cluster?.stop();
    await restoreHost(dir);
  };

  try {
    await saveHostState(dir);
    await setUpNetwork(dir);
    const pki = await kubeletPki(dir);
    cluster = await startCluster({ address: NODE_ADDRESS, kubeletClient: { cert: pki.clientCert, key: pki.clientKey } });
    await writeFile(join(dir, 'cluster-dir'), cluster.dir);
    await forwardKubernetesService(cluster.port);

    const run = (name: string, file: string, args: string[]) => {
      const log = { file: join(dir, `${name}.log`), append: true };
      const child = execa(file, args, { reject: false, stdin: 'ignore', stdout: log, stderr: log });
      children.set(name, child);
      void child.then((result) => exited.set(name, result));
    };
    const failIfExited = async () => {
      for (const [name, result] of exited) throw new Error(`${name} exited (${result.exitCode ?? result.signal}): ${await logTail(dir, name)}`);
    };

    if (!(await imageArchives(imagesDir)).includes(PAUSE_ARCHIVE)) throw new Error(`${imagesDir} has no ${PAUSE_ARCHIVE}: make the images with e2e/node/images.sh`);
    await writeContainerdConfig(dir, await archiveImageName(join(imagesDir, PAUSE_ARCHIVE)));
    run('containerd', 'containerd', ['--config', join(dir, 'containerd.toml')]);
    await eventually(async () => (await failIfExited(), (await ctr('version').catch(() => undefined)) ? true : undefined), 30_000, 'containerd serving');
    for (const folder of [imagesDir, ...moreImageDirs]) {
      for (const archive of await imageArchives(folder)) await ctr('images', 'import', '--no-unpack', join(folder, archive));
    }

    const kubeconfig = (component: string) => join(cluster!.dir, `${component}.kubeconfig`);
    for (const component of ['kube-controller-manager', 'kube-scheduler']) {
      const config = kubeconfig(component);
      const common = [`--kubeconfig=${config}`, `--authentication-kubeconfig=${config}`, `--authorization-kubeconfig=${config}`,
        '--leader-elect=false', '--bind-address=127.0.0.1', `--secure-port=${await freePort()}`];
      run(component, kubeBinary(component), component === 'kube-scheduler' ? common : [...common,
        // Tokens for the controllers' own ServiceAccounts, and the CA that Pods' kube-root-ca.crt ConfigMaps carry.
        `--service-account-private-key-file=${join(cluster.dir, 'sa.key')}`, `--root-ca-file=${join(cluster.dir, 'serving.crt')}`,
        '--use-service-account-credentials=true']);
    }
    await writeKubeletConfig(dir, pki.ca, containerdSocket);
    run('kubelet', kubeBinary('kubelet'), [`--config=${join(dir, 'kubelet.json')}`, `--kubeconfig=${kubeconfig('kubelet')}`,
      `--root-dir=${join(dir, 'kubelet')}`, `--cert-dir=${join(dir, 'kubelet-pki')}`,
      `--hostname-override=${NODE_NAME}`, `--node-ip=${NODE_ADDRESS}`]);

    const kube = new Kube(cluster.kc);
    await eventually(async () => {
      await failIfExited();
      const node = await kube.core.readNode({ name: NODE_NAME });
      return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? true : undefined;
    }, 120_000, `node ${NODE_NAME} Ready`).catch(async (err: Error) => {
      throw new Error(`${err.message}\nkubelet: ${await logTail(dir, 'kubelet')}`);
    });
    // The default ServiceAccount, which every Pod needs, comes from the controller-manager.
    await eventually(async () => ((await kube.core.readNamespacedServiceAccount({ namespace: 'default', name: 'default' })) ? true : undefined), 60_000, 'default ServiceAccount');

    const admin = cluster.kubeconfigPath;
    const testNode: TestNode = {
      cluster,
      kube,
      async kubectl(args, input) {
        const result = await execa(kubeBinary('kubectl'), [`--kubeconfig=${admin}`, ...args], { input, reject: false, all: true });
        if (result.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${result.exitCode}): ${result.all}`);
        return result;
      },
      async containerPid(containerId) {
        const id = containerId.replace(/^containerd:\/\//, '');
        // ctr 1.6 lists tasks as a table only: TASK PID STATUS.
        const table = (await ctr('tasks', 'ls')).stdout;
        const row = table.split('\n').map((line) => line.trim().split(/\s+/)).find((cols) => cols[0] === id);
        if (!row) throw new Error(`no task for container ${id}:\n${table}`);
        return Number(row[1]);
      },
      async podReport(namespace) {
        const kubectl = (...args: string[]) => execa(kubeBinary('kubectl'), [`--kubeconfig=${admin}`, '--namespace', namespace, ...args], { reject: false, all: true }).then((r) => r.all);
        return [await kubectl('get', 'pods', '-o', 'wide'), await kubectl('describe', 'pods'), await kubectl('logs', '--all-containers', '--prefix', '--tail=40', '--selector', 'app.kubernetes.io/name')].join('\n');
      },
      async helm(namespace, args) {
        const binary = process.env.HELM;
        if (!binary) throw new Error('HELM is not set: run the e2e tests through `npm test` (scripts/run.sh builds helm)');
        const result = await execa(binary, [...args, '--kubeconfig', admin, '--namespace', namespace], { all: true, reject: false });
        if (result.exitCode !== 0) throw new Error(`helm ${args[0]} failed: ${result.all}\n${await testNode.podReport(namespace)}`);
      },
      stop,
    };
    return testNode;
  } catch (err) {
    await stop();
    throw err;
  }
}

async function logTail(dir: string, component: string, lines = 40): Promise<string> {
  const text = await readFile(join(dir, `${component}.log`), 'utf8').catch(() => '');
  return text.split('\n').slice(-lines).join('\n');
}

/** Deletes every Pod and waits until the kubelet has stopped them all (or 60 s have passed). */
async function drainPods(kube: Kube): Promise<void> {
  const pods = await kube.core.listPodForAllNamespaces();
  for (const pod of pods.items) {
    await kube.core.deleteNamespacedPod({ namespace: pod.metadata!.namespace!, name: pod.metadata!.name!, gracePeriodSeconds: 0 }).catch(() => {});
  }
  await eventually(async () => ((await kube.core.listPodForAllNamespaces()).items.length === 0 ? true : undefined), 60_000, 'Pods gone');
}

/** Whatever containers are left (a Pod the kubelet did not stop): kill their tasks and remove them. */
/** ctr on the node's containerd, in the namespace the CRI plugin uses. */
function containerdClient(socket: string) {
  return (...args: string[]) => execa('ctr', ['--address', socket, '--namespace', 'k8s.io', ...args]);
}

async function removeContainers(ctr: ReturnType<typeof containerdClient>): Promise<void> {
  const ids = (await ctr('containers', 'ls', '-q')).stdout.split('\n').filter(Boolean);
  for (const id of ids) {
    await ctr('tasks', 'kill', '--signal', 'SIGKILL', id).catch(() => {});
    await ctr('tasks', 'delete', '--force', id).catch(() => {});
    await ctr('containers', 'delete', id).catch(() => {});
  }
}

/** The API server's client certificate for the kubelet (logs, exec), and the CA the kubelet trusts it by. */
async function kubeletPki(dir: string): Promise<{ ca: string; clientCert: string; clientKey: string }> {
  const pki = join(dir, 'pki');
  await mkdir(pki, { recursive: true });
  const file = (name: string) => join(pki, name);
  const openssl = (...args: string[]) => execa('openssl', args);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await openssl('req', '-x509', ...ec, '-days', '2', '-subj', '/CN=qubesec-e2e-kubelet-ca', '-keyout', file('ca.key'), '-out', file('ca.crt'));
  await openssl('req', ...ec, '-subj', '/O=system:masters/CN=kube-apiserver-kubelet-client', '-keyout', file('client.key'), '-out', file('client.csr'));
  await openssl('x509', '-req', '-in', file('client.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-days', '2', '-out', file('client.crt'));
  return { ca: file('ca.crt'), clientCert: file('client.crt'), clientKey: file('client.key') };
}

/** The docker-archive tars of a folder, by file name. */
async function imageArchives(folder: string): Promise<string[]> {
  return (await readdir(folder)).filter((name) => name.endsWith('.tar'));
}

/** The name a docker-archive tar carries (its manifest.json's first RepoTag). */
async function archiveImageName(tar: string): Promise<string> {
  const manifest = JSON.parse((await execa('tar', ['-xOf', tar, 'manifest.json'])).stdout) as { RepoTags?: string[] }[];
  const name = manifest[0]?.RepoTags?.[0];
  if (!name) throw new Error(`${tar} names no image (manifest.json has no RepoTags)`);
  return name;
}

async function writeContainerdConfig(dir: string, sandboxImage: string): Promise<void> {
  await mkdir(join(dir, 'cni'), { recursive: true });
  await writeFile(join(dir, 'cni', '10-qubesec.conflist'), JSON.stringify({
    cniVersion: '0.4.0',
    name: 'qubesec-e2e',
    plugins: [{
      type: 'bridge', bridge: NODE_BRIDGE, isGateway: true, ipMasq: false, hairpinMode: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: POD_SUBNET, gateway: NODE_ADDRESS }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(dir, 'cni-ipam') },
    }],
  }));
  // Every path under dir, so nothing lands in /var/lib/containerd, /run/containerd or /opt/containerd.
  await writeFile(join(dir, 'containerd.toml'), `version = 2
root = "${dir}/containerd/root"
state = "${dir}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "${dir}/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${sandboxImage}"
  # No CAP_SYS_RESOURCE here: containers may only raise their OOM score.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "${dir}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${dir}/cni"
`);
}

async function writeKubeletConfig(dir: string, clientCa: string, containerdSocket: string): Promise<void> {
  await writeFile(join(dir, 'kubelet.json'), JSON.stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // This machine's cgroups are v1 (hybrid), and there is no systemd.
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${containerdSocket}`,
    address: NODE_ADDRESS,
    port: await freePort(),
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: await freePort(),
    authentication: { anonymous: { enabled: false }, webhook: { enabled: false }, x509: { clientCAFile: clientCa } },
    authorization: { mode: 'AlwaysAllow' },
    podLogsDir: join(dir, 'pod-logs'),
    // No cluster DNS; Pods get no resolver (the tests address everything by IP).
    resolvConf: '',
    serializeImagePulls: false,
    // A test machine's disk may be fuller than a production node's; evict only when really short.
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '2%', 'imagefs.available': '2%', 'nodefs.inodesFree': '2%' },
    // The VPN chart's `forwarding` (e2e/vpn-node.test.ts): an unsafe sysctl, namespaced to the Pod's network.
    allowedUnsafeSysctls: ['net.ipv4.ip_forward'],
    imageGCHighThresholdPercent: 99,
    imageGCLowThresholdPercent: 98,
  }));
}

/** The bridge Pods attach to, with the node's address, which the API server and kubelet bind before any Pod exists. */
async function setUpNetwork(dir: string): Promise<void> {
  await execa('ip', ['link', 'add', NODE_BRIDGE, 'type', 'bridge']);
  await writeFile(join(dir, 'bridge'), NODE_BRIDGE);
  await execa('ip', ['addr', 'add', `${NODE_ADDRESS}/24`, 'dev', NODE_BRIDGE]);
  await execa('ip', ['link', 'set', NODE_BRIDGE, 'up']);
}

/** What kube-proxy would do for the one Service Pods need: the `kubernetes` Service's ClusterIP to the API server. */
async function forwardKubernetesService(apiPort: number): Promise<void> {
  const nat = (...args: string[]) => execa('iptables', ['-t', 'nat', ...args]);
  await nat('-N', CHAIN);
  await nat('-A', 'PREROUTING', '-j', CHAIN);
  await nat('-A', 'OUTPUT', '-j', CHAIN);
  await nat('-A', CHAIN, '-d', `${KUBERNETES_SERVICE_IP}/32`, '-p', 'tcp', '--dport', '443', '-j', 'DNAT', '--to-destination', `${NODE_ADDRESS}:${apiPort}`);
}

/** Records what the node will change on the host, in dir, so that restoreHost can undo it even from another process. */
async function saveHostState(dir: string): Promise<void> {
  const sysctls = await Promise.all(KUBELET_SYSCTLS.map(async (key) => [key, (await readFile(`/proc/sys/${key}`, 'utf8')).trim()]));
  await writeFile(join(dir, 'sysctls.json'), JSON.stringify(Object.fromEntries(sysctls)));
  for (const tool of IPTABLES) {
    const saved = (await execa(`${tool}-save`)).stdout;
    const absent = IPTABLES_TABLES.filter((table) => !saved.includes(`*${table}\n`));
    await writeFile(join(dir, `${tool}.rules`), `${saved}\n${absent.map((table) => `*${table}\nCOMMIT\n`).join('')}`);
  }
  const netns = await readdir('/run/netns').catch(() => [] as string[]);
  await writeFile(join(dir, 'netns.json'), JSON.stringify(netns));
  const cgroups = await kubeletCgroups();
  await writeFile(join(dir, 'cgroups.json'), JSON.stringify(cgroups));
}

/** The QoS cgroups a kubelet makes (kubepods) in each v1 hierarchy, or under the unified one. */
async function kubeletCgroups(): Promise<string[]> {
  const hierarchies = await readdir('/sys/fs/cgroup').catch(() => [] as string[]);
  const found: string[] = [];
  for (const h of hierarchies) {
    const path = join('/sys/fs/cgroup', h, 'kubepods');
    if (await readdir(path).then(() => true, () => false)) found.push(path);
  }
  return found;
}

/** Undoes what a node changed on the host, from the state saveHostState recorded in dir; then removes dir. */
async function restoreHost(dir: string): Promise<void> {
  // Processes still running from this node (a killed run's containerd, shims, kubelet, etcd, kube-apiserver): by
  // their command lines, which name dir or the cluster's folder (etcd names it as seen inside the rootfs).
  const clusterDir = await readFile(join(dir, 'cluster-dir'), 'utf8').catch(() => '');
  const killed: number[] = [];
  for (const pattern of [dir, clusterDir.slice(rootfs().length)].filter(Boolean)) {
    const pids = (await execa('pgrep', ['-f', pattern], { reject: false })).stdout.split('\n').filter(Boolean).map(Number);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    killed.push(...pids);
  }
  if (clusterDir) await rm(clusterDir, { recursive: true, force: true });
  // Containers whose shim is gone: their processes name nothing of ours, but runc (with the node's state root) knows them.
  const runc = (...args: string[]) => execa('runc', ['--root', join(dir, 'runc', 'k8s.io'), ...args], { reject: false });
  for (const id of (await runc('list', '-q')).stdout.split('\n').filter(Boolean)) {
    const state = JSON.parse((await runc('state', id)).stdout || '{}') as { pid?: number };
    if (state.pid) killed.push(state.pid);
    await runc('delete', '--force', id);
  }
  // Killed is not yet gone: an orphan stays a zombie until init reaps it (a living parent reaps its own).
  await eventually(async () => ((await Promise.all(killed.map((pid) => readFile(`/proc/${pid}/stat`).then(() => pid, () => 0)))).every((pid) => pid === 0) ? true : undefined), 10_000, 'killed processes reaped').catch(() => {});
  await unmountUnder(dir);
  const netnsBefore = new Set(JSON.parse(await readFile(join(dir, 'netns.json'), 'utf8').catch(() => '[]')) as string[]);
  for (const name of await readdir('/run/netns').catch(() => [] as string[])) {
    // containerd names its Pod network namespaces cni-<uuid>.
    if (name.startsWith('cni-') && !netnsBefore.has(name)) {
      await execa('umount', [join('/run/netns', name)], { reject: false });
      await rm(join('/run/netns', name), { force: true });
    }
  }
  const bridge = await readFile(join(dir, 'bridge'), 'utf8').catch(() => '');
  if (bridge) {
    // Pods' veths go with their namespaces, but not at once: remove them now.
    const ports = (await execa('ip', ['-o', 'link', 'show', 'master', bridge], { reject: false })).stdout;
    for (const [, port] of ports.matchAll(/^\d+: ([^@:]+)/gm)) await execa('ip', ['link', 'del', port!], { reject: false });
    await execa('ip', ['link', 'del', bridge], { reject: false });
  }
  for (const tool of IPTABLES) {
    const rules = await readFile(join(dir, `${tool}.rules`), 'utf8').catch(() => undefined);
    if (rules !== undefined) await execa(`${tool}-restore`, [], { input: rules });
  }
  const sysctls = JSON.parse(await readFile(join(dir, 'sysctls.json'), 'utf8').catch(() => '{}')) as Record<string, string>;
  for (const [key, value] of Object.entries(sysctls)) await writeFile(`/proc/sys/${key}`, value);
  const cgroupsBefore = new Set(JSON.parse(await readFile(join(dir, 'cgroups.json'), 'utf8').catch(() => '[]')) as string[]);
  for (const path of await kubeletCgroups()) if (!cgroupsBefore.has(path)) await removeCgroup(path);
  await rm(dir, { recursive: true, force: true });
}

/** A cgroup folder and those below it, deepest first (a cgroup is removed with rmdir, its files go with it). */
async function removeCgroup(path: string): Promise<void> {
  const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) if (entry.isDirectory()) await removeCgroup(join(path, entry.name));
  await rmdir(path).catch(() => {});
}

/** Unmounts every mount below dir (overlay rootfs, tmpfs volumes, netns), deepest first. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')
    .map((line) => line.split(' ')[4]?.replace(/\\040/g, ' '))
    .filter((point): point is string => point !== undefined && point.startsWith(`${dir}/`));
  for (const point of mounts.sort((a, b) => b.length - a.length)) await execa('umount', ['-l', point], { reject: false });
}

/** Leftovers of a run that was killed before its stop(): restored as that run would have. */
export async function sweepDeadRuns(): Promise<void> {
  for (const name of await readdir('/tmp')) {
    const full = `/tmp/${name}`;
    if (!full.startsWith(NODE_DIR_PREFIX)) continue;
    const pid = Number(full.slice(NODE_DIR_PREFIX.length));
    const alive = await readFile(`/proc/${pid}/cmdline`).then(() => true, () => false);
    if (!alive) await restoreHost(full);
  }
}
