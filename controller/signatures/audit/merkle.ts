// The log's Merkle tree as RFC 6962 (section 2.1) and transparency logs define it: leaves are SHA-256(0x00 || entry),
// inner nodes SHA-256(0x01 || left || right), and a tree of n leaves splits at the largest power of two below n.
// Only the tree's right edge is kept (one hash per 1-bit of the size), so appending and the root cost O(log n).
import { createHash } from 'node:crypto';

export const HASH_BYTES = 32;

export function leafHash(entry: Uint8Array): Buffer {
  return createHash('sha256').update(Buffer.of(0)).update(entry).digest();
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(Buffer.of(1)).update(left).update(right).digest();
}

export class MerkleTree {
  /** Roots of the perfect subtrees that make up the tree, largest (leftmost) first: the binary digits of `size`. */
  private readonly edge: Buffer[] = [];
  private leaves = 0;

  get size(): number {
    return this.leaves;
  }

  append(leaf: Buffer): void {
    let hash = leaf;
    // Each 1-bit carried out of the size merges the two rightmost subtrees of equal size.
    for (let n = this.leaves; n & 1; n = Math.floor(n / 2)) hash = nodeHash(this.edge.pop()!, hash);
    this.edge.push(hash);
    this.leaves += 1;
  }

  /** The tree hash; an empty tree's is SHA-256 of nothing (RFC 6962). */
  root(): Buffer {
    if (this.edge.length === 0) return createHash('sha256').digest();
    let hash = this.edge[this.edge.length - 1]!;
    for (let i = this.edge.length - 2; i >= 0; i--) hash = nodeHash(this.edge[i]!, hash);
    return hash;
  }
}
