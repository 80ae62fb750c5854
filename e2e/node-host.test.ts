// The node harness leaves the host as it found it: processes, mounts, network namespaces, links, iptables rules,
// the kubelet's sysctls and cgroups, after stop() and after a run that was killed before it could stop.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { execa } from 'execa';
import { PROJECT_ROOT } from '../controller/project.js';
import { NODE_CLUSTER_DIR_PREFIX, NODE_NAME } from './cluster/cluster.js';
import { eventually } from './lib/env.js';
import { Kube } from './lib/kube.js';
import { KUBELET_SYSCTLS, NODE_BRIDGE, NODE_DIR_PREFIX, startNode, sweepDeadRuns, type TestNode } from './node/node.js';

const images = () => {
  const dir = process.env.QUBESEC_NODE_IMAGES;
  if (!dir) throw new Error('QUBESEC_NODE_IMAGES is not set: run the e2e tests through `npm test` (scripts/run.sh builds the images)');
  return dir;
};

type HostState = Record<'processes' | 'mounts' | 'netns' | 'links' | 'iptables' | 'ip6tables' | 'sysctls' | 'cgroups', string[]>;

/** What a node could leave behind, as lists that compare equal when nothing was left. */
async function hostState(): Promise<HostState> {
  const lines = async (file: string, args: string[] = []) => (await execa(file, args)).stdout.split('\n');
  // Without the saves' timestamp comments and packet counters.
  const rules = async (tool: string) => (await lines(`${tool}-save`)).filter((l) => !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/g, ''));
  const hierarchies = await readdir('/sys/fs/cgroup');
  return {
    // Only what a node makes (its folder, the CNI's namespaces and veths, its bridge): other test runs on the machine
    // (API servers, etcds, backend namespaces, VPN peers) come and go meanwhile.
    processes: (await lines('ps', ['-eo', 'args='])).filter((args) => /containerd|kubelet|kube-controller-manager|kube-scheduler|^\/pause$/.test(args) || args.includes(NODE_CLUSTER_DIR_PREFIX)).sort(),
    mounts: (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(NODE_DIR_PREFIX) || /^\/run\/netns\/cni-|containerd|kubelet/.test(m)).sort(),
    netns: (await readdir('/run/netns').catch(() => [] as string[])).filter((n) => n.startsWith('cni-')).sort(),
    links: (await lines('ip', ['-o', 'link', 'show'])).map((l) => l.split(':')[1]?.trim() ?? '').filter((l) => l === NODE_BRIDGE || /^veth[0-9a-f]{8}\b/.test(l)).sort(),
    iptables: await rules('iptables'),
    ip6tables: await rules('ip6tables'),
    sysctls: await Promise.all(KUBELET_SYSCTLS.map(async (k) => `${k}=${(await readFile(`/proc/sys/${k}`, 'utf8')).trim()}`)),
    cgroups: (await Promise.all(hierarchies.map((h) => readdir(`/sys/fs/cgroup/${h}/kubepods`).then(() => [h], () => [])))).flat(),
  };
}

/** A Pod from the pause image: containers, mounts, a network namespace and a veth on the node's bridge. */
async function runPausePod(kube: Kube): Promise<void> {
  const node = await kube.core.readNode({ name: NODE_NAME });
  const image = node.status?.images?.flatMap((i) => i.names ?? []).find((name) => /\/pause:/.test(name));
  if (!image) throw new Error('the node has no pause image');
  await kube.apply({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'pause', namespace: 'default' }, spec: { containers: [{ name: 'pause', image, imagePullPolicy: 'Never' }] } });
  await eventually(async () => ((await kube.core.readNamespacedPod({ namespace: 'default', name: 'pause' })).status?.phase === 'Running' ? true : undefined), 60_000, 'pause Pod running');
}

/** The node changed each part of the state: otherwise "the same afterwards" would prove nothing. */
function expectChanged(before: HostState, during: HostState): void {
  for (const key of ['processes', 'mounts', 'netns', 'links', 'iptables', 'sysctls'] as const) {
    expect(`${key}: ${during[key].join('\n')}`).not.toBe(`${key}: ${before[key].join('\n')}`);
  }
}

describe('the node harness', () => {
  let node: TestNode | undefined;
  afterAll(async () => {
    await node?.stop();
    await sweepDeadRuns();
  }, 120_000);

  it('restores the host on stop(), with a Pod running', async () => {
    const before = await hostState();
    node = await startNode(images());
    await runPausePod(node.kube);
    expectChanged(before, await hostState());
    await node.stop();
    node = undefined;
    expect(await hostState()).toEqual(before);
  }, 180_000);

  it('removes what a killed run left, at the next start', async () => {
    const before = await hostState();
    // A node in a process of its own, killed (SIGKILL: no stop(), no exit handler) once it runs a Pod.
    const script = `const { startNode } = await import(${JSON.stringify(join(PROJECT_ROOT, 'dist', 'e2e', 'node', 'node.js'))});
const node = await startNode(process.env.QUBESEC_NODE_IMAGES);
process.stdout.write(node.cluster.kubeconfigPath + '\\n');
setInterval(() => {}, 1000);`;
    const child = execa(process.execPath, ['--input-type=module', '-e', script], { reject: false, all: true });
    const kubeconfig = await new Promise<string>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
      void child.then((r) => reject(new Error(`the node process exited: ${r.all}`)));
    });
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    await runPausePod(new Kube(kc));
    child.kill('SIGKILL');
    await child;
    const left = await hostState();
    expectChanged(before, left);
    expect(left.processes.some((p) => p.startsWith('containerd '))).toBe(true);

    await sweepDeadRuns();
    expect(await hostState()).toEqual(before);
  }, 180_000);
});
