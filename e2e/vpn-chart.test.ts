// charts/qubesec-vpn rendered by the real helm binary and judged by the real kube-apiserver (server-side dry-run with
// strict field validation): lint, least-privilege RBAC, capabilities, libipsec's TUN device, forwarding's sysctl, the
// Service, values the schema refuses, and arguments the real `qubesec vpn run` parser takes. e2e/vpn-node.test.ts
// installs it on a real node.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { KubernetesObject, V1Deployment, V1Role, V1Service } from '@kubernetes/client-node';
import { execa } from 'execa';
import { parseAllDocuments, stringify } from 'yaml';
import { VPN_OPTIONS } from '../controller/cli/vpn.js';
import { PROJECT_ROOT } from '../controller/project.js';
import { startCluster, type TestCluster } from './cluster/cluster.js';
import { Kube } from './lib/kube.js';

const CHART = join(PROJECT_ROOT, 'charts', 'qubesec-vpn');
let cluster: TestCluster;
let kube: Kube;
let workDir: string;

async function helm(args: string[], values: Record<string, unknown>) {
  const helmBinary = process.env.HELM;
  if (!helmBinary) throw new Error('HELM is not set: run the e2e tests through `npm test` (scripts/run.sh builds helm)');
  const file = join(workDir, `values-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, stringify(values));
  return execa(helmBinary, [...args, '--values', file], { reject: false });
}

async function render(values: Record<string, unknown>): Promise<KubernetesObject[]> {
  const result = await helm(['template', 'edge', CHART, '--namespace', 'vpn', '--include-crds'], values);
  if (result.exitCode !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  return parseAllDocuments(result.stdout).map((d) => d.toJS() as KubernetesObject).filter(Boolean);
}
const ofKind = <T extends KubernetesObject>(objects: KubernetesObject[], kind: string) => objects.filter((o) => o.kind === kind) as T[];

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'qubesec-vpn-chart-'));
  cluster = await startCluster();
  kube = new Kube(cluster.kc);
  await kube.core.createNamespace({ body: { metadata: { name: 'vpn' } } });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  await rm(workDir, { recursive: true, force: true });
});

describe('charts/qubesec-vpn', () => {
  it.each([['defaults', {}], ['libipsec on the host network', { libipsec: true, hostNetwork: true }]])('lints cleanly with %s', async (_name, values) => {
    const result = await helm(['lint', CHART, '--strict', '--namespace', 'vpn'], values);
    expect([result.exitCode, result.stdout]).toEqual([0, expect.stringContaining('1 chart(s) linted, 0 chart(s) failed')]);
  });

  it('renders objects the API server accepts, with least privilege and, as UID 0, only NET_ADMIN and NET_BIND_SERVICE', async () => {
    const objects = await render({});
    for (const obj of objects) {
      const crd = obj.kind === 'CustomResourceDefinition';
      // The chart's kinds (ServiceAccount, Role, RoleBinding, Deployment, Service) are all plural with an "s".
      const path = crd ? '/apis/apiextensions.k8s.io/v1/customresourcedefinitions'
        : `${obj.apiVersion!.includes('/') ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`}/namespaces/vpn/${obj.kind!.toLowerCase()}s`;
      const result = await kube.request('POST', `${path}?dryRun=All&fieldValidation=Strict`, { ...obj, metadata: { ...obj.metadata, ...(crd ? {} : { namespace: 'vpn' }) } });
      expect([obj.kind, result.status, result.status === 201 ? '' : result.body]).toEqual([obj.kind, 201, '']);
    }
    expect(ofKind(objects, 'CustomResourceDefinition').map((c) => c.metadata!.name).sort()).toEqual(['vpngateways.qubesec.io', 'vpnpeers.qubesec.io']);
    expect(ofKind(objects, 'ClusterRole')).toEqual([]);
    expect(ofKind<V1Role>(objects, 'Role')[0]!.rules).toEqual([
      { apiGroups: ['qubesec.io'], resources: ['vpngateways', 'vpnpeers'], verbs: ['list', 'watch'] },
      { apiGroups: ['qubesec.io'], resources: ['vpnpeers/status', 'vpngateways/status'], verbs: ['update'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['list', 'watch'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'update'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
    ]);
    const pod = ofKind<V1Deployment>(objects, 'Deployment')[0]!.spec!.template.spec!;
    const container = pod.containers[0]!;
    expect(container.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'], add: ['NET_ADMIN', 'NET_BIND_SERVICE'] } });
    expect(pod.securityContext).toEqual({ runAsUser: 0, runAsGroup: 0, seccompProfile: { type: 'RuntimeDefault' } });
    expect(container.image).toBe('ghcr.io/qubesec/qubesec-vpn:0.1.0');
    expect([container.readinessProbe?.httpGet?.path, container.livenessProbe?.httpGet?.path]).toEqual(['/readyz', '/healthz']);
    const service = ofKind<V1Service>(objects, 'Service')[0]!;
    expect(service.spec!.ports!.map((p) => [p.port, p.protocol])).toEqual([[500, 'UDP'], [4500, 'UDP']]);
    expect(service.spec!.type).toBe('LoadBalancer');
    // The image's entrypoint is `qubesec vpn run`: the arguments are flags it takes (the same parser and option table).
    const flags = container.args!;
    expect(() => parseArgs({ args: flags, options: VPN_OPTIONS, strict: true })).not.toThrow();
    expect(flags).not.toContain('--libipsec');
  });

  it('with libipsec mounts the TUN device and passes --libipsec; on the host network it makes no Service', async () => {
    const objects = await render({ libipsec: true, hostNetwork: true });
    const pod = ofKind<V1Deployment>(objects, 'Deployment')[0]!.spec!.template.spec!;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.containers[0]!.args).toContain('--libipsec');
    expect(pod.volumes).toContainEqual({ name: 'tun', hostPath: { path: '/dev/net/tun', type: 'CharDevice' } });
    expect(pod.containers[0]!.volumeMounts).toContainEqual({ name: 'tun', mountPath: '/dev/net/tun' });
    expect(ofKind(objects, 'Service')).toEqual([]);
    expect(pod.securityContext?.sysctls).toBeUndefined();
  });

  it('with forwarding sets the Pod\'s net.ipv4.ip_forward, and a digest pins the image', async () => {
    const digest = `sha256:${'ab'.repeat(32)}`;
    const pod = ofKind<V1Deployment>(await render({ forwarding: true, image: { digest } }), 'Deployment')[0]!.spec!.template.spec!;
    expect(pod.securityContext?.sysctls).toEqual([{ name: 'net.ipv4.ip_forward', value: '1' }]);
    expect(pod.containers[0]!.image).toBe(`ghcr.io/qubesec/qubesec-vpn@${digest}`);
  });

  it('with replicas > 1 elects one active gateway: --leader-election and the Lease in the Role, none with one replica', async () => {
    const leases = { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] };
    const two = await render({ replicas: 2 });
    expect(ofKind<V1Deployment>(two, 'Deployment')[0]!.spec!.replicas).toBe(2);
    expect(ofKind<V1Deployment>(two, 'Deployment')[0]!.spec!.template.spec!.containers[0]!.args).toContain('--leader-election');
    expect(ofKind<V1Role>(two, 'Role')[0]!.rules).toContainEqual(leases);
    const one = await render({});
    expect(ofKind<V1Deployment>(one, 'Deployment')[0]!.spec!.template.spec!.containers[0]!.args).not.toContain('--leader-election');
    expect(ofKind<V1Role>(one, 'Role')[0]!.rules).not.toContainEqual(leases);
  });

  it.each([
    [{ replicas: 0 }, 'replicas'],
    [{ libipsec: 'sometimes' }, 'libipsec'],
    [{ logLevel: 'trace' }, 'logLevel'],
    [{ metricsPort: 70000 }, 'metricsPort'],
    [{ image: { digest: 'latest' } }, 'digest'],
    [{ gatway: { name: 'gw' } }, 'gatway'],
  ])('refuses %j with a schema message naming the value', async (values, field) => {
    const result = await helm(['template', 'edge', CHART, '--namespace', 'vpn'], values);
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(result.stderr).toContain(field);
  });
});
