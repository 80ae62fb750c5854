// `qubesec qrng serve` as a real process (node dist/controller/cli/main.js) with the QRNG Open API test double as its
// only quantum source, and real clients: the rootfs curl (OpenSSL 3.5) over X25519MLKEM768 with the service's ML-DSA
// certificate from `qubesec cert`, Node's HTTPS client for bulk draws, and the rootfs' rngtest (rng-tools, FIPS
// 140-2) and ent on what it served. Fail closed: with the source faulted the service answers 503, and 200 once it is back.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { nodeHttps, pqCurl, type CurlResult } from './lib/clients.js';
import { eventually, metricValue, rootfs } from './lib/env.js';
import { qubesec, startTestQrngService, type TestQrngService } from './lib/qrng-service.js';

const TOKEN = 'client-token-0123456789';
const QUALITY_TOKEN = 'quality-token-0123456789';
const RATE_BURST = 1 << 20;
const RATE_LIMIT = 256 << 10;

let service: TestQrngService;
const port = () => service.port;

function entropy(body: object | string, token: string | null = TOKEN): Promise<CurlResult> {
  const args = ['-X', 'POST', '-H', 'Content-Type: application/json', '-d', typeof body === 'string' ? body : JSON.stringify(body)];
  if (token) args.push('-H', `Authorization: Bearer ${token}`);
  return pqCurl({ host: '127.0.0.1', port: port(), path: '/v1/entropy' }, { curves: 'X25519MLKEM768', cacert: service.inRootfs('ca.pem'), args });
}

const get = (path: string) => pqCurl({ host: '127.0.0.1', port: port(), path }, { curves: 'X25519MLKEM768', cacert: service.inRootfs('ca.pem'), args: ['-H', `Authorization: Bearer ${TOKEN}`] });

/** One POST /v1/entropy of `blockCount` 64 KiB blocks from Node's client (the quality client: its own rate-limit bucket). */
async function draw(blockCount = 4): Promise<{ status: number; bytes?: Buffer }> {
  const reply = await nodeHttps(`https://127.0.0.1:${port()}/v1/entropy`, { method: 'POST', ca: service.caPem, headers: { Authorization: `Bearer ${QUALITY_TOKEN}`, 'Content-Type': 'application/json' } }, JSON.stringify({ block_size: 65536, block_count: blockCount }));
  if (reply.status !== 200) return { status: reply.status };
  return { status: 200, bytes: Buffer.concat((JSON.parse(reply.body) as { entropy: string[] }).entropy.map((b) => Buffer.from(b, 'base64'))) };
}

const metrics = () => service.metrics();
const ready = async () => (await fetch(`http://127.0.0.1:${service.metricsPort}/readyz`)).status;

beforeAll(async () => {
  service = await startTestQrngService(['--max-block-size', '65536', '--max-block-count', '16', '--max-request-bytes', '262144', '--rate-limit', String(RATE_LIMIT), '--rate-burst', String(RATE_BURST)], { alice: TOKEN, quality: QUALITY_TOKEN });
});

afterEach(() => {
  service.source.fault = 'none';
});

afterAll(async () => {
  await service?.stop();
});

