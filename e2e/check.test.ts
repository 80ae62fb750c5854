// `qubesec check` end to end: the CLI as its own process against the real controller + NGINX (one Ingress per pq-mode),
// against plain NGINX from the rootfs configured classical-only and hybrid-without-preference, and --all-ingresses
// against the real API server through the kubectl plugin entry point.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { PROJECT_ROOT } from '../controller/project.js';
import type { CheckOutput, CheckReport } from '../controller/check/report.js';
import { startEcho, startRootfsNginx } from './lib/backends.js';
import { pqCurl } from './lib/clients.js';
import { eventually, freePort, rootfs } from './lib/env.js';
import { startTestController, type TestController } from './lib/harness.js';
import { pqIngress, tlsSecret } from './lib/objects.js';
import { startClusterSetup, stopClusterSetup, type ClusterSetup } from './lib/setup.js';

const CLI = join(PROJECT_ROOT, 'dist', 'controller', 'cli', 'main.js');
const PLUGIN = join(PROJECT_ROOT, 'dist', 'controller', 'cli', 'kubectl-qubesec.js');
const MODES = ['hybrid', 'strict', 'classical'] as const;

let setup: ClusterSetup;
let controller: TestController;
/** Ports of the plain NGINX: ECDSA, X25519 and P-256 only; and ML-KEM accepted but in the client's order. */
let classicalPort: number;
let unpreferredPort: number;
/** --all-ingresses run before the controller started: no Ingress had a status address yet. */
let beforeStatus: Awaited<ReturnType<typeof check>>;

async function check(args: string[], entry = CLI): Promise<{ exitCode: number; output: CheckOutput; stderr: string }> {
  const result = await execa(process.execPath, [entry, 'check', ...args, '--json'], { reject: false });
  return { exitCode: result.exitCode ?? -1, output: JSON.parse(result.stdout || '{}') as CheckOutput, stderr: result.stderr };
}

const onController = (mode: string) => [`https://${mode}.pq.example.com:${controller.httpsPort}`, '--address', '127.0.0.1', '--cacert', setup.anchors.hostMldsa];

/** The keys of a JSON value, recursively: arrays by their first element, so the docs' example and real output compare. */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.length > 0 ? [shape(value[0])] : [];
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shape(v)]));
  return value === null ? 'null' : typeof value;
}

async function startPlainNginx(): Promise<void> {
  const { dir } = setup.anchors;
  const inside = dir.slice(rootfs().length);
  [classicalPort, unpreferredPort] = [await freePort(), await freePort()];
  const server = (port: number, cert: string, groups: string) => `
    server {
        listen ${setup.testHost.address}:${port} ssl;
        ssl_certificate ${inside}/${cert}.crt;
        ssl_certificate_key ${inside}/${cert}.key;
        ssl_ecdh_curve ${groups};
        return 200 "ok\\n";
    }`;
  for (const name of ['ecdsa', 'mldsa65']) await writeFile(join(dir, `${name}.key`), await readFile(join(PROJECT_ROOT, 'controller', 'testdata', `${name}.key`)), { mode: 0o600 });
  await writeFile(join(dir, 'plain-nginx.conf'), `worker_processes 1;
pid ${inside}/plain-nginx.pid;
error_log stderr warn;
events {
    worker_connections 64;
}
http {
    access_log off;
    client_body_temp_path ${inside}/client_body;
    proxy_temp_path ${inside}/proxy;
    fastcgi_temp_path ${inside}/fastcgi;
    uwsgi_temp_path ${inside}/uwsgi;
    scgi_temp_path ${inside}/scgi;
${server(classicalPort, 'ecdsa', 'X25519:prime256v1')}
${server(unpreferredPort, 'mldsa65', 'X25519:X25519MLKEM768')}
}
`);
  await startRootfsNginx(setup.testHost, `${inside}/plain-nginx.conf`, [classicalPort, unpreferredPort]);
}

