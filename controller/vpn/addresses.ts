// IP addresses and subnets of VPN resources, parsed (never passed through as text) so that a traffic selector, pool or
// peer address is exactly one network in the configuration, and overlaps can be found.
import { isIP } from 'node:net';

export interface Subnet {
  family: 4 | 6;
  /** The network address as a number (host bits zero). */
  network: bigint;
  prefix: number;
  /** Canonical text, e.g. 198.18.210.0/24. */
  text: string;
}

/** An address as a number, or undefined when `text` is not one IPv4 or IPv6 address in canonical-enough form. */
function addressValue(text: string, family: 4 | 6): bigint | undefined {
  if (family === 4) {
    const parts = text.split('.');
    if (parts.length !== 4 || parts.some((p) => !/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255)) return undefined;
    return parts.reduce((v, p) => (v << 8n) | BigInt(p), 0n);
  }
  const [head = '', tail] = text.split('::');
  if (text.split('::').length > 2) return undefined;
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const missing = 8 - h.length - t.length;
  if ((tail === undefined && missing !== 0) || (tail !== undefined && missing < 1)) return undefined;
  const all = [...h, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...t];
  if (all.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  return all.reduce((v, g) => (v << 16n) | BigInt(`0x${g}`), 0n);
}

function addressText(value: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 255n)).join('.');
  const groups = [...Array(8).keys()].map((i) => ((value >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  // RFC 5952: the longest run of two or more zero groups (the first of equals) becomes "::".
  let best = { start: -1, length: 1 };
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.length) best = { start: i, length: j - i };
  }
  if (best.start < 0) return groups.join(':');
  return `${groups.slice(0, best.start).join(':')}::${groups.slice(best.start + best.length).join(':')}`;
}

/** One IP address (v4 or v6), or an error message. Only the plain forms: no zone, no embedded IPv4 in IPv6. */
export function parseAddress(text: string): { family: 4 | 6; text: string } | string {
  const family = isIP(text);
  if (family !== 4 && family !== 6) return 'is not an IP address';
  const value = addressValue(text, family);
  if (value === undefined) return 'is not an IP address in plain form (dotted quad, or IPv6 hex groups)';
  return { family, text: addressText(value, family) };
}

/** A subnet in CIDR form whose host bits are zero, or an error message. */
export function parseSubnet(text: string): Subnet | string {
  const match = /^([^/]+)\/([0-9]{1,3})$/.exec(text);
  if (!match) return 'is not a subnet in CIDR form (address/prefix)';
  const address = parseAddress(match[1]!);
  if (typeof address === 'string') return `is not a subnet: its address ${address}`;
  const bits = address.family === 4 ? 32 : 128;
  const prefix = Number(match[2]);
  if (prefix > bits) return `has a prefix longer than ${bits}`;
  const network = addressValue(address.text, address.family)!;
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if ((network & hostMask) !== 0n) return `has host bits set (the network is ${addressText(network & ~hostMask, address.family)}/${prefix})`;
  return { family: address.family, network, prefix, text: `${address.text}/${prefix}` };
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  if (a.family !== b.family) return false;
  const bits = a.family === 4 ? 32 : 128;
  const shortest = Math.min(a.prefix, b.prefix);
  const shift = BigInt(bits - shortest);
  return a.network >> shift === b.network >> shift;
}

/** Whether `inner` lies wholly inside `outer`. */
export function contains(outer: Subnet, inner: Subnet): boolean {
  return outer.family === inner.family && outer.prefix <= inner.prefix && overlaps(outer, inner);
}
