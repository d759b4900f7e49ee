import type { Logger } from "../../logger";
import type { AuditListQuery } from "../../store/audit-repository";
import type { Store } from "../../store/store";
import type { AuditDraft } from "../../store/transaction";
import { auditActor, type Clock, type RequestContext } from "../principal";
import { settings } from "../settings";
import {
  AUDIT_SCHEMA_VERSION,
  type AuditDigest,
  type AuditEvent,
  type DigestPayload,
  GENESIS_HASH,
  MAIN_CHAIN,
} from "./audit-event";
import {
  type ChainRecord,
  EXPORT_FORMAT,
  type ExportHeader,
  exportLine,
  HASH_RULE,
  mergeChainRecords,
  signExportEnd,
} from "./audit-export";
import { type AuditSigningKeys, signDigest } from "./audit-signing";
import { ChainVerifier, type VerificationReport } from "./chain-verifier";
import { type DeniedRequest, DeniedRequests } from "./denied-requests";

export interface AuditServiceOptions {
  environment: string;
  clock: Clock;
  logger?: Logger;
  /** @default settings.audit.digestIntervalSeconds */
  digestIntervalSeconds?: number;
}

export interface AuditPeriod {
  /** ISO 8601, inclusive. */
  from?: string;
  to?: string;
}

export type AuditEventsQuery = Omit<AuditListQuery, "chain">;

export interface StoreVerification extends VerificationReport {
  /** Whether this check itself made it into the chain (it cannot when the chain refuses appends). */
  recorded: boolean;
  range: { from_seq: number; to_seq: number } | null;
  head: { seq: number; hash: string } | null;
  latest_digest: { digest_seq: number; head_seq: number; time: string } | null;
}

const DIGEST_ATTEMPTS = 5;

/**
 * The audit trail's use cases: reading, exporting and verifying the chain, signing digests of its
 * head, and recording what is audited without a change of state (security-relevant reads, refusals).
 * Changes record themselves: each use case adds its AuditDraft to its own transaction.
 */
export class AuditService {
  readonly denied: DeniedRequests;
  private readonly chain = MAIN_CHAIN;
  private readonly intervalSeconds: number;

  constructor(
    private readonly store: Store,
    readonly keys: AuditSigningKeys,
    private readonly options: AuditServiceOptions,
  ) {
    this.intervalSeconds = options.digestIntervalSeconds ?? settings.audit.digestIntervalSeconds;
    this.denied = new DeniedRequests({
      windowSeconds: settings.audit.deniedWindowSeconds,
      maxKeys: settings.audit.deniedMaxKeys,
      now: options.clock,
      write: async (drafts) => {
        const tx = this.store.transaction();
        for (const draft of drafts) tx.audit(draft);
        await this.store.commit(tx);
      },
      correlate: (value) => this.keys.correlate(value),
      onError: (error) =>
        options.logger?.warn(
          { err: { name: (error as Error)?.name } },
          "denied requests kept for the next window",
        ),
    });
  }

  /**
   * Records an event that has no change of state (a secret read, an export) and resolves once it is
   * in the chain. Fails closed: when it cannot be recorded the caller must not go on (Vault's rule).
   */
  async record(draft: AuditDraft): Promise<AuditEvent> {
    const tx = this.store.transaction();
    tx.audit(draft);
    const [event] = await this.store.auditChain.commit(tx);
    return event!;
  }

  recordDenied(request: DeniedRequest): void {
    this.denied.record(request);
  }

  async list(query: AuditEventsQuery): Promise<{ events: AuditEvent[]; next_cursor: string | null }> {
    const page = await this.store.audit.list({ ...query, chain: this.chain });
    return { events: page.items, next_cursor: page.nextCursor };
  }

  /** The public keys digests are signed with (current first), as `GET /audit/public-key` serves them. */
  async publicKeys() {
    const keys = await this.keys.publicKeys();
    const current = keys[0]!;
    return { ...current, keys };
  }