beforeAll(async () => {
  setup = await startClusterSetup();
  const echoPort = await startEcho(setup.testHost, 'alpha');
  await setup.kube.publishService('alpha', echoPort, setup.testHost.address);
  await setup.kube.apply(tlsSecret('pq-ecdsa', 'ecdsa'));
  for (const mode of MODES) {
    await setup.kube.apply(pqIngress(`check-${mode}`, `${mode}.pq.example.com`, 'alpha', { secrets: ['pq-mldsa'], annotations: { 'qubesec.io/pq-mode': mode } }));
  }
  // An Ingress of another class: --all-ingresses must leave it out.
  await setup.kube.apply(pqIngress('check-foreign', 'foreign.pq.example.com', 'alpha', { secrets: ['pq-mldsa'], className: 'nginx' }));
  beforeStatus = await check(['--all-ingresses', '--kubeconfig', setup.cluster.kubeconfigPath]);
  controller = await startTestController({ kubeconfig: setup.cluster.kubeconfigPath }, ['--publish-status-address', '127.0.0.1']);
  for (const mode of MODES) {
    await eventually(async () => ((await pqCurl({ host: `${mode}.pq.example.com`, port: controller.httpsPort }, { cacert: setup.anchors.mldsa })).status === 200 || undefined), 30_000, `${mode}.pq.example.com served`);
  }
  await startPlainNginx();
});

afterAll(async () => {
  await stopClusterSetup(setup, controller);
});

