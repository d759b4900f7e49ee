import { randomUUID } from "node:crypto";
import { type DynamoDBDocumentClient, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { ulid } from "ulid";
import type { AuditEvent } from "../domain/audit/audit-event";
import type { Logger } from "../logger";
import { ServiceUnavailableError } from "../shared/errors";
import { type AuditRepository, type ChainHead, headFromItem } from "./audit-repository";
import { isTransactionCanceled, type WriteTransaction } from "./transaction";

/** Where the next event goes; how it is hashed is the audit domain's business (`sealEvent`). */
export interface ChainPosition {
  seq: number;
  prevHash: string;
  time: string;
  eventId: string;
  environment: string;
}

/** How events are sealed, given by the audit domain: the store only writes them with conditions. */
export interface AuditSealing {
  /** `prev_hash` of the first event. */
  genesisHash: string;
  /** The chain's name when none is given. */
  defaultChain: string;
  seal(draft: WriteTransaction["auditDrafts"][number], position: ChainPosition): AuditEvent;
}

export interface AuditChainOptions {
  sealing: AuditSealing;
  /** Written into every event. */
  environment: string;
  clock?: () => Date;
  /** Every committed event is also one JSON log line here (CloudWatch Logs, SIEM forwarding). */
  logger?: Logger;
  chain?: string;
  /** Attempts when other writers keep moving the head first. @default 100 */
  maxAttempts?: number;
}

/** Lost this many times in a row, a writer claims the next turn. */
const TURN_AFTER_ATTEMPTS = 16;
/** How long a claimed turn holds if its writer vanishes (others wait at most this long). */
const TURN_HOLD_MILLISECONDS = 1_000;

/**
 * Turns a transaction's audit drafts into the next events of the hash chain and commits them in the
 * same TransactWriteItems as the change (decision 003):
 *
 * 1. take the chain head (cached from this process's last append, else read consistently);
 * 2. seal the events on it (seq, prev_hash, hash) and add their puts plus a conditional head move;
 * 3. if another writer moved the head first, the whole transaction is refused: take the head DynamoDB
 *    returned with the refusal and try again after a jittered pause, a bounded number of times.
 *
 * Appends from one process queue behind each other, so they never race each other for the head; other
 * processes (Lambda instances) are kept off by the head condition. Whatever the audit part cannot do
 * becomes a 503 with nothing changed: no change without its record.
 */
export class AuditChain {
  private head: ChainHead | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly chain: string;
  private readonly clock: () => Date;
  private readonly maxAttempts: number;
  /** Identifies this process's appends when it claims a turn. */
  private readonly writer = randomUUID();

  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly repository: AuditRepository,
    private readonly options: AuditChainOptions,
  ) {
    this.chain = options.chain ?? options.sealing.defaultChain;
    this.clock = options.clock ?? (() => new Date());
    this.maxAttempts = options.maxAttempts ?? 100;
  }

  /** Commits the transaction with its audit events; resolves to the events written. */
  commit(tx: WriteTransaction): Promise<AuditEvent[]> {
    const run = () => this.append(tx);
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Forgets the cached head (the next append reads it). */
  forgetHead(): void {
    this.head = undefined;
  }

  private async append(tx: WriteTransaction): Promise<AuditEvent[]> {
    let head = this.head ?? (await this.readHead());
    let holdingTurn = false;
    for (let attempt = 1; ; attempt++) {
      const events = this.seal(tx, head);
      const auditItems = this.repository.appendItems(this.chain, events, head, {
        id: this.writer,
        now: Date.now(),
      });
      try {
        await this.doc.send(new TransactWriteCommand({ TransactItems: [...tx.items, ...auditItems] }));
      } catch (error) {
        this.head = undefined;
        const giveUp = async (reason: Error): Promise<never> => {
          if (holdingTurn) await this.repository.releaseTurn(this.chain, this.writer).catch(() => undefined);
          throw reason;
        };
        if (!isTransactionCanceled(error)) return giveUp(this.unavailable(error));
        const reasons = error.CancellationReasons ?? [];
        const declared = tx.errorFor(reasons);
        if (declared) return giveUp(declared);
        const auditReasons = reasons.slice(tx.items.length);
        const headReason = auditReasons.at(-1);
        const headMoved = headReason?.Code === "ConditionalCheckFailed";
        const seqTaken = auditReasons.slice(0, -1).some((reason) => reason.Code === "ConditionalCheckFailed");
        const conflict = reasons.some((reason) => reason.Code === "TransactionConflict");
        if (seqTaken && !headMoved) {
          // Events exist past the head: the head was rolled back or an event was planted. Appending
          // anyway would hide that; refuse until someone looks (GET /audit/verify).
          this.options.logger?.error(
            { chain: this.chain, head_seq: head.seq },
            "audit chain head is behind its events; refusing to append",
          );
          return giveUp(
            new ServiceUnavailableError("the audit chain needs attention; nothing was changed", 30),
          );
        }
        if (!headMoved && !conflict) return giveUp(this.unavailable(error));
        if (attempt >= this.maxAttempts) {
          this.options.logger?.warn({ chain: this.chain, attempts: attempt }, "audit chain head stayed busy");
          return giveUp(new ServiceUnavailableError("the audit trail is busy; nothing was changed, retry"));
        }
        const returned = headMoved && headReason?.Item ? headFromItem(headReason.Item) : undefined;
        if (attempt >= TURN_AFTER_ATTEMPTS) {
          // Lost too often (a bigger transaction loses to small ones): take the next turn, so the
          // others wait for this writer instead of starving it.
          const taken = await this.takeTurn();
          if (taken) {
            holdingTurn = true;
            head = taken;
            continue;
          }
        }
        const othersTurn =
          returned?.turn && returned.turn.writer !== this.writer && returned.turn.until > Date.now();
        // The refusal carries the head as it is now: retry on it at once, and only spread out (with
        // jitter) when that keeps losing, the head has to be read again, or another writer has the turn.
        if (othersTurn) await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 10));
        else if (!returned || attempt > 2) await pause(attempt);
        head = returned ?? (await this.readHead());
        continue;
      }
      const last = events.at(-1)!;
      this.head = { seq: last.seq, hash: last.hash, time: last.time };
      const logger = this.options.logger;
      if (logger) {
        for (const event of events)
          tx.afterCommit.push(() => logger.info({ audit_event: event }, "audit event"));
      }
      for (const callback of tx.afterCommit) callback();
      return events;
    }
  }

  private async takeTurn(): Promise<ChainHead | undefined> {
    try {
      return await this.repository.takeTurn(this.chain, this.writer, Date.now(), TURN_HOLD_MILLISECONDS);
    } catch (error) {
      throw this.unavailable(error);
    }
  }

  private seal(tx: WriteTransaction, head: ChainHead): AuditEvent[] {
    const now = this.clock().toISOString();
    // Time never goes backwards along the chain, whatever the writers' clocks say.
    const time = head.time !== null && head.time > now ? head.time : now;
    const events: AuditEvent[] = [];
    let previous = head;
    for (const draft of tx.auditDrafts) {
      const event = this.options.sealing.seal(draft, {
        seq: previous.seq + 1,
        prevHash: previous.hash,
        time,
        eventId: ulid(Date.parse(time)),
        environment: this.options.environment,
      });
      events.push(event);
      previous = { seq: event.seq, hash: event.hash, time };
    }
    return events;
  }

  private async readHead(): Promise<ChainHead> {
    try {
      return (
        (await this.repository.head(this.chain)) ?? {
          seq: 0,
          hash: this.options.sealing.genesisHash,
          time: null,
        }
      );
    } catch (error) {
      throw this.unavailable(error);
    }
  }

  private unavailable(error: unknown): ServiceUnavailableError {
    this.options.logger?.warn(
      { chain: this.chain, err: { name: (error as Error)?.name, message: (error as Error)?.message } },
      "audit record could not be written",
    );
    const unavailable = new ServiceUnavailableError(
      "the audit record could not be written; nothing was changed",
    );
    unavailable.cause = error;
    return unavailable;
  }
}

/**
 * Full jitter in a window that grows to 25 ms and no further: contenders spread out instead of
 * colliding again in step, yet a writer that lost a few times is not pushed behind newcomers.
 */
function pause(attempt: number): Promise<void> {
  const ceiling = Math.min(25, 2 ** attempt);
  return new Promise((resolve) => setTimeout(resolve, Math.random() * ceiling));
}
