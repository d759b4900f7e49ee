import type { KeyObject } from "node:crypto";
import type { Store } from "../../store/store";
import { ConflictError, NotFoundError } from "../errors";
import {
  type AuditDigest,
  type AuditEvent,
  digestHash,
  digestPayload,
  eventHash,
  MAIN_CHAIN,
} from "./audit-event";
import { type AuditPublicKey, verifyDigestSignature } from "./audit-signing";
import {
  consistencyProof,
  inclusionProof,
  leafHash,
  MerkleFrontier,
  verifyConsistency,
  verifyInclusion,
} from "./merkle";

/**
 * Merkle roots for digests and the inclusion and consistency proofs against them (decision 020).
 * A digest's `merkle_root` is the RFC 9162 tree head of events 1..head_seq; so an auditor holding one
 * signed digest can check one event with O(log n) hashes, and that a later digest only appended.
 */

export const INCLUSION_PROOF_FORMAT = "hybrid-cicd-inclusion-proof/1";
export const CONSISTENCY_PROOF_FORMAT = "hybrid-cicd-consistency-proof/1";

export interface InclusionProofDocument {
  format: typeof INCLUSION_PROOF_FORMAT;
  /** The event, exactly as hashed. */
  event: AuditEvent;
  /** seq - 1. */
  leaf_index: number;
  /** = digest.head_seq. */
  tree_size: number;
  /** SHA-256(0x00 || event hash), hex. */
  leaf_hash: string;
  /** Sibling hashes from the leaf up (RFC 9162 2.1.3.1), hex. */
  audit_path: string[];
  /** The signed digest whose `merkle_root` the path leads to. */
  digest: AuditDigest;
  public_keys: AuditPublicKey[];
}

export interface ConsistencyProofDocument {
  format: typeof CONSISTENCY_PROOF_FORMAT;
  /** The older and the newer signed digest (tree sizes = their head_seq). */
  first: AuditDigest;
  second: AuditDigest;
  /** RFC 9162 2.1.4.1 PROOF(m, D[n]), hex. */
  proof: string[];
  public_keys: AuditPublicKey[];
}

export class MerkleTrees {
  constructor(
    private readonly store: Store,
    private readonly chain = MAIN_CHAIN,
  ) {}

  /** The tree head of events 1..size, extended from the largest stored frontier (hex). */
  async rootAt(size: number): Promise<string> {
    const stored = await this.store.merkle.frontierAtMost(this.chain, size);
    const frontier = stored ? MerkleFrontier.fromJSON(stored) : MerkleFrontier.empty();
    for await (const { seq, hash } of this.store.merkle.eventHashes(this.chain, frontier.size + 1, size)) {
      if (seq !== frontier.size + 1) throw new Error(`the audit chain has a gap before seq ${seq}`);
      frontier.append(leafHash(hash));
    }
    if (frontier.size !== size) throw new Error(`the audit chain ends before seq ${size}`);
    if (size > (stored?.size ?? 0)) await this.store.merkle.putFrontier(this.chain, frontier.toJSON());
    return frontier.root().toString("hex");
  }

  /** Leaf hashes of events 1..size: what a proof is cut from (32 bytes each, O(n) reads). */
  private async leaves(size: number): Promise<Buffer[]> {
    const leaves: Buffer[] = [];
    for await (const { hash } of this.store.merkle.eventHashes(this.chain, 1, size))
      leaves.push(leafHash(hash));
    if (leaves.length !== size) throw new Error(`the audit chain holds ${leaves.length} of ${size} events`);
    return leaves;
  }