describe('qubesec qrng serve', () => {
  it('serves entropy over X25519MLKEM768 with its ML-DSA-65 certificate: the blocks asked for, different each time', async () => {
    const first = await entropy({ block_size: 32, block_count: 4, entropy_type: 'conditioned' });
    expect({ status: first.status, group: first.group, signature: first.signature }).toEqual({ status: 200, group: 'X25519MLKEM768', signature: 'id-ml-dsa-65' });
    const blocks = (JSON.parse(first.body) as { entropy: string[] }).entropy.map((b) => Buffer.from(b, 'base64'));
    expect(blocks.map((b) => b.length)).toEqual([32, 32, 32, 32]);
    expect(new Set(blocks.map((b) => b.toString('hex'))).size).toBe(4);
    const capabilities = await get('/v1/capabilities');
    expect(JSON.parse(capabilities.body)).toMatchObject({ entropy: { min_block_size: 1, max_block_size: 65536, max_block_count: 16, entropy_types: ['conditioned'] } });
    const health = await get('/v1/healthtest');
    expect(JSON.parse(health.body)).toMatchObject({ serving: true, test_result: [{ source: 'vendor', quantum: true, state: 'healthy', test_type: 'nist_sp800_90b' }] });
    const text = await metrics();
    expect(metricValue(text, 'qubesec_qrng_served_bytes_total{client="alice"}')).toBeGreaterThanOrEqual(128);
    expect(metricValue(text, 'qubesec_qrng_source_healthy{source="vendor",quantum="true"}')).toBe(1);
    expect(metricValue(text, 'qubesec_qrng_drbg_reseeds_total{drbg="ctr-aes-256",cause="prediction-resistance"}')).toBeGreaterThanOrEqual(1);
  });

  it('refuses a client without a token or with a wrong one (401), before reading its request', async () => {
    expect((await entropy({ block_size: 32 }, null)).status).toBe(401);
    const wrong = await entropy({ block_size: 32 }, 'not-the-token-0123456789');
    expect(wrong.status).toBe(401);
    expect(wrong.headers['www-authenticate']).toBe('Bearer');
  });

  it('refuses requests beyond its limits with 422 naming the field, and a large body with 413', async () => {
    const cases: [object | string, RegExp][] = [
      [{ block_size: 65537 }, /^block_size: 65537 is not a whole number from 1 to 65536$/],
      [{ block_size: 32, block_count: 17 }, /^block_count: 17 is not a whole number from 1 to 16$/],
      [{ block_size: 65536, block_count: 8 }, /^block_size \* block_count is 524288 bytes, above the 262144 bytes/],
      [{ block_size: 32, entropy_type: 'raw' }, /^entropy_type: "raw" is not served/],
      [{ block_size: 32, colour: 'blue' }, /^colour: not a field of an entropy request/],
      ['not json', /^the body is not JSON/],
    ];
    for (const [body, message] of cases) {
      const reply = await entropy(body);
      expect({ body, status: reply.status }).toEqual({ body, status: 422 });
      expect((JSON.parse(reply.body) as { error: string }).error).toMatch(message);
    }
    expect((await entropy(JSON.stringify({ block_size: 32, padding: 'x'.repeat(5000) }))).status).toBe(413);
  });

  it('rate-limits each client on its own (429 with Retry-After) and keeps serving the others', async () => {
    const statuses: number[] = [];
    let limited: CurlResult | undefined;
    for (let i = 0; i < 8 && !limited; i++) {
      const reply = await entropy({ block_size: 65536, block_count: 4 });
      statuses.push(reply.status);
      if (reply.status === 429) limited = reply;
    }
    expect(statuses[0]).toBe(200);
    expect(limited?.status).toBe(429);
    expect(JSON.parse(limited!.body)).toMatchObject({ error: expect.stringMatching(/^client "alice" is over its rate limit/) });
    expect(Number(limited!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await draw(1)).status).toBe(200);
    expect(metricValue(await metrics(), 'qubesec_qrng_requests_total{path="/v1/entropy",code="429"}')).toBeGreaterThanOrEqual(1);
  });

  it('fails closed: with its only quantum source faulted it answers 503 and says why, and 200 once the source is back', async () => {
    service.source.fault = 'unavailable';
    const refused = await eventually(async () => {
      const reply = await entropy({ block_size: 32 });
      return reply.status === 503 ? reply : undefined;
    }, 30_000, 'a 503 from the faulted source');
    expect(JSON.parse(refused.body)).toMatchObject({ error: expect.stringMatching(/no healthy quantum entropy source: vendor failed/), sources: [{ name: 'vendor', state: 'failed' }] });
    // Not healthy nor ready from a failure until its retry is due (the pool retries on demand, so a due retry counts
    // as ready): right after a request has tried the source again, both say no. (Asked once after the 503 above, the
    // retry may already be due on a loaded machine.)
    await eventually(async () => {
      await entropy({ block_size: 32 });
      return (await get('/v1/healthtest')).status === 503 || undefined;
    }, 30_000, 'not healthy right after a failed retry');
    await eventually(async () => {
      await entropy({ block_size: 32 });
      return (await ready()) === 503 || undefined;
    }, 30_000, 'not ready right after a failed retry');
    // Output stops entirely: every request in a row is refused, not only some.
    for (let i = 0; i < 3; i++) expect((await entropy({ block_size: 32 })).status).toBe(503);

    service.source.fault = 'stuck';
    // The pool tries a failed source again when asked for entropy: each request here is one more try.
    await eventually(async () => {
      expect((await entropy({ block_size: 32 })).status).toBe(503);
      return metricValue(await metrics(), 'qubesec_qrng_source_failures_total{source="vendor",cause="repetition-count"}') >= 1 ? true : undefined;
    }, 30_000, 'the stuck source failing the repetition count test');
    expect((await entropy({ block_size: 32 })).status).toBe(503);

    service.source.fault = 'none';
    const served = await eventually(async () => {
      const reply = await entropy({ block_size: 32 });
      return reply.status === 200 ? reply : undefined;
    }, 30_000, 'a 200 once the source is back');
    expect(Buffer.from((JSON.parse(served.body) as { entropy: string[] }).entropy[0]!, 'base64').length).toBe(32);
    expect(await ready()).toBe(200);
    expect(metricValue(await metrics(), 'qubesec_qrng_source_failures_total{source="vendor",cause="unavailable"}')).toBeGreaterThanOrEqual(1);
  });

  it('serves output that passes rngtest (FIPS 140-2) and whose ent figures are those of random bytes', async () => {
    const TOTAL = 3 << 20; // 3 MiB: 1258 FIPS 140-2 blocks of 20,000 bits, about 8 s at the test's rate limit
    const parts: Buffer[] = [];
    let have = 0;
    while (have < TOTAL) {
      const got = await draw();
      if (got.status === 429) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      expect(got.status).toBe(200);
      parts.push(got.bytes!);
      have += got.bytes!.length;
    }
    const sample = Buffer.concat(parts).subarray(0, TOTAL);
    await writeFile(join(service.dir, 'served.bin'), sample);
    const rngtest = await execa('chroot', [rootfs(), 'rngtest', '-c', String(Math.floor((TOTAL * 8) / 20000))], { inputFile: join(service.dir, 'served.bin'), reject: false, all: true });
    const successes = Number(/FIPS 140-2 successes: (\d+)/.exec(rngtest.all)?.[1]);
    const failures = Number(/FIPS 140-2 failures: (\d+)/.exec(rngtest.all)?.[1]);
    console.log(`rngtest over ${TOTAL} served bytes: ${successes} successes, ${failures} failures`);
    expect(successes + failures).toBe(Math.floor((TOTAL * 8) / 20000));
    // A true random source fails a FIPS 140-2 block about 0.08% of the time (rngtest's own estimate): 1258 blocks
    // expect about one; ten would be a p < 1e-6 event.
    expect(failures).toBeLessThan(10);
    const ent = await execa('chroot', [rootfs(), 'ent', service.inRootfs('served.bin')], { reject: false, all: true });
    const perByte = Number(/Entropy = ([\d.]+) bits per byte/.exec(ent.all)?.[1]);
    const chiExceed = Number(/would exceed this value ([\d.<>]+) percent/.exec(ent.all)?.[1]?.replace(/[<>]/g, ''));
    console.log(`ent: ${perByte} bits per byte, chi-square exceeded ${chiExceed}% of the time`);
    expect(perByte).toBeGreaterThan(7.9999);
    // Chi-square: extreme only when random data would exceed it less than 0.1% or more than 99.9% of the time.
    expect(chiExceed).toBeGreaterThan(0.1);
    expect(chiExceed).toBeLessThan(99.9);
  });
});

