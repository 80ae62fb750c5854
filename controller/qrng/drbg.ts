// Deterministic random bit generators of NIST SP 800-90A Rev. 1 on node:crypto's HMAC and AES (OpenSSL), nothing else
// hand-written: HMAC_DRBG (10.1.2) over the SHA-2 and SHA-3 hashes and CTR_DRBG (10.2.1) over AES-128/192/256, with
// and without the derivation function (Block_Cipher_df, 10.3.2). The mechanisms are pure state machines (the ACVP
// vectors drive them directly); Drbg wraps one with its entropy source, the reseed interval, prediction resistance and
// the standard's limits, and gives no output when the entropy source gives none.
import { createCipheriv, createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { EntropyUnavailable } from './errors.js';
import type { QrngMetrics } from './metrics.js';

/** SP 800-90A Rev. 1 Tables 2 and 3: at most 2^19 bits per generate request. */
export const MAX_REQUEST_BYTES = 2 ** 19 / 8;
/** Tables 2 and 3: reseed_interval at most 2^48 requests. */
export const MAX_RESEED_INTERVAL = 2 ** 48;
/** Tables 2 and 3: entropy input, personalization string and additional input at most 2^35 bits. */
export const MAX_INPUT_BYTES = 2 ** 35 / 8;

export const HMAC_DRBG_HASHES = ['sha224', 'sha256', 'sha384', 'sha512', 'sha512-224', 'sha512-256', 'sha3-224', 'sha3-256', 'sha3-384', 'sha3-512'] as const;
export type HmacDrbgHash = (typeof HMAC_DRBG_HASHES)[number];
export const CTR_DRBG_CIPHERS = ['aes-128', 'aes-192', 'aes-256'] as const;
export type CtrDrbgCipher = (typeof CTR_DRBG_CIPHERS)[number];

/** Which DRBG, spelled as in configuration: `hmac-sha512`, `ctr-aes-256` (derivation function), `ctr-aes-256-nodf`. */
export type DrbgName = `hmac-${HmacDrbgHash}` | `ctr-${CtrDrbgCipher}` | `ctr-${CtrDrbgCipher}-nodf`;
export const DRBG_NAMES: readonly DrbgName[] = [
  ...HMAC_DRBG_HASHES.map((h) => `hmac-${h}` as const),
  ...CTR_DRBG_CIPHERS.flatMap((c) => [`ctr-${c}` as const, `ctr-${c}-nodf` as const]),
];

/** How much entropy input a mechanism needs and accepts, in bytes (and the entropy it must carry, in bits). */
export interface EntropyInputRule {
  /** Minimum entropy the input must carry. */
  entropyBits: number;
  minBytes: number;
  maxBytes: number;
  /** Nonce length range; [0, 0] when the mechanism takes none. */
  nonceBytes: [number, number];
  personalizationMaxBytes: number;
  additionalInputMaxBytes: number;
}

/** One SP 800-90A mechanism's internal state and its instantiate, reseed and generate algorithms. */
export interface DrbgMechanism {
  readonly name: DrbgName;
  /** Highest security strength it supports (bits); it is always instantiated at this strength. */
  readonly securityStrength: number;
  readonly entropyRule: EntropyInputRule;
  instantiate(entropyInput: Buffer, nonce: Buffer, personalization: Buffer): void;
  reseed(entropyInput: Buffer, additionalInput: Buffer): void;
  /** The generate algorithm proper; Drbg checks the request size and the reseed counter first. */
  generate(bytes: number, additionalInput: Buffer): Buffer;
}

const EMPTY = Buffer.alloc(0);

/** SHA-224 and SHA-512/224 (and the SHA-3 equivalent) support 192 bits of strength; every longer hash 256 (SP 800-57). */
function hashStrength(hash: HmacDrbgHash): number {
  return /224$/.test(hash) ? 192 : 256;
}

/**
 * Input lengths of a DRBG that derives its seed (HMAC_DRBG, CTR_DRBG with the derivation function): entropy of the
 * security strength, a nonce of half of it, anything up to the standard's 2^35 bits otherwise (10.1, table 2 and 3).
 */
function derivedInputRule(securityStrength: number): EntropyInputRule {
  return {
    entropyBits: securityStrength,
    minBytes: securityStrength / 8,
    maxBytes: MAX_INPUT_BYTES,
    nonceBytes: [securityStrength / 16, MAX_INPUT_BYTES],
    personalizationMaxBytes: MAX_INPUT_BYTES,
    additionalInputMaxBytes: MAX_INPUT_BYTES,
  };
}

/** HMAC_DRBG, SP 800-90A Rev. 1 10.1.2. */
export class HmacDrbg implements DrbgMechanism {
  readonly name: DrbgName;
  readonly securityStrength: number;
  readonly entropyRule: EntropyInputRule;
  private key: Buffer;
  private value: Buffer;

  constructor(readonly hash: HmacDrbgHash) {
    this.name = `hmac-${hash}`;
    this.securityStrength = hashStrength(hash);
    const outlen = createHmac(hash, EMPTY).digest().length;
    this.key = Buffer.alloc(outlen);
    this.value = Buffer.alloc(outlen);
    this.entropyRule = derivedInputRule(this.securityStrength);
  }

  private hmac(key: Buffer | KeyObject, ...parts: Buffer[]): Buffer {
    const mac = createHmac(this.hash, key);
    for (const part of parts) mac.update(part);
    return mac.digest();
  }

  /** HMAC_DRBG_Update (10.1.2.2). */
  private update(provided: Buffer): void {
    this.key = this.hmac(this.key, this.value, Buffer.of(0x00), provided);
    this.value = this.hmac(this.key, this.value);
    if (provided.length === 0) return;
    this.key = this.hmac(this.key, this.value, Buffer.of(0x01), provided);
    this.value = this.hmac(this.key, this.value);
  }

  instantiate(entropyInput: Buffer, nonce: Buffer, personalization: Buffer): void {
    this.key.fill(0x00);
    this.value.fill(0x01);
    this.update(Buffer.concat([entropyInput, nonce, personalization]));
  }

  reseed(entropyInput: Buffer, additionalInput: Buffer): void {
    this.update(Buffer.concat([entropyInput, additionalInput]));
  }

  generate(bytes: number, additionalInput: Buffer): Buffer {
    if (additionalInput.length > 0) this.update(additionalInput);
    const out = Buffer.allocUnsafe(bytes);
    const key = createSecretKey(this.key); // one KeyObject for the whole request: K does not change in this loop
    for (let at = 0; at < bytes; at += this.value.length) {
      this.value = this.hmac(key, this.value);
      this.value.copy(out, at);
    }
    this.update(additionalInput);
    return out;
  }
}

const BLOCK = 16;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
/** CTR mode over zeros is the keystream; one read-only buffer of zeros serves every request. */
const ZEROS = Buffer.alloc(MAX_REQUEST_BYTES);

/** V + n mod 2^128 (V is a 128-bit big-endian counter block). */
function addToBlock(value: Buffer, n: number): Buffer {
  const out = Buffer.from(value);
  let carry = n;
  for (let i = BLOCK - 1; i >= 0 && carry > 0; i--) {
    const sum = out[i]! + (carry % 256);
    out[i] = sum & 0xff;
    carry = Math.floor(carry / 256) + (sum >> 8);
  }
  return out;
}

/** CTR_DRBG with a full 128-bit counter (ctr_len = blocklen), SP 800-90A Rev. 1 10.2.1. */
export class CtrDrbg implements DrbgMechanism {
  readonly name: DrbgName;
  readonly securityStrength: number;
  readonly entropyRule: EntropyInputRule;
  private readonly keyBytes: number;
  private readonly seedBytes: number;
  private key: Buffer;
  private value: Buffer = Buffer.alloc(BLOCK);

  constructor(
    readonly cipher: CtrDrbgCipher,
    readonly derivationFunction: boolean,
  ) {
    this.name = derivationFunction ? `ctr-${cipher}` : `ctr-${cipher}-nodf`;
    this.keyBytes = Number(cipher.slice(4)) / 8;
    this.securityStrength = this.keyBytes * 8;
    this.seedBytes = this.keyBytes + BLOCK;
    this.key = Buffer.alloc(this.keyBytes);
    // Without the derivation function the entropy input is exactly seedlen bits of full entropy and the other inputs
    // at most seedlen bits; with it, as for HMAC_DRBG.
    this.entropyRule = derivationFunction
      ? derivedInputRule(this.securityStrength)
      : {
          entropyBits: this.seedBytes * 8,
          minBytes: this.seedBytes,
          maxBytes: this.seedBytes,
          nonceBytes: [0, 0],
          personalizationMaxBytes: this.seedBytes,
          additionalInputMaxBytes: this.seedBytes,
        };
  }

  /** E(Key, V+1) || E(Key, V+2) || ... for `bytes`: AES-CTR from V+1 over zeros, which OpenSSL counts the same way. */
  private keystream(key: Buffer, value: Buffer, bytes: number): Buffer {
    const ctr = createCipheriv(`${this.cipher}-ctr`, key, addToBlock(value, 1));
    return ctr.update(ZEROS.subarray(0, bytes)); // a stream mode: final() adds nothing
  }

  /** CTR_DRBG_Update (10.2.1.2). */
  private update(provided: Buffer): void {
    const temp = this.keystream(this.key, this.value, this.seedBytes);
    for (let i = 0; i < this.seedBytes; i++) temp[i]! ^= provided[i] ?? 0;
    this.key = temp.subarray(0, this.keyBytes);
    this.value = temp.subarray(this.keyBytes);
  }

  /** Block_Cipher_df (10.3.2) with BCC as AES-CBC-MAC (10.3.3). */
  private derive(input: Buffer, bytes: number): Buffer {
    const header = Buffer.alloc(8);
    header.writeUInt32BE(input.length, 0);
    header.writeUInt32BE(bytes, 4);
    const s = Buffer.concat([header, input, Buffer.of(0x80)]);
    const padded = Buffer.concat([s, Buffer.alloc((BLOCK - (s.length % BLOCK)) % BLOCK)]);
    const dfKey = Buffer.from(Array.from({ length: this.keyBytes }, (_, i) => i));
    const blocks: Buffer[] = [];
    for (let i = 0; blocks.length * BLOCK < this.seedBytes; i++) {
      const iv = Buffer.alloc(BLOCK);
      iv.writeUInt32BE(i, 0);
      const cbc = createCipheriv(`${this.cipher}-cbc`, dfKey, ZERO_BLOCK).setAutoPadding(false);
      const chain = Buffer.concat([cbc.update(iv), cbc.update(padded), cbc.final()]);
      blocks.push(chain.subarray(chain.length - BLOCK));
    }
    const temp = Buffer.concat(blocks);
    const key = temp.subarray(0, this.keyBytes);
    let x: Buffer = temp.subarray(this.keyBytes, this.seedBytes);
    const ecb = createCipheriv(`${this.cipher}-ecb`, key, null).setAutoPadding(false);
    const out: Buffer[] = [];
    for (let have = 0; have < bytes; have += BLOCK) {
      x = ecb.update(x);
      out.push(x);
    }
    return Buffer.concat(out).subarray(0, bytes);
  }

  /** Inputs become seedlen-long material: through the df, or zero-padded (no df). */
  private material(...inputs: Buffer[]): Buffer {
    if (this.derivationFunction) return this.derive(Buffer.concat(inputs), this.seedBytes);
    const out = Buffer.alloc(this.seedBytes);
    for (const input of inputs) for (let i = 0; i < input.length; i++) out[i]! ^= input[i]!;
    return out;
  }

  instantiate(entropyInput: Buffer, nonce: Buffer, personalization: Buffer): void {
    this.key = Buffer.alloc(this.keyBytes);
    this.value = Buffer.alloc(BLOCK);
    this.update(this.derivationFunction ? this.material(entropyInput, nonce, personalization) : this.material(entropyInput, personalization));
  }

  reseed(entropyInput: Buffer, additionalInput: Buffer): void {
    this.update(this.material(entropyInput, additionalInput));
  }

  generate(bytes: number, additionalInput: Buffer): Buffer {
    let additional: Buffer = Buffer.alloc(this.seedBytes);
    if (additionalInput.length > 0) {
      additional = this.material(additionalInput);
      this.update(additional);
    }
    const out = this.keystream(this.key, this.value, bytes);
    this.value = addToBlock(this.value, Math.ceil(bytes / BLOCK));
    this.update(additional);
    return out;
  }
}

export function createMechanism(name: DrbgName): DrbgMechanism {
  if (name.startsWith('hmac-')) return new HmacDrbg(name.slice(5) as HmacDrbgHash);
  const noDf = name.endsWith('-nodf');
  return new CtrDrbg(name.slice(4, 11) as CtrDrbgCipher, !noDf);
}

/** Where a Drbg gets entropy input: conditioned, health-tested entropy; throws EntropyUnavailable when it has none. */
export interface EntropyInputSource {
  /** `bytes` bytes carrying at least `entropyBits` bits of entropy. */
  entropyInput(entropyBits: number, bytes: number): Promise<Buffer>;
}

export interface DrbgOptions {
  /** Generate requests between reseeds, 1 to 2^48 (default 2^20, far below the standard's limit, so fresh quantum entropy goes in often). */
  reseedInterval?: number;
  /** Reseed from the entropy source before every generate request. */
  predictionResistance?: boolean;
  personalization?: Buffer;
  /** Counts reseeds (qubesec_qrng_drbg_reseeds_total). */
  metrics?: QrngMetrics;
}

export type ReseedCause = 'interval' | 'prediction-resistance' | 'requested';

export const DEFAULT_RESEED_INTERVAL = 2 ** 20;

function checkLength(what: string, buffer: Buffer, max: number): void {
  if (buffer.length > max) throw new RangeError(`${what} is ${buffer.length} bytes; this DRBG takes at most ${max}`);
}

/**
 * A DRBG instance bound to its entropy source. Requests run one at a time (a reseed awaits the source). When the
 * source fails the request fails with EntropyUnavailable and produces nothing; a reseed that failed is tried again at
 * the next request, so the instance never generates past its reseed interval.
 */
export class Drbg {
  private reseedCounter = 1;
  private reseedNeeded = false;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly mechanism: DrbgMechanism,
    private readonly source: EntropyInputSource,
    readonly reseedInterval: number,
    readonly predictionResistance: boolean,
    private readonly metrics: QrngMetrics | undefined,
  ) {}

  /** Instantiate (SP 800-90A 9.1) with entropy input and nonce taken in one request of 3/2 the strength (8.6.7). */
  static async instantiate(name: DrbgName, source: EntropyInputSource, options: DrbgOptions = {}): Promise<Drbg> {
    const mechanism = createMechanism(name);
    const interval = options.reseedInterval ?? DEFAULT_RESEED_INTERVAL;
    if (!Number.isInteger(interval) || interval < 1 || interval > MAX_RESEED_INTERVAL) {
      throw new RangeError(`reseedInterval must be an integer from 1 to 2^48, not ${interval}`);
    }
    const personalization = options.personalization ?? EMPTY;
    const rule = mechanism.entropyRule;
    checkLength('the personalization string', personalization, rule.personalizationMaxBytes);
    const withNonce = rule.nonceBytes[1] > 0;
    const bytes = withNonce ? rule.minBytes + rule.nonceBytes[0] : rule.minBytes;
    const seed = await source.entropyInput(withNonce ? bytes * 8 : rule.entropyBits, bytes);
    if (seed.length !== bytes) throw new EntropyUnavailable(`DRBG ${name}: the entropy source gave ${seed.length} bytes, not ${bytes}`);
    mechanism.instantiate(seed.subarray(0, rule.minBytes), seed.subarray(rule.minBytes), personalization);
    return new Drbg(mechanism, source, interval, options.predictionResistance ?? false, options.metrics);
  }

  /** `bytes` (at most 65536) of output; throws EntropyUnavailable, with nothing generated, when a due reseed fails. */
  generate(bytes: number, additionalInput: Buffer = EMPTY): Promise<Buffer> {
    if (!Number.isInteger(bytes) || bytes < 0 || bytes > MAX_REQUEST_BYTES) {
      return Promise.reject(new RangeError(`a DRBG request is 0 to ${MAX_REQUEST_BYTES} bytes (2^19 bits), not ${bytes}`));
    }
    return this.serially(async () => {
      checkLength('the additional input', additionalInput, this.mechanism.entropyRule.additionalInputMaxBytes);
      let additional = additionalInput;
      const cause = this.predictionResistance ? 'prediction-resistance' : this.reseedNeeded || this.reseedCounter > this.reseedInterval ? 'interval' : undefined;
      if (cause) {
        this.reseedNeeded = true;
        await this.reseedNow(additional, cause);
        additional = EMPTY; // 9.3.1: the additional input went into the reseed
      }
      const out = this.mechanism.generate(bytes, additional);
      this.reseedCounter++;
      return out;
    });
  }

  /** Reseed now (SP 800-90A 9.2), e.g. when fresh quantum entropy should go in at once. */
  reseed(additionalInput: Buffer = EMPTY): Promise<void> {
    return this.serially(() => this.reseedNow(additionalInput, 'requested'));
  }

  private async reseedNow(additionalInput: Buffer, cause: ReseedCause): Promise<void> {
    checkLength('the additional input', additionalInput, this.mechanism.entropyRule.additionalInputMaxBytes);
    const rule = this.mechanism.entropyRule;
    let entropy: Buffer;
    try {
      entropy = await this.source.entropyInput(rule.entropyBits, rule.minBytes);
    } catch (err) {
      if (err instanceof EntropyUnavailable) throw err;
      throw new EntropyUnavailable(`DRBG ${this.mechanism.name} could not reseed: ${(err as Error).message}`);
    }
    if (entropy.length !== rule.minBytes) throw new EntropyUnavailable(`DRBG ${this.mechanism.name}: the entropy source gave ${entropy.length} bytes, not ${rule.minBytes}`);
    this.mechanism.reseed(entropy, additionalInput);
    this.reseedCounter = 1;
    this.reseedNeeded = false;
    this.metrics?.reseeds.inc({ drbg: this.mechanism.name, cause });
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
