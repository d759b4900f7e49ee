import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  consistencyProof,
  EMPTY_ROOT,
  inclusionProof,
  leafHashOf,
  MerkleFrontier,
  merkleRoot,
  verifyConsistency,
  verifyInclusion,
} from "../../runtime/src/domain/audit/merkle";

// The eight leaves of the RFC 6962 reference test data (certificate-transparency merkle_tree_test).
const referenceLeaves = [
  "",
  "00",
  "10",
  "2021",
  "3031",
  "40414243",
  "5051525354555657",
  "606162636465666768696a6b6c6d6e6f",
].map((hex) => leafHashOf(Buffer.from(hex, "hex")));

const leavesOf = (n: number) => Array.from({ length: n }, (_, i) => leafHashOf(Buffer.from(`event ${i}`)));
const flip = (buffer: Buffer) => {
  const copy = Buffer.from(buffer);
  copy[0] = copy[0]! ^ 1;
  return copy;
};

describe("RFC 9162 tree hashing", () => {
  it("reproduces the reference roots", () => {
    expect(EMPTY_ROOT.toString("hex")).toBe(
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
    expect(merkleRoot(referenceLeaves.slice(0, 1)).toString("hex")).toBe(
      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    );
    expect(merkleRoot(referenceLeaves).toString("hex")).toBe(
      "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    );
  });

  it("grows the same root incrementally as it computes from scratch", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 70 }), (n) => {
        const leaves = leavesOf(n);
        const frontier = MerkleFrontier.empty();
        for (const leaf of leaves.slice(0, Math.floor(n / 2))) frontier.append(leaf);
        const resumed = MerkleFrontier.fromJSON(JSON.parse(JSON.stringify(frontier)));
        for (const leaf of leaves.slice(Math.floor(n / 2))) resumed.append(leaf);
        expect(resumed.size).toBe(n);
        expect(resumed.root().equals(merkleRoot(leaves))).toBe(true);
      }),
    );
  });

  it("proves every leaf's inclusion and refuses a changed leaf, index, size or path", () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 70 })
          .chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 }))),
        ([n, index]) => {
          const leaves = leavesOf(n);
          const root = merkleRoot(leaves);
          const path = inclusionProof(leaves, index);
          expect(path.length).toBeLessThanOrEqual(Math.ceil(Math.log2(n)));
          expect(verifyInclusion(leaves[index]!, index, n, path, root)).toBe(true);
          expect(verifyInclusion(flip(leaves[index]!), index, n, path, root)).toBe(false);
          if (n > 1) expect(verifyInclusion(leaves[index]!, (index + 1) % n, n, path, root)).toBe(false);
          if (path.length > 0) {
            expect(verifyInclusion(leaves[index]!, index, n, [flip(path[0]!), ...path.slice(1)], root)).toBe(
              false,
            );
          }
        },
      ),
    );
  });

  it("proves that an older tree is a prefix of a newer one, and refuses rewritten history", () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 70 })
          .chain((n) => fc.tuple(fc.integer({ min: 1, max: n }), fc.constant(n))),
        ([m, n]) => {
          const leaves = leavesOf(n);
          const proof = consistencyProof(leaves, m);
          const older = merkleRoot(leaves, 0, m);
          const newer = merkleRoot(leaves);
          expect(verifyConsistency(m, n, older, newer, proof)).toBe(true);
          const rewritten = [...leaves];
          rewritten[m - 1] = flip(rewritten[m - 1]!);
          expect(verifyConsistency(m, n, merkleRoot(rewritten, 0, m), newer, proof)).toBe(false);
          if (m < n) expect(verifyConsistency(m, n, older, merkleRoot(rewritten), proof)).toBe(false);
        },
      ),
    );
  });
});
