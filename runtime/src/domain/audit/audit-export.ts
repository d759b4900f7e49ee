import type { KeyObject } from "node:crypto";
import type { AuditDigest, AuditEvent } from "./audit-event";
import { type AuditPublicKey, parsePublicKeys, publicKeyFromRaw } from "./audit-signing";
import { ChainVerifier, type VerificationReport } from "./chain-verifier";

/**
 * The export file: JSON Lines, one record per line, each with a `record` member saying what it is.
 *
 *   {"record":"header", "format":"hybrid-cicd-audit-export/1", ...}   first line
 *   {"record":"event", ...the event, exactly as hashed...}             seq order
 *   {"record":"digest", ...the signed digest...}                       right after the event it signs
 *   {"record":"end", "events":N, "digests":M, ...}                     last line: the file is whole
 *
 * Every event is followed, sooner or later, by a digest signing it (the export is sealed before it is
 * written), so the whole file verifies offline with the public key alone.
 */

export const EXPORT_FORMAT = "hybrid-cicd-audit-export/1";

export interface ExportHeader {
  record: "header";
  format: typeof EXPORT_FORMAT;
  chain: string;
  environment: string;
  exported_at: string;
  /** The period asked for (null = from the start / to the end). */
  from: string | null;
  to: string | null;
  /** Events in the file: the period, extended to the digest that seals its last event. */
  first_seq: number | null;
  last_seq: number | null;
  canonicalization: string;
  hash_rule: string;
  /** Keys the digests are signed with. Prove origin with a key from elsewhere (`--public-key`). */
  public_keys: AuditPublicKey[];
}

export interface ExportEnd {
  record: "end";
  events: number;
  digests: number;
  last_seq: number | null;
  last_hash: string | null;
}

export type ExportRecord =
  | ExportHeader
  | ({ record: "event" } & AuditEvent)
  | ({ record: "digest" } & AuditDigest)
  | ExportEnd;

export const exportLine = (record: ExportRecord): string => `${JSON.stringify(record)}\n`;

/** A record of the chain in file order. */
export type ChainRecord = { kind: "event"; event: AuditEvent } | { kind: "digest"; digest: AuditDigest };

/**
 * Events (seq order) merged with digests (digest_seq order) the way the verifier reads them: each
 * digest right after the event it signs; digests of heads before the first event come first.
 */
export async function* mergeChainRecords(
  events: AsyncIterable<AuditEvent> | Iterable<AuditEvent>,
  digests: AsyncIterable<AuditDigest> | Iterable<AuditDigest>,
): AsyncGenerator<ChainRecord> {
  const pending = (async function* () {
    yield* digests;
  })();
  let next = (await pending.next()).value as AuditDigest | undefined;
  for await (const event of events) {
    while (next && next.head_seq < event.seq) {
      yield { kind: "digest", digest: next };
      next = (await pending.next()).value as AuditDigest | undefined;
    }
    yield { kind: "event", event };
    while (next && next.head_seq === event.seq) {
      yield { kind: "digest", digest: next };
      next = (await pending.next()).value as AuditDigest | undefined;
    }
  }
  while (next) {
    yield { kind: "digest", digest: next };
    next = (await pending.next()).value as AuditDigest | undefined;
  }
}

export const HASH_RULE =
  "hash = SHA-256(prev_hash as 32 bytes || UTF-8 JCS of the event without hash); first prev_hash = 64 zeros";

export interface ExportVerification extends VerificationReport {
  /** Whether signatures were checked against keys given by the caller (true) or found in the file. */
  trusted_keys: boolean;
  header: Pick<ExportHeader, "chain" | "environment" | "exported_at" | "from" | "to"> | null;
}

/**
 * Verifies an export offline: every hash link, every digest signature, that digests seal every event,
 * and that the file is whole. With `publicKeys` (from `GET /audit/public-key`, kept elsewhere) the
 * signatures also prove where the file came from; without, the file's own keys are used and the
 * report says so.
 */
export async function verifyExport(
  lines: AsyncIterable<string> | Iterable<string>,
  options: { publicKeys?: ReadonlyMap<string, KeyObject> } = {},
): Promise<ExportVerification> {
  let verifier: ChainVerifier | undefined;
  let header: ExportHeader | undefined;
  let end: ExportEnd | undefined;
  let lineNumber = 0;
  let events = 0;
  let digests = 0;
  let afterEnd = false;
  const early: { kind: "malformed" | "incomplete_export"; message: string; location: string }[] = [];

  for await (const raw of lines) {
    lineNumber++;
    const line = raw.trim();
    if (line === "") continue;
    const location = `line ${lineNumber}`;
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      const problem = { kind: "malformed" as const, message: "not a JSON line", location };
      if (verifier) verifier.report(problem);
      else early.push(problem);
      continue;
    }
    if (!verifier) {
      if (record.record !== "header" || record.format !== EXPORT_FORMAT) {
        early.push({
          kind: "malformed",
          message: `the first line is not a ${EXPORT_FORMAT} header`,
          location,
        });
        header = undefined;
      } else {
        header = record as unknown as ExportHeader;
      }
      const embedded = new Map<string, KeyObject>();
      for (const key of header?.public_keys ?? []) {
        try {
          embedded.set(key.key_id, publicKeyFromRaw(key.public_key));
        } catch {
          early.push({
            kind: "malformed",
            message: `the header's key ${key.key_id} is not an Ed25519 key`,
            location,
          });
        }
      }
      verifier = new ChainVerifier({
        publicKeys: options.publicKeys ?? embedded,
        fromGenesis: header?.first_seq === 1,
        requireSealed: true,
      });
      for (const problem of early) verifier.report(problem);
      if (!options.publicKeys) {
        verifier.warn(
          "signatures were checked against the keys inside the file: that proves the file is consistent, " +
            "not who made it; pass --public-key with the key from GET /audit/public-key",
        );
      }
      if (header) continue;
    }
    if (afterEnd) {
      verifier.report({ kind: "malformed", message: "a record follows the end record", location });
      continue;
    }
    const { record: kind, ...body } = record;
    if (kind === "event") {
      events++;
      verifier.addEvent(body, location);
    } else if (kind === "digest") {
      digests++;
      verifier.addDigest(body, location);
    } else if (kind === "end") {
      end = record as unknown as ExportEnd;
      afterEnd = true;
    } else {
      verifier.report({ kind: "malformed", message: `unknown record type ${String(kind)}`, location });
    }
  }

  verifier ??= new ChainVerifier({ publicKeys: options.publicKeys ?? new Map(), requireSealed: true });
  if (lineNumber === 0) verifier.report({ kind: "incomplete_export", message: "the file is empty" });
  if (!end) {
    verifier.report({
      kind: "incomplete_export",
      message: `the file has no end record after line ${lineNumber}: it was cut short`,
    });
  } else if (end.events !== events || end.digests !== digests) {
    verifier.report({
      kind: "incomplete_export",
      message: `the end record counts ${end.events} events and ${end.digests} digests; the file holds ${events} and ${digests}`,
    });
  }
  const held = verifier.range;
  if (header && (held.first !== header.first_seq || held.last !== header.last_seq)) {
    verifier.report({
      kind: "incomplete_export",
      message: `the header announces seq ${header.first_seq}..${header.last_seq}; the file holds ${held.first}..${held.last}`,
    });
  }
  return {
    ...verifier.result(),
    trusted_keys: options.publicKeys !== undefined,
    header: header
      ? {
          chain: header.chain,
          environment: header.environment,
          exported_at: header.exported_at,
          from: header.from,
          to: header.to,
        }
      : null,
  };
}

export { parsePublicKeys };
