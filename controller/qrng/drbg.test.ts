// The DRBGs against NIST's own answers: the ACVP vector sets for hmacDRBG and ctrDRBG (fetched by
// scripts/acvp-vectors.sh from the Go module Go's FIPS tests use), and, for CTR_DRBG with the derivation function (no
// ACVP group for it in that module), vectors from NIST CAVP's drbgtestvectors.zip. Then Drbg's own rules: limits,
// reseed interval, prediction resistance, and no output when entropy fails.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CtrDrbg, Drbg, DRBG_NAMES, HMAC_DRBG_HASHES, HmacDrbg, MAX_REQUEST_BYTES, createMechanism, type DrbgMechanism, type DrbgName, type EntropyInputSource, type HmacDrbgHash } from './drbg.js';
import { Registry } from 'prom-client';
import { EntropyUnavailable } from './errors.js';
import { createQrngMetrics } from './metrics.js';

interface AcvpTest {
  tcId: number;
  entropyInput: string;
  nonce: string;
  persoString: string;
  otherInput: { intendedUse: 'reSeed' | 'generate'; additionalInput: string; entropyInput: string }[];
}
interface AcvpGroup {
  tgId: number;
  mode: string;
  derFunc: boolean;
  predResistance: boolean;
  returnedBitsLen: number;
  tests: AcvpTest[];
}
interface AcvpSet<G> {
  vsId: number;
  algorithm?: string;
  testGroups: G[];
}
type Expected = AcvpSet<{ tgId: number; tests: { tcId: number; returnedBits: string }[] }>;

function acvp(name: string): { prompts: AcvpSet<AcvpGroup>[]; answers: Map<string, string> } {
  const dir = process.env.QUBESEC_ACVP;
  if (!dir) throw new Error('QUBESEC_ACVP is not set: run the tests through `npm test` (scripts/run.sh fetches the ACVP vectors)');
  const read = (kind: string) => (JSON.parse(readFileSync(join(dir, kind, `${name}.json`), 'utf8')) as object[]).slice(1); // [0] is the session header
  const answers = new Map<string, string>();
  for (const set of read('expected') as Expected[]) {
    for (const group of set.testGroups) for (const test of group.tests) answers.set(`${set.vsId}/${group.tgId}/${test.tcId}`, test.returnedBits);
  }
  return { prompts: read('vectors') as AcvpSet<AcvpGroup>[], answers };
}

const hex = (s: string) => Buffer.from(s, 'hex');
/** ACVP's mode names to ours. */
const HMAC_MODES: Record<string, HmacDrbgHash> = Object.fromEntries(
  HMAC_DRBG_HASHES.map((h) => [h.replace(/^sha3-/, 'SHA3-').replace(/^sha(\d)/, 'SHA2-$1').replace('512-', '512/'), h]),
);

/** The ACVP DRBG procedure: instantiate, then each reseed or generate in order; the last generate is the answer. */
function runAcvp(mechanism: DrbgMechanism, group: AcvpGroup, test: AcvpTest): string {
  mechanism.instantiate(hex(test.entropyInput), hex(test.nonce), hex(test.persoString));
  let out: Buffer = Buffer.alloc(0);
  for (const step of test.otherInput) {
    if (step.intendedUse === 'reSeed') mechanism.reseed(hex(step.entropyInput), hex(step.additionalInput));
    else if (group.predResistance) {
      mechanism.reseed(hex(step.entropyInput), hex(step.additionalInput));
      out = mechanism.generate(group.returnedBitsLen / 8, Buffer.alloc(0));
    } else out = mechanism.generate(group.returnedBitsLen / 8, hex(step.additionalInput));
  }
  return out.toString('hex');
}

