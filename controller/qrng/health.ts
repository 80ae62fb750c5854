// NIST SP 800-90B continuous health tests on a noise source's raw samples (section 4.4): the Repetition Count Test
// (RCT, 4.4.1) catches a stuck source, the Adaptive Proportion Test (APT, 4.4.2) a source whose output leans to one
// value. Both decide from H (the min-entropy per sample the source claims) and alpha (the false-positive rate per test
// per sample or window). Start-up testing (4.3) runs the same tests over the first STARTUP_SAMPLES samples before any
// output is used; a source that failed starts over with start-up testing.

/** Sample sizes QubeSec tests: binary (each bit a sample) or 8-bit (each byte a sample). */
export type SampleBits = 1 | 8;
export type HealthTestName = 'repetition-count' | 'adaptive-proportion';

/** What a source claims about its raw samples; the cutoffs follow from it. */
export interface SampleModel {
  sampleBits: SampleBits;
  /** Claimed min-entropy per sample, in bits: 0 < H <= sampleBits. */
  minEntropy: number;
  /** False-positive probability of each test, 2^-40 <= alpha <= 2^-20 (SP 800-90B 4.4 recommends 2^-20 to 2^-40); default 2^-20. */
  alpha?: number;
}

export const DEFAULT_ALPHA = 2 ** -20;
/** SP 800-90B 4.3 (item 1): start-up tests over at least 1024 consecutive samples. */
export const STARTUP_SAMPLES = 1024;

export interface Cutoffs {
  /** RCT fails when a sample value repeats this many times in a row. */
  repetitionCount: number;
  /** APT fails when the window's first sample value occurs this many times in the window. */
  adaptiveProportion: number;
  /** APT window: 1024 samples for binary sources, 512 otherwise (SP 800-90B 4.4.2). */
  window: number;
}

/** Throws a message naming the field when a sample model is out of range; `where` names the source. */
export function validateSampleModel(model: SampleModel, where: string): void {
  if (model.sampleBits !== 1 && model.sampleBits !== 8) throw new Error(`${where}: sampleBits must be 1 or 8, not ${String(model.sampleBits)}`);
  if (!(model.minEntropy > 0 && model.minEntropy <= model.sampleBits)) {
    throw new Error(`${where}: minEntropy (H) must be above 0 and at most ${model.sampleBits} bit(s) per ${model.sampleBits}-bit sample, not ${model.minEntropy}`);
  }
  const alpha = model.alpha ?? DEFAULT_ALPHA;
  if (!(alpha >= 2 ** -40 && alpha <= 2 ** -20)) throw new Error(`${where}: alpha must lie in [2^-40, 2^-20], not ${alpha}`);
}

/** C = 1 + ceil(-log2(alpha) / H) (SP 800-90B 4.4.1). */
export function repetitionCountCutoff(minEntropy: number, alpha: number): number {
  return 1 + Math.ceil(-Math.log2(alpha) / minEntropy);
}

/**
 * C = 1 + CRITBINOM(W, 2^-H, 1 - alpha) (SP 800-90B 4.4.2), CRITBINOM being the smallest k with P[X <= k] >= 1 - alpha
 * for X ~ Binomial(W, 2^-H); that is the smallest c with P[X >= c] <= alpha. The upper tail is summed directly (in
 * logarithms, from the top) so that 1 - alpha loses no precision.
 */
export function adaptiveProportionCutoff(minEntropy: number, alpha: number, window: number): number {
  const p = 2 ** -minEntropy;
  const logP = Math.log(p);
  const logQ = Math.log1p(-p);
  const logPmf: number[] = [];
  let logBinomial = 0; // ln C(W, k)
  for (let k = 0; k <= window; k++) {
    logPmf.push(logBinomial + k * logP + (window - k) * logQ);
    logBinomial += Math.log(window - k) - Math.log(k + 1);
  }
  let tail = 0; // P[X >= c], for c going down
  for (let c = window; c >= 0; c--) {
    const next = tail + Math.exp(logPmf[c]!);
    if (next > alpha) return c + 1;
    tail = next;
  }
  return 0;
}

export function cutoffs(model: SampleModel): Cutoffs {
  const window = model.sampleBits === 1 ? 1024 : 512;
  const alpha = model.alpha ?? DEFAULT_ALPHA;
  return {
    repetitionCount: repetitionCountCutoff(model.minEntropy, alpha),
    adaptiveProportion: adaptiveProportionCutoff(model.minEntropy, alpha, window),
    window,
  };
}