describe('qubesec check', () => {
  it('hybrid mode: pq-ready, hybrids preferred over a classical-first offer, classical still accepted; ML-DSA chain verified', async () => {
    const { exitCode, output } = await check(onController('hybrid'));
    expect(exitCode).toBe(0);
    const [report] = output.results as [CheckReport];
    expect(report.verdict).toBe('pq-ready');
    expect(report.groups.accepted).toEqual({ hybrid: ['X25519MLKEM768', 'SecP256r1MLKEM768', 'SecP384r1MLKEM1024'], mlKem: [], classical: ['X25519', 'secp256r1', 'secp384r1'] });
    expect(report.groups.preferred).toBe('X25519MLKEM768');
    expect(report.groups.refusesClassical).toBe(false);
    expect(report.protocol).toBe('TLSv1.3');
    expect(report.certificate).toMatchObject({ verified: true, verifyError: null });
    expect(report.certificate!.chain.map((c) => [c.publicKeyAlgorithm, c.signatureAlgorithm, c.notAfter])).toEqual([['ml-dsa-65', 'ml-dsa-65', '2126-01-01T00:00:00.000Z']]);
    expect(report.certificate!.chain[0]!.daysLeft).toBeGreaterThan(36_000);
  });

  it('strict mode: pq-ready, pure ML-KEM accepted and classical refused', async () => {
    const { exitCode, output } = await check(onController('strict'));
    expect(exitCode).toBe(0);
    const [report] = output.results as [CheckReport];
    expect(report.verdict).toBe('pq-ready');
    expect(report.groups.accepted).toEqual({ hybrid: ['X25519MLKEM768', 'SecP256r1MLKEM768', 'SecP384r1MLKEM1024'], mlKem: ['MLKEM768', 'MLKEM1024'], classical: [] });
    expect(report.groups.refusesClassical).toBe(true);
    expect(report.groups.preferred).toBe('X25519MLKEM768');
  });

  it('classical mode: classical-only, exit code 4', async () => {
    const { exitCode, output } = await check(onController('classical'));
    expect(exitCode).toBe(4);
    const [report] = output.results as [CheckReport];
    expect(report.verdict).toBe('classical-only');
    expect(report.groups.accepted).toEqual({ hybrid: [], mlKem: [], classical: ['X25519', 'secp256r1', 'secp384r1'] });
    expect(report.groups.preferred).toBe('X25519');
  });

  it('a classical-only NGINX with an ECDSA certificate: classical-only, its groups, an ECDSA chain', async () => {
    const { exitCode, output } = await check([`https://plain.pq.example.com:${classicalPort}`, '--address', setup.testHost.address, '--cacert', setup.anchors.hostEcdsa]);
    expect(exitCode).toBe(4);
    const [report] = output.results as [CheckReport];
    expect(report.verdict).toBe('classical-only');
    expect(report.groups.accepted).toEqual({ hybrid: [], mlKem: [], classical: ['X25519', 'secp256r1'] });
    expect(report.groups.preferred).toBe('X25519');
    expect(report.certificate!.verified).toBe(true);
    expect(report.certificate!.chain[0]!.publicKeyAlgorithm).toBe('ecdsa-p256');
    expect(report.certificate!.chain[0]!.signatureAlgorithm).toMatch(/^ecdsa-with-sha/);
  });

  it('an NGINX that accepts X25519MLKEM768 but follows a classical-first client: hybrid-only, exit code 3', async () => {
    const { exitCode, output } = await check([`https://plain.pq.example.com:${unpreferredPort}`, '--address', setup.testHost.address, '--cacert', setup.anchors.hostMldsa]);
    expect(exitCode).toBe(3);
    const [report] = output.results as [CheckReport];
    expect(report.verdict).toBe('hybrid-only');
    expect(report.groups.accepted.hybrid).toEqual(['X25519MLKEM768']);
    expect(report.groups.preferred).toBe('X25519');
  });

  it('reports, and exits 6 on, a chain that --cacert does not verify; without --cacert the verdict alone decides', async () => {
    const wrongCa = await check([`https://hybrid.pq.example.com:${controller.httpsPort}`, '--address', '127.0.0.1', '--cacert', setup.anchors.hostEcdsa]);
    expect(wrongCa.exitCode).toBe(6);
    expect(wrongCa.output.results[0]!.verdict).toBe('pq-ready');
    expect(wrongCa.output.results[0]!.certificate!.verified).toBe(false);
    const noCa = await check([`https://hybrid.pq.example.com:${controller.httpsPort}`, '--address', '127.0.0.1']);
    expect(noCa.exitCode).toBe(0);
    expect(noCa.output.results[0]!.certificate!.verifyError).toBeTruthy();
  });

  it('unreachable: exit code 5 with the reason; a usage error exits 2 naming the flag', async () => {
    const closed = await freePort();
    const down = await check([`https://down.pq.example.com:${closed}`, '--address', '127.0.0.1']);
    expect(down.exitCode).toBe(5);
    expect(down.output.results[0]).toMatchObject({ verdict: 'unreachable', error: `ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:${closed}`, certificate: null });
    const usage = await check(['https://x.pq.example.com', '--timeout', 'soon']);
    expect(usage.exitCode).toBe(2);
    expect(usage.stderr).toContain('--timeout: "soon" is not a positive number of seconds');
  });

  it('--all-ingresses through the kubectl plugin: every TLS host of the qubesec Ingresses at their status address, worst exit code', async () => {
    // The leader publishes 127.0.0.1 in each Ingress's status; --all-ingresses connects there by default.
    await eventually(async () => {
      const list = await setup.kube.request('GET', '/apis/networking.k8s.io/v1/ingresses');
      const items = list.json.items as { metadata: { name: string }; status?: { loadBalancer?: { ingress?: { ip?: string }[] } } }[];
      return MODES.every((mode) => items.find((i) => i.metadata.name === `check-${mode}`)?.status?.loadBalancer?.ingress?.[0]?.ip === '127.0.0.1') || undefined;
    }, 30_000, 'Ingress status addresses');
    const { exitCode, output } = await check(['--all-ingresses', '--kubeconfig', setup.cluster.kubeconfigPath, '--port', String(controller.httpsPort), '--cacert', setup.anchors.hostMldsa], PLUGIN);
    expect(exitCode).toBe(4);
    expect(output.results.map((r) => [r.target.ingress, r.target.host, r.target.address, r.verdict])).toEqual([
      ['default/check-classical', 'classical.pq.example.com', '127.0.0.1', 'classical-only'],
      ['default/check-hybrid', 'hybrid.pq.example.com', '127.0.0.1', 'pq-ready'],
      ['default/check-strict', 'strict.pq.example.com', '127.0.0.1', 'pq-ready'],
    ]);
  });

  it('--all-ingresses: an Ingress without a status address is unreachable with the reason; a namespace without TLS hosts is a usage error', async () => {
    expect(beforeStatus.exitCode).toBe(5);
    expect(beforeStatus.output.results.map((r) => [r.target.host, r.verdict, r.error])).toEqual(MODES.map((mode) => [
      `${mode}.pq.example.com`, 'unreachable', `Ingress default/check-${mode} has no status.loadBalancer address: give --address`,
    ]).sort());
    const empty = await check(['--all-ingresses', '--kubeconfig', setup.cluster.kubeconfigPath, '--namespace', 'kube-system']);
    expect(empty.exitCode).toBe(2);
    expect(empty.stderr).toContain('--all-ingresses: no TLS host in the Ingresses of class qubesec in namespace kube-system');
  });

  it('--json output has exactly the keys and types of the example in docs/check.md', async () => {
    const docs = await readFile(join(PROJECT_ROOT, 'docs', 'check.md'), 'utf8');
    const example = /<!-- json-example -->\s*```json\n([\s\S]*?)```/.exec(docs)?.[1];
    expect(example).toBeDefined();
    const { output } = await check(onController('hybrid'));
    expect(shape(output)).toEqual(shape(JSON.parse(example!)));
    const down = await check([`https://down.pq.example.com:${await freePort()}`, '--address', '127.0.0.1']);
    // An unreachable host keeps the same top-level keys, with nulls where nothing was seen.
    expect(Object.keys(down.output.results[0]!)).toEqual(Object.keys(output.results[0]!));
  });
});
