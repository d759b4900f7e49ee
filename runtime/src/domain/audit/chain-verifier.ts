import type { KeyObject } from "node:crypto";
import {
  type AuditDigest,
  type AuditEvent,
  digestHash,
  digestPayload,
  eventHash,
  GENESIS_HASH,
} from "./audit-event";
import { verifyDigestSignature } from "./audit-signing";

/**
 * The one verification of an audit chain, fed record by record so it runs in constant memory over a
 * store query or an export file alike. Events arrive in seq order; each digest arrives right after the
 * event whose seq it signs (or before the first event when it signs an earlier head).
 */

export type ProblemKind =
  | "malformed"
  | "hash_mismatch"
  | "broken_link"
  | "missing_events"
  | "out_of_order"
  | "time_reversed"
  | "unknown_key"
  | "bad_signature"
  | "bad_digest_hash"
  | "digest_chain_broken"
  | "digest_mismatch"
  | "digest_beyond_events"
  | "head_mismatch"
  | "not_sealed"
  | "incomplete_export"
  /** The export's header or end record was changed after it was signed. */
  | "export_altered"
  /** The newest digest is older than the digest interval plus a margin: a deleted tail with its digests. */
  | "stale_digest";

export interface VerificationProblem {
  kind: ProblemKind;
  message: string;
  /** The event concerned (its claimed seq). */
  seq?: number;
  event_id?: string;
  digest_seq?: number;
  /** Where: `line 12` in a file, `seq 12` in the store. */
  location?: string;
}

export interface VerificationReport {
  ok: boolean;
  events: number;
  digests: number;
  first_seq: number | null;
  last_seq: number | null;
  last_hash: string | null;
  /** The highest seq whose hash a valid signed digest confirms. */
  sealed_through_seq: number | null;
  /** Events after `sealed_through_seq`: linked, but not yet signed. */
  unsealed_events: number;
  first_problem: VerificationProblem | null;
  /** The first problems found (at most 100); `problem_count` has them all. */
  problems: VerificationProblem[];
  problem_count: number;
  /** Suspicious but not a break, e.g. a digest gap longer than the interval. */
  warnings: string[];
  /** Key ids whose signatures verified. */
  key_ids: string[];
}

export interface ChainVerifierOptions {
  /** Trusted Ed25519 public keys by key id. */
  publicKeys: ReadonlyMap<string, KeyObject>;
  /** The first event must be seq 1 (the whole chain). */
  fromGenesis?: boolean;
  /** The event just before the first one fed, when the caller knows it. */
  anchor?: { seq: number; hash: string };
  /** Every event must be confirmed by a digest (exports are sealed before they are written). */
  requireSealed?: boolean;
}

const MAX_KEPT_PROBLEMS = 100;
const HEX64 = /^[0-9a-f]{64}$/;
const outcomes = new Set(["success", "denied", "error"]);

interface Link {
  seq: number;
  hash: string;
  time: string;
  eventId: string;
}

interface PendingDigest {
  digestSeq: number;
  headSeq: number;
  headHash: string;
  location: string;
}

export class ChainVerifier {
  private readonly problems: VerificationProblem[] = [];
  private problemCount = 0;
  private readonly warnings: string[] = [];
  private readonly keyIds = new Set<string>();
  private events = 0;
  private digests = 0;
  private first: Link | undefined;
  private last: Link | undefined;
  private sealedThrough: number | null = null;
  private lastDigest: { digestSeq: number; hash: string; headSeq: number; time: string } | undefined;
  private pending: PendingDigest[] = [];

  constructor(private readonly options: ChainVerifierOptions) {}

  /** Records a problem found outside the chain itself (e.g. a broken export file). */
  report(problem: VerificationProblem): void {
    this.problemCount++;
    if (this.problems.length < MAX_KEPT_PROBLEMS) this.problems.push(problem);
  }

  warn(message: string): void {
    if (this.warnings.length < MAX_KEPT_PROBLEMS) this.warnings.push(message);
  }

