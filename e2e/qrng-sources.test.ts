// The QRNG sources and pool against real transports: the QRNG Open API test double (HTTPS on 127.0.0.1 with an
// ML-DSA-65 certificate, Bearer / X-API-KEY / client-certificate auth) and a FIFO this test feeds. Each fault trips
// the health test or the error it should, takes the source out, the pool refuses with every source out, and a source
// that works again comes back after its start-up tests.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { Drbg } from '../controller/qrng/drbg.js';
import { EntropyUnavailable } from '../controller/qrng/errors.js';
import { createQrngMetrics } from '../controller/qrng/metrics.js';
import { EntropyPool } from '../controller/qrng/pool.js';
import { DeviceSource, OpenApiSource, SourceError, type OpenApiSourceOptions } from '../controller/qrng/sources.js';
import { pqCurl } from './lib/clients.js';
import { eventually, rootfs } from './lib/env.js';
import { startQrngTestServer, type QrngFault, type QrngTestServer } from './lib/qrng-test-server.js';

const MODEL = { sampleBits: 8 as const, minEntropy: 6, alpha: 2 ** -20 };
let server: QrngTestServer;
let pools: EntropyPool[] = [];

function apiSource(name: string, extra: Partial<OpenApiSourceOptions> = {}): OpenApiSource {
  return new OpenApiSource({ name, url: server.url, ca: server.caPem, bearerToken: 'test-token', model: MODEL, blockSize: 512, timeoutMs: 1000, attempts: 2, backoffMs: 50, ...extra });
}

/** Calls `attempt` up to `n` times, 5 ms apart, until it gives a value. */
async function tries<T>(n: number, what: string, attempt: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < n; i++) {
    const value = await attempt();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`${what}: not within ${n} tries`);
}
const refusal = (p: EntropyPool) => p.block().then(() => undefined, (e: unknown) => e);

function pool(sources: ConstructorParameters<typeof EntropyPool>[0]['sources'], retryMs = 100): { pool: EntropyPool; registry: Registry } {
  const registry = new Registry();
  const made = new EntropyPool({ sources, reserveBlocks: 0, retry: { initialMs: retryMs, maxMs: retryMs }, metrics: createQrngMetrics(registry) });
  pools.push(made);
  return { pool: made, registry };
}

beforeAll(async () => {
  server = await startQrngTestServer({ bearerToken: 'test-token', slowMs: 3000 });
});

afterEach(async () => {
  server.fault = 'none';
  await Promise.all(pools.map((p) => p.close()));
  pools = [];
});

afterAll(async () => {
  await server.stop();
});

