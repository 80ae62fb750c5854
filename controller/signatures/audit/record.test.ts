import { createHash } from 'node:crypto';
import { encodeCheckpoint, encodeRecord, leafMatches, parseLine, SEGMENT_PATTERN, segmentName } from './record.js';

const event = JSON.stringify({ kind: 'Event', auditID: 'a-1', verb: 'create', note: 'ünïcode and "quotes" and }' });

describe('records', () => {
  it('encodes one JSON line per record whose leaf is SHA-256(0x00 || the event bytes)', () => {
    const line = encodeRecord(41, event);
    expect(line.endsWith('}\n')).toBe(true);
    const parsed = JSON.parse(line) as { index: number; leaf: string; event: unknown };
    expect(parsed.index).toBe(41);
    expect(parsed.event).toEqual(JSON.parse(event));
    expect(parsed.leaf).toBe(createHash('sha256').update(Buffer.concat([Buffer.of(0), Buffer.from(event)])).digest('base64'));
  });

  it('parses a record back to the exact event bytes, and its leaf matches', () => {
    const parsed = parseLine(encodeRecord(7, event).slice(0, -1));
    expect(parsed).toMatchObject({ kind: 'record', index: 7, eventText: event });
    expect(leafMatches(parsed as { leaf: string; eventText: string })).toBe(true);
  });

  it('catches a change of any byte of the event, even one JSON would not see', () => {
    const line = encodeRecord(0, event).slice(0, -1);
    for (const changed of [line.replace('create', 'crEate'), line.replace('"verb":', '"verb": ')]) {
      const parsed = parseLine(changed);
      expect(parsed?.kind).toBe('record');
      expect(leafMatches(parsed as { leaf: string; eventText: string })).toBe(false);
    }
  });

  it('parses checkpoint lines and refuses what is neither', () => {
    const note = 'origin\n1\nroot\n\n\u2014 origin sig\n';
    expect(parseLine(encodeCheckpoint(note).slice(0, -1))).toEqual({ kind: 'checkpoint', note });
    for (const bad of ['', '{}', '{"index":1}', '{"index":01,"leaf":"x","event":{}}', '{"checkpoint":1}', '{"checkpoint":"x","more":1}', '{"checkpoint":"x"', 'garbage']) {
      expect(parseLine(bad)).toBeUndefined();
    }
  });

  it('names segments in an order that sorts', () => {
    expect(segmentName(1)).toBe('segment-00000001.jsonl');
    expect(SEGMENT_PATTERN.exec(segmentName(123))?.[1]).toBe('00000123');
    expect(SEGMENT_PATTERN.test('segment-1.jsonl')).toBe(false);
  });
});
