import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { leafHash, MerkleTree, nodeHash } from './merkle.js';

// RFC 6962's reference leaves and the tree heads of their first 0..8 (certificate-transparency and
// transparency-dev/merkle test data).
const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((h) => Buffer.from(h, 'hex'));
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

/** RFC 6962 section 2.1 as written: split at the largest power of two below n, recursively. */
function definitionRoot(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return createHash('sha256').digest();
  if (leaves.length === 1) return leaves[0]!;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(definitionRoot(leaves.slice(0, k)), definitionRoot(leaves.slice(k)));
}

describe('MerkleTree', () => {
  it('gives the RFC 6962 reference root after each of the reference leaves', () => {
    const tree = new MerkleTree();
    expect(tree.root().toString('hex')).toBe(ROOTS[0]);
    LEAVES.forEach((leaf, i) => {
      tree.append(leafHash(leaf));
      expect([tree.size, tree.root().toString('hex')]).toEqual([i + 1, ROOTS[i + 1]]);
    });
  });

  it('agrees with the recursive definition for any number of leaves', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 8 }), { maxLength: 70 }), (entries) => {
      const leaves = entries.map((e) => leafHash(e));
      const tree = new MerkleTree();
      for (const leaf of leaves) tree.append(leaf);
      expect(tree.root().equals(definitionRoot(leaves))).toBe(true);
    }));
  });
});
