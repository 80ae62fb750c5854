// Conditioning: HMAC-SHA-512 output and SP 800-90B 3.1.5.1.2 entropy accounting, checked against the formula
// evaluated directly (exact powers of two where doubles hold them) and against its limits.
import { createHmac } from 'node:crypto';
import { CONDITIONED_BITS, FULL_ENTROPY_MARGIN, condition, outputEntropy } from './conditioning.js';

/** Output_Entropy written out literally, for sizes where 2^n_in fits a double. */
function literal(nIn: number, nOut: number, nw: number, hIn: number): number {
  const pHigh = 2 ** -hIn;
  const pLow = (1 - pHigh) / (2 ** nIn - 1);
  const n = Math.min(nOut, nw);
  const psi = 2 ** (nIn - n) * pLow + pHigh;
  const u = 2 ** (nIn - n) + Math.sqrt(2 * n * 2 ** (nIn - n) * Math.log(2));
  return -Math.log2(Math.max(psi, u * pLow));
}

describe('outputEntropy (SP 800-90B 3.1.5.1.2)', () => {
  it('equals the literal formula where doubles can evaluate it', () => {
    for (const [nIn, nOut, nw, hIn] of [[64, 32, 32, 20], [512, 256, 256, 100], [600, 512, 512, 300], [900, 512, 512, 600], [1000, 128, 512, 127]]) {
      expect(outputEntropy(nIn!, nOut!, nw!, hIn!)).toBeCloseTo(Math.min(literal(nIn!, nOut!, nw!, hIn!), hIn!, nOut!), 9);
    }
  });

  it('never claims more than the input entropy, the output length or the narrowest width', () => {
    for (const hIn of [1, 64, 255, 256, 300, 511, 512, 576, 1000, 4000]) {
      for (const nIn of [hIn, hIn * 2, 8192]) {
        const h = outputEntropy(nIn, 512, 512, hIn);
        expect(h).toBeLessThanOrEqual(Math.min(hIn, 512));
        expect(h).toBeGreaterThan(0);
      }
    }
    expect(outputEntropy(8192, 512, 256, 8000)).toBeLessThanOrEqual(256); // narrow pipe
    expect(outputEntropy(8192, 512, 512, 0)).toBe(0);
  });

  it('gives (nearly) full entropy from n_out + 64 bits of input entropy, and clearly less from n_out', () => {
    const nOut = CONDITIONED_BITS;
    expect(outputEntropy(8 * 1024, nOut, 512, nOut + FULL_ENTROPY_MARGIN)).toBeGreaterThan(nOut - 1e-9);
    expect(outputEntropy(8 * 1024, nOut, 512, nOut)).toBeLessThan(nOut - 0.5);
    expect(outputEntropy(8 * 1024, 384, 512, 384 + FULL_ENTROPY_MARGIN)).toBeGreaterThan(384 - 1e-9);
  });
});

describe('condition', () => {
  it('is HMAC-SHA-512 of the raw input and credits it by outputEntropy', () => {
    const input = Buffer.alloc(200, 7);
    const block = condition(input, 600);
    expect(block.bytes.length).toBe(64);
    expect(block.bytes).toEqual(createHmac('sha512', 'QubeSec QRNG SP 800-90B HMAC-SHA-512 conditioning, v1').update(input).digest());
    expect(block.entropyBits).toBe(outputEntropy(1600, 512, 512, 600));
    expect(condition(input, 100).entropyBits).toBeLessThanOrEqual(100);
  });
});
