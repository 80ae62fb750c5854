// A real Kubernetes API server with etcd on 127.0.0.1, for the e2e tests: no Docker, no kubelet, no mocks.
// etcd comes from the data-plane rootfs (Debian's etcd-server), kube-apiserver from e2e/cluster/build-kube.sh.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { KubeConfig } from '@kubernetes/client-node';
import { freePort, kubeBinary, rootfs } from '../lib/env.js';

export interface TestCluster {
  kubeconfigPath: string;
  kc: KubeConfig;
  server: string;
  token: string;
  /**
   * The cluster's files: serving.crt (the API server's certificate, its own CA, as Pods' ca.crt), sa.key, component
   * kubeconfigs, etcd's data. The command lines of etcd and kube-apiserver name it.
   */
  dir: string;
  /** Port kube-apiserver listens on. */
  port: number;
  /** Stops kube-apiserver (SIGTERM, as a rolling control-plane update does) and starts it again on the same etcd; resolves once it is ready. */
  restartApiServer(): Promise<void>;
  stop(): Promise<void>;
}

/** Service ClusterIPs; the first, SERVICE_RANGE's .1, is the `kubernetes` Service. From 198.18.0.0/15, as all test addresses. */
export const SERVICE_RANGE = '198.19.128.0/20';
export const KUBERNETES_SERVICE_IP = '198.19.128.1';

/** What a cluster with a node needs of its API server (e2e/node): a reachable address and Pods served as in a real cluster. */
export interface NodeNetwork {
  /** The node's address: kube-apiserver listens and advertises there, so Pods reach it through the `kubernetes` Service. */
  address: string;
  /** The client certificate and key the API server presents to the kubelet (logs, exec); the kubelet trusts its CA. */
  kubeletClient: { cert: string; key: string };
}

/** The API server's audit webhook backend (e2e/audit.test.ts): a policy file and the webhook's kubeconfig. */
export interface AuditWebhook {
  policyFile: string;
  webhookConfigFile: string;
}

export const NODE_NAME = 'qubesec-node';
/** The components of a cluster with a node, each with the user and groups its token authenticates as. */
const COMPONENT_USERS = {
  kubelet: { user: `system:node:${NODE_NAME}`, groups: 'system:nodes' },
  'kube-controller-manager': { user: 'system:kube-controller-manager', groups: '' },
  'kube-scheduler': { user: 'system:kube-scheduler', groups: '' },
};

/** Folder-name prefix of a node's cluster (kube-apiserver, etcd). */
export const NODE_CLUSTER_DIR_PREFIX = 'qubesec-node-apiserver-';