  addEvent(candidate: unknown, location: string): void {
    const shapeError = eventShapeError(candidate);
    if (shapeError) {
      const claimed = candidate as Partial<AuditEvent> | null;
      this.report({
        kind: "malformed",
        message: `not a valid audit event: ${shapeError}`,
        seq: typeof claimed?.seq === "number" ? claimed.seq : undefined,
        location,
      });
      return;
    }
    const event = candidate as AuditEvent;
    this.events++;
    const where = { seq: event.seq, event_id: event.event_id, location };
    const previous = this.last;

    if (!previous) {
      this.checkStart(event, where);
    } else if (event.seq <= previous.seq) {
      this.report({
        kind: "out_of_order",
        message: `seq ${event.seq} comes after seq ${previous.seq}: events were reordered or duplicated`,
        ...where,
      });
    } else if (event.seq > previous.seq + 1) {
      const missing = event.seq - previous.seq - 1;
      this.report({
        kind: "missing_events",
        message: `seq ${event.seq} follows seq ${previous.seq}: ${missing} event(s) missing (deleted?)`,
        ...where,
      });
    } else if (event.prev_hash !== previous.hash) {
      this.report({
        kind: "broken_link",
        message: `prev_hash of seq ${event.seq} is not the hash of seq ${previous.seq}: an event was inserted, removed or replaced`,
        ...where,
      });
    }

    const computed = eventHash(event);
    if (computed !== event.hash) {
      this.report({
        kind: "hash_mismatch",
        message: `seq ${event.seq} does not hash to its recorded hash: the event was altered`,
        ...where,
      });
    }
    if (previous && event.time < previous.time) {
      this.report({
        kind: "time_reversed",
        message: `seq ${event.seq} is dated ${event.time}, before seq ${previous.seq} (${previous.time})`,
        ...where,
      });
    }

    this.resolvePendingBefore(event, previous === undefined);
    const link: Link = { seq: event.seq, hash: event.hash, time: event.time, eventId: event.event_id };
    this.first ??= link;
    // Continue from the recorded hash, so one altered event is reported once, not at every later link.
    this.last = link;
    this.resolvePendingAt(link, computed === event.hash);
  }

  addDigest(candidate: unknown, location: string): void {
    const shapeError = digestShapeError(candidate);
    if (shapeError) {
      const claimed = candidate as Partial<AuditDigest> | null;
      this.report({
        kind: "malformed",
        message: `not a valid digest: ${shapeError}`,
        digest_seq: typeof claimed?.digest_seq === "number" ? claimed.digest_seq : undefined,
        location,
      });
      return;
    }
    const digest = candidate as AuditDigest;
    this.digests++;
    const where = { digest_seq: digest.digest_seq, location };
    const payload = digestPayload(digest);
    let authentic = true;
    const key = this.options.publicKeys.get(digest.key_id);
    if (!key) {
      authentic = false;
      this.report({
        kind: "unknown_key",
        message: `digest ${digest.digest_seq} is signed by ${digest.key_id}, which is not a trusted key`,
        ...where,
      });
    } else if (!verifyDigestSignature(digest, key)) {
      authentic = false;
      this.report({
        kind: "bad_signature",
        message: `the signature of digest ${digest.digest_seq} does not verify: the digest was forged or altered`,
        ...where,
      });
    } else {
      this.keyIds.add(digest.key_id);
    }
    if (digestHash(payload) !== digest.digest_hash) {
      authentic = false;
      this.report({
        kind: "bad_digest_hash",
        message: `digest ${digest.digest_seq} does not hash to its digest_hash`,
        ...where,
      });
    }
    this.checkDigestChain(digest, where);
    this.lastDigest = {
      digestSeq: digest.digest_seq,
      hash: digest.digest_hash,
      headSeq: digest.head_seq,
      time: digest.time,
    };
    if (!authentic) return;

    if (digest.head_seq === 0) {
      if (digest.head_hash !== GENESIS_HASH) {
        this.report({
          kind: "digest_mismatch",
          message: `digest ${digest.digest_seq} signs an empty chain with a non-genesis hash`,
          ...where,
        });
      }
      return;
    }
    const pending: PendingDigest = {
      digestSeq: digest.digest_seq,
      headSeq: digest.head_seq,
      headHash: digest.head_hash,
      location,
    };
    const last = this.last;
    if (!last || digest.head_seq > last.seq) {
      this.pending.push(pending);
    } else if (digest.head_seq === last.seq) {
      this.checkSeal(pending, last, true);
    } else if (this.first && digest.head_seq >= this.first.seq) {
      this.report({
        kind: "out_of_order",
        message: `digest ${digest.digest_seq} signs seq ${digest.head_seq} but comes after seq ${last.seq}`,
        ...where,
      });
    }
  }