function acvpGroups(name: string, mechanismFor: (group: AcvpGroup) => DrbgMechanism | undefined) {
  const { prompts, answers } = acvp(name);
  let tests = 0;
  const unsupported: string[] = [];
  for (const set of prompts) {
    for (const group of set.testGroups) {
      const mechanism = mechanismFor(group);
      if (!mechanism) {
        unsupported.push(`${group.mode}${group.derFunc ? ' df' : ''}`);
        continue;
      }
      for (const test of group.tests) {
        const want = answers.get(`${set.vsId}/${group.tgId}/${test.tcId}`);
        expect({ vector: `${set.vsId}/${group.tgId}/${test.tcId}`, got: runAcvp(mechanism, group, test) }).toEqual({ vector: `${set.vsId}/${group.tgId}/${test.tcId}`, got: want?.toLowerCase() });
        tests++;
      }
    }
  }
  return { tests, groups: prompts.reduce((n, s) => n + s.testGroups.length, 0), unsupported };
}

describe('HMAC_DRBG (SP 800-90A 10.1.2) against NIST ACVP vectors', () => {
  it('passes every test group (all ten hashes)', () => {
    const result = acvpGroups('hmacDRBG', (g) => (HMAC_MODES[g.mode] ? new HmacDrbg(HMAC_MODES[g.mode]!) : undefined));
    expect(result.unsupported).toEqual([]);
    expect(result).toMatchObject({ groups: 10, tests: 10 });
  });
});

describe('CTR_DRBG (SP 800-90A 10.2.1) against NIST ACVP vectors', () => {
  it('passes every test group (AES-256 without df, with reseed and additional input)', () => {
    const result = acvpGroups('ctrDRBG', (g) => {
      const cipher = ({ 'AES-128': 'aes-128', 'AES-192': 'aes-192', 'AES-256': 'aes-256' } as const)[g.mode];
      return cipher ? new CtrDrbg(cipher, g.derFunc) : undefined;
    });
    expect(result.unsupported).toEqual([]);
    expect(result).toMatchObject({ groups: 1, tests: 1 });
  });
});

