import { createHash, type KeyObject } from "node:crypto";
import { type AuditDigest, type AuditEvent, canonicalJson, toJsonValue } from "./audit-event";
import {
  type AuditPublicKey,
  type AuditSigner,
  parsePublicKeys,
  publicKeyFromRaw,
  signRecord,
  verifyRecordSignature,
} from "./audit-signing";
import { ChainVerifier, type VerificationReport } from "./chain-verifier";

/**
 * The export file: JSON Lines, one record per line, each with a `record` member saying what it is.
 *
 *   {"record":"header", "format":"hybrid-cicd-audit-export/1", ...}   first line
 *   {"record":"event", ...the event, exactly as hashed...}             seq order
 *   {"record":"digest", ...the signed digest...}                       right after the event it signs
 *   {"record":"end", "header_hash":..., "events":N, "digests":M, ..., "signature":...}   last line
 *
 * Every event is followed, sooner or later, by a digest signing it (the export is sealed before it is
 * written), so the whole file verifies offline with the public key alone. The end record is signed
 * with the audit key over the header's hash, the range, the counts and the last hash (decision 013):
 * a file cut at an earlier digest, with its header and counts edited to match, no longer verifies, and
 * the header's environment, period and export time are facts the signature vouches for.
 */

/** Version 2 has the signed end record; version 1 files (unsigned end) are refused. */
export const EXPORT_FORMAT = "hybrid-cicd-audit-export/2";

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

/** What the end record signs: everything but its own signature. */
export interface ExportEndPayload {
  record: "end";
  /** SHA-256 (hex) of the header line's JCS form. */
  header_hash: string;
  events: number;
  digests: number;
  first_seq: number | null;
  last_seq: number | null;
  last_hash: string | null;
  /** The audit key that signed this record (the digests' key). */
  key_id: string;
}

export interface ExportEnd extends ExportEndPayload {
  /** Ed25519 over the JCS form of the payload, base64url. */
  signature: string;
}

/** The hash the end record binds the header with (of the header exactly as the file carries it). */
export function exportHeaderHash(header: unknown): string {
  return createHash("sha256")
    .update(canonicalJson(toJsonValue(header)), "utf8")
    .digest("hex");
}

/** The signed last line of an export. */
export function signExportEnd(
  header: ExportHeader,
  held: { events: number; digests: number; last: AuditEvent | undefined },
  signer: AuditSigner,
): ExportEnd {
  const payload: ExportEndPayload = {
    record: "end",
    header_hash: exportHeaderHash(header),
    events: held.events,
    digests: held.digests,
    first_seq: header.first_seq,
    last_seq: held.last?.seq ?? null,
    last_hash: held.last?.hash ?? null,
    key_id: signer.keyId,
  };
  return { ...payload, signature: signRecord(payload, signer) };
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
  let headerHash: string | undefined;
  let end: ExportEnd | undefined;
  let endLocation = "";
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
        headerHash = exportHeaderHash(record);
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
      endLocation = location;
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
  } else {
    checkEndSignature(end, endLocation, options.publicKeys ?? embeddedKeys(header), verifier);
    if (end.events !== events || end.digests !== digests) {
      verifier.report({
        kind: "incomplete_export",
        message: `the end record counts ${end.events} events and ${end.digests} digests; the file holds ${events} and ${digests}`,
        location: endLocation,
      });
    }
  }
  const held = verifier.range;
  if (end && headerHash !== undefined && end.header_hash !== headerHash) {
    verifier.report({
      kind: "export_altered",
      message: "the header is not the one the end record signs: its environment, period or range was changed",
      location: "line 1",
    });
  }
  if (
    end &&
    (end.last_seq !== held.last || end.last_hash !== held.lastHash || end.first_seq !== held.first)
  ) {
    verifier.report({
      kind: "incomplete_export",
      message: `the end record signs seq ${end.first_seq}..${end.last_seq}; the file holds ${held.first}..${held.last}`,
      location: endLocation,
    });
  }
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

function embeddedKeys(header: ExportHeader | undefined): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  for (const key of header?.public_keys ?? []) {
    try {
      keys.set(key.key_id, publicKeyFromRaw(key.public_key));
    } catch {
      // Reported when the header was read.
    }
  }
  return keys;
}

/** The end record must be signed by a trusted audit key, over exactly what it says. */
function checkEndSignature(
  end: ExportEnd,
  location: string,
  keys: ReadonlyMap<string, KeyObject>,
  verifier: ChainVerifier,
): void {
  const { signature, ...payload } = end;
  const key = typeof payload.key_id === "string" ? keys.get(payload.key_id) : undefined;
  if (typeof signature !== "string" || typeof payload.header_hash !== "string") {
    verifier.report({ kind: "export_altered", message: "the end record is not signed", location });
  } else if (!key) {
    verifier.report({
      kind: "unknown_key",
      message: `the end record is signed by ${String(payload.key_id)}, which is not a trusted key`,
      location,
    });
  } else if (!verifyRecordSignature(payload, signature, key)) {
    verifier.report({
      kind: "bad_signature",
      message: "the end record's signature does not verify: its counts, range or header hash were changed",
      location,
    });
  }
}

export { parsePublicKeys };
