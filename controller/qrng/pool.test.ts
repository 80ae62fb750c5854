// The pool's decisions with sources whose output the test controls (an in-memory stand-in for a QRNG card; the
// e2e tests run the same pool against a real HTTP server and a FIFO): which sources count, when it refuses, recovery.
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { EntropyUnavailable } from './errors.js';
import { createQrngMetrics } from './metrics.js';
import { EntropyPool, type SourceHealthChange } from './pool.js';
import { OsSource, SourceError, type EntropySource } from './sources.js';
import { Drbg } from './drbg.js';

type Mode = 'good' | 'stuck' | 'down';

class ScriptedSource implements EntropySource {
  mode: Mode = 'good';
  readonly model = { sampleBits: 8 as const, minEntropy: 6, alpha: 2 ** -20 };
  bytesRead = 0;
  constructor(
    readonly name: string,
    readonly quantum = true,
  ) {}
  async read(bytes: number): Promise<Buffer> {
    if (this.mode === 'down') throw new SourceError(this.name, 'unavailable', '503');
    this.bytesRead += bytes;
    return this.mode === 'stuck' ? Buffer.alloc(bytes, 0x5a) : randomBytes(bytes);
  }
  discard(): void {}
  async close(): Promise<void> {}
}

const FAST_RETRY = { initialMs: 0, maxMs: 0 };