export async function startCluster(node?: NodeNetwork, audit?: AuditWebhook): Promise<TestCluster> {
  const apiserverBinary = kubeBinary('kube-apiserver');
  const root = rootfs();
  // etcd runs chrooted, so its data (dir/etcd) lives inside the rootfs; every process's command line names dir, and
  // a node's dir says so (node-host.test tells the node's processes from those of other test runs by it).
  const dir = await mkdtemp(join(root, 'tmp', node ? NODE_CLUSTER_DIR_PREFIX : 'qubesec-apiserver-'));
  const etcdDir = join(dir, 'etcd');
  const inRoot = (p: string) => p.slice(root.length);
  const children: ResultPromise[] = [];
  const stop = async () => {
    for (const child of children.reverse()) child.kill('SIGTERM');
    await Promise.allSettled(children);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const etcd = execa('chroot', [root, 'etcd', '--data-dir', inRoot(etcdDir), '--listen-client-urls', etcdUrl, '--advertise-client-urls', etcdUrl,
      '--listen-peer-urls', `http://127.0.0.1:${etcdPeer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${etcdPeer}`,
      '--initial-cluster', `default=http://127.0.0.1:${etcdPeer}`, '--log-level', 'error', '--unsafe-no-fsync'], { reject: false, all: true });
    children.push(etcd);

    const openssl = (...args: string[]) => execa('chroot', [root, 'openssl', ...args]);
    const names = ['IP:127.0.0.1', 'DNS:localhost', ...(node ? [`IP:${node.address}`, `IP:${KUBERNETES_SERVICE_IP}`, 'DNS:kubernetes.default.svc'] : [])];
    await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=kube-apiserver',
      '-addext', `subjectAltName=${names.join(',')}`, '-keyout', inRoot(join(dir, 'serving.key')), '-out', inRoot(join(dir, 'serving.crt')));
    await openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', inRoot(join(dir, 'sa.key')));
    await openssl('pkey', '-in', inRoot(join(dir, 'sa.key')), '-pubout', '-out', inRoot(join(dir, 'sa.pub')));
    const token = 'qubesec-e2e-admin';
    const components = node ? Object.entries(COMPONENT_USERS).map(([name, { user, groups }]) =>
      ({ name, token: `qubesec-e2e-${name}`, line: `qubesec-e2e-${name},${user},${name}-uid,"${groups}"` })) : [];
    await writeFile(join(dir, 'tokens.csv'), [`${token},admin,admin-uid,system:masters`, ...components.map((c) => c.line)].join('\n') + '\n');
    const address = node?.address ?? '127.0.0.1';
    // A cluster with a node runs Pods as a real one does: ServiceAccount tokens mounted, webhooks and kubelets called
    // at their Pod and node IPs (there is no kube-proxy).
    const nodeFlags = node
      ? ['--enable-aggregator-routing=true', '--kubelet-preferred-address-types=InternalIP',
        `--kubelet-client-certificate=${node.kubeletClient.cert}`, `--kubelet-client-key=${node.kubeletClient.key}`]
      : ['--disable-admission-plugins=ServiceAccount'];
    // Batches leave after 1 s (default 30 s); a refused one is retried after 3 s, then 4.5, 6.75, 10.1 (default from 10 s).
    const auditFlags = audit
      ? [`--audit-policy-file=${audit.policyFile}`, `--audit-webhook-config-file=${audit.webhookConfigFile}`,
        '--audit-webhook-batch-max-wait=1s', '--audit-webhook-initial-backoff=3s']
      : [];

    const startApiServer = () => execa(apiserverBinary, [
      `--etcd-servers=${etcdUrl}`,
      `--bind-address=${address}`, `--advertise-address=${address}`, `--secure-port=${apiPort}`,
      `--tls-cert-file=${join(dir, 'serving.crt')}`, `--tls-private-key-file=${join(dir, 'serving.key')}`,
      `--service-account-key-file=${join(dir, 'sa.pub')}`, `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      `--token-auth-file=${join(dir, 'tokens.csv')}`, '--authorization-mode=Node,RBAC',
      `--service-cluster-ip-range=${SERVICE_RANGE}`, ...nodeFlags, ...auditFlags,
      `--cert-dir=${join(dir, 'certs')}`,
    ], { reject: false, all: true });
    let apiserver = startApiServer();
    children.push(apiserver);

    const server = `https://${address}:${apiPort}`;
    const kubeconfigPath = join(dir, 'kubeconfig.json');
    await writeKubeconfig(kubeconfigPath, server, token);
    for (const component of components) await writeKubeconfig(join(dir, `${component.name}.kubeconfig`), server, component.token);
    await mkdir(join(dir, 'certs'), { recursive: true });
    const exited = new Set<ResultPromise>();
    const watchExit = (child: ResultPromise) => void child.then(() => exited.add(child));
    for (const child of [etcd, apiserver]) watchExit(child);
    await waitReady(server, token, () => [...exited][0]);
    const restartApiServer = async () => {
      const old = apiserver;
      old.kill('SIGTERM');
      await old;
      exited.delete(old);
      children.splice(children.indexOf(old), 1);
      apiserver = startApiServer();
      children.push(apiserver);
      watchExit(apiserver);
      await waitReady(server, token, () => [...exited][0]);
    };
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    return { kubeconfigPath, kc, server, token, dir, port: apiPort, restartApiServer, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A kubeconfig that authenticates with a bearer token: the admin's, or a ServiceAccount's from the TokenRequest API. */
export async function writeKubeconfig(path: string, server: string, token: string, namespace?: string): Promise<void> {
  const kubeconfig = {
    apiVersion: 'v1', kind: 'Config', 'current-context': 'e2e',
    clusters: [{ name: 'e2e', cluster: { server, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'e2e', user: { token } }],
    contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: 'e2e', namespace } }],
  };
  await writeFile(path, JSON.stringify(kubeconfig));
}

async function waitReady(server: string, token: string, exited: () => ResultPromise | undefined): Promise<void> {
  const deadline = Date.now() + 120_000;
  let last = '';
  while (Date.now() < deadline) {
    const dead = exited();
    if (dead) throw new Error(`a cluster process exited: ${String((await dead).all).slice(-2000)}`);
    const result = await execa('curl', ['-sk', '-H', `Authorization: Bearer ${token}`, `${server}/readyz`], { reject: false });
    last = result.stdout;
    if (result.exitCode === 0 && last.trim() === 'ok') return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`kube-apiserver not ready after 120 s: ${last}`);
}