  /**
   * Signs the chain head: seq, hash, time and the previous digest, with the current Ed25519 key. Made
   * every interval even when nothing happened, so a deleted tail cannot hide behind a quiet period.
   */
  async createDigest(reason: DigestPayload["reason"] = "on_demand"): Promise<AuditDigest> {
    const signer = await this.keys.signer();
    for (let attempt = 1; ; attempt++) {
      // The previous digest first, then the head: the head read is then at least as new as the one the
      // previous digest signed, so digests never sign a head behind their predecessor's.
      const previous = await this.store.audit.latestDigest(this.chain);
      const head = await this.store.audit.head(this.chain);
      const now = this.options.clock().toISOString();
      const payload: DigestPayload = {
        schema_version: AUDIT_SCHEMA_VERSION,
        chain: this.chain,
        digest_seq: (previous?.digest_seq ?? 0) + 1,
        time: previous && previous.time > now ? previous.time : now,
        environment: this.options.environment,
        head_seq: head?.seq ?? 0,
        head_hash: head?.hash ?? GENESIS_HASH,
        head_time: head?.time ?? null,
        previous_digest_hash: previous?.digest_hash ?? GENESIS_HASH,
        key_id: signer.keyId,
        reason,
        interval_seconds: this.intervalSeconds,
      };
      const digest = signDigest(payload, signer);
      if (await this.store.audit.putDigest(this.chain, digest)) {
        this.options.logger?.info({ audit_digest: digest }, "audit digest");
        return digest;
      }
      // Another process signed first: sign again on top of its digest (and the head it saw).
      if (attempt >= DIGEST_ATTEMPTS)
        throw new Error("could not store an audit digest: digest_seq kept moving");
    }
  }

  /** `POST /audit/digests`: the request is recorded first, so the digest it asks for signs it too. */
  async sealOnDemand(context: RequestContext): Promise<AuditDigest> {
    await this.record({
      action: "audit.digest.create",
      actor: auditActor(context),
      target: { type: "audit_chain", id: this.chain },
      outcome: "success",
      request_id: context.requestId,
    });
    return this.createDigest("on_demand");
  }

  /** Streams an export (JSON Lines, see audit-export.ts), sealed by a digest and recorded in the chain. */
  async *exportLines(period: AuditPeriod, context: RequestContext): AsyncGenerator<string> {
    await this.record({
      action: "audit.export",
      actor: auditActor(context),
      target: { type: "audit_chain", id: this.chain },
      outcome: "success",
      request_id: context.requestId,
      details: { format: "jsonl", from: period.from ?? null, to: period.to ?? null },
    });
    const range = await this.seqRange(period);
    let digestRange: { from: number; to: number } | undefined;
    let lastSeq: number | null = null;
    if (!range && period.from === undefined && period.to === undefined) {
      // Nothing to export, yet digests say there was: let the verifier see them and say so.
      const latest = await this.store.audit.latestDigest(this.chain);
      if (latest) digestRange = { from: 1, to: latest.digest_seq };
    }
    if (range) {
      const seal =
        (await this.store.audit.firstDigestCovering(this.chain, range.to)) ??
        (await this.createDigest("export"));
      lastSeq = seal.head_seq;
      const firstCovering = await this.store.audit.firstDigestCovering(this.chain, range.from);
      // From the digest just before the period (it anchors the first event) to the seal.
      digestRange = {
        from: Math.max(1, (firstCovering?.digest_seq ?? seal.digest_seq) - 1),
        to: seal.digest_seq,
      };
    }
    const header: ExportHeader = {
      record: "header",
      format: EXPORT_FORMAT,
      chain: this.chain,
      environment: this.options.environment,
      exported_at: this.options.clock().toISOString(),
      from: period.from ?? null,
      to: period.to ?? null,
      first_seq: range ? range.from : null,
      last_seq: lastSeq,
      canonicalization: "RFC 8785 JSON Canonicalization Scheme (JCS)",
      hash_rule: HASH_RULE,
      public_keys: await this.keys.publicKeys(),
    };
    yield exportLine(header);
    let events = 0;
    let digests = 0;
    let last: AuditEvent | undefined;
    if (digestRange) {
      const seqs = range && lastSeq !== null ? { from: range.from, to: lastSeq } : { from: 1, to: 0 };
      for await (const record of this.records(seqs.from, seqs.to, digestRange.from, digestRange.to)) {
        if (record.kind === "event") {
          events++;
          last = record.event;
          yield exportLine({ record: "event", ...record.event });
        } else {
          digests++;
          yield exportLine({ record: "digest", ...record.digest });
        }
      }
    }
    yield exportLine(signExportEnd(header, { events, digests, last }, await this.keys.signer()));
  }

