// The store and the scan that verifies it, on a temp folder: tampering of every kind is named by segment, line, record.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../observability/log.js';
import { createAuditMetrics } from '../../observability/metrics.js';
import { generatePrivateKey } from '../algorithms.js';
import { loadSigningKey } from '../keys.js';
import { openCheckpoint } from './checkpoint.js';
import { encodeRecord, parseLine, segmentName } from './record.js';
import { describeProblem, scanLog, type ScanOptions } from './scan.js';
import { openStore, StoreFullError, type StoreOptions } from './store.js';

const signer = loadSigningKey(generateKeyPairSync('ml-dsa-65').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, 'test key');
const keys = [signer.publicKey];

let dir: string;
let logLines: string[];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qubesec-audit-test-'));
  logLines = [];
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const event = (n: number) => JSON.stringify({ kind: 'Event', apiVersion: 'audit.k8s.io/v1', auditID: `id-${n}`, verb: 'create', objectRef: { resource: 'configmaps', name: `cm-${n}` } });
const batch = (from: number, count: number) => Array.from({ length: count }, (_, i) => event(from + i));

function options(overrides: Partial<StoreOptions> = {}): StoreOptions {
  return {
    dir, signer, origin: 'test.example/audit', segmentBytes: 64 * 2 ** 20, maxBytes: undefined, checkpointEvents: 10,
    checkpointIntervalMs: 3_600_000, log: createLogger('debug', {}, (line) => logLines.push(line)), metrics: createAuditMetrics(), ...overrides,
  };
}

/** A log of `batches` batches of 4 events, checkpointed every 10 records and sealed at close. */
async function writeLog(batches: number, overrides: Partial<StoreOptions> = {}) {
  const store = await openStore(options(overrides));
  for (let b = 0; b < batches; b++) await store.append(batch(b * 4, 4));
  await store.close();
}

const scan = (extra: ScanOptions = {}) => scanLog(dir, { keys, ...extra });
const segmentPath = (n = 1) => join(dir, segmentName(n));
const readLines = async (n = 1) => (await readFile(segmentPath(n), 'utf8')).split('\n').slice(0, -1);
const writeLines = (lines: string[], n = 1) => writeFile(segmentPath(n), `${lines.join('\n')}\n`);
const problemOf = async (extra: ScanOptions = {}) => {
  const { problem } = await scan(extra);
  return problem && describeProblem(problem);
};