  /** The seqs of the first and last events fed so far. */
  get range(): { first: number | null; last: number | null; lastHash: string | null } {
    return {
      first: this.first?.seq ?? null,
      last: this.last?.seq ?? null,
      lastHash: this.last?.hash ?? null,
    };
  }

  /** The verdict once every record has been fed (call once). */
  result(): VerificationReport {
    for (const pending of this.pending) {
      this.report({
        kind: "digest_beyond_events",
        message:
          `digest ${pending.digestSeq} signs seq ${pending.headSeq} but the events end at seq ` +
          `${this.last?.seq ?? 0}: events were removed from the end`,
        digest_seq: pending.digestSeq,
        location: pending.location,
      });
    }
    this.pending = [];
    const lastSeq = this.last?.seq ?? null;
    const sealedFrom = this.sealedThrough ?? (this.first ? this.first.seq - 1 : 0);
    const unsealed = lastSeq === null ? 0 : Math.max(0, lastSeq - sealedFrom);
    if (this.options.requireSealed && unsealed > 0 && lastSeq !== null) {
      this.report({
        kind: "not_sealed",
        message: `seq ${sealedFrom + 1}..${lastSeq} are not confirmed by any signed digest`,
        seq: sealedFrom + 1,
      });
    }
    if (this.options.publicKeys.size === 0 && this.digests === 0 && this.events > 0) {
      this.warn("no digest and no key: only the hash links were checked");
    }
    return {
      ok: this.problemCount === 0,
      events: this.events,
      digests: this.digests,
      first_seq: this.first?.seq ?? null,
      last_seq: lastSeq,
      last_hash: this.last?.hash ?? null,
      sealed_through_seq: this.sealedThrough,
      unsealed_events: unsealed,
      first_problem: this.problems[0] ?? null,
      problems: [...this.problems],
      problem_count: this.problemCount,
      warnings: [...this.warnings],
      key_ids: [...this.keyIds],
    };
  }

  private checkStart(event: AuditEvent, where: { seq: number; event_id: string; location: string }): void {
    if (event.seq === 1) {
      if (event.prev_hash !== GENESIS_HASH) {
        this.report({
          kind: "broken_link",
          message: "the first event's prev_hash is not the genesis hash",
          ...where,
        });
      }
      return;
    }
    if (this.options.fromGenesis) {
      this.report({
        kind: "missing_events",
        message: `the chain starts at seq ${event.seq}: seq 1..${event.seq - 1} are missing`,
        ...where,
      });
      return;
    }
    const anchor = this.options.anchor;
    if (anchor && anchor.seq === event.seq - 1 && anchor.hash !== event.prev_hash) {
      this.report({
        kind: "broken_link",
        message: `prev_hash of seq ${event.seq} is not the hash of seq ${anchor.seq}`,
        ...where,
      });
    }
  }

  /** Digests signing a seq before this event: the anchor of the first event, or a seq that is missing. */
  private resolvePendingBefore(event: AuditEvent, isFirst: boolean): void {
    const remaining: PendingDigest[] = [];
    for (const pending of this.pending) {
      if (pending.headSeq >= event.seq) {
        remaining.push(pending);
      } else if (isFirst) {
        if (pending.headSeq === event.seq - 1 && pending.headHash !== event.prev_hash) {
          this.report({
            kind: "digest_mismatch",
            message: `prev_hash of seq ${event.seq} differs from the head signed by digest ${pending.digestSeq}`,
            seq: event.seq,
            event_id: event.event_id,
            digest_seq: pending.digestSeq,
            location: pending.location,
          });
        }
      } else {
        this.report({
          kind: "digest_mismatch",
          message: `digest ${pending.digestSeq} signs seq ${pending.headSeq}, which is missing`,
          digest_seq: pending.digestSeq,
          location: pending.location,
        });
      }
    }
    this.pending = remaining;
  }

  private resolvePendingAt(link: Link, linkIsSound: boolean): void {
    if (!this.pending.some((pending) => pending.headSeq === link.seq)) return;
    this.pending = this.pending.filter((pending) => {
      if (pending.headSeq !== link.seq) return true;
      this.checkSeal(pending, link, linkIsSound);
      return false;
    });
  }

