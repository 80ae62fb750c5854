// Conditioning (NIST SP 800-90B 3.1.5): health-tested raw samples go through a vetted conditioning component,
// HMAC-SHA-512 (3.1.5.1.1, from node:crypto), and the output is credited only the entropy 3.1.5.1.2 allows:
// h_out = Output_Entropy(n_in, n_out, nw, h_in), never more than the input's h_in, the output's n_out or the narrowest
// internal width nw. Pure functions: the pool decides how much raw input to gather from these numbers.
import { createHmac, createSecretKey } from 'node:crypto';

/** HMAC-SHA-512: output length and narrowest internal width (the chaining value) are both 512 bits. */
export const CONDITIONED_BITS = 512;
const NARROWEST_WIDTH = 512;
/**
 * The HMAC key: SP 800-90B lets a vetted keyed conditioner use a fixed key (its security rests on the input's entropy,
 * not on the key's secrecy). A fixed, labelled key keeps the function the same on every replica.
 */
const CONDITIONING_KEY = createSecretKey(Buffer.from('QubeSec QRNG SP 800-90B HMAC-SHA-512 conditioning, v1'));
/**
 * SP 800-90C: a vetted conditioner's n-bit output is taken to have full entropy when its input carried at least
 * n + 64 bits. The pool gathers that much before it claims a block as full entropy.
 */
export const FULL_ENTROPY_MARGIN = 64;

export interface ConditionedBlock {
  /** 64 bytes of HMAC-SHA-512 output. */
  bytes: Buffer;
  /** Entropy credited to `bytes` by SP 800-90B 3.1.5.1.2 (bits). */
  entropyBits: number;
}

/** One conditioned block from health-tested raw input carrying `inputEntropyBits` of claimed min-entropy. */
export function condition(input: Buffer, inputEntropyBits: number): ConditionedBlock {
  const bytes = createHmac('sha512', CONDITIONING_KEY).update(input).digest();
  return { bytes, entropyBits: outputEntropy(input.length * 8, CONDITIONED_BITS, NARROWEST_WIDTH, inputEntropyBits) };
}

/**
 * SP 800-90B 3.1.5.1.2, Output_Entropy(n_in, n_out, nw, h_in):
 *   P_high = 2^-h_in, P_low = (1 - P_high) / (2^n_in - 1), n = min(n_out, nw),
 *   psi = 2^(n_in - n) P_low + P_high, U = 2^(n_in - n) + sqrt(2 n 2^(n_in - n) ln 2), omega = U P_low,
 *   h_out = -log2(max(psi, omega)).
 * n_in reaches thousands of bits, so each power of two is kept as its exponent and combined in log2 terms; a term that
 * underflows a double is below 2^-1074 next to one at least 2^-n, and changes nothing.
 */
export function outputEntropy(inputBits: number, outputBits: number, narrowestWidth: number, inputEntropyBits: number): number {
  if (inputEntropyBits <= 0) return 0;
  const hIn = Math.min(inputEntropyBits, inputBits);
  const n = Math.min(outputBits, narrowestWidth);
  const pHigh = 2 ** -hIn;
  // log2(P_low) = log2(1 - P_high) - log2(2^n_in - 1); for n_in > 52 the -1 is below a double's precision.
  const log2PLow = Math.log2(-Math.expm1(Math.log(pHigh))) - (inputBits > 52 ? inputBits : Math.log2(2 ** inputBits - 1));
  const excess = inputBits - n; // n_in - n, may be negative when the input is shorter than the output
  const psi = 2 ** (excess + log2PLow) + pHigh;
  // omega = (2^excess + sqrt(2 n ln2) 2^(excess/2)) P_low
  const omega = 2 ** (excess + log2PLow) + Math.sqrt(2 * n * Math.LN2) * 2 ** (excess / 2 + log2PLow);
  return Math.min(-Math.log2(Math.max(psi, omega)), hIn, n);
}