describe('CTR_DRBG with the derivation function against NIST CAVP vectors (drbgtestvectors.zip, CTR_DRBG.rsp)', () => {
  // The CAVP procedure: instantiate; generate (discarded) with A; generate with B, which is the answer. With prediction
  // resistance each generate first reseeds with its own entropy input.
  const cases: { name: string; drbg: DrbgName; entropy: string; nonce: string; perso?: string; a?: string; b?: string; prA?: string; prB?: string; out: string }[] = [
    {
      name: 'AES-256 df, personalization and additional input',
      drbg: 'ctr-aes-256',
      entropy: 'ed12df77815585fc9ae7396620eee4ae68cc82a82ec30a792901e2858a59705d',
      nonce: '232a3db970b5cf1f31a5e09f02c0a97e',
      perso: '2f9294db485305d48863b6f537c3faed903b9feb94bb848d00dc58e77d8f47c0',
      a: 'c9969a563374480bc08f61d4b46e587afc55126d3809e603e20e44a07636c678',
      b: '03cfbaa739b33c1bc60abb1c730e155fae07837054b08ee848c458c88569ffc1',
      out: '78bd67eb4e660a4fe3474ec1e95b1fbdc1e4dc6867184ee4ea9e156814c5849c3c12d7ba06cced8c872712c2b96e7468536e11a20e93e53b8c778e9c0634c6cb',
    },
    {
      name: 'AES-256 df, no other input',
      drbg: 'ctr-aes-256',
      entropy: '58a5f79da44b9f23a98a39352972ad16031fe13637bd18d6cb6c9f5269d8e240',
      nonce: 'aaa46610681167ff8d4d2c51e77911d4',
      out: 'c1714f89459ce746b151509e5066d4811a06ad06c1e9b13b50c0fc7cdd77ceedc233908ebe1ea8140ec2dc262a43201be667008e081e5476b19b27214111d325',
    },
    {
      name: 'AES-256 df, additional input',
      drbg: 'ctr-aes-256',
      entropy: '001ec3b192ddc765553e15742dffeb21cc7d97a4bcf866e3664d8a5ecb4c2463',
      nonce: '6ca848651d420fb02f9b66f06b377e59',
      a: '99f139ab5ee4f7eed6148e82d79ad5f2b9fa638d574e5db79b650c0e682ca466',
      b: '6e7bf0ae28a797ccbb47101f26bfe5a0b1e450c57aedf731272411fa7b6c4ed4',
      out: '865b6dd4363c5940d6228cc90ba8f1a21efbaa99b0c7b37361f7fed7e969a97b68d550dd6ad4bbfaf6626779bfb43c66845c2923df9f55307c8bc9f0a3872fa7',
    },
    {
      name: 'AES-192 df, prediction resistance, large seed',
      drbg: 'ctr-aes-192',
      entropy: '22ED7A66C9E9F494C8D2B8F81D0D49BCDD0C03863FF5979212211EFE3E945758B6228CDD9E9EEC5F7984AEF7212699F3',
      nonce: '5BF245B95F8E1377D5A17EB331AABCD9',
      prA: 'C0535ACD3D715A0B1453AB3447D53D9131C939AEE1D9CA24A75B285CF58D79403A4111E2F3DEE011154D31D646D93001',
      prB: '9FBC48890273FCAFCA1904B6486D1877CAD91EB601E979259506F93BA462AC17D8676C570B2231D4D98EC617C4826573',
      out: '19CED57563D065B606DA27DD5E8DE83B93BB7C8F8B02D0288F475550C3F44B77',
    },
    {
      name: 'AES-128 df, additional input',
      drbg: 'ctr-aes-128',
      entropy: 'b408cefb5bc7157d3f26cb95a8b1d7ac',
      nonce: '026c768fd577b92a',
      a: '5737ef81dee365b6dadb3feebf5d1084',
      b: '3368a516b3431a3daaa60dc8743c8297',
      out: '4e909ebb24147a0004063a5e47ee044fead610d62324bd0f963f756fb91361e8b87e3a76a398143fe88130fe1b547b661a6480c711b739f18a9df3ae51d41bc9',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const m = createMechanism(c.drbg);
      m.instantiate(hex(c.entropy), hex(c.nonce), hex(c.perso ?? ''));
      const bytes = c.out.length / 2;
      let out: Buffer = Buffer.alloc(0);
      for (const [additional, pr] of [[c.a, c.prA], [c.b, c.prB]] as const) {
        if (pr) {
          m.reseed(hex(pr), hex(additional ?? ''));
          out = m.generate(bytes, Buffer.alloc(0));
        } else out = m.generate(bytes, hex(additional ?? ''));
      }
      expect(out.toString('hex')).toBe(c.out.toLowerCase());
    });
  }
});

/** Entropy from a counter, so a test can count the calls; `fail` makes it refuse like a pool with no healthy source. */
class CountingEntropy implements EntropyInputSource {
  calls: { entropyBits: number; bytes: number }[] = [];
  fail = false;
  async entropyInput(entropyBits: number, bytes: number): Promise<Buffer> {
    if (this.fail) throw new EntropyUnavailable('no healthy quantum source');
    this.calls.push({ entropyBits, bytes });
    return Buffer.alloc(bytes, this.calls.length);
  }
}

