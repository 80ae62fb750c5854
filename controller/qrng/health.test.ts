// SP 800-90B health tests: cutoffs against the standard's published values and an exact computation written another
// way (integers, BigInt), then the tests' behaviour on stuck, biased and good input.
import { randomBytes } from 'node:crypto';
import { HealthTests, STARTUP_SAMPLES, adaptiveProportionCutoff, cutoffs, repetitionCountCutoff, validateSampleModel, type SampleModel } from './health.js';

const ALPHA = 2 ** -20;

/**
 * The APT cutoff for integer H exactly: with p = 2^-H, P[X = k] = C(W,k) (2^H - 1)^(W-k) / 2^(HW), so
 * P[X >= c] <= 2^-20 becomes sum_{k>=c} C(W,k) (2^H - 1)^(W-k) <= 2^(HW - 20), all in integers. Summed from c = 0 up
 * (the CDF side), the other way round from health.ts.
 */
function exactAptCutoff(h: number, window: number): number {
  const W = BigInt(window);
  const q = (1n << BigInt(h)) - 1n;
  const total = 1n << (BigInt(h) * W);
  const limit = 1n << (BigInt(h) * W - 20n);
  let binomial = 1n;
  let below = 0n; // sum_{k<c} ...
  for (let k = 0n; k <= W; k++) {
    if (total - below <= limit) return Number(k);
    below += binomial * q ** (W - k);
    binomial = (binomial * (W - k)) / (k + 1n);
  }
  return window + 1;
}

describe('cutoffs', () => {
  it('RCT: C = 1 + ceil(20 / H) for alpha = 2^-20 (SP 800-90B 4.4.1 examples)', () => {
    expect(repetitionCountCutoff(8, ALPHA)).toBe(4);
    expect(repetitionCountCutoff(1, ALPHA)).toBe(21);
    expect(repetitionCountCutoff(0.5, ALPHA)).toBe(41);
    expect(repetitionCountCutoff(7.5, ALPHA)).toBe(4);
    expect(repetitionCountCutoff(1, 2 ** -40)).toBe(41);
  });

  it('APT: equals the exact integer computation for every integer H and both windows', () => {
    for (const [window, hs] of [[512, [1, 2, 3, 4, 5, 6, 7, 8]], [1024, [1]]] as const) {
      for (const h of hs) expect({ window, h, c: adaptiveProportionCutoff(h, ALPHA, window) }).toEqual({ window, h, c: exactAptCutoff(h, window) });
    }
  });

  it("APT: the standard's cutoff holds the real false-positive rate within 1.34 alpha (integer H, exact)", () => {
    // The statistic is B = 1 + Binomial(W - 1, p) (the window's first sample is A by definition), while the standard's
    // C comes from Binomial(W, p); so P[B >= C] = P[Binomial(W-1, p) >= C - 1] can exceed alpha slightly. Exactly,
    // in integers: sum_{k >= C-1} C(W-1, k) (2^H - 1)^(W-1-k) against 2^(H(W-1)) alpha.
    for (const [window, h] of [[512, 1], [512, 2], [512, 4], [512, 8], [1024, 1]] as const) {
      const c = BigInt(adaptiveProportionCutoff(h, ALPHA, window));
      const n = BigInt(window - 1);
      const q = (1n << BigInt(h)) - 1n;
      let binomial = 1n;
      let tail = 0n;
      for (let k = 0n; k <= n; k++) {
        if (k >= c - 1n) tail += binomial * q ** (n - k);
        binomial = (binomial * (n - k)) / (k + 1n);
      }
      const ratio = Number((tail * 1_000_000n) / (1n << (BigInt(h) * n - 20n))) / 1e6; // P / alpha
      expect({ window, h, within: ratio <= 1.34 }).toEqual({ window, h, within: true });
    }
  });

  it('APT: the values of SP 800-90B Table 2 (alpha = 2^-20)', () => {
    // W = 512 (non-binary) for H = 0.5, 1, 2, 4, 8; W = 1024 (binary) for H = 0.2 ... 1.
    expect([0.5, 1, 2, 4, 8].map((h) => adaptiveProportionCutoff(h, ALPHA, 512))).toEqual([410, 311, 177, 62, 13]);
    expect([0.2, 0.4, 0.6, 0.8, 1].map((h) => adaptiveProportionCutoff(h, ALPHA, 1024))).toEqual([941, 840, 748, 664, 589]);
  });

  it('window 1024 for binary samples, 512 for bytes', () => {
    expect(cutoffs({ sampleBits: 1, minEntropy: 1, alpha: ALPHA })).toEqual({ repetitionCount: 21, adaptiveProportion: 589, window: 1024 });
    expect(cutoffs({ sampleBits: 8, minEntropy: 8, alpha: ALPHA })).toEqual({ repetitionCount: 4, adaptiveProportion: 13, window: 512 });
  });

  it('a bad model names its field and the source', () => {
    expect(() => validateSampleModel({ sampleBits: 8, minEntropy: 9, alpha: ALPHA }, 'source "card"')).toThrow('source "card": minEntropy (H) must be above 0 and at most 8');
    expect(() => validateSampleModel({ sampleBits: 1, minEntropy: 0, alpha: ALPHA }, 'x')).toThrow('minEntropy');
    expect(() => validateSampleModel({ sampleBits: 8, minEntropy: 4, alpha: 0.01 }, 'x')).toThrow('x: alpha must lie in [2^-40, 2^-20]');
    expect(() => validateSampleModel({ sampleBits: 4 as 8, minEntropy: 1, alpha: ALPHA }, 'x')).toThrow('sampleBits must be 1 or 8');
  });
});