describe('qubesec qrng serve flags and configuration', () => {
  it('refuses a bad configuration file, naming each field', async () => {
    await writeFile(join(service.dir, 'bad.yaml'), 'sources:\n  - name: vendor\n    type: openapi\n    url: ftp://x\n    minEntropy: 9\n  - name: os\n    type: os\n    minEntropy: 8\n    colour: blue\n');
    const run = await qubesec('qrng', 'serve', '--config', join(service.dir, 'bad.yaml'), '--tls-certificate', join(service.dir, 'tls.pem'), '--tls-key', join(service.dir, 'tls.key'), '--tokens', join(service.dir, 'tokens'));
    expect(run.exitCode).toBe(1);
    expect(run.all).toContain('sources[0] ("vendor").url must be an http(s) URL');
    expect(run.all).toContain('minEntropy (H) must be above 0 and at most 8');
    expect(run.all).toContain('sources[1] ("os").colour is not a field of os sources');
  });

  it('refuses to start without a way to authenticate clients, and names a bad flag', async () => {
    const anonymous = await qubesec('qrng', 'serve', '--config', join(service.dir, 'sources.yaml'), '--tls-certificate', join(service.dir, 'tls.pem'), '--tls-key', join(service.dir, 'tls.key'));
    expect(anonymous.all).toContain('flag --tokens or --client-ca is required');
    const badRate = await qubesec('qrng', 'serve', '--rate-limit', 'fast');
    expect(badRate.all).toContain('flag --rate-limit: "fast" is not a whole number');
  });
});
