// The few DER structures the composite keys need (SubjectPublicKeyInfo, PKCS#8, SEC1 ECPrivateKey): encoding and
// reading of tag-length-value, nothing more. Keys and signatures themselves are node:crypto's.

export const TAG = { integer: 0x02, bitString: 0x03, octetString: 0x04, null: 0x05, oid: 0x06, sequence: 0x30 } as const;

export class DerError extends Error {}

export function tlv(tag: number, content: Uint8Array): Buffer {
  const n = content.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), content]);
}

export const sequence = (...items: Uint8Array[]) => tlv(TAG.sequence, Buffer.concat(items));
export const octetString = (bytes: Uint8Array) => tlv(TAG.octetString, bytes);
export const bitString = (bytes: Uint8Array) => tlv(TAG.bitString, Buffer.concat([Buffer.from([0]), bytes]));
export const smallInteger = (n: number) => tlv(TAG.integer, Buffer.from([n]));

export function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const bytes = [a! * 40 + b!];
  for (const arc of rest) {
    const base128 = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) base128.unshift((v & 0x7f) | 0x80);
    bytes.push(...base128);
  }
  return tlv(TAG.oid, Buffer.from(bytes));
}

export function oidToString(content: Uint8Array): string {
  const arcs = [Math.floor(content[0]! / 40), content[0]! % 40];
  let value = 0;
  for (const byte of content.subarray(1)) {
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) {
      arcs.push(value);
      value = 0;
    }
  }
  return arcs.join('.');
}

export interface Element {
  tag: number;
  content: Buffer;
  /** The whole element, header included. */
  encoded: Buffer;
}

/** The elements laid one after another in `bytes` (a SEQUENCE's content, or a whole file). */
export function readElements(bytes: Buffer): Element[] {
  const elements: Element[] = [];
  let at = 0;
  while (at < bytes.length) {
    const start = at;
    const tag = bytes[at++]!;
    if (at >= bytes.length) throw new DerError('truncated DER');
    let length = bytes[at++]!;
    if (length & 0x80) {
      const octets = length & 0x7f;
      if (octets === 0 || octets > 4 || at + octets > bytes.length) throw new DerError('bad DER length');
      length = 0;
      for (let i = 0; i < octets; i++) length = length * 256 + bytes[at++]!;
    }
    if (at + length > bytes.length) throw new DerError('truncated DER');
    elements.push({ tag, content: bytes.subarray(at, at + length), encoded: bytes.subarray(start, at + length) });
    at += length;
  }
  return elements;
}

/** The content of a SEQUENCE's elements, checking each tag (undefined in `tags`: any). */
export function readSequence(bytes: Buffer, tags: (number | undefined)[], what: string): Element[] {
  const [outer, ...trailing] = readElements(bytes);
  if (!outer || outer.tag !== TAG.sequence || trailing.length > 0) throw new DerError(`${what}: not a DER SEQUENCE`);
  const items = readElements(outer.content);
  tags.forEach((tag, i) => {
    if (items[i] === undefined || (tag !== undefined && items[i]!.tag !== tag)) throw new DerError(`${what}: unexpected structure`);
  });
  return items;
}
