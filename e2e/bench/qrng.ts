// Benchmark: the QRNG core's speed on one core. DRBG output (HMAC_DRBG SHA-512, CTR_DRBG AES-256 with df) next to
// `openssl speed -evp aes-256-ctr` and `openssl rand` (OpenSSL 3.5 from the data-plane rootfs: its own CTR_DRBG), and
// SP 800-90B health-test and conditioning throughput on raw input next to 240 Mbit/s, the fastest PCIe QRNG card
// (IDQ Quantis QRNG PCIe-240M). Prints figures and ratios; asserts nothing.
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { execa } from 'execa';
import { CONDITIONED_BITS, FULL_ENTROPY_MARGIN, condition } from '../../controller/qrng/conditioning.js';
import { Drbg, MAX_REQUEST_BYTES, type DrbgName, type EntropyInputSource } from '../../controller/qrng/drbg.js';
import { HealthTests } from '../../controller/qrng/health.js';
import { rootfs } from '../lib/env.js';
import { SECONDS, callsPerCpuSecond } from './lib.js';

const FASTEST_CARD_MBIT = 240;

/** Seeds for the benchmark only: the DRBG's speed does not depend on where its seed came from. */
const benchSeed: EntropyInputSource = { entropyInput: async (_bits, bytes) => randomBytes(bytes) };

/** Runs `once` (which handles `bytes` bytes) for SECONDS; MB/s per CPU-second of this (single-threaded) process. */
async function throughput(label: string, bytes: number, once: () => unknown): Promise<number> {
  const { calls, cpuSeconds } = await callsPerCpuSecond(once);
  const mb = (calls * bytes) / 1e6;
  const perCpu = mb / cpuSeconds;
  console.log(`${label.padEnd(64)} ${perCpu.toFixed(1).padStart(9)} MB/s per core  (${mb.toFixed(0)} MB, ${cpuSeconds.toFixed(2)} CPU-s)`);
  return perCpu;
}

async function drbg(name: DrbgName, request: number): Promise<number> {
  const instance = await Drbg.instantiate(name, benchSeed);
  return throughput(`${name}: ${request}-byte generate requests`, request, () => instance.generate(request));
}

async function opensslSpeed(): Promise<number> {
  const run = await execa('chroot', [rootfs(), 'openssl', 'speed', '-evp', 'aes-256-ctr', '-seconds', String(SECONDS), '-bytes', String(MAX_REQUEST_BYTES), '-mr'], { reject: false, all: true });
  const line = /^\+F:\d+:AES-256-CTR:([\d.]+)/im.exec(run.stdout);
  if (!line) throw new Error(`openssl speed gave no figure: ${run.all}`);
  const perCore = Number(line[1]) / 1e6;
  console.log(`${`openssl speed -evp aes-256-ctr (${MAX_REQUEST_BYTES}-byte blocks)`.padEnd(64)} ${perCore.toFixed(1).padStart(9)} MB/s per core`);
  return perCore;
}

/** `openssl rand` writing 2 GB to /dev/null in one (single-threaded) process: MB per CPU-second, from bash's `times`. */
async function opensslRand(): Promise<number> {
  const bytes = 2_000_000_000;
  const run = await execa('chroot', [rootfs(), 'bash', '-c', `openssl rand -out /dev/null ${bytes} && times`], { reject: false, all: true });
  // `times` prints the shell's user and system time, then its children's: the second line is openssl's.
  const children = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/m.exec(run.stdout.split('\n')[1] ?? '');
  if (run.exitCode !== 0 || !children) throw new Error(`openssl rand failed: ${run.all}`);
  const [, um, us, sm, ss] = children.map(Number) as [number, number, number, number, number];
  const cpuSeconds = um * 60 + us + sm * 60 + ss;
  const perCore = bytes / 1e6 / cpuSeconds;
  console.log(`${`openssl rand ${bytes / 1e9} GB to /dev/null`.padEnd(64)} ${perCore.toFixed(1).padStart(9)} MB/s per core  (${cpuSeconds.toFixed(2)} CPU-s)`);
  return perCore;
}

async function healthTests(sampleBits: 1 | 8): Promise<number> {
  // H claimed low enough that random input never trips a test (a failure would end a pass early and inflate the rate);
  // the tests' cost per sample does not depend on H.
  const tests = new HealthTests({ sampleBits, minEntropy: sampleBits === 8 ? 4 : 0.5, alpha: 2 ** -20 });
  const raw = randomBytes(8 << 20);
  const perCore = await throughput(`SP 800-90B RCT + APT on ${sampleBits === 8 ? '8-bit' : 'binary'} samples`, raw.length, () => {
    const failed = tests.test(raw);
    if (failed) throw new Error(`random input failed the ${failed} test`);
  });
  return perCore * 8;
}

async function conditioning(): Promise<number> {
  // A block's input at H = 7 per byte: (512 + 64) / 7 bytes.
  const raw = randomBytes(Math.ceil((CONDITIONED_BITS + FULL_ENTROPY_MARGIN) / 7));
  return (await throughput(`HMAC-SHA-512 conditioning (${raw.length}-byte raw input per block)`, raw.length, () => condition(raw, raw.length * 7))) * 8;
}

async function main(): Promise<void> {
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}; Node ${process.version} (OpenSSL ${process.versions.openssl}); ${SECONDS} s per figure`);
  const hmac = await drbg('hmac-sha512', MAX_REQUEST_BYTES);
  const ctr = await drbg('ctr-aes-256', MAX_REQUEST_BYTES);
  const hmacSmall = await drbg('hmac-sha512', 32);
  const ctrSmall = await drbg('ctr-aes-256', 32);
  const speed = await opensslSpeed();
  const rand = await opensslRand();
  console.log(`ratio CTR_DRBG AES-256 / openssl speed aes-256-ctr: ${(ctr / speed).toFixed(2)}`);
  console.log(`ratio CTR_DRBG AES-256 / openssl rand:              ${(ctr / rand).toFixed(2)}`);
  console.log(`ratio HMAC_DRBG SHA-512 / openssl rand:             ${(hmac / rand).toFixed(3)}`);
  console.log(`32-byte requests: HMAC_DRBG ${((hmacSmall * 1e6) / 32 / 1000).toFixed(0)}k/s, CTR_DRBG ${((ctrSmall * 1e6) / 32 / 1000).toFixed(0)}k/s per core`);
  const bytes = await healthTests(8);
  const bits = await healthTests(1);
  const hmacCondition = await conditioning();
  console.log(`ratio health tests / ${FASTEST_CARD_MBIT} Mbit/s card: 8-bit samples ${(bytes / FASTEST_CARD_MBIT).toFixed(1)}x (${bytes.toFixed(0)} Mbit/s), binary samples ${(bits / FASTEST_CARD_MBIT).toFixed(2)}x (${bits.toFixed(0)} Mbit/s)`);
  console.log(`ratio conditioning / ${FASTEST_CARD_MBIT} Mbit/s card: ${(hmacCondition / FASTEST_CARD_MBIT).toFixed(1)}x (${hmacCondition.toFixed(0)} Mbit/s)`);
}

await main();