  /**
   * Re-verifies the chain as stored: every hash and link in the period, every digest's signature and
   * the head it signs, and (for a check up to now) that the head item agrees with the last event.
   */
  async verify(period: AuditPeriod, context: RequestContext): Promise<StoreVerification> {
    // Recorded when possible; a chain that refuses appends (a planted event, a rolled-back head) is
    // exactly when this check must still answer.
    const recorded = await this.record({
      action: "audit.verify",
      actor: auditActor(context),
      target: { type: "audit_chain", id: this.chain },
      outcome: "success",
      request_id: context.requestId,
      details: { from: period.from ?? null, to: period.to ?? null },
    }).then(
      () => true,
      (error: unknown) => {
        this.options.logger?.warn({ request_id: context.requestId, err: error }, "audit.verify not recorded");
        return false;
      },
    );
    const [head, latestDigest, publicKeys] = await Promise.all([
      this.store.audit.head(this.chain),
      this.store.audit.latestDigest(this.chain),
      this.keys.verificationKeys(),
    ]);
    const toTheEnd = period.to === undefined;
    // Up to now, the events are read to the last one stored, not to the head: events planted past the
    // head, or a head rolled back or deleted, must show.
    const fromSeq =
      period.from === undefined ? 1 : await this.store.audit.seqAt(this.chain, period.from, "first-after");
    const toSeq = toTheEnd ? undefined : await this.store.audit.seqAt(this.chain, period.to!, "last-before");
    const empty = fromSeq === undefined || (toSeq !== undefined && toSeq < fromSeq);
    const anchorEvent =
      !empty && fromSeq > 1 ? await this.store.audit.eventAt(this.chain, fromSeq - 1) : undefined;
    const verifier = new ChainVerifier({
      publicKeys,
      fromGenesis: fromSeq === 1,
      anchor: anchorEvent ? { seq: anchorEvent.seq, hash: anchorEvent.hash } : undefined,
    });
    const latestDigestSeq = latestDigest?.digest_seq ?? 0;
    if (!empty) {
      const firstCovering = await this.store.audit.firstDigestCovering(this.chain, fromSeq);
      const digestFrom = Math.max(1, (firstCovering?.digest_seq ?? latestDigestSeq + 1) - 1);
      const digestTo =
        toSeq === undefined
          ? latestDigestSeq
          : ((await this.store.audit.firstDigestCovering(this.chain, toSeq + 1))?.digest_seq ??
              latestDigestSeq + 1) - 1;
      for await (const record of this.records(fromSeq, toSeq, digestFrom, digestTo)) {
        if (record.kind === "event") verifier.addEvent(record.event, `seq ${record.event.seq}`);
        else verifier.addDigest(record.digest, `digest ${record.digest.digest_seq}`);
      }
    } else if (toTheEnd && period.from === undefined) {
      for await (const record of this.records(1, 0, 1, latestDigestSeq)) {
        if (record.kind === "digest") verifier.addDigest(record.digest, `digest ${record.digest.digest_seq}`);
      }
    }
    if (toTheEnd && (period.from === undefined || !empty)) {
      const { last, lastHash } = verifier.range;
      if ((head?.seq ?? 0) !== (last ?? 0)) {
        verifier.report({
          kind: "head_mismatch",
          message: `the chain head says seq ${head?.seq ?? 0} but the last stored event is seq ${last ?? 0}`,
          seq: last ?? undefined,
        });
      } else if (head && last !== null && head.hash !== lastHash) {
        verifier.report({
          kind: "head_mismatch",
          message: `the chain head's hash is not the hash of seq ${last}`,
          seq: last,
        });
      }
    }
    if (toTheEnd) await this.checkFreshness(verifier, latestDigest, head?.seq ?? 0);
    const report = verifier.result();
    return {
      ...report,
      recorded,
      range: empty ? null : { from_seq: fromSeq, to_seq: toSeq ?? report.last_seq ?? fromSeq },
      head: head ? { seq: head.seq, hash: head.hash } : null,
      latest_digest: latestDigest
        ? { digest_seq: latestDigest.digest_seq, head_seq: latestDigest.head_seq, time: latestDigest.time }
        : null,
    };
  }

