// Gateway API's own conformance suite (sigs.k8s.io/gateway-api/conformance, pinned in e2e/conformance/go.mod) against
// QubeSec on a real node (e2e/node): the suite applies its base manifests (Gateways of class `qubesec`, echo-basic
// Deployments the kubelet runs) and each test's routes, then sends its requests to the address the Gateways' status
// publishes, where the controller's NGINX listens on ports 80 and 443. The features QubeSec declares are in
// e2e/conformance/options.yaml, with the tests it skips and why; the report is printed, and every test the suite ran
// must pass.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../controller/project.js';
import { gatewayClass } from '../controller/model/testing.js';
import { gatewayApiCrds } from './lib/env.js';
import { startTestController, type TestController } from './lib/harness.js';
import { NODE_ADDRESS, startNode, type TestNode } from './node/node.js';

const OPTIONS = join(PROJECT_ROOT, 'e2e', 'conformance', 'options.yaml');
const SUITE_TIMEOUT_MINUTES = 25;

let node: TestNode;
let controller: TestController;
let reportDir: string;

/** The report's shape (the suite's apis/v1 ConformanceReport), as far as the test reads it. */
interface ProfileReport {
  name: string;
  core: { statistics: { Passed: number; Failed: number } };
  extended?: { result: string };
}

function suiteDir(): string {
  const dir = process.env.QUBESEC_CONFORMANCE;
  if (!dir) throw new Error('QUBESEC_CONFORMANCE is not set: run the e2e tests through `npm test` (scripts/run.sh builds the suite with e2e/conformance/build.sh)');
  return dir;
}

beforeAll(async () => {
  const images = process.env.QUBESEC_NODE_IMAGES;
  if (!images) throw new Error('QUBESEC_NODE_IMAGES is not set: run the e2e tests through `npm test` (scripts/run.sh builds the images)');
  node = await startNode(images, [join(suiteDir(), 'images')]);
  await node.kubectl(['apply', '--server-side', '-f', gatewayApiCrds()]);
  await node.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
  await node.kube.apply(gatewayClass('qubesec') as never);
  // The node's own address: the host reaches the Pods from it, and the suite reaches the Gateways there.
  controller = await startTestController({ kubeconfig: node.cluster.kubeconfigPath },
    ['--publish-status-address', NODE_ADDRESS, '--election-ttl', '15s', '--gateway-http-port', '80', '--gateway-https-port', '443'],
    { address: NODE_ADDRESS, httpPort: 80, httpsPort: 443 });
  reportDir = await mkdtemp(join(tmpdir(), 'qubesec-conformance-'));
}, 10 * 60_000);

afterAll(async () => {
  await controller?.stop();
  await node?.stop();
  if (reportDir) await rm(reportDir, { recursive: true, force: true });
});

test('Gateway API conformance: every test of the declared features passes', async () => {
  const report = join(reportDir, 'report.yaml');
  const run = await execa(join(suiteDir(), 'conformance.test'), [
    '-test.run', '^TestConformance$', '-test.v', `-test.timeout=${SUITE_TIMEOUT_MINUTES}m`,
    `--conformance-options-file=${OPTIONS}`, `--report-output=${report}`,
  ], { env: { KUBECONFIG: node.cluster.kubeconfigPath }, reject: false, all: true });
  const outcomes = [...run.all.matchAll(/^\s*--- (PASS|FAIL|SKIP): TestConformance\/(\S+)/gm)].map((m) => `${m[1]} ${m[2]}`);
  const profiles = (parse(await readFile(report, 'utf8').catch(() => 'profiles: []')) as { profiles?: ProfileReport[] }).profiles ?? [];
  // The record of what passed and what did not, for docs/gateway-api.md.
  process.stdout.write(`conformance: ${outcomes.length} tests\n${outcomes.join('\n')}\n${JSON.stringify(profiles, null, 1)}\n`);
  const failed = outcomes.filter((o) => o.startsWith('FAIL'));
  expect({ exitCode: run.exitCode, failed, tail: failed.length || run.exitCode ? run.all.slice(-20_000) : '' }).toEqual({ exitCode: 0, failed: [], tail: '' });
  // The tests options.yaml skips, with why, make the core result partial; none may fail.
  const http = profiles.find((p) => p.name === 'GATEWAY-HTTP');
  expect(http?.core.statistics.Failed).toBe(0);
  expect(http?.core.statistics.Passed).toBeGreaterThan(0);
  expect(http?.extended?.result).toBe('success');
}, (SUITE_TIMEOUT_MINUTES + 2) * 60_000);