describe('QRNG Open API source', () => {
  it('reads capabilities, health test and entropy over TLS with a Bearer token', async () => {
    const source = apiSource('vendor');
    expect(await source.capabilities()).toEqual({ minBlockSize: 1, maxBlockSize: 4096, minBlockCount: 1, maxBlockCount: 64, entropyTypes: ['raw', 'conditioned'] });
    expect(await source.healthtest()).toMatchObject({ test_result: [{ test_type: 'nist_90b' }] });
    const before = server.requests.get('/v1/entropy') ?? 0;
    expect((await source.read(3000)).length).toBe(3000);
    expect((server.requests.get('/v1/entropy') ?? 0) - before).toBe(1); // 6 blocks of 512 in one request
    await source.close();
  });

  it('is a real PQ TLS server: curl from the rootfs (OpenSSL 3.5) gets entropy over X25519MLKEM768 from its ML-DSA-65 certificate', async () => {
    const dir = await mkdtemp(join(rootfs(), 'tmp', 'qubesec-qrng-ca-'));
    try {
      await writeFile(join(dir, 'ca.pem'), server.caPem);
      const reply = await pqCurl(
        { host: '127.0.0.1', port: Number(new URL(server.url).port), path: '/v1/entropy' },
        { curves: 'X25519MLKEM768', cacert: join(dir.slice(rootfs().length), 'ca.pem'), args: ['-X', 'POST', '-H', 'Authorization: Bearer test-token', '-H', 'Content-Type: application/json', '-d', '{"block_size":32,"block_count":2}'] },
      );
      expect({ status: reply.status, group: reply.group, signature: reply.signature }).toEqual({ status: 200, group: 'X25519MLKEM768', signature: 'id-ml-dsa-65' });
      expect((JSON.parse(reply.body) as { entropy: string[] }).entropy.map((b) => Buffer.from(b, 'base64').length)).toEqual([32, 32]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('is refused without the token and says so', async () => {
    const source = apiSource('vendor', { bearerToken: 'wrong' });
    const err = await source.read(16).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect(err).toMatchObject({ kind: 'unauthorized', message: expect.stringContaining('entropy source "vendor": GET /v1/capabilities answered 401') });
    await source.close();
  });

  it('authenticates with X-API-KEY and with a client certificate (mTLS)', async () => {
    const keyed = await startQrngTestServer({ apiKey: 'k-123' });
    const mtls = await startQrngTestServer({ clientCertificates: true });
    try {
      const byKey = new OpenApiSource({ name: 'keyed', url: keyed.url, ca: keyed.caPem, apiKey: 'k-123', model: MODEL });
      expect((await byKey.read(64)).length).toBe(64);
      await byKey.close();
      const byCert = new OpenApiSource({ name: 'mtls', url: mtls.url, ca: mtls.caPem, cert: mtls.client.certPem, key: mtls.client.keyPem, model: MODEL });
      expect((await byCert.read(64)).length).toBe(64);
      await byCert.close();
      const noCert = new OpenApiSource({ name: 'mtls', url: mtls.url, ca: mtls.caPem, model: MODEL, attempts: 1 });
      await expect(noCert.read(64)).rejects.toMatchObject({ kind: 'unavailable' });
      await noCert.close();
      const otherCa = new OpenApiSource({ name: 'keyed', url: keyed.url, ca: mtls.caPem, apiKey: 'k-123', model: MODEL, attempts: 1 });
      await expect(otherCa.read(64)).rejects.toThrow(/certificate/);
      await otherCa.close();
    } finally {
      await Promise.all([keyed.stop(), mtls.stop()]);
    }
  });

  it('reads from the Qrypt variant (GET /api/v1/quantum-entropy, 1 KiB blocks)', async () => {
    const source = apiSource('qrypt', { variant: 'qrypt', blockSize: undefined });
    expect((await source.read(2500)).length).toBe(2500);
    expect(server.requests.get('/api/v1/quantum-entropy')).toBeGreaterThanOrEqual(1);
    await source.close();
  });

  const faults: { fault: QrngFault; cause: string }[] = [
    { fault: 'stuck', cause: 'repetition-count' },
    { fault: 'biased', cause: 'adaptive-proportion' },
    { fault: 'unavailable', cause: 'unavailable' },
    { fault: 'slow', cause: 'timeout' },
    { fault: 'truncated', cause: 'bad-response' },
    { fault: 'rejected', cause: 'rejected' },
  ];
  for (const { fault, cause } of faults) {
    it(`${fault} output takes the source out (${cause}); the pool refuses, then recovers when the source does`, async () => {
      const { pool: p, registry } = pool([apiSource('vendor')]);
      await p.block(); // healthy: start-up passed
      const served = server.bytesServed;
      server.fault = fault;
      expect(await tries(20, 'refusal', () => refusal(p))).toBeInstanceOf(EntropyUnavailable);
      expect(p.status()[0]).toMatchObject({ state: 'failed', cause });
      // A health test trips within one APT window (512 samples) of the fault, read in 512-byte blocks.
      expect(server.bytesServed - served).toBeLessThanOrEqual(512 + 512);
      expect(await registry.metrics()).toContain(`qubesec_qrng_source_failures_total{source="vendor",cause="${cause}"} 1`);
      server.fault = 'none';
      const block = await eventually(() => p.block().catch(() => undefined), 10_000, 'the source back');
      expect(block).toMatchObject({ quantum: true, sources: ['vendor'] });
      expect(p.status()[0]!.state).toBe('healthy');
      expect(await registry.metrics()).toContain('qubesec_qrng_source_healthy{source="vendor",quantum="true"} 1');
    });
  }

  it('with two sources, one out leaves the other serving; both out, a DRBG gives nothing', async () => {
    const other = await startQrngTestServer({ bearerToken: 'test-token' });
    try {
      const { pool: p } = pool([apiSource('a'), new OpenApiSource({ name: 'b', url: other.url, ca: other.caPem, bearerToken: 'test-token', model: MODEL, timeoutMs: 1000, attempts: 1 })]);
      const drbg = await Drbg.instantiate('hmac-sha512', p, { predictionResistance: true });
      server.fault = 'stuck';
      // Every request is served, by b alone once a's buffered good bytes are used up and the stuck ones trip its RCT.
      await tries(50, 'a out', async () => {
        expect((await drbg.generate(32)).length).toBe(32);
        return p.status()[0]!.state === 'failed' || undefined;
      });
      expect(p.status().map((s) => s.state)).toEqual(['failed', 'healthy']);
      other.fault = 'unavailable';
      // b's bytes already fetched still go through its tests and count; then its 503s leave nothing.
      expect(await tries(50, 'refusal', () => drbg.generate(32).then(() => undefined, (e: unknown) => e))).toBeInstanceOf(EntropyUnavailable);
      expect(p.status().map((s) => s.cause)).toEqual(['repetition-count', 'unavailable']);
    } finally {
      await other.stop();
    }
  });
});

describe('device source on a FIFO', () => {
  let dir: string;
  let fifo: string;
  let writer: WriteStream | undefined;
  let feeding: NodeJS.Timeout | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qubesec-qrng-'));
    fifo = join(dir, 'qrandom0');
    const made = spawnSync('mkfifo', [fifo]);
    if (made.status !== 0) throw new Error(`mkfifo: ${made.stderr}`);
  });

  /** Keep the FIFO full of `make()`'s bytes, as a QRNG daemon would. */
  function feed(make: (n: number) => Buffer): void {
    if (!writer) {
      writer = createWriteStream(fifo);
      writer.on('error', () => undefined); // EPIPE once the reader is gone at the end
    }
    clearInterval(feeding);
    const pump = () => {
      while (writer!.writableLength < 8192) writer!.write(make(4096));
    };
    pump();
    feeding = setInterval(pump, 5);
  }

  afterAll(async () => {
    clearInterval(feeding);
    writer?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('times out with no writer, serves once fed, trips the RCT when the feed repeats one byte, recovers', async () => {
    const source = new DeviceSource({ name: 'fifo', path: fifo, model: MODEL, timeoutMs: 500 });
    const { pool: p } = pool([source], 20);
    // Nobody writes yet: the read polls (the FIFO was opened non-blocking) and times out.
    await expect(p.block()).rejects.toBeInstanceOf(EntropyUnavailable);
    expect(p.status()[0]).toMatchObject({ state: 'failed', cause: 'timeout' });
    feed((n) => randomBytes(n));
    expect(await tries(1000, 'FIFO source healthy', () => p.block().catch(() => undefined))).toMatchObject({ sources: ['fifo'] });
    // Random bytes already in the pipe (up to 64 KiB) come out first; then the repeated byte trips the RCT.
    feed((n) => Buffer.alloc(n, 0x33));
    expect(await tries(2000, 'RCT failure', () => refusal(p))).toBeInstanceOf(EntropyUnavailable);
    expect(p.status()[0]).toMatchObject({ state: 'failed', cause: 'repetition-count' });
    // Stale repeated bytes drain through failing start-ups until one passes on fresh ones.
    feed((n) => randomBytes(n));
    expect(await tries(2000, 'FIFO source back', () => p.block().catch(() => undefined))).toMatchObject({ sources: ['fifo'] });
    clearInterval(feeding);
  });
});