  /**
   * Digests are made every interval, quiet ones too, so the newest one is never older than the interval
   * plus a margin. An older one means digests stopped, or the tail was deleted together with the digests
   * that signed it (which no link check can see): reported, not only warned about.
   */
  private async checkFreshness(
    verifier: ChainVerifier,
    latestDigest: AuditDigest | undefined,
    headSeq: number,
  ): Promise<void> {
    const allowedSeconds = this.intervalSeconds + settings.audit.digestMarginSeconds;
    const now = this.options.clock().getTime();
    const since =
      latestDigest?.time ?? (headSeq > 0 ? (await this.store.audit.eventAt(this.chain, 1))?.time : undefined);
    if (since === undefined) return;
    const ageSeconds = Math.round((now - Date.parse(since)) / 1000);
    if (ageSeconds <= allowedSeconds) return;
    verifier.report({
      kind: "stale_digest",
      message: latestDigest
        ? `the newest digest (${latestDigest.digest_seq}, ${latestDigest.time}) is ${ageSeconds} s old; ` +
          `digests are made every ${this.intervalSeconds} s: the tail may have been deleted with its digests, ` +
          "or digests stopped"
        : `no digest signs the chain, and its first event is ${ageSeconds} s old (digests every ${this.intervalSeconds} s)`,
      ...(latestDigest ? { digest_seq: latestDigest.digest_seq } : {}),
    });
  }

  /** Flushes counted refusals (the window timer does this on its own). */
  async flush(): Promise<void> {
    await this.denied.flush();
  }

  /** The seqs of the first and last events of a period; undefined when it holds none. */
  private async seqRange(period: AuditPeriod): Promise<{ from: number; to: number } | undefined> {
    const head = await this.store.audit.head(this.chain);
    if (!head || head.seq === 0) return undefined;
    const from =
      period.from === undefined ? 1 : await this.store.audit.seqAt(this.chain, period.from, "first-after");
    const to =
      period.to === undefined ? head.seq : await this.store.audit.seqAt(this.chain, period.to, "last-before");
    if (from === undefined || to === undefined || from > to) return undefined;
    return { from, to };
  }

  /** Events `fromSeq..toSeq` (to the end when undefined) and digests `fromDigest..toDigest`, in file order. */
  private records(
    fromSeq: number,
    toSeq: number | undefined,
    fromDigest: number,
    toDigest: number,
  ): AsyncGenerator<ChainRecord> {
    const events =
      toSeq !== undefined && toSeq < fromSeq ? [] : this.store.audit.events(this.chain, fromSeq, toSeq);
    const digests = toDigest >= fromDigest ? this.store.audit.digests(this.chain, fromDigest, toDigest) : [];
    return mergeChainRecords(events, digests);
  }
}

/** The scheduled digest (EventBridge on AWS, an in-process timer locally). */
export async function runAuditDigest(runtime: { audit: AuditService }): Promise<AuditDigest> {
  await runtime.audit.flush();
  return runtime.audit.createDigest("interval");
}
