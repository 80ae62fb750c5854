// Runs `qubesec qrng serve` as a real process (node dist/controller/cli/main.js) on free loopback ports, with the QRNG
// Open API test double as its only quantum source and an ML-DSA-65 certificate made by `qubesec cert`. Its files lie in
// a folder inside the rootfs, so the rootfs' clients (curl, rngd) read them too.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { PROJECT_ROOT } from '../../controller/project.js';
import { eventually, freePort, rootfs } from './env.js';
import { startQrngTestServer, type QrngTestServer } from './qrng-test-server.js';

export const QUBESEC_MAIN = join(PROJECT_ROOT, 'dist', 'controller', 'cli', 'main.js');

/** `qubesec ARGS...` as a process: await it for its end, or kill it (SIGTERM) and then await it. */
export const qubesec = (...args: string[]): ResultPromise<{ reject: false; all: true }> => execa(process.execPath, ['--disable-warning=ExperimentalWarning', QUBESEC_MAIN, ...args], { reject: false, all: true });

export interface TestQrngService {
  source: QrngTestServer;
  port: number;
  metricsPort: number;
  /** The folder of its files, on the host; `inRootfs` gives a file's path as the rootfs' programs see it. */
  dir: string;
  inRootfs(file: string): string;
  /** The service's CA (PEM), also at dir/ca.pem. */
  caPem: string;
  /** Tokens file entries: client name -> token. */
  tokens: Record<string, string>;
  logs: string[];
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

export async function startTestQrngService(flags: string[], tokens: Record<string, string>): Promise<TestQrngService> {
  const source = await startQrngTestServer({ bearerToken: 'source-token-abcdef' });
  const dir = await mkdtemp(join(rootfs(), 'tmp', 'qubesec-qrng-serve-'));
  const file = (name: string) => join(dir, name);
  let service: ResultPromise | undefined;
  const logs: string[] = [];
  const stop = async () => {
    service?.kill('SIGTERM');
    await service;
    await source.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const args of [
      ['cert', 'root', '--out-cert', file('ca.pem'), '--out-key', file('ca.key'), '--algorithm', 'ml-dsa-65'],
      ['cert', 'leaf', '--ca-cert', file('ca.pem'), '--ca-key', file('ca.key'), '--ip', '127.0.0.1', '--dns', 'qrng.test', '--out-cert', file('tls.pem'), '--out-key', file('tls.key'), '--algorithm', 'ml-dsa-65'],
    ]) {
      const made = await qubesec(...args);
      if (made.exitCode !== 0) throw new Error(`qubesec ${args.slice(0, 2).join(' ')}: ${made.all}`);
    }
    await writeFile(file('source-ca.pem'), source.caPem);
    await writeFile(file('source-token'), 'source-token-abcdef\n');
    await writeFile(file('tokens'), `# client token\n${Object.entries(tokens).map(([client, token]) => `${client} ${token}`).join('\n')}\n`);
    await writeFile(
      file('sources.yaml'),
      [
        'retry: {initialMs: 200, maxMs: 1000}',
        'sources:',
        '  - name: vendor',
        '    type: openapi',
        `    url: ${source.url}`,
        `    caFile: ${file('source-ca.pem')}`,
        `    bearerTokenFile: ${file('source-token')}`,
        // Under one pool block's input (96 bytes at H = 6): every block needs a fresh answer, so a fault shows at once.
        '    blockSize: 64',
        '    timeoutMs: 2000',
        '    sampleBits: 8',
        '    minEntropy: 6',
        '    alpha: 2^-30',
        '',
      ].join('\n'),
    );
    const [port, metricsPort] = [await freePort(), await freePort()];
    service = qubesec('qrng', 'serve', '--config', file('sources.yaml'), '--listen', `127.0.0.1:${port}`, '--tls-certificate', file('tls.pem'), '--tls-key', file('tls.key'),
      '--tokens', file('tokens'), '--metrics-address', '127.0.0.1', '--metrics-port', String(metricsPort), '--log-level', 'debug', ...flags);
    service.all?.on('data', (chunk: Buffer) => logs.push(chunk.toString('utf8')));
    let exited: string | undefined;
    void service.then((r) => (exited = `exited ${r.exitCode}: ${r.all}`));
    await eventually(async () => {
      if (exited) throw new Error(exited);
      return (await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).ok ? true : undefined;
    }, 20_000, 'qrng serve listening');
    return {
      source,
      port,
      metricsPort,
      dir,
      inRootfs: (name) => join(dir.slice(rootfs().length), name),
      caPem: await readFile(file('ca.pem'), 'utf8'),
      tokens,
      logs,
      metrics: () => fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text()),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