  async inclusion(
    seq: number,
    digest: AuditDigest,
    publicKeys: AuditPublicKey[],
  ): Promise<InclusionProofDocument> {
    const event = await this.store.audit.eventAt(this.chain, seq);
    if (!event) throw new NotFoundError(`audit event ${seq} does not exist`);
    requireRoot(digest);
    if (digest.head_seq < seq) {
      throw new ConflictError(`digest ${digest.digest_seq} signs seq 1..${digest.head_seq}, not seq ${seq}`);
    }
    const leaves = await this.leaves(digest.head_seq);
    return {
      format: INCLUSION_PROOF_FORMAT,
      event,
      leaf_index: seq - 1,
      tree_size: digest.head_seq,
      leaf_hash: leaves[seq - 1]!.toString("hex"),
      audit_path: inclusionProof(leaves, seq - 1).map((hash) => hash.toString("hex")),
      digest,
      public_keys: publicKeys,
    };
  }

  async consistency(
    first: AuditDigest,
    second: AuditDigest,
    publicKeys: AuditPublicKey[],
  ): Promise<ConsistencyProofDocument> {
    requireRoot(first);
    requireRoot(second);
    if (first.head_seq < 1 || first.head_seq > second.head_seq) {
      throw new ConflictError(
        `digest ${first.digest_seq} (seq 1..${first.head_seq}) is not an older, non-empty tree of digest ${second.digest_seq} (seq 1..${second.head_seq})`,
      );
    }
    const leaves = await this.leaves(second.head_seq);
    return {
      format: CONSISTENCY_PROOF_FORMAT,
      first,
      second,
      proof: consistencyProof(leaves, first.head_seq).map((hash) => hash.toString("hex")),
      public_keys: publicKeys,
    };
  }
}

function requireRoot(digest: AuditDigest): void {
  if (digest.merkle_root === undefined) {
    throw new ConflictError(`digest ${digest.digest_seq} predates Merkle roots; ask for a newer digest`);
  }
}

export interface ProofVerification {
  ok: boolean;
  /** What failed, in the order checked (empty when ok). */
  problems: string[];
  /** Whether signatures were checked against keys given by the caller. */
  trusted_keys: boolean;
}

const hex = (value: string) => Buffer.from(value, "hex");
const isHex64 = (value: unknown): value is string =>
  typeof value === "string" && /^[0-9a-f]{64}$/.test(value);

function checkDigest(
  digest: AuditDigest,
  keys: ReadonlyMap<string, KeyObject>,
  label: string,
  problems: string[],
) {
  const key = keys.get(digest.key_id);
  if (!key) problems.push(`${label}: signed by ${digest.key_id}, which is not a trusted key`);
  else if (!verifyDigestSignature(digest, key)) problems.push(`${label}: the signature does not verify`);
  if (digestHash(digestPayload(digest)) !== digest.digest_hash)
    problems.push(`${label}: digest_hash does not match`);
  if (!isHex64(digest.merkle_root)) problems.push(`${label}: has no merkle_root`);
}

/** Checks an inclusion proof offline: the event's hash, the digest's signature, the path to its root. */
export function verifyInclusionDocument(
  document: InclusionProofDocument,
  keys: ReadonlyMap<string, KeyObject>,
  trusted: boolean,
): ProofVerification {
  const problems: string[] = [];
  const { event, digest } = document;
  if (eventHash(event) !== event.hash)
    problems.push(`event: seq ${event.seq} does not hash to its recorded hash (altered)`);
  checkDigest(digest, keys, `digest ${digest.digest_seq}`, problems);
  if (document.tree_size !== digest.head_seq)
    problems.push(`tree_size ${document.tree_size} is not the digest's head_seq ${digest.head_seq}`);
  if (document.leaf_index !== event.seq - 1)
    problems.push(`leaf_index ${document.leaf_index} is not seq ${event.seq} - 1`);
  const leaf = leafHash(event.hash);
  if (document.leaf_hash !== leaf.toString("hex"))
    problems.push("leaf_hash is not SHA-256(0x00 || event hash)");
  if (event.seq === digest.head_seq && event.hash !== digest.head_hash)
    problems.push("the event is the digest's head but its hash is not head_hash");
  const path = document.audit_path.every(isHex64) ? document.audit_path.map(hex) : undefined;
  if (!path) problems.push("audit_path: not a list of SHA-256 hashes");
  else if (
    isHex64(digest.merkle_root) &&
    !verifyInclusion(leaf, event.seq - 1, digest.head_seq, path, hex(digest.merkle_root))
  ) {
    problems.push(
      `audit_path: does not lead from seq ${event.seq} to the merkle_root of digest ${digest.digest_seq}`,
    );
  }
  return { ok: problems.length === 0, problems, trusted_keys: trusted };
}

