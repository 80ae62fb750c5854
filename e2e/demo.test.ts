// The README's first command: the demo starts, makes its own PQ request, and prints how to repeat it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { PROJECT_ROOT } from '../controller/project.js';
import { freePort, rootfs } from './lib/env.js';

it('serves the example manifests over X25519MLKEM768 with an ML-DSA-65 certificate', async () => {
  const workDir = await mkdtemp(join(tmpdir(), 'qubesec-demo-'));
  try {
    const ports = [await freePort(), await freePort(), await freePort()].map(String);
    const demo = await execa(process.execPath, [join(PROJECT_ROOT, 'dist', 'controller', 'cli', 'main.js'), 'demo', '--check',
      '--nginx-root', rootfs(), '--work-dir', workDir, '--https-port', ports[0]!, '--http-port', ports[1]!, '--backend-port', ports[2]!], { reject: false, all: true });
    expect(demo.stdout).toContain('handshake: TLSv1.3 / TLS_AES_256_GCM_SHA384 / X25519MLKEM768 / id-ml-dsa-65');
    expect(demo.stdout).toMatch(/response: {2}\{"backend":"echo".*"tlsGroup":"X25519MLKEM768"/);
    expect(demo.stdout).toContain(`curl -v --curves X25519MLKEM768 --cacert /run/qubesec-demo-ca/ml-dsa-65.crt --resolve demo.qubesec.local:${ports[0]}:127.0.0.1`);
    expect(demo.exitCode).toBe(0);
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
});