describe('the audit store', () => {
  it('appends events in order with their index, and checkpoints every --checkpoint-events records and at close', async () => {
    const metrics = createAuditMetrics();
    await writeLog(6, { metrics });
    const lines = (await readLines()).map((l) => parseLine(l)!);
    expect(lines.map((l) => (l.kind === 'record' ? l.index : `checkpoint ${openCheckpoint(l.note, keys).size}`))).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 'checkpoint 12', 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 'checkpoint 24',
    ]);
    const result = await scan();
    expect(result.problem).toBeUndefined();
    expect([result.tree.size, result.checkpoints, result.lastCheckpoint?.size, result.lastCheckpoint?.origin]).toEqual([24, 2, 24, 'test.example/audit']);
    expect((await metrics.registry.getSingleMetric('qubesec_audit_events_appended_total')!.get()).values[0]!.value).toBe(24);
    expect((await metrics.registry.getSingleMetric('qubesec_audit_checkpoints_total')!.get()).values[0]!.value).toBe(2);
    expect((await metrics.registry.getSingleMetric('qubesec_audit_store_bytes')!.get()).values[0]!.value).toBe((await stat(segmentPath())).size);
  });

  it('keeps the events byte for byte, in arrival order', async () => {
    const seen: string[] = [];
    await writeLog(3);
    await scanLog(dir, { onRecord: (_i, text) => seen.push(text) });
    expect(seen).toEqual(batch(0, 12));
  });

  it('continues the same tree after a restart, under the same origin only', async () => {
    await writeLog(2);
    await writeLog(2);
    const result = await scan();
    expect([result.problem, result.tree.size, result.lastCheckpoint?.size]).toEqual([undefined, 16, 16]);
    await expect(openStore(options({ origin: 'other.example/audit' }))).rejects.toThrow(`its checkpoints have origin test.example/audit, not --origin other.example/audit`);
  });

  it('continues under a new key; verify then takes the old and the new public key', async () => {
    await writeLog(3);
    const next = generatePrivateKey('ML-DSA-65');
    await writeLog(3, { signer: { algorithm: next.algorithm, keyId: next.publicKey.keyId, publicKey: next.publicKey, sign: (data) => Promise.resolve(next.sign(data)) } });
    const both = await scan({ keys: [signer.publicKey, next.publicKey] });
    expect([both.problem, both.tree.size, both.checkpoints]).toEqual([undefined, 24, 2]);
    expect(await problemOf({ keys: [next.publicKey] })).toMatch(/line 13 \(record 12\): checkpoint: no signature by the key/);
  });

  it('signs a checkpoint every --checkpoint-interval while records come in', async () => {
    const store = await openStore(options({ checkpointIntervalMs: 20, checkpointEvents: 1000 }));
    await store.append(batch(0, 3));
    for (let i = 0; i < 100 && (await scan()).checkpoints === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await store.close();
    expect((await scan()).lastCheckpoint?.size).toBe(3);
  });

  it('names the record of a byte changed in its event, its leaf hash, its index or its syntax', async () => {
    await writeLog(4);
    const lines = await readLines();
    // Line 8 holds record 7.
    const cases: [string, string][] = [
      [lines[7]!.replace('cm-7', 'cm-X'), 'its event does not match its leaf hash'],
      [lines[7]!.replace(/"leaf":"(.)/, (_m, c: string) => `"leaf":"${c === 'A' ? 'B' : 'A'}`), 'its event does not match its leaf hash'],
      [lines[7]!.replace('"index":7', '"index":8'), 'carries index 8 where record 7 belongs'],
      [lines[7]!.replace('{"index"', '["index"'), 'neither a record nor a checkpoint'],
    ];
    for (const [changed, problem] of cases) {
      await writeLines(lines.map((l, i) => (i === 7 ? changed : l)));
      expect(await problemOf()).toBe(`${segmentName(1)} line 8 (record 7): ${(await scan()).problem!.problem}`);
      expect((await scan()).problem!.problem).toContain(problem);
    }
  });

  it('names a removed record and two records swapped', async () => {
    await writeLog(4);
    const lines = await readLines();
    await writeLines(lines.filter((_l, i) => i !== 5));
    expect(await problemOf()).toBe(`${segmentName(1)} line 6 (record 5): carries index 6 where record 5 belongs: records were removed, inserted or reordered`);
    await writeLines(lines.map((l, i) => (i === 3 ? lines[4]! : i === 4 ? lines[3]! : l)));
    expect(await problemOf()).toMatch(new RegExp(`^${segmentName(1)} line 4 \\(record 3\\): carries index 4 where record 3 belongs`));
  });

  it('catches an event changed together with its leaf hash at the next checkpoint, naming the records it covers', async () => {
    await writeLog(6);
    const lines = await readLines();
    const forged = encodeRecord(14, event(14).replace('create', 'delete')).slice(0, -1);
    await writeLines(lines.map((l) => (l.startsWith('{"index":14,') ? forged : l)));
    expect(await problemOf()).toBe(`${segmentName(1)} line 26 (record 24): checkpoint's root hash differs from the records': one of records 12 to 23 was changed, together with its leaf hash`);
  });

  it('refuses a checkpoint signed by another key or changed', async () => {
    await writeLog(3);
    expect(await problemOf({ keys: [generatePrivateKey('ML-DSA-65').publicKey] })).toMatch(/line 13 \(record 12\): checkpoint: no signature by the key/);
    const lines = await readLines();
    await writeLines(lines.map((l) => l.replace('audit\\n12\\n', 'audit\\n11\\n')));
    expect(await problemOf()).toMatch(/line 13 \(record 12\): checkpoint: the ML-DSA-65 signature does not verify/);
  });

  it('cannot see records removed from the end after the last checkpoint, unless given a checkpoint kept elsewhere', async () => {
    await writeLog(6);
    const lines = await readLines();
    const saved = parseLine(lines.at(-1)!);
    const witness = openCheckpoint((saved as { note: string }).note, keys);
    // Cut back to the first checkpoint (13 lines): a shorter log that verifies on its own.
    await writeLines(lines.slice(0, 13));
    const alone = await scan();
    expect([alone.problem, alone.tree.size]).toEqual([undefined, 12]);
    expect(await problemOf({ witness })).toBe(`${segmentName(1)}: the log ends after 12 records; the saved checkpoint has 24: records were removed from its end`);
    // Cut below a checkpoint that stays: named.
    await writeLines(lines.slice(0, 13).filter((_l, i) => i !== 11));
    expect(await problemOf()).toBe(`${segmentName(1)} line 12 (record 11): checkpoint for 12 records where 11 precede it: records were removed or inserted`);
  });

  it('checks a saved checkpoint against the log that extends it', async () => {
    await writeLog(6);
    const lines = await readLines();
    const first = openCheckpoint((parseLine(lines[12]!) as { note: string }).note, keys);
    expect((await scan({ witness: first })).problem).toBeUndefined();
    await writeLines(lines.map((l) => (l.startsWith('{"index":3,') ? encodeRecord(3, event(99)).slice(0, -1) : l)));
    expect(await problemOf({ witness: first })).toMatch(/line 12 \(record 11\): the tree of the first 12 records differs from the saved checkpoint/);
  });

  it('removes a last line cut short by a crash when it opens, and says so; verify reports it before', async () => {
    await writeLog(2);
    const complete = (await readFile(segmentPath())).length;
    await writeFile(segmentPath(), encodeRecord(8, event(8)).slice(0, 30), { flag: 'a' });
    expect((await scan()).tornTail).toEqual({ segment: segmentName(1), bytes: complete });
    await writeLog(1);
    expect(logLines.some((l) => l.includes('removed a last line cut short by a crash'))).toBe(true);
    const result = await scan();
    expect([result.problem, result.tornTail, result.tree.size]).toEqual([undefined, undefined, 12]);
  });

  it('refuses to append to a log that does not verify', async () => {
    await writeLog(2);
    const lines = await readLines();
    await writeLines(lines.map((l, i) => (i === 2 ? l.replace('cm-2', 'cm-Z') : l)));
    await expect(openStore(options())).rejects.toThrow(`${segmentName(1)} line 3 (record 2): its event does not match its leaf hash`);
  });

  describe('rotation', () => {
    // Three batches of 4 records fit in a segment (later ones are a few bytes longer: more digits), a fourth does not.
    const batchBytes = batch(0, 4).reduce((sum, text, i) => sum + encodeRecord(i, text).length, 0);
    const segmentBytes = 3 * batchBytes + 100;

    it('seals each segment with a checkpoint and continues the indexes and the tree in the next', async () => {
      await writeLog(10, { segmentBytes, checkpointEvents: 1000 });
      const names = (await readdir(dir)).sort();
      expect(names).toEqual([1, 2, 3, 4].map(segmentName));
      for (const n of [1, 2, 3, 4]) {
        const lines = (await readLines(n)).map((l) => parseLine(l)!);
        expect(lines.at(-1)!.kind).toBe('checkpoint');
        expect((await stat(segmentPath(n))).size).toBeLessThanOrEqual(segmentBytes + 8 * 1024);
      }
      const second = (await readLines(2)).map((l) => parseLine(l)!);
      expect(second[0]).toMatchObject({ kind: 'record', index: 12 });
      const result = await scan();
      expect([result.problem, result.tree.size, result.checkpoints, result.segments.length]).toEqual([undefined, 40, 4, 4]);
    });

    it('names a removed segment, a renamed first one and a removed seal', async () => {
      await writeLog(10, { segmentBytes, checkpointEvents: 1000 });
      const second = await readFile(segmentPath(2));
      await unlink(segmentPath(2));
      expect(await problemOf()).toBe(`${segmentName(2)}: missing (the next segment file is ${segmentName(3)}): removed or renamed`);
      await writeFile(segmentPath(2), second);

      const seal = await readLines(2);
      await writeLines(seal.slice(0, -1), 2);
      expect(await problemOf()).toBe(`${segmentName(2)}: does not end with a checkpoint, though a later segment exists (each is sealed with one when rotated): its last lines were removed`);
      await writeFile(segmentPath(2), second);

      await unlink(segmentPath(1));
      expect(await problemOf()).toBe(`${segmentName(1)}: missing (the next segment file is ${segmentName(2)}): removed or renamed`);
    });

    it('starts no segment for an empty batch', async () => {
      const store = await openStore(options({ segmentBytes: 1024 }));
      await store.append(batch(0, 4));
      await store.append([]);
      await store.close();
      expect(await readdir(dir)).toEqual([segmentName(1)]);
    });

    it('puts a batch larger than a segment alone in its own', async () => {
      await writeLog(3, { segmentBytes: 1024, checkpointEvents: 1000 });
      expect((await readdir(dir)).sort()).toEqual([1, 2, 3].map(segmentName));
      expect((await scan()).tree.size).toBe(12);
    });
  });

  it('refuses a batch that would pass --max-size, writing none of it, and keeps taking checkpoints', async () => {
    const store = await openStore(options({ maxBytes: 16 * 1024 }));
    let accepted = 0;
    let refused: unknown;
    for (let b = 0; b < 20 && !refused; b++) {
      await store.append(batch(b * 4, 4)).then(() => { accepted += 4; }, (err: unknown) => { refused = err; });
    }
    expect(refused).toBeInstanceOf(StoreFullError);
    expect((refused as Error).message).toMatch(/4 more events \(\d+ bytes\) would take it past --max-size 16384/);
    const before = (await stat(segmentPath())).size;
    await expect(store.append(batch(1000, 4))).rejects.toBeInstanceOf(StoreFullError);
    expect((await stat(segmentPath())).size).toBe(before);
    await store.close();
    const result = await scan();
    expect([result.problem, result.tree.size, result.lastCheckpoint?.size]).toEqual([undefined, accepted, accepted]);
    expect((await stat(segmentPath())).size).toBeLessThanOrEqual(16 * 1024);
  });

  it('keeps room under --max-size for a checkpoint of the key in use, however large (SLH-DSA: 17 KB)', async () => {
    const slh = generatePrivateKey('SLH-DSA-SHA2-128f');
    const signerOf = { algorithm: slh.algorithm, keyId: slh.publicKey.keyId, publicKey: slh.publicKey, sign: (data: Uint8Array) => Promise.resolve(slh.sign(data)) };
    const store = await openStore(options({ signer: signerOf, maxBytes: 48 * 1024, checkpointEvents: 1000 }));
    let refused = false;
    for (let b = 0; b < 100 && !refused; b++) await store.append(batch(b * 4, 4)).catch(() => { refused = true; });
    await store.close();
    const result = await scan({ keys: [slh.publicKey] });
    expect([refused, result.problem, result.lastCheckpoint?.size]).toEqual([true, undefined, result.tree.size]);
    expect((await stat(segmentPath())).size).toBeLessThanOrEqual(48 * 1024);
  });
});