/** Per byte value: its count of one bits, and the length of the run its first (MSB) and last (LSB) bits start. */
const ONES = new Uint8Array(256);
const LEADING_RUN = new Uint8Array(256);
const TRAILING_RUN = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  const bits = Array.from({ length: 8 }, (_, i) => (b >> (7 - i)) & 1);
  ONES[b] = bits.reduce((n: number, x) => n + x, 0);
  LEADING_RUN[b] = bits.findIndex((x) => x !== bits[0]) === -1 ? 8 : bits.findIndex((x) => x !== bits[0]);
  const reversed = [...bits].reverse();
  TRAILING_RUN[b] = reversed.findIndex((x) => x !== reversed[0]) === -1 ? 8 : reversed.findIndex((x) => x !== reversed[0]);
}

/**
 * Both continuous tests over a stream of raw samples, in order, across calls. After a failure every later call
 * reports it again until reset(); start-up is done once STARTUP_SAMPLES samples passed both tests since the last reset.
 */
export class HealthTests {
  readonly cutoffs: Cutoffs;
  private failure: HealthTestName | undefined;
  private samples = 0;
  private repeated = -1; // RCT: the last sample value (A) and how often it occurred in a row (B)
  private repeatCount = 0;
  private windowValue = -1; // APT: the window's first sample (A), its count (B), samples seen in the window
  private windowCount = 0;
  private windowSeen = 0;

  constructor(readonly model: SampleModel) {
    this.cutoffs = cutoffs(model);
  }

  get failed(): HealthTestName | undefined {
    return this.failure;
  }

  get startupDone(): boolean {
    return this.failure === undefined && this.samples >= STARTUP_SAMPLES;
  }

  get samplesTested(): number {
    return this.samples;
  }

  /** Runs each sample of `raw` (bytes, or their bits MSB first for binary samples) through both tests. */
  test(raw: Uint8Array): HealthTestName | undefined {
    if (this.failure) return this.failure;
    const binary = this.model.sampleBits === 1;
    for (let i = 0; i < raw.length; i++) {
      const byte = raw[i]!;
      if (!binary) {
        if (!this.sample(byte)) return this.failure;
      } else if (!this.byteOfBits(byte)) {
        for (let bit = 7; bit >= 0; bit--) if (!this.sample((byte >> bit) & 1)) return this.failure;
      }
    }
    return undefined;
  }

  /**
   * Eight binary samples at once, when no test can fail inside them: the same state changes as eight sample() calls,
   * from tables of each byte's leading run, trailing run and count of ones. Windows start on byte boundaries (1024 is
   * a multiple of 8), and a run inside a byte (at most 7) is under any binary RCT cutoff (at least 21, as H <= 1).
   * Returns false, changing nothing, when a test might fail in this byte: sample() then finds the exact sample.
   */
  private byteOfBits(byte: number): boolean {
    const first = byte >> 7;
    const lead = LEADING_RUN[byte]!;
    const runAtLead = first === this.repeated ? this.repeatCount + lead : lead;
    if (runAtLead >= this.cutoffs.repetitionCount) return false;
    const ones = ONES[byte]!;
    let windowValue = this.windowValue;
    let windowCount = this.windowCount;
    if (this.windowSeen === 0) {
      windowValue = first;
      windowCount = first ? ones : 8 - ones;
    } else windowCount += windowValue ? ones : 8 - ones;
    if (windowCount >= this.cutoffs.adaptiveProportion) return false;
    if (lead === 8) {
      this.repeated = first;
      this.repeatCount = runAtLead;
    } else {
      this.repeated = byte & 1;
      this.repeatCount = TRAILING_RUN[byte]!;
    }
    this.windowValue = windowValue;
    this.windowCount = windowCount;
    this.windowSeen = (this.windowSeen + 8) % this.cutoffs.window;
    this.samples += 8;
    return true;
  }

  /** Forget everything: the next samples go through start-up testing again. */
  reset(): void {
    this.failure = undefined;
    this.samples = 0;
    this.repeated = -1;
    this.repeatCount = 0;
    this.windowValue = -1;
    this.windowCount = 0;
    this.windowSeen = 0;
  }

  /** One sample through both tests; false on a failure. */
  private sample(value: number): boolean {
    this.samples++;
    if (value === this.repeated) {
      if (++this.repeatCount >= this.cutoffs.repetitionCount) {
        this.failure = 'repetition-count';
        return false;
      }
    } else {
      this.repeated = value;
      this.repeatCount = 1;
    }
    if (this.windowSeen === 0) {
      this.windowValue = value;
      this.windowCount = 1;
    } else if (value === this.windowValue && ++this.windowCount >= this.cutoffs.adaptiveProportion) {
      this.failure = 'adaptive-proportion';
      return false;
    }
    if (++this.windowSeen === this.cutoffs.window) this.windowSeen = 0;
    return true;
  }
}
