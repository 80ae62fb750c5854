// `qubesec demo`: a working PQ ingress on the shipped example manifests, no cluster needed.
import { access, cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { parseFlags } from '../config.js';
import { startController } from '../controller.js';
import { hostPath, type DataPlaneRuntime } from '../dataplane/runtime.js';
import type { SignatureAlgorithm } from '../pki/algorithms.js';
import { selfSignedPair } from '../pki/selfsigned.js';
import { PROJECT_ROOT } from '../project.js';
import { startEchoBackend } from './echo-backend.js';
import { untilSignal } from './signals.js';

const HOST = 'demo.qubesec.local';
const CONF_DIR = '/run/qubesec-demo';

export async function runDemo(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'nginx-root': { type: 'string', default: process.env.QUBESEC_ROOTFS ?? '' },
      'https-port': { type: 'string', default: '8443' },
      'http-port': { type: 'string', default: '8080' },
      'backend-port': { type: 'string', default: '18080' },
      'work-dir': { type: 'string', default: join(PROJECT_ROOT, '.cache', 'demo') },
      check: { type: 'boolean', default: false },
    },
  });
  const root = values['nginx-root'] ? resolve(values['nginx-root']) : '';
  const runtime: DataPlaneRuntime = { root, nginxBinary: 'nginx', opensslBinary: 'openssl' };
  const manifests = join(values['work-dir'], 'manifests');
  await mkdir(manifests, { recursive: true });
  await cp(join(PROJECT_ROOT, 'docs', 'examples', 'standalone'), manifests, { recursive: true });

  // Demo certificates, made once per work folder; their certificates double as the trust anchors curl is given.
  const caDir = hostPath(runtime, `${CONF_DIR}-ca`);
  await mkdir(caDir, { recursive: true });
  for (const [algorithm, secret] of [['ml-dsa-65', 'demo-tls-mldsa'], ['ecdsa-p256', 'demo-tls-ecdsa']] as [SignatureAlgorithm, string][]) {
    const file = join(manifests, `${secret}.yaml`);
    let certificatePem: string;
    if (await access(file).then(() => true, () => false)) {
      const stored = parse(await readFile(file, 'utf8')) as { data: Record<string, string> };
      certificatePem = Buffer.from(stored.data['tls.crt'] ?? '', 'base64').toString('utf8');
    } else {
      const pair = await selfSignedPair(algorithm, HOST, [HOST], 30);
      certificatePem = pair.certificatePem;
      await writeFile(file, stringify({
        apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls',
        metadata: { name: secret, namespace: 'default' },
        data: { 'tls.crt': Buffer.from(pair.certificatePem).toString('base64'), 'tls.key': Buffer.from(pair.keyPem).toString('base64') },
      }));
    }
    await writeFile(join(caDir, `${algorithm}.crt`), certificatePem);
  }

  const backendPort = Number(values['backend-port']);
  await writeFile(join(manifests, 'echo-endpoints.yaml'), stringify({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: { name: 'echo-local', namespace: 'default', labels: { 'kubernetes.io/service-name': 'echo' } },
    ports: [{ name: 'http', port: backendPort }],
    endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
  }));
  const backend = await startEchoBackend('echo', backendPort);
  const controller = await startController(parseFlags([
    '--manifests', manifests,
    '--nginx-root', root,
    '--conf-dir', CONF_DIR,
    '--bind-address', '127.0.0.1',
    '--https-port', values['https-port'],
    // No Service in front: clients reach NGINX's own port.
    '--https-redirect-port', values['https-port'],
    '--http-port', values['http-port'],
    '--status-port', '0',
    '--metrics-address', '127.0.0.1',
    '--metrics-port', '0',
    '--log-level', 'warn',
  ].filter((arg) => arg !== '')));
  try {
    const port = values['https-port'];
    const inRoot = (args: string[]) => (root ? ['chroot', root, ...args] : args);
    const curl = inRoot(['curl', '-sS', '-v', '--curves', 'X25519MLKEM768', '--cacert', `${CONF_DIR}-ca/ml-dsa-65.crt`, '--resolve', `${HOST}:${port}:127.0.0.1`, `https://${HOST}:${port}/`]);
    const result = await execa(curl[0]!, curl.slice(1), { reject: false, all: true });
    const handshake = /SSL connection using (.*)/.exec(result.all ?? '')?.[1] ?? '(no TLS handshake)';
    console.log([
      '',
      `QubeSec demo: https://${HOST}:${port}/ served by NGINX (OpenSSL 3.5) with hybrid ML-KEM and ML-DSA + ECDSA certificates.`,
      `  handshake: ${handshake}`,
      `  response:  ${result.stdout.trim() || result.stderr.trim().split('\n').pop()}`,
      '',
      'Try it yourself (the rootfs curl speaks ML-KEM; the host curl, on OpenSSL 3.0, gets the ECDSA certificate over X25519):',
      `  ${curl.map((a) => (/[ ;]/.test(a) ? `'${a}'` : a)).join(' ').replace(' -sS -v', ' -v')}`,
      `  curl -v --cacert ${join(caDir, 'ecdsa-p256.crt')} --resolve ${HOST}:${port}:127.0.0.1 https://${HOST}:${port}/`,
      `  metrics: curl -s http://127.0.0.1:${controller.metricsPort}/metrics | grep qubesec_tls_handshakes`,
      `  manifests (edit them, QubeSec reloads): ${manifests}`,
      '',
    ].join('\n'));
    if (result.exitCode !== 0 || !handshake.includes('X25519MLKEM768') || !result.stdout.includes('"backend":"echo"')) {
      throw new Error('the demo endpoint did not answer from the backend over X25519MLKEM768');
    }
    if (!values.check) {
      console.log('Ctrl-C stops the demo.');
      await untilSignal();
    }
  } finally {
    await controller.stop();
    backend.close();
  }
}