/** Checks a consistency proof offline: both digests' signatures, and that the older tree is a prefix. */
export function verifyConsistencyDocument(
  document: ConsistencyProofDocument,
  keys: ReadonlyMap<string, KeyObject>,
  trusted: boolean,
): ProofVerification {
  const problems: string[] = [];
  const { first, second } = document;
  checkDigest(first, keys, `digest ${first.digest_seq}`, problems);
  checkDigest(second, keys, `digest ${second.digest_seq}`, problems);
  const proof = document.proof.every(isHex64) ? document.proof.map(hex) : undefined;
  if (!proof) problems.push("proof: not a list of SHA-256 hashes");
  else if (
    isHex64(first.merkle_root) &&
    isHex64(second.merkle_root) &&
    !verifyConsistency(
      first.head_seq,
      second.head_seq,
      hex(first.merkle_root),
      hex(second.merkle_root),
      proof,
    )
  ) {
    problems.push(
      `proof: the tree of digest ${first.digest_seq} (seq 1..${first.head_seq}) is not a prefix of digest ${second.digest_seq} (seq 1..${second.head_seq}): history was rewritten`,
    );
  }
  return { ok: problems.length === 0, problems, trusted_keys: trusted };
}

/** The proof use cases behind `GET /audit/events/{seq}/proof` and `GET /audit/digests/consistency`. */
export class AuditProofs {
  constructor(
    private readonly store: Store,
    private readonly audit: {
      merkle: MerkleTrees;
      createDigest(reason: "on_demand"): Promise<AuditDigest>;
      keys: { publicKeys(): Promise<AuditPublicKey[]> };
    },
    private readonly chain = MAIN_CHAIN,
  ) {}

  /**
   * An inclusion proof of event `seq` against digest `digestSeq`, or by default against the latest
   * digest (a new one is signed when the latest does not yet cover the event or has no Merkle root).
   */
  async event(seq: number, digestSeq?: number): Promise<InclusionProofDocument> {
    let digest: AuditDigest | undefined;
    if (digestSeq !== undefined) {
      digest = await this.store.audit.digestAt(this.chain, digestSeq);
      if (!digest) throw new NotFoundError(`digest ${digestSeq} does not exist`);
    } else {
      if (!(await this.store.audit.eventAt(this.chain, seq)))
        throw new NotFoundError(`audit event ${seq} does not exist`);
      digest = await this.store.audit.latestDigest(this.chain);
      if (!digest || digest.head_seq < seq || digest.merkle_root === undefined) {
        digest = await this.audit.createDigest("on_demand");
      }
    }
    return this.audit.merkle.inclusion(seq, digest, await this.audit.keys.publicKeys());
  }

  /** A consistency proof from digest `fromSeq` to digest `toSeq` (default: the latest). */
  async consistency(fromSeq: number, toSeq?: number): Promise<ConsistencyProofDocument> {
    const first = await this.store.audit.digestAt(this.chain, fromSeq);
    if (!first) throw new NotFoundError(`digest ${fromSeq} does not exist`);
    const second =
      toSeq === undefined
        ? await this.store.audit.latestDigest(this.chain)
        : await this.store.audit.digestAt(this.chain, toSeq);
    if (!second) throw new NotFoundError(`digest ${toSeq} does not exist`);
    return this.audit.merkle.consistency(first, second, await this.audit.keys.publicKeys());
  }
}
