// Reads a log folder from its first segment to its last and checks every line on the way: each record's index and leaf
// hash, each checkpoint's signature, size and root against the tree rebuilt from the records. It stops at the first
// problem and names it (segment file, line, record). `audit verify`, `audit show` and the receiver's start use it.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PublicKey } from '../algorithms.js';
import { noteText, openCheckpoint, parseCheckpointBody, type Checkpoint } from './checkpoint.js';
import { MerkleTree } from './merkle.js';
import { leafMatches, parseLine, SEGMENT_PATTERN, segmentName } from './record.js';

export interface LogProblem {
  segment: string;
  /** 1-based line in the segment; 0 for a problem with the segment itself. */
  line: number;
  /** The record expected at that place (0-based, counting from the log's first). */
  record: number;
  problem: string;
}

export interface ScanOptions {
  /** Checks that one of these keys signed each checkpoint; without any (`audit show`, the receiver's start) only sizes and roots are checked. */
  keys?: PublicKey[];
  /** A checkpoint kept elsewhere (a witness, a copy taken earlier): the log must hold its size and root. */
  witness?: Checkpoint;
  onRecord?(index: number, eventText: string, segment: string): void;
}

export interface ScanResult {
  segments: { name: string; bytes: number }[];
  tree: MerkleTree;
  checkpoints: number;
  lastCheckpoint?: Checkpoint;
  /** The last checkpoint as its signed note, to keep elsewhere (`audit verify --save-checkpoint`). */
  lastNote?: string;
  problem?: LogProblem;
  /** The last segment ends in a line without its newline (a write cut short, never acknowledged): its complete part's size. */
  tornTail?: { segment: string; bytes: number };
}

export function describeProblem(p: LogProblem): string {
  return `${p.segment}${p.line > 0 ? ` line ${p.line} (record ${p.record})` : ''}: ${p.problem}`;
}

async function segmentNumbers(dir: string): Promise<number[]> {
  return (await readdir(dir)).map((name) => SEGMENT_PATTERN.exec(name)?.[1]).filter((n) => n !== undefined).map(Number).sort((a, b) => a - b);
}

export async function scanLog(dir: string, options: ScanOptions = {}): Promise<ScanResult> {
  const numbers = await segmentNumbers(dir);
  const tree = new MerkleTree();
  const result: ScanResult = { segments: [], tree, checkpoints: 0 };
  const fail = (segment: string, line: number, problem: string, record = tree.size) => ({ ...result, problem: { segment, line, record, problem } });
  const { witness } = options;
  let origin: string | undefined;
  const witnessDiffers = () => witness !== undefined && tree.size === witness.size && !tree.root().equals(witness.root);

  if (witnessDiffers()) return fail(segmentName(1), 0, `the saved checkpoint is for an empty log but its root hash is not the empty tree's`);
  for (const [i, number] of numbers.entries()) {
    const name = segmentName(number);
    if (number !== i + 1) return fail(segmentName(i + 1), 0, `missing (the next segment file is ${name}): removed or renamed`);
    const data = await readFile(join(dir, name));
    result.segments.push({ name, bytes: data.length });
    let start = 0;
    let lastKind: 'record' | 'checkpoint' | undefined;
    for (let lineNumber = 1; start < data.length; lineNumber++) {
      const end = data.indexOf(0x0a, start);
      if (end < 0) {
        if (i === numbers.length - 1) return { ...result, tornTail: { segment: name, bytes: start } };
        return fail(name, lineNumber, 'cut short (no newline) in a segment that is not the last: damaged');
      }
      const text = data.toString('utf8', start, end);
      start = end + 1;
      const line = parseLine(text);
      if (!line) return fail(name, lineNumber, 'neither a record nor a checkpoint: the line was changed');
      lastKind = line.kind;
      if (line.kind === 'record') {
        if (line.index !== tree.size) return fail(name, lineNumber, `carries index ${line.index} where record ${tree.size} belongs: records were removed, inserted or reordered`);
        if (!leafMatches(line)) return fail(name, lineNumber, 'its event does not match its leaf hash: the event (or the hash) was changed');
        tree.append(Buffer.from(line.leaf, 'base64'));
        options.onRecord?.(line.index, line.eventText, name);
        if (witnessDiffers()) return fail(name, lineNumber, `the tree of the first ${tree.size} records differs from the saved checkpoint's root hash: a record up to here was changed`, tree.size - 1);
        continue;
      }
      let checkpoint: Checkpoint;
      try {
        checkpoint = options.keys ? openCheckpoint(line.note, options.keys) : parseCheckpointBody(noteText(line.note));
      } catch (err) {
        return fail(name, lineNumber, `checkpoint: ${(err as Error).message}`);
      }
      origin ??= checkpoint.origin;
      const since = result.lastCheckpoint?.size ?? 0;
      if (checkpoint.origin !== origin) return fail(name, lineNumber, `checkpoint of origin ${checkpoint.origin} in a log of origin ${origin}`);
      if (checkpoint.size !== tree.size) return fail(name, lineNumber, `checkpoint for ${checkpoint.size} records where ${tree.size} precede it: records were removed or inserted`);
      if (!checkpoint.root.equals(tree.root())) return fail(name, lineNumber, `checkpoint's root hash differs from the records': one of records ${since} to ${tree.size - 1} was changed, together with its leaf hash`);
      result.lastCheckpoint = checkpoint;
      result.lastNote = line.note;
      result.checkpoints += 1;
    }
    // The receiver seals each segment with a checkpoint before it starts the next.
    if (i < numbers.length - 1 && lastKind !== 'checkpoint') return fail(name, 0, 'does not end with a checkpoint, though a later segment exists (each is sealed with one when rotated): its last lines were removed');
  }
  if (witness && tree.size < witness.size) return fail(result.segments.at(-1)?.name ?? segmentName(1), 0, `the log ends after ${tree.size} records; the saved checkpoint has ${witness.size}: records were removed from its end`);
  return result;
}