describe('Drbg', () => {
  it('asks for entropy input and nonce at 3/2 the strength, reseed input at the strength (HMAC-SHA-512, CTR AES-256 df)', async () => {
    for (const name of ['hmac-sha512', 'ctr-aes-256'] as const) {
      const entropy = new CountingEntropy();
      const drbg = await Drbg.instantiate(name, entropy, { reseedInterval: 1 });
      await drbg.generate(32);
      await drbg.generate(32);
      expect(entropy.calls).toEqual([{ entropyBits: 384, bytes: 48 }, { entropyBits: 256, bytes: 32 }]);
    }
  });

  it('takes seedlen bits of full entropy and no nonce without the derivation function', async () => {
    const entropy = new CountingEntropy();
    await Drbg.instantiate('ctr-aes-256-nodf', entropy);
    expect(entropy.calls).toEqual([{ entropyBits: 384, bytes: 48 }]);
  });

  it('refuses a request over 2^19 bits and an interval over 2^48, and accepts the limits themselves', async () => {
    const drbg = await Drbg.instantiate('hmac-sha512', new CountingEntropy());
    await expect(drbg.generate(MAX_REQUEST_BYTES + 1)).rejects.toThrow('0 to 65536 bytes');
    expect((await drbg.generate(MAX_REQUEST_BYTES)).length).toBe(65536);
    await expect(Drbg.instantiate('hmac-sha512', new CountingEntropy(), { reseedInterval: 2 ** 48 + 1 })).rejects.toThrow('from 1 to 2^48');
    await expect(Drbg.instantiate('hmac-sha512', new CountingEntropy(), { reseedInterval: 2 ** 48 })).resolves.toBeInstanceOf(Drbg);
  });

  it('refuses additional input over seedlen without the derivation function', async () => {
    const drbg = await Drbg.instantiate('ctr-aes-256-nodf', new CountingEntropy());
    await expect(drbg.generate(16, Buffer.alloc(49))).rejects.toThrow('at most 48');
  });

  it('reseeds after reseedInterval requests, and before every request with prediction resistance', async () => {
    const entropy = new CountingEntropy();
    const registry = new Registry();
    const metrics = createQrngMetrics(registry);
    const drbg = await Drbg.instantiate('ctr-aes-256', entropy, { reseedInterval: 3, metrics });
    for (let i = 0; i < 7; i++) await drbg.generate(16);
    expect(entropy.calls.length).toBe(3); // instantiate, then before the 4th and the 7th request
    const pr = new CountingEntropy();
    const prDrbg = await Drbg.instantiate('hmac-sha256', pr, { predictionResistance: true, metrics });
    for (let i = 0; i < 3; i++) await prDrbg.generate(16);
    expect(pr.calls.length).toBe(4);
    await prDrbg.reseed();
    const text = await registry.metrics();
    expect(text).toContain('qubesec_qrng_drbg_reseeds_total{drbg="ctr-aes-256",cause="interval"} 2');
    expect(text).toContain('qubesec_qrng_drbg_reseeds_total{drbg="hmac-sha256",cause="prediction-resistance"} 3');
    expect(text).toContain('qubesec_qrng_drbg_reseeds_total{drbg="hmac-sha256",cause="requested"} 1');
  });

  it('gives no output while the entropy source fails a due reseed, then works once it recovers', async () => {
    const entropy = new CountingEntropy();
    const drbg = await Drbg.instantiate('hmac-sha512', entropy, { reseedInterval: 1 });
    await drbg.generate(16);
    entropy.fail = true;
    await expect(drbg.generate(16)).rejects.toBeInstanceOf(EntropyUnavailable);
    await expect(drbg.generate(16)).rejects.toBeInstanceOf(EntropyUnavailable);
    entropy.fail = false;
    expect((await drbg.generate(16)).length).toBe(16);
    const failing = new CountingEntropy();
    failing.fail = true;
    await expect(Drbg.instantiate('ctr-aes-256', failing)).rejects.toBeInstanceOf(EntropyUnavailable);
  });

  it('refuses an entropy source that gives fewer bytes than asked', async () => {
    const short: EntropyInputSource = { entropyInput: async (_bits, bytes) => Buffer.alloc(bytes - 1, 1) };
    await expect(Drbg.instantiate('hmac-sha512', short)).rejects.toThrow('gave 47 bytes, not 48');
  });

  it('gives different output for different seeds and the same for the same (every mechanism)', async () => {
    for (const name of DRBG_NAMES) {
      const a = await Drbg.instantiate(name, new CountingEntropy());
      const b = await Drbg.instantiate(name, new CountingEntropy());
      const c = await Drbg.instantiate(name, new CountingEntropy(), { personalization: Buffer.from('other') });
      const [x, y, z] = [await a.generate(100), await b.generate(100), await c.generate(100)];
      expect({ name, same: x.equals(y), differs: !x.equals(z) }).toEqual({ name, same: true, differs: true });
    }
  });
});
