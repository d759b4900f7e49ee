import { createHash } from "node:crypto";
import canonicalize from "canonicalize";
import type { AuditDraft } from "../../store/transaction";

/**
 * The audit chain's records and the one definition of how they are hashed (decision 003). Everything
 * here is pure: the writer (store/audit-chain.ts), the store check and the offline verifier
 * (`hybrid-cicd verify`) all hash with these functions, so they cannot disagree.
 *
 *   hash = SHA-256( prev_hash as 32 raw bytes || UTF-8 of the RFC 8785 (JCS) form of the event
 *          without its `hash` member )
 */

export const AUDIT_SCHEMA_VERSION = 1;

/** `prev_hash` of the first event and `previous_digest_hash` of the first digest. */
export const GENESIS_HASH = "0".repeat(64);

/** The single chain today; decision 003 says how more would be added. */
export const MAIN_CHAIN = "main";

export type AuditActor = AuditDraft["actor"];
export type AuditOutcome = AuditDraft["outcome"];

export interface AuditEvent {
  schema_version: number;
  /** ULID. */
  event_id: string;
  /** 1, 2, 3, ... without gaps. */
  seq: number;
  /** ISO 8601, never earlier than the previous event's. */
  time: string;
  environment: string;
  /** Dotted verb, e.g. `job.create`. */
  action: string;
  actor: AuditActor;
  target: { type: string; id: string };
  outcome: AuditOutcome;
  request_id?: string;
  /** Never secrets; values worth correlating are keyed HMACs. */
  details?: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

export type UnsealedEvent = Omit<AuditEvent, "hash">;

export interface DigestPayload {
  schema_version: number;
  chain: string;
  /** 1, 2, 3, ... without gaps. */
  digest_seq: number;
  time: string;
  environment: string;
  /** The chain head this digest signs (0 and GENESIS_HASH for an empty chain). */
  head_seq: number;
  head_hash: string;
  head_time: string | null;
  /** `digest_hash` of the previous digest (GENESIS_HASH for the first). */
  previous_digest_hash: string;
  /** `ed25519:` + the first 16 hex digits of the SHA-256 of the raw public key. */
  key_id: string;
  reason: "interval" | "on_demand" | "export";
  /** How often digests are made, so a verifier can tell a quiet interval from a deleted digest. */
  interval_seconds: number;
}

export interface AuditDigest extends DigestPayload {
  /** SHA-256 of the payload's JCS form. */
  digest_hash: string;
  /** Ed25519 signature of the payload's JCS form, base64url. */
  digest_signature: string;
}

/** RFC 8785 JSON Canonicalization Scheme. */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError("value has no JSON form");
  return text;
}

export function chainHash(prevHash: string, canonical: string): string {
  return createHash("sha256").update(Buffer.from(prevHash, "hex")).update(canonical, "utf8").digest("hex");
}

/** The hash an event must carry, recomputed from its other members. */
export function eventHash(event: UnsealedEvent | AuditEvent): string {
  const { hash: _hash, ...body } = event as AuditEvent;
  return chainHash(body.prev_hash, canonicalJson(body));
}

/** The next event of the chain: the draft, its position and its hash. */
export function sealEvent(
  draft: AuditDraft,
  position: { seq: number; prevHash: string; time: string; eventId: string; environment: string },
): AuditEvent {
  const body = toJsonValue({
    schema_version: AUDIT_SCHEMA_VERSION,
    event_id: position.eventId,
    seq: position.seq,
    time: position.time,
    environment: position.environment,
    action: draft.action,
    actor: draft.actor,
    target: draft.target,
    outcome: draft.outcome,
    request_id: draft.request_id,
    details: draft.details,
    prev_hash: position.prevHash,
  }) as UnsealedEvent;
  return { ...body, hash: eventHash(body) };
}

/** The signed part of a digest: everything but its hash and signature. */
export function digestPayload(digest: AuditDigest | DigestPayload): DigestPayload {
  const { digest_hash: _hash, digest_signature: _signature, ...payload } = digest as AuditDigest;
  return payload;
}

export function digestHash(payload: DigestPayload): string {
  return createHash("sha256").update(canonicalJson(payload), "utf8").digest("hex");
}

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * The value exactly as JSON (and DynamoDB) will give it back: undefined members dropped, lone UTF-16
 * surrogates (which JCS refuses) replaced by U+FFFD, non-finite numbers as null. What is hashed is
 * what is stored.
 */
export function toJsonValue(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (_key, entry: unknown) =>
      typeof entry === "string" ? entry.replace(loneSurrogate, "\uFFFD") : entry,
    ),
  );
}

/** What the store's audit chain needs from this domain to append events (it never hashes itself). */
export const auditSealing = { genesisHash: GENESIS_HASH, defaultChain: MAIN_CHAIN, seal: sealEvent } as const;