  private checkSeal(pending: PendingDigest, link: Link, linkIsSound: boolean): void {
    if (pending.headHash !== link.hash) {
      this.report({
        kind: "digest_mismatch",
        message: `digest ${pending.digestSeq} signs a different hash for seq ${link.seq}: the chain was rewritten`,
        seq: link.seq,
        event_id: link.eventId,
        digest_seq: pending.digestSeq,
        location: pending.location,
      });
    } else if (linkIsSound) {
      this.sealedThrough = Math.max(this.sealedThrough ?? 0, link.seq);
    }
  }

  private checkDigestChain(digest: AuditDigest, where: { digest_seq: number; location: string }): void {
    const previous = this.lastDigest;
    if (!previous) {
      if (digest.digest_seq === 1 && digest.previous_digest_hash !== GENESIS_HASH) {
        this.report({
          kind: "digest_chain_broken",
          message: "the first digest does not start from the genesis hash",
          ...where,
        });
      }
      return;
    }
    if (digest.digest_seq !== previous.digestSeq + 1) {
      this.report({
        kind: "digest_chain_broken",
        message: `digest ${digest.digest_seq} follows digest ${previous.digestSeq}: digests are missing or reordered`,
        ...where,
      });
    } else if (digest.previous_digest_hash !== previous.hash) {
      this.report({
        kind: "digest_chain_broken",
        message: `digest ${digest.digest_seq} does not link to digest ${previous.digestSeq}`,
        ...where,
      });
    }
    if (digest.head_seq < previous.headSeq) {
      this.report({
        kind: "digest_chain_broken",
        message: `digest ${digest.digest_seq} signs seq ${digest.head_seq}, behind digest ${previous.digestSeq} (seq ${previous.headSeq})`,
        ...where,
      });
    }
    const gapSeconds = (Date.parse(digest.time) - Date.parse(previous.time)) / 1000;
    if (gapSeconds > 2 * digest.interval_seconds + 60) {
      this.warn(
        `digest ${digest.digest_seq} comes ${Math.round(gapSeconds)} s after digest ${previous.digestSeq} ` +
          `(interval ${digest.interval_seconds} s): digests were deleted, or the control plane was not running`,
      );
    }
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const isText = (value: unknown): value is string => typeof value === "string" && value.length > 0;
const isSeq = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;
const isTime = (value: unknown): value is string => isText(value) && !Number.isNaN(Date.parse(value));

function eventShapeError(value: unknown): string | undefined {
  if (!isRecord(value)) return "not a JSON object";
  if (value.schema_version !== 1) return "schema_version is not 1";
  if (!isText(value.event_id)) return "event_id is missing";
  if (!isSeq(value.seq) || value.seq < 1) return "seq is not a positive integer";
  if (!isTime(value.time)) return "time is not a timestamp";
  if (typeof value.environment !== "string") return "environment is missing";
  if (!isText(value.action)) return "action is missing";
  if (!isRecord(value.actor) || !isText(value.actor.type) || typeof value.actor.id !== "string")
    return "actor is not {type, id}";
  if (!isRecord(value.target) || !isText(value.target.type) || typeof value.target.id !== "string")
    return "target is not {type, id}";
  if (typeof value.outcome !== "string" || !outcomes.has(value.outcome)) return "outcome is not valid";
  if (typeof value.prev_hash !== "string" || !HEX64.test(value.prev_hash))
    return "prev_hash is not a SHA-256";
  if (typeof value.hash !== "string" || !HEX64.test(value.hash)) return "hash is not a SHA-256";
  return undefined;
}

function digestShapeError(value: unknown): string | undefined {
  if (!isRecord(value)) return "not a JSON object";
  if (value.schema_version !== 1) return "schema_version is not 1";
  if (!isSeq(value.digest_seq) || value.digest_seq < 1) return "digest_seq is not a positive integer";
  if (!isSeq(value.head_seq)) return "head_seq is not an integer";
  if (typeof value.head_hash !== "string" || !HEX64.test(value.head_hash))
    return "head_hash is not a SHA-256";
  if (typeof value.previous_digest_hash !== "string" || !HEX64.test(value.previous_digest_hash))
    return "previous_digest_hash is not a SHA-256";
  if (typeof value.digest_hash !== "string" || !HEX64.test(value.digest_hash))
    return "digest_hash is not a SHA-256";
  if (!isText(value.digest_signature)) return "digest_signature is missing";
  if (!isText(value.key_id)) return "key_id is missing";
  if (!isTime(value.time)) return "time is not a timestamp";
  if (!isSeq(value.interval_seconds)) return "interval_seconds is not an integer";
  return undefined;
}