/**
 * SP 800-90B 4.4.1 and 4.4.2 written out as the standard states them, over a whole sample array: the first failure
 * (test and 1-based sample number), or undefined.
 */
function reference(samples: number[], rctCutoff: number, aptCutoff: number, window: number): { test: string; at: number } | undefined {
  let a = samples[0];
  let b = 1;
  let windowStart = 0;
  let windowA = samples[0];
  let windowB = 1;
  for (let i = 1; i < samples.length; i++) {
    if (samples[i] === a) {
      b++;
      if (b >= rctCutoff) return { test: 'repetition-count', at: i + 1 };
    } else {
      a = samples[i];
      b = 1;
    }
    if (i - windowStart === window) {
      windowStart = i;
      windowA = samples[i];
      windowB = 1;
    } else if (samples[i] === windowA) {
      windowB++;
      if (windowB >= aptCutoff) return { test: 'adaptive-proportion', at: i + 1 };
    }
  }
  return undefined;
}

describe('HealthTests', () => {
  it('agrees with the standard written out, sample for sample, on mixed good, stuck and biased input', () => {
    const segments = (n: number): Buffer => {
      const parts: Buffer[] = [];
      for (let i = 0; i < n; i++) {
        const kind = randomBytes(1)[0]! % 4;
        const len = 1 + (randomBytes(2).readUInt16BE() % 400);
        if (kind === 0) parts.push(Buffer.alloc(len, randomBytes(1)[0]!));
        else if (kind === 1) parts.push(Buffer.from(randomBytes(len).map((x) => x & 0xf0 | 0x0f))); // fewer distinct values
        else parts.push(randomBytes(len));
      }
      return Buffer.concat(parts);
    };
    for (let trial = 0; trial < 300; trial++) {
      const binary = trial % 2 === 0;
      const model: SampleModel = binary ? { sampleBits: 1, minEntropy: [1, 0.8, 0.5, 0.3][trial % 4]!, alpha: ALPHA } : { sampleBits: 8, minEntropy: [8, 6, 3, 1][trial % 4]!, alpha: ALPHA };
      const raw = segments(1 + (trial % 7));
      const samples = binary ? [...raw].flatMap((byte) => Array.from({ length: 8 }, (_, i) => (byte >> (7 - i)) & 1)) : [...raw];
      const tests = new HealthTests(model);
      const want = reference(samples, tests.cutoffs.repetitionCount, tests.cutoffs.adaptiveProportion, tests.cutoffs.window);
      // Fed in uneven pieces, as reads arrive.
      let got: string | undefined;
      for (let at = 0; at < raw.length && !got; at += 37) got = tests.test(raw.subarray(at, at + 37));
      expect({ trial, got, at: got ? tests.samplesTested : undefined }).toEqual({ trial, got: want?.test, at: want?.at });
    }
  });

  const bytes: SampleModel = { sampleBits: 8, minEntropy: 6, alpha: ALPHA };

  it('binary runs of exactly C - 1 and C ones or zeros, starting at every bit position, fail exactly as the standard says', () => {
    const model: SampleModel = { sampleBits: 1, minEntropy: 1, alpha: ALPHA };
    const c = new HealthTests(model).cutoffs.repetitionCount;
    const toBytes = (bits: number[]) => Buffer.from(Array.from({ length: Math.ceil(bits.length / 8) }, (_, i) => bits.slice(i * 8, i * 8 + 8).reduce((b, x, j) => b | (x << (7 - j)), 0)));
    for (let offset = 0; offset < 16; offset++) {
      for (const length of [c - 1, c]) {
        for (const value of [0, 1]) {
          const prefix = Array.from({ length: offset }, (_, i) => (i % 2) ^ value ^ (offset % 2)); // alternating, ends on the other value
          const bits = [...prefix, ...Array<number>(length).fill(value), 1 - value, value, 1 - value, value, 1 - value, value, 1 - value, value];
          const tests = new HealthTests(model);
          const want = reference(bits, c, tests.cutoffs.adaptiveProportion, tests.cutoffs.window);
          const got = tests.test(toBytes(bits).subarray(0, Math.floor(bits.length / 8)));
          const wantIn = want && want.at <= Math.floor(bits.length / 8) * 8 ? want : undefined;
          expect({ offset, length, value, got, at: got ? tests.samplesTested : undefined }).toEqual({ offset, length, value, got: wantIn?.test, at: wantIn?.at });
        }
      }
    }
  });

  it('a stuck byte trips the RCT at exactly its cutoff', () => {
    const tests = new HealthTests(bytes);
    const c = tests.cutoffs.repetitionCount; // 5 for H = 6
    expect(tests.test(Buffer.alloc(c - 1, 0x41))).toBeUndefined();
    expect(tests.test(Buffer.of(0x41))).toBe('repetition-count');
    expect(tests.samplesTested).toBe(c);
    expect(tests.test(randomBytes(100))).toBe('repetition-count'); // stays failed
  });

  it('a stuck bit trips the binary RCT within its cutoff', () => {
    const tests = new HealthTests({ sampleBits: 1, minEntropy: 1, alpha: ALPHA });
    // The run of ones starts at the 8th bit; its 21st one (the cutoff) is sample 28.
    expect(tests.test(Buffer.of(0b01010101, 0xff, 0xff, 0xff))).toBe('repetition-count');
    expect(tests.samplesTested).toBe(28);
  });

  it('biased bytes trip the APT within one window, without tripping the RCT first', () => {
    // H claimed 6 (the APT cutoff allows 0x00 about 37 times in 512); a source giving 0x00 a quarter of the time
    // (min-entropy 2) fails the first window. 0x00 runs under the RCT cutoff are likely but not certain, so a run is
    // broken up by placing the biased samples apart.
    const tests = new HealthTests(bytes);
    const input = randomBytes(tests.cutoffs.window);
    for (let i = 0; i < input.length; i++) if (input[i] === 0) input[i] = 1;
    for (let i = 0; i < input.length; i += 4) input[i] = 0;
    expect(tests.test(input)).toBe('adaptive-proportion');
    expect(tests.samplesTested).toBeLessThanOrEqual(tests.cutoffs.window);
  });

  it('biased bits trip the binary APT within a window', () => {
    const tests = new HealthTests({ sampleBits: 1, minEntropy: 1, alpha: ALPHA });
    // 0b11101110: ones 75% of the time, runs of three at most: the RCT cannot trip, the APT (589 of 1024) must.
    expect(tests.test(Buffer.alloc(128, 0b11101110))).toBe('adaptive-proportion');
    expect(tests.samplesTested).toBeLessThanOrEqual(1024);
  });

  it('passes start-up after 1024 good samples, not before, and starts over after reset', () => {
    const tests = new HealthTests(bytes);
    expect(tests.test(randomBytes(STARTUP_SAMPLES - 1))).toBeUndefined();
    expect(tests.startupDone).toBe(false);
    tests.test(randomBytes(1));
    expect(tests.startupDone).toBe(true);
    tests.test(Buffer.alloc(10));
    expect(tests.startupDone).toBe(false);
    tests.reset();
    expect(tests.failed).toBeUndefined();
    expect(tests.startupDone).toBe(false);
  });

  it('good random data does not trip either test (false positives bounded by alpha)', () => {
    // Claimed below the data's true entropy, as a real source's H is: bytes at H = 4 (RCT cutoff 6; a run of 6 has
    // probability 2^-40 per sample, so under 2^-17 expected alarms in 8 MB), bits at H = 0.5 (cutoff 41).
    const tests = new HealthTests({ sampleBits: 8, minEntropy: 4, alpha: ALPHA });
    for (let i = 0; i < 8; i++) expect(tests.test(randomBytes(1 << 20))).toBeUndefined();
    const bits = new HealthTests({ sampleBits: 1, minEntropy: 0.5, alpha: ALPHA });
    expect(bits.test(randomBytes(1 << 20))).toBeUndefined();
  });

  it('good data claimed at its full entropy trips at about the rate alpha promises', () => {
    // H = 8 with alpha = 2^-20: RCT cutoff 4, so a run of 4 equal bytes (probability 2^-24 per sample) fails; over
    // 2^24 samples the failure count is Poisson(1): we only check it is not absurd (a test that fails a lot or never).
    let failures = 0;
    const tests = new HealthTests({ sampleBits: 8, minEntropy: 8, alpha: ALPHA });
    for (let i = 0; i < 16; i++) {
      const chunk = randomBytes(1 << 20);
      let at = 0;
      while (at < chunk.length) {
        const before = tests.samplesTested;
        if (tests.test(chunk.subarray(at))) {
          failures++;
          at += tests.samplesTested - before;
          tests.reset();
        } else break;
      }
    }
    expect(failures).toBeLessThan(12); // P[Poisson(1) >= 12] < 1e-9
  });
});
