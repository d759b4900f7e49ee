import { createHash } from "node:crypto";

/**
 * RFC 9162 (Certificate Transparency 2.0, same tree as RFC 6962) Merkle tree hashing over the audit
 * chain, decision 020. Leaf `i` (0-based) is event `seq = i + 1`; its data is the event's chain hash
 * (32 raw bytes), which already commits to every member of the event.
 *
 *   MTH({})       = SHA-256()
 *   leaf hash     = SHA-256(0x00 || event hash)
 *   node hash     = SHA-256(0x01 || left || right), split at the largest power of two below n
 *
 * Pure functions over 32-byte Buffers; hex only at the edges (proof documents).
 */

const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);

export const EMPTY_ROOT = createHash("sha256").digest();

/** The leaf hash of an audit event, from its chain hash (hex). */
export function leafHash(eventHashHex: string): Buffer {
  return leafHashOf(Buffer.from(eventHashHex, "hex"));
}

export function leafHashOf(data: Buffer): Buffer {
  return createHash("sha256").update(LEAF).update(data).digest();
}

export function nodeHash(left: Buffer, right: Buffer): Buffer {
  return createHash("sha256").update(NODE).update(left).update(right).digest();
}

/** The largest power of two strictly below n (n > 1). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH of `leaves[from, to)` (leaf hashes). */
export function merkleRoot(leaves: readonly Buffer[], from = 0, to = leaves.length): Buffer {
  const n = to - from;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return leaves[from]!;
  const k = split(n);
  return nodeHash(merkleRoot(leaves, from, from + k), merkleRoot(leaves, from + k, to));
}

/** RFC 9162 2.1.3.1 PATH(m, D[n]): the audit path of leaf `index` in the tree of `leaves`. */
export function inclusionProof(leaves: readonly Buffer[], index: number): Buffer[] {
  if (index < 0 || index >= leaves.length) throw new RangeError("leaf index outside the tree");
  const path = (m: number, from: number, to: number): Buffer[] => {
    const n = to - from;
    if (n <= 1) return [];
    const k = split(n);
    return m < k
      ? [...path(m, from, from + k), merkleRoot(leaves, from + k, to)]
      : [...path(m - k, from + k, to), merkleRoot(leaves, from, from + k)];
  };
  return path(index, 0, leaves.length);
}

/** RFC 9162 2.1.3.2: does `path` prove `leaf` at `index` in a tree of `size` with `root`? */
export function verifyInclusion(
  leaf: Buffer,
  index: number,
  size: number,
  path: readonly Buffer[],
  root: Buffer,
): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

/** RFC 9162 2.1.4.1 PROOF(m, D[n]): that the tree of the first `m` leaves is a prefix of `leaves`. */
export function consistencyProof(leaves: readonly Buffer[], m: number): Buffer[] {
  const n = leaves.length;
  if (m < 1 || m > n) throw new RangeError("the older tree must hold 1..n leaves");
  const subproof = (m: number, from: number, to: number, complete: boolean): Buffer[] => {
    const size = to - from;
    if (m === size) return complete ? [] : [merkleRoot(leaves, from, to)];
    const k = split(size);
    return m <= k
      ? [...subproof(m, from, from + k, complete), merkleRoot(leaves, from + k, to)]
      : [...subproof(m - k, from + k, to, false), merkleRoot(leaves, from, from + k)];
  };
  return subproof(m, 0, n, true);
}

/** RFC 9162 2.1.4.2: does `proof` show the tree (`firstSize`, `firstRoot`) is a prefix of (`secondSize`, `secondRoot`)? */
export function verifyConsistency(
  firstSize: number,
  secondSize: number,
  firstRoot: Buffer,
  secondRoot: Buffer,
  proof: readonly Buffer[],
): boolean {
  if (!Number.isSafeInteger(firstSize) || !Number.isSafeInteger(secondSize)) return false;
  if (firstSize < 1 || firstSize > secondSize) return false;
  if (firstSize === secondSize) return proof.length === 0 && firstRoot.equals(secondRoot);
  let path = [...proof];
  // A first tree that is a complete subtree is its own first node.
  if ((firstSize & (firstSize - 1)) === 0) path = [firstRoot, ...path];
  if (path.length === 0) return false;
  let fn = firstSize - 1;
  let sn = secondSize - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && fr.equals(firstRoot) && sr.equals(secondRoot);
}

/**
 * The right edge of a growing tree: the roots of its perfect subtrees, largest first (at most log2 n).
 * Appending a leaf and reading the root cost O(log n), so a digest extends the previous digest's tree
 * with the events since instead of rehashing the chain.
 */
export class MerkleFrontier {
  private constructor(
    private size_: number,
    /** [height, hash] of each perfect subtree, left to right (heights strictly decreasing). */
    private readonly nodes: { height: number; hash: Buffer }[],
  ) {}

  static empty(): MerkleFrontier {
    return new MerkleFrontier(0, []);
  }

  static fromJSON(value: { size: number; nodes: { height: number; hash: string }[] }): MerkleFrontier {
    return new MerkleFrontier(
      value.size,
      value.nodes.map((node) => ({ height: node.height, hash: Buffer.from(node.hash, "hex") })),
    );
  }

  get size(): number {
    return this.size_;
  }

  append(leaf: Buffer): void {
    let node = { height: 0, hash: leaf };
    while (this.nodes.length > 0 && this.nodes[this.nodes.length - 1]!.height === node.height) {
      const left = this.nodes.pop()!;
      node = { height: node.height + 1, hash: nodeHash(left.hash, node.hash) };
    }
    this.nodes.push(node);
    this.size_++;
  }

  root(): Buffer {
    if (this.nodes.length === 0) return EMPTY_ROOT;
    let root = this.nodes[this.nodes.length - 1]!.hash;
    for (let i = this.nodes.length - 2; i >= 0; i--) root = nodeHash(this.nodes[i]!.hash, root);
    return root;
  }

  toJSON(): { size: number; nodes: { height: number; hash: string }[] } {
    return {
      size: this.size_,
      nodes: this.nodes.map((node) => ({ height: node.height, hash: node.hash.toString("hex") })),
    };
  }
}
