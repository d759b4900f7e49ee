import { createPublicKey, type KeyObject } from "node:crypto";
import {
  AUDIT_SCHEMA_VERSION,
  type AuditDigest,
  type AuditEvent,
  GENESIS_HASH,
  MAIN_CHAIN,
  sealEvent,
} from "../../runtime/src/domain/audit/audit-event";
import {
  EXPORT_FORMAT,
  type ExportHeader,
  exportLine,
  HASH_RULE,
  mergeChainRecords,
  signExportEnd,
} from "../../runtime/src/domain/audit/audit-export";
import {
  type AuditPublicKey,
  type AuditSigner,
  describePublicKey,
  generateSigningKeySecret,
  signDigest,
  signerFromSecret,
} from "../../runtime/src/domain/audit/audit-signing";

/** A signing key with its public half, as a test or the bench holds it. */
export interface TestSigningKey {
  signer: AuditSigner;
  publicKey: AuditPublicKey;
  /** Trusted keys for the verifier: just this one. */
  trusted: Map<string, KeyObject>;
}

export function newSigningKey(): TestSigningKey {
  const signer = signerFromSecret(generateSigningKeySecret());
  const publicKey = createPublicKey(signer.privateKey);
  return { signer, publicKey: describePublicKey(publicKey), trusted: new Map([[signer.keyId, publicKey]]) };
}

export interface SyntheticChain {
  events: AuditEvent[];
  digests: AuditDigest[];
  key: TestSigningKey;
}

/**
 * A chain built with the runtime's own sealing and signing, without a database: `count` events, a
 * digest every `digestEvery` events and one at the end (so the whole chain is sealed).
 */
export function buildChain(
  count: number,
  options: { digestEvery?: number; key?: TestSigningKey; start?: Date } = {},
): SyntheticChain {
  const key = options.key ?? newSigningKey();
  const digestEvery = options.digestEvery ?? 10;
  const start = (options.start ?? new Date("2026-01-01T00:00:00.000Z")).getTime();
  const events: AuditEvent[] = [];
  const digests: AuditDigest[] = [];
  let previous = GENESIS_HASH;
  for (let seq = 1; seq <= count; seq++) {
    const event = sealEvent(
      {
        action: seq % 3 === 0 ? "job.create" : "agent.config.read",
        actor: { type: "user", id: `user-${seq % 7}`, ip: "192.0.2.10", user_agent: "test" },
        target: { type: "job", id: `job_${String(seq).padStart(26, "0")}` },
        outcome: "success",
        request_id: `req-${seq}`,
        details: { git_ref: "main", tags: ["linux", "x64"], attempt: seq % 4, ratio: 0.25 },
      },
      {
        seq,
        prevHash: previous,
        time: new Date(start + seq * 1000).toISOString(),
        eventId: `01TEST${String(seq).padStart(20, "0")}`,
        environment: "test",
      },
    );
    events.push(event);
    previous = event.hash;
    if (seq % digestEvery === 0 || seq === count) digests.push(digestOf(event, digests.at(-1), key.signer));
  }
  return { events, digests, key };
}

export function digestOf(
  head: AuditEvent,
  previous: AuditDigest | undefined,
  signer: AuditSigner,
): AuditDigest {
  return signDigest(
    {
      schema_version: AUDIT_SCHEMA_VERSION,
      chain: MAIN_CHAIN,
      digest_seq: (previous?.digest_seq ?? 0) + 1,
      time: head.time,
      environment: head.environment,
      head_seq: head.seq,
      head_hash: head.hash,
      head_time: head.time,
      previous_digest_hash: previous?.digest_hash ?? GENESIS_HASH,
      key_id: signer.keyId,
      reason: "interval",
      interval_seconds: 3600,
    },
    signer,
  );
}

/** The export file of a chain, as GET /audit/export writes it. */
export async function exportFile(chain: Pick<SyntheticChain, "events" | "digests" | "key">): Promise<string> {
  const header: ExportHeader = {
    record: "header",
    format: EXPORT_FORMAT,
    chain: MAIN_CHAIN,
    environment: "test",
    exported_at: new Date().toISOString(),
    from: null,
    to: null,
    first_seq: chain.events[0]?.seq ?? null,
    last_seq: chain.events.at(-1)?.seq ?? null,
    canonicalization: "RFC 8785 JSON Canonicalization Scheme (JCS)",
    hash_rule: HASH_RULE,
    public_keys: [chain.key.publicKey],
  };
  const parts = [exportLine(header)];
  let events = 0;
  let digests = 0;
  for await (const record of mergeChainRecords(chain.events, chain.digests)) {
    if (record.kind === "event") {
      events++;
      parts.push(exportLine({ record: "event", ...record.event }));
    } else {
      digests++;
      parts.push(exportLine({ record: "digest", ...record.digest }));
    }
  }
  parts.push(
    exportLine(signExportEnd(header, { events, digests, last: chain.events.at(-1) }, chain.key.signer)),
  );
  return parts.join("");
}

/** The lines of an export file, for editing in tamper tests. */
export const linesOf = (text: string) => text.split("\n").filter((line) => line !== "");

/** Index of the line holding the event with this seq. */
export function eventLine(lines: string[], seq: number): number {
  const index = lines.findIndex((line) => {
    const record = JSON.parse(line) as { record: string; seq?: number };
    return record.record === "event" && record.seq === seq;
  });
  if (index < 0) throw new Error(`no event ${seq} in the file`);
  return index;
}
