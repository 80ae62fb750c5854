// The README's first command: the demo starts, makes its own PQ request, and prints how to repeat it.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { PROJECT_ROOT } from '../controller/project.js';
import { freePort, rootfs } from './lib/env.js';
import { pqIngress } from './lib/objects.js';

/** `qubesec demo --check` in a fresh work folder; `before` may leave files in it first, as an earlier run would. */
async function demo(before: (workDir: string) => Promise<void> = async () => {}) {
  const workDir = await mkdtemp(join(tmpdir(), 'qubesec-demo-'));
  try {
    await before(workDir);
    const ports = [await freePort(), await freePort(), await freePort()].map(String);
    const run = await execa(process.execPath, [join(PROJECT_ROOT, 'dist', 'controller', 'cli', 'main.js'), 'demo', '--check',
      '--nginx-root', rootfs(), '--work-dir', workDir, '--https-port', ports[0]!, '--http-port', ports[1]!, '--backend-port', ports[2]!], { reject: false, all: true });
    return { ...run, httpsPort: ports[0]! };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

it('serves the example manifests over X25519MLKEM768 with an ML-DSA-65 certificate', async () => {
  const run = await demo();
  expect(run.stdout).toContain('handshake: TLSv1.3 / TLS_AES_256_GCM_SHA384 / X25519MLKEM768 / id-ml-dsa-65');
  expect(run.stdout).toMatch(/response: {2}\{"backend":"echo".*"tlsGroup":"X25519MLKEM768"/);
  expect(run.stdout).toContain(`curl -v --curves X25519MLKEM768 --cacert /run/qubesec-demo-ca/ml-dsa-65.crt --resolve demo.qubesec.local:${run.httpsPort}:127.0.0.1`);
  expect(run.exitCode).toBe(0);
});

it('starts with a bad Ingress left in its manifests folder, and serves the rest', async () => {
  // Seen: a name with a space made limit_req_zone unparsable, and the next demo did not start at all.
  const run = await demo(async (workDir) => {
    await mkdir(join(workDir, 'manifests'), { recursive: true });
    await writeFile(join(workDir, 'manifests', 'bad.yaml'), stringify(pqIngress('bad name', 'bad.qubesec.local', 'echo', { annotations: { 'nginx.ingress.kubernetes.io/limit-rps': '5' } })));
  });
  expect(run.stdout).toMatch(/response: {2}\{"backend":"echo".*"tlsGroup":"X25519MLKEM768"/);
  expect(run.exitCode).toBe(0);
});