describe('EntropyPool', () => {
  it('runs start-up tests first, then gives full-entropy blocks from every healthy quantum source', async () => {
    const [a, b] = [new ScriptedSource('a'), new ScriptedSource('b')];
    const pool = new EntropyPool({ sources: [a, b], reserveBlocks: 0 });
    const block = await pool.block();
    expect(block).toMatchObject({ quantum: true, sources: ['a', 'b'] });
    expect(block.bytes.length).toBe(64);
    expect(block.entropyBits).toBeGreaterThan(511.99);
    // start-up: 1024 byte samples each, then about (512 + 64) / 6 / 2 bytes each for the block
    expect(a.bytesRead).toBe(1024 + Math.ceil(576 / 2 / 6));
    expect(pool.status().map((s) => s.state)).toEqual(['healthy', 'healthy']);
    await pool.close();
  });

  it('takes a stuck source out, goes on with the other, refuses with none left, and recovers', async () => {
    const registry = new Registry();
    const metrics = createQrngMetrics(registry);
    const [a, b] = [new ScriptedSource('a'), new ScriptedSource('b')];
    const pool = new EntropyPool({ sources: [a, b], reserveBlocks: 0, retry: { initialMs: 60_000, maxMs: 60_000 }, metrics });
    await pool.block();
    a.mode = 'stuck';
    expect((await pool.block()).sources).toEqual(['b']);
    expect(pool.status()[0]).toMatchObject({ state: 'failed', cause: 'repetition-count' });
    b.mode = 'down';
    const refusal = await pool.block().catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(EntropyUnavailable);
    expect((refusal as EntropyUnavailable).message).toMatch(/^no healthy quantum entropy source: a failed \(.*repetition-count.*\); b failed/);
    expect(pool.serving).toBe(false);
    const text = await registry.metrics();
    expect(text).toContain('qubesec_qrng_source_failures_total{source="a",cause="repetition-count"} 1');
    expect(text).toContain('qubesec_qrng_source_failures_total{source="b",cause="unavailable"} 1');
    expect(text).toContain('qubesec_qrng_source_healthy{source="a",quantum="true"} 0');
    expect(text).toContain('qubesec_qrng_entropy_refusals_total 1');
    await pool.close();

    // With retries due at once, a source that works again is back after its start-up tests.
    const c = new ScriptedSource('c');
    const retrying = new EntropyPool({ sources: [c], reserveBlocks: 0, retry: FAST_RETRY });
    c.mode = 'down';
    await expect(retrying.block()).rejects.toBeInstanceOf(EntropyUnavailable);
    c.mode = 'good';
    const before = c.bytesRead;
    expect((await retrying.block()).sources).toEqual(['c']);
    expect(c.bytesRead - before).toBeGreaterThanOrEqual(1024);
    await retrying.close();
  });

  it('reports a source taken out once per outage, and its recovery, not every failed retry', async () => {
    const changes: SourceHealthChange[] = [];
    const a = new ScriptedSource('a');
    const pool = new EntropyPool({ sources: [a], reserveBlocks: 0, retry: FAST_RETRY, onHealthChange: (c) => changes.push(c) });
    await pool.block();
    expect(changes).toEqual([]);
    a.mode = 'down';
    for (let i = 0; i < 3; i++) await expect(pool.block()).rejects.toBeInstanceOf(EntropyUnavailable);
    a.mode = 'good';
    await pool.block();
    expect(changes).toEqual([
      { source: 'a', quantum: true, healthy: false, cause: 'unavailable', message: 'entropy source "a": 503' },
      { source: 'a', quantum: true, healthy: true },
    ]);
    await pool.close();
  });

  it('never credits the OS generator unless allowed, and labels blocks non-quantum when it is', async () => {
    const os = new OsSource('os', { sampleBits: 8, minEntropy: 8, alpha: 2 ** -20 });
    const alone = new EntropyPool({ sources: [os], reserveBlocks: 0 });
    await expect(alone.block()).rejects.toThrow('no healthy quantum entropy source');
    expect(alone.serving).toBe(false);
    const allowed = new EntropyPool({ sources: [new OsSource('os', { sampleBits: 8, minEntropy: 8, alpha: 2 ** -20 })], reserveBlocks: 0, allowNonQuantum: true });
    expect(await allowed.block()).toMatchObject({ quantum: false, sources: ['os'] });
    // Beside a quantum source the OS generator is mixed in without credit: blocks stay quantum.
    const q = new ScriptedSource('q');
    const mixed = new EntropyPool({ sources: [q, new OsSource('os', { sampleBits: 8, minEntropy: 8, alpha: 2 ** -20 })], reserveBlocks: 0 });
    expect(await mixed.block()).toMatchObject({ quantum: true, sources: ['os', 'q'] });
    q.mode = 'down';
    await expect(mixed.block()).rejects.toBeInstanceOf(EntropyUnavailable);
    await Promise.all([alone.close(), allowed.close(), mixed.close()]);
  });

  it('keeps a reserve, and drops it when a source fails', async () => {
    const registry = new Registry();
    const metrics = createQrngMetrics(registry);
    const a = new ScriptedSource('a');
    const pool = new EntropyPool({ sources: [a], reserveBlocks: 2, retry: { initialMs: 60_000, maxMs: 60_000 }, metrics });
    await pool.block();
    const level = async () => (await metrics.poolEntropy.get()).values[0]?.value ?? 0;
    for (let i = 0; i < 100 && (await level()) < 1000; i++) await new Promise((r) => setTimeout(r, 5));
    expect(await level()).toBeGreaterThan(1023);
    a.mode = 'stuck';
    await pool.block(); // from the reserve; its refill trips the RCT and empties the reserve
    for (let i = 0; i < 100 && pool.status()[0]!.state !== 'failed'; i++) await new Promise((r) => setTimeout(r, 5));
    expect(await level()).toBe(0);
    await expect(pool.block()).rejects.toBeInstanceOf(EntropyUnavailable);
    await pool.close();
  });

  it('seeds a DRBG, and the DRBG gives nothing once the pool refuses', async () => {
    const a = new ScriptedSource('a');
    const pool = new EntropyPool({ sources: [a], reserveBlocks: 0, retry: { initialMs: 60_000, maxMs: 60_000 } });
    const drbg = await Drbg.instantiate('ctr-aes-256', pool, { predictionResistance: true });
    expect((await drbg.generate(64)).length).toBe(64);
    a.mode = 'stuck';
    await expect(drbg.generate(64)).rejects.toBeInstanceOf(EntropyUnavailable);
    await pool.close();
  });

  it('refuses a bad configuration by name', () => {
    expect(() => new EntropyPool({ sources: [] })).toThrow('at least one source');
    expect(() => new EntropyPool({ sources: [new ScriptedSource('x'), new ScriptedSource('x')] })).toThrow('two entropy sources are named "x"');
    const bad = new ScriptedSource('card');
    (bad as { model: object }).model = { sampleBits: 8, minEntropy: 12, alpha: 2 ** -20 };
    expect(() => new EntropyPool({ sources: [bad] })).toThrow('entropy source "card": minEntropy (H)');
  });
});
