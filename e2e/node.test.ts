// The shipped image in a Pod that `helm install` created, on a real node (e2e/node: kubelet, containerd, runc, CNI),
// as a user installs it: charts/qubesec with its defaults plus the image's name and a Service type the node can reach
// (ClusterIP: there is no kube-proxy or load balancer here, so clients go to the Pod's address, which the test reads
// from the chart Service's EndpointSlice). The backend is a real Deployment whose EndpointSlices the
// controller-manager writes.
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import { execa } from 'execa';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../controller/project.js';
import { installTrustAnchors, legacyHandshake, pqCurl, type Target } from './lib/clients.js';
import { eventually, metricValue } from './lib/env.js';
import { pqIngress, tlsSecret } from './lib/objects.js';
import { startNode, type TestNode } from './node/node.js';

const CHART = join(PROJECT_ROOT, 'charts', 'qubesec');
const RELEASE = { name: 'qubesec', namespace: 'qubesec' };
/** What e2e/node/images.sh builds and scripts/run.sh passes in QUBESEC_NODE_IMAGES. */
const IMAGE = { repository: 'qubesec.local/qubesec-controller', tag: 'e2e' };
const APP = 'web';
const HOST = 'web.pq.example.com';
/** The chart's container ports (values.yaml controller.containerPort) and metrics port. */
const PORTS = { http: 8080, https: 8443, metrics: 10254 };

let node: TestNode;
let anchors: Awaited<ReturnType<typeof installTrustAnchors>>;

const installValues = ['--set', `controller.image.repository=${IMAGE.repository}`, '--set', `controller.image.tag=${IMAGE.tag}`, '--set', 'controller.service.type=ClusterIP'];

/** The backend: the image's own echo server (controller/cli/echo-backend.ts), answering with its Pod's name. */
function backendDeployment(replicas: number): V1Deployment {
  const serve = "const { startEchoBackend } = await import('/opt/qubesec/dist/controller/cli/echo-backend.js'); await startEchoBackend(process.env.POD_NAME, 8080, '0.0.0.0');";
  return {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'echo', namespace: APP },
    spec: {
      replicas, selector: { matchLabels: { app: 'echo' } },
      template: {
        metadata: { labels: { app: 'echo' } },
        spec: {
          terminationGracePeriodSeconds: 5,
          containers: [{
            name: 'echo', image: `${IMAGE.repository}:${IMAGE.tag}`, imagePullPolicy: 'Never',
            command: ['node', '--input-type=module', '-e', serve],
            env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
            ports: [{ name: 'http', containerPort: 8080 }],
            readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1 },
          }],
        },
      },
    },
  };
}

/** The ready addresses of a Service's EndpointSlices, as the controller-manager wrote them, by Pod name. */
async function readyEndpoints(namespace: string, service: string): Promise<Map<string, string>> {
  const slices = await node.kube.request('GET', `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3D${service}`);
  const ready = new Map<string, string>();
  for (const slice of (slices.json.items ?? []) as { endpoints?: { addresses: string[]; conditions?: { ready?: boolean }; targetRef?: { name: string } }[] }[]) {
    for (const e of slice.endpoints ?? []) if (e.conditions?.ready && e.targetRef) ready.set(e.targetRef.name, e.addresses[0]!);
  }
  return ready;
}

/** The controller Pod's address: the one ready endpoint of the chart's Service. */
async function controllerAddress(): Promise<string> {
  return eventually(async () => {
    const ready = [...(await readyEndpoints(RELEASE.namespace, RELEASE.name)).values()];
    return ready.length === 1 ? ready[0] : undefined;
  }, 120_000, 'one ready controller endpoint');
}

const https = (address: string, path = '/'): Target => ({ host: HOST, port: PORTS.https, address, path });
const pq = (address: string, path?: string) => pqCurl(https(address, path), { curves: 'X25519MLKEM768', cacert: anchors.mldsa });

async function metric(address: string, name: string): Promise<number> {
  const text = await fetch(`http://${address}:${PORTS.metrics}/metrics`).then((r) => r.text());
  return metricValue(text, name);
}

