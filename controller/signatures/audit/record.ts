// One line per record in a segment file (JSON Lines). Every byte of a line is checked: the index against the record's
// position, the leaf against the event's exact bytes, the event by the Merkle tree the checkpoints sign.
//   {"index":N,"leaf":"<base64 SHA-256(0x00 || event)>","event":<the audit.k8s.io/v1 Event as JSON>}
//   {"checkpoint":"<a signed note: origin, tree size, root hash, signature line>"}
import { leafHash } from './merkle.js';

export type LogLine =
  | { kind: 'record'; index: number; leaf: string; eventText: string }
  | { kind: 'checkpoint'; note: string };

export const SEGMENT_PATTERN = /^segment-(\d{8})\.jsonl$/;

export function segmentName(number: number): string {
  return `segment-${String(number).padStart(8, '0')}.jsonl`;
}

/** The record line (with its newline) for an event serialised as `eventText` (a JSON object) whose leaf hash is `leaf`. */
export function encodeRecord(index: number, eventText: string, leaf = leafHash(Buffer.from(eventText, 'utf8'))): string {
  return `{"index":${index},"leaf":"${leaf.toString('base64')}","event":${eventText}}\n`;
}

export function encodeCheckpoint(note: string): string {
  return `${JSON.stringify({ checkpoint: note })}\n`;
}

const RECORD = /^\{"index":(0|[1-9]\d{0,15}),"leaf":"([A-Za-z0-9+/]{43}=)","event":(\{.*\})\}$/s;
const CHECKPOINT_PREFIX = '{"checkpoint":"';

/** A line without its newline, or undefined when it is neither a record nor a checkpoint. */
export function parseLine(line: string): LogLine | undefined {
  const record = RECORD.exec(line);
  if (record) return { kind: 'record', index: Number(record[1]), leaf: record[2]!, eventText: record[3]! };
  if (!line.startsWith(CHECKPOINT_PREFIX)) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    if (value && typeof value === 'object' && Object.keys(value).length === 1 && typeof (value as { checkpoint: unknown }).checkpoint === 'string') {
      return { kind: 'checkpoint', note: (value as { checkpoint: string }).checkpoint };
    }
  } catch {
    // Not JSON: neither kind.
  }
  return undefined;
}

/** Does the record's leaf hash match its event's bytes? */
export function leafMatches(record: { leaf: string; eventText: string }): boolean {
  return leafHash(Buffer.from(record.eventText, 'utf8')).toString('base64') === record.leaf;
}
