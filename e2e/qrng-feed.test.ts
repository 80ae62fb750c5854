// `qubesec qrng feed` as a real process drawing from a real `qubesec qrng serve` (its source the test double):
//  - rngd mode: the feed makes the FIFO and runs rngd (rng-tools 5 from the rootfs) on it. rngd runs here in a user
//    namespace without any privilege over the host, so the host kernel's pool is never credited: rngd reads a FIPS
//    140-2 block from the FIFO, passes its tests, and only then tries RNDADDENTROPY, which the kernel refuses
//    (EPERM: it needs CAP_SYS_ADMIN). That refusal is rngd saying the source works; the feed reports it as
//    no-permission and restarts rngd. Bytes rngd's tests fail (the feed pointed at the test double, stuck) make it
//    print "too many FIPS failures" and exit 0: the feed tells that apart (fips-disabled) by rngd's output.
//  - safe mode: the bytes are written to a file standing in for /dev/random; with the service's only quantum source
//    faulted nothing more is written, and writing resumes once the source is back.
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { eventually, freePort, metricValue, rootfs } from './lib/env.js';
import { qubesec, startTestQrngService, type TestQrngService } from './lib/qrng-service.js';

const TOKEN = 'feed-token-0123456789';
let service: TestQrngService;

beforeAll(async () => {
  service = await startTestQrngService([], { node: TOKEN });
  await writeFile(join(service.dir, 'feed-token'), `${TOKEN}\n`);
});

afterEach(() => {
  service.source.fault = 'none';
});

afterAll(async () => {
  await service?.stop();
});

async function startFeed(mode: string[]) {
  const metricsPort = await freePort();
  const feed = qubesec('qrng', 'feed', '--url', `https://127.0.0.1:${service.port}`, '--ca', join(service.dir, 'ca.pem'), '--token-file', join(service.dir, 'feed-token'),
    '--metrics-address', '127.0.0.1', '--metrics-port', String(metricsPort), '--log-level', 'debug', ...mode);
  const logs: string[] = [];
  feed.all?.on('data', (chunk: Buffer) => logs.push(chunk.toString('utf8')));
  const metrics = () => fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text());
  await eventually(async () => ((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).ok ? true : undefined), 20_000, `qrng feed up (${logs.join('')})`);
  return {
    logs,
    metrics,
    ready: async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status,
    stop: async () => {
      feed.kill('SIGTERM');
      return feed;
    },
  };
}

describe('qubesec qrng feed', () => {
  it('fills the FIFO rngd reads: rngd passes its FIPS 140-2 tests on it and asks the kernel to credit it (refused here, without CAP_SYS_ADMIN)', async () => {
    const fifo = join(service.dir, 'entropy.fifo');
    const rngd = `unshare --user --map-root-user chroot ${rootfs()} rngd -f -d 1 -n 1 -r ${service.inRootfs('entropy.fifo')} -o /dev/random -p ${service.inRootfs('rngd.pid')}`;
    const feed = await startFeed(['--fifo', fifo, '--rngd-command', rngd]);
    try {
      await eventually(async () => (metricValue(await feed.metrics(), 'qubesec_qrng_feed_rngd_exits_total{reason="no-permission"}') >= 2 ? true : undefined), 30_000, `rngd asking to credit twice (${feed.logs.join('')})`);
      expect((await stat(fifo)).isFIFO()).toBe(true);
      const text = await feed.metrics();
      // rngd tests 20,000-bit (2,500-byte) blocks: each run read at least one.
      expect(metricValue(text, 'qubesec_qrng_feed_bytes_total')).toBeGreaterThanOrEqual(2500);
      expect(metricValue(text, 'qubesec_qrng_feed_rngd_exits_total{reason="fips-disabled"}')).toBeNaN();
      const stopped = feed.logs.join('').split('\n').filter((l) => l.includes('"rngd stopped"')).map((l) => JSON.parse(l) as { reason: string; hint: string; output: string[] });
      expect(stopped[0]).toMatchObject({ reason: 'no-permission', hint: expect.stringContaining('CAP_SYS_ADMIN'), output: expect.arrayContaining(['RNDADDENTROPY failed: Operation not permitted']) });
    } finally {
      await feed.stop();
    }
  });

  it('sees rngd disable a source whose bytes fail its FIPS tests (rngd exits 0), by what it printed: fed straight from the test double, stuck', async () => {
    // The feed's client also speaks to any QRNG Open API: here the vendor double itself, faulted to one repeated byte.
    service.source.fault = 'stuck';
    const fifo = join(service.dir, 'stuck.fifo');
    const rngd = `unshare --user --map-root-user chroot ${rootfs()} rngd -f -d 1 -n 1 -r ${service.inRootfs('stuck.fifo')} -o /dev/random -p ${service.inRootfs('rngd-stuck.pid')}`;
    const feed = await startFeed(['--url', service.source.url, '--ca', join(service.dir, 'source-ca.pem'), '--token-file', join(service.dir, 'source-token'), '--fifo', fifo, '--rngd-command', rngd]);
    try {
      await eventually(async () => (metricValue(await feed.metrics(), 'qubesec_qrng_feed_rngd_exits_total{reason="fips-disabled"}') >= 1 ? true : undefined), 30_000, `rngd disabling the source (${feed.logs.join('')})`);
      const stopped = feed.logs.join('').split('\n').filter((l) => l.includes('"rngd stopped"')).map((l) => JSON.parse(l) as { reason: string; code: number; output: string[] });
      expect(stopped[0]).toMatchObject({ reason: 'fips-disabled', code: 0, output: expect.arrayContaining(['too many FIPS failures, disabling entropy source']) });
      expect(metricValue(await feed.metrics(), 'qubesec_qrng_feed_rngd_exits_total{reason="no-permission"}')).toBeNaN();
    } finally {
      await feed.stop();
    }
  });

  it('safe mode writes to the random device, writes nothing while the service has no healthy quantum source, and resumes', async () => {
    const device = join(service.dir, 'random');
    const feed = await startFeed(['--write-device', device, '--write-interval', '1s', '--chunk-bytes', '512']);
    const size = async () => (await stat(device)).size;
    try {
      await eventually(async () => ((await size()) >= 1024 ? true : undefined), 20_000, 'two chunks written');
      expect(await feed.ready()).toBe(200);
      service.source.fault = 'unavailable';
      await eventually(async () => ((await feed.ready()) === 503 ? true : undefined), 30_000, 'the feed not ready');
      const before = await size();
      await new Promise((r) => setTimeout(r, 3000));
      expect(await size()).toBe(before);
      expect(feed.logs.join('')).toContain('no entropy from the QRNG service: writing nothing');
      service.source.fault = 'none';
      await eventually(async () => ((await size()) > before ? true : undefined), 45_000, 'writing resumed');
      expect(await feed.ready()).toBe(200);
    } finally {
      await feed.stop();
    }
  });
});