async function controllerPods(): Promise<V1Pod[]> {
  return (await node.kube.core.listNamespacedPod({ namespace: RELEASE.namespace, labelSelector: `app.kubernetes.io/instance=${RELEASE.name}` })).items;
}

beforeAll(async () => {
  const images = process.env.QUBESEC_NODE_IMAGES;
  if (!images) throw new Error('QUBESEC_NODE_IMAGES is not set: run the e2e tests through `npm test` (scripts/run.sh builds the images)');
  node = await startNode(images);
  anchors = await installTrustAnchors();

  await node.helm(RELEASE.namespace, ['install', RELEASE.name, CHART, '--create-namespace', ...installValues, '--wait', '--timeout', '3m']);
  await node.kubectl(['create', 'namespace', APP]);
  await node.kube.apply(tlsSecret('web-mldsa', 'mldsa65', APP));
  await node.kube.apply(tlsSecret('web-ecdsa', 'ecdsa', APP));
  await node.kube.apply(backendDeployment(1));
  await node.kube.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'echo', namespace: APP }, spec: { selector: { app: 'echo' }, ports: [{ name: 'http', port: 80, targetPort: 'http' as never }] } });
  await node.kube.apply(pqIngress(APP, HOST, 'echo', { namespace: APP, secrets: ['web-mldsa', 'web-ecdsa'] }));
}, 10 * 60_000);

afterAll(async () => {
  await node?.stop();
  if (anchors) await execa('rm', ['-rf', anchors.dir]);
}, 120_000);

describe('the image, installed by helm, on a real node', () => {
  it('serves the backend over X25519MLKEM768 with the ML-DSA-65 certificate', async () => {
    const address = await controllerAddress();
    const reply = await eventually(async () => {
      const r = await pq(address);
      return r.status === 200 ? r : undefined;
    }, 60_000, 'PQ 200 from the Pod');
    expect(reply.group).toBe('X25519MLKEM768');
    expect(reply.signature).toBe('id-ml-dsa-65');
    const backends = [...(await readyEndpoints(APP, 'echo')).keys()];
    expect(backends).toContain(JSON.parse(reply.body).backend);
  });

  it('gives a legacy client (OpenSSL 3.0) the ECDSA certificate', async () => {
    const legacy = await legacyHandshake(HOST, PORTS.https, anchors.hostEcdsa, await controllerAddress());
    expect(legacy.ok).toBe(true);
    expect(legacy.signatureType).toBe('ECDSA');
    expect(legacy.serverTempKey).toMatch(/X25519/);
  });

  it('is pq-ready by `qubesec check`', async () => {
    const check = await execa(process.execPath, [join(PROJECT_ROOT, 'dist', 'controller', 'cli', 'main.js'), 'check', `https://${HOST}:${PORTS.https}/`,
      '--address', await controllerAddress(), '--cacert', anchors.hostMldsa, '--json'], { reject: false });
    expect((JSON.parse(check.stdout) as { results: { verdict: string }[] }).results.map((r) => r.verdict)).toEqual(['pq-ready']);
    expect(check.exitCode).toBe(0);
  });

  it('redirects plain HTTP to https on the port clients use (the Service port 443: no port in the URL)', async () => {
    const reply = await pqCurl({ host: HOST, port: PORTS.http, address: await controllerAddress(), scheme: 'http', path: '/login?next=1' });
    expect(reply.status).toBe(308);
    expect(reply.headers.location).toBe(`https://${HOST}/login?next=1`);
  });

  it('denies a bad Ingress through the API server with the controller\'s reason', async () => {
    const bad = pqIngress('snippet', 'snippet.pq.example.com', 'echo', { namespace: APP, annotations: { 'nginx.ingress.kubernetes.io/server-snippet': 'return 200;' } });
    const denied = await node.kubectl(['apply', '-f', '-'], JSON.stringify(bad)).then(() => 'applied', (err: Error) => err.message);
    expect(denied).toMatch(/admission webhook .* denied the request/);
    expect(denied).toMatch(/server-snippet/);
  });

  // docs/pq-tls.md#private-keys-and-the-nginx-workers: what protects the keys, since workers share the master's uid.
  it('runs controller, NGINX master and workers as uid 101 with a read-only root, no privilege escalation, no capability (the chart grants none) and seccomp', async () => {
    const values = parse(await readFile(join(CHART, 'values.yaml'), 'utf8')) as { controller: { containerSecurityContext: { capabilities: { drop: string[]; add?: string[] } } } };
    expect(values.controller.containerSecurityContext.capabilities).toEqual({ drop: ['ALL'] });
    const pod = (await controllerPods()).find((p) => p.status?.phase === 'Running')!;
    const pid = await node.containerPid(pod.status!.containerStatuses![0]!.containerID!);
    const nginxMaster = await childNamed(pid, 'nginx');
    const nginxWorker = await childNamed(nginxMaster, 'nginx');
    for (const p of [pid, nginxMaster, nginxWorker]) {
      const status = await readFile(`/proc/${p}/status`, 'utf8');
      const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1]?.trim();
      expect(field('Uid')?.split(/\s+/)).toEqual(['101', '101', '101', '101']);
      expect(field('Gid')?.split(/\s+/)[0]).toBe('101');
      for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(`${set} ${field(set)}`).toBe(`${set} 0000000000000000`);
      expect(field('NoNewPrivs')).toBe('1');
      // 2: a seccomp filter is in force (the chart's RuntimeDefault profile).
      expect(field('Seccomp')).toBe('2');
      const root = (await readFile(`/proc/${p}/mountinfo`, 'utf8')).split('\n').map((l) => l.split(' ')).find((cols) => cols[4] === '/');
      expect(root?.[5]?.split(',')).toContain('ro');
    }
  });

  it('keeps private keys mode 0600 in a certs folder of 0700, uid 101\'s, on the Pod\'s own emptyDir', async () => {
    const pod = (await controllerPods()).find((p) => p.status?.phase === 'Running')!;
    const pid = await node.containerPid(pod.status!.containerStatuses![0]!.containerID!);
    // The container's view of its files, from the host.
    const certs = `/proc/${pid}/root/run/qubesec/certs`;
    const folder = await stat(certs);
    expect([folder.uid, (folder.mode & 0o777).toString(8)]).toEqual([101, '700']);
    const files = await readdir(certs);
    const pairs = [];
    for (const name of files) {
      const file = await stat(join(certs, name));
      expect(`${name} ${file.uid} ${(file.mode & 0o777).toString(8)}`).toBe(`${name} 101 600`);
      if ((await readFile(join(certs, name), 'utf8')).includes('PRIVATE KEY-----')) pairs.push(name);
    }
    // What the modes protect: the Ingress's ML-DSA and ECDSA pairs at least, and the session ticket keys.
    expect(pairs.length).toBeGreaterThanOrEqual(2);
    expect(files.some((name) => /^ticket-.*\.key$/.test(name))).toBe(true);
    const mount = (await readFile(`/proc/${pid}/mountinfo`, 'utf8')).split('\n').map((l) => l.split(' ')).find((cols) => cols[4] === '/run/qubesec');
    expect(mount?.[3]).toMatch(/\/volumes\/kubernetes\.io~empty-dir\/conf-dir$/);
  });

  it('takes backend Pods scaled up and down without a reload and without a failed request', async () => {
    const address = await controllerAddress();
    // The app's host served before its reload (docs/architecture.md#new-hosts-without-a-reload): that reload first.
    await eventually(async () => ((await metric(address, 'qubesec_new_hosts')) === 0 || undefined), 30_000, 'the new host\'s reload');
    const reloads = await metric(address, 'qubesec_config_reloads_total');
    const updates = await metric(address, 'qubesec_endpoint_updates_total');
    const answers: { status: number; backend?: string }[] = [];
    let running = true;
    // Bounded: at most 3,000 requests, each on a new connection, and only while the test scales.
    const load = (async () => {
      for (let i = 0; running && i < 3000; i++) {
        const r = await pq(address);
        answers.push({ status: r.status, backend: r.status === 200 ? (JSON.parse(r.body) as { backend: string }).backend : undefined });
      }
    })();
    try {
      await node.kubectl(['--namespace', APP, 'scale', 'deployment/echo', '--replicas=3']);
      const three = await eventually(async () => {
        const ready = await readyEndpoints(APP, 'echo');
        return ready.size === 3 ? ready : undefined;
      }, 120_000, 'three ready backends');
      await eventually(async () => ([...three.keys()].every((pod) => answers.some((a) => a.backend === pod)) ? true : undefined), 60_000, 'answers from all three backends');
      await node.kubectl(['--namespace', APP, 'scale', 'deployment/echo', '--replicas=1']);
      await eventually(async () => ((await node.kube.core.listNamespacedPod({ namespace: APP, labelSelector: 'app=echo' })).items.length === 1 ? true : undefined), 60_000, 'scaled down to one Pod');
      const mark = answers.length;
      await eventually(async () => (answers.length > mark + 20 ? true : undefined), 30_000, 'requests after the scale-down');
    } finally {
      running = false;
      await load;
    }
    expect(answers.length).toBeGreaterThan(20);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(await metric(address, 'qubesec_config_reloads_total')).toBe(reloads);
    expect(await metric(address, 'qubesec_endpoint_updates_total')).toBeGreaterThanOrEqual(updates + 2);
  }, 300_000);

  it('serves again from a new Pod after the controller Pod is deleted, and is Ready only when it serves', async () => {
    const [old] = (await controllerPods()).filter((p) => !p.metadata?.deletionTimestamp);
    await node.kubectl(['--namespace', RELEASE.namespace, 'delete', 'pod', old!.metadata!.name!, '--wait=false']);
    const samples: { ready: boolean; deploymentReady: boolean; serving: boolean }[] = [];
    await eventually(async () => {
      const pod = (await controllerPods()).find((p) => p.metadata?.name !== old!.metadata!.name && !p.metadata?.deletionTimestamp && p.status?.podIP);
      if (!pod) return undefined;
      // Readiness first, then a request: a Pod Ready before the request must serve it.
      const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
      const deployment = await node.kube.request('GET', `/apis/apps/v1/namespaces/${RELEASE.namespace}/deployments/${RELEASE.name}`);
      const deploymentReady = Number((deployment.json.status as { readyReplicas?: number } | undefined)?.readyReplicas ?? 0) > 0;
      const serving = (await pq(pod.status!.podIP!)).status === 200;
      samples.push({ ready, deploymentReady, serving });
      return ready && serving ? true : undefined;
    }, 180_000, 'the new controller Pod Ready and serving');
    expect(samples.filter((s) => s.ready && !s.serving)).toEqual([]);
    // The Deployment counted no ready replica while none served (the old Pod is terminating, the new one not ready).
    expect(samples.filter((s) => s.deploymentReady && !s.serving && !s.ready)).toEqual([]);
    expect(samples.some((s) => !s.ready)).toBe(true);
  }, 240_000);

  it('applies changed PQ values on `helm upgrade`: pq.mode=strict refuses a client without ML-KEM', async () => {
    await node.helm(RELEASE.namespace, ['upgrade', RELEASE.name, CHART, '--reuse-values', '--set', 'pq.mode=strict', '--wait', '--timeout', '3m']);
    const address = await eventually(async () => {
      const pods = (await controllerPods()).filter((p) => !p.metadata?.deletionTimestamp);
      return pods.length === 1 && pods[0]!.spec?.containers[0]?.args?.includes('--default-pq-mode=strict') ? controllerAddress() : undefined;
    }, 120_000, 'the upgraded controller Pod');
    expect((await eventually(async () => ((await pq(address)).status === 200 ? true : undefined), 60_000, 'PQ 200 after the upgrade'))).toBe(true);
    const legacy = await legacyHandshake(HOST, PORTS.https, anchors.hostEcdsa, address);
    expect(legacy.ok).toBe(false);
    expect(legacy.output).toMatch(/handshake failure|no suitable key share|alert/i);
  }, 360_000);
});

/** The PID of a child process of `parent` whose command is `name`. */
async function childNamed(parent: number, name: string): Promise<number> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid ...
    const match = /^\d+ \((.*)\) \S (\d+)/.exec(stat);
    if (match?.[1] === name && Number(match[2]) === parent) return Number(entry);
  }
  throw new Error(`no ${name} process under PID ${parent}`);
}
