import {
  type DynamoDBDocumentClient,
  TransactWriteCommand,
  type TransactWriteCommandInput,
} from "@aws-sdk/lib-dynamodb";
import { ServiceUnavailableError } from "../shared/errors";

export type TransactItem = NonNullable<TransactWriteCommandInput["TransactItems"]>[number];

/**
 * What a use case says happened; the audit trail turns it into a hash-chained event written in the
 * same transaction as the change (no change without its record). Never put secrets in `details`.
 */
export interface AuditDraft {
  /** Dotted verb, e.g. `job.create`, `session.create`, `agent.revoke`. */
  action: string;
  actor: { type: "user" | "agent" | "system" | "anonymous"; id: string; ip?: string; user_agent?: string };
  target: { type: string; id: string };
  outcome: "success" | "denied" | "error";
  request_id?: string;
  details?: Record<string, unknown>;
}

/**
 * Writes that must happen together. Repositories add their puts/updates (each with the domain error to
 * raise when its condition fails); `commit` sends them as one TransactWriteItems, so a refused condition
 * anywhere leaves nothing changed. The audit trail adds its record to the same transaction.
 */
export class WriteTransaction {
  readonly items: TransactItem[] = [];
  private readonly failures: ((() => Error) | undefined)[] = [];
  /** Run after a successful commit (e.g. emitting log lines for what was written). */
  readonly afterCommit: (() => void)[] = [];

  /** Audit events to write with this transaction (see AuditDraft). */
  readonly auditDrafts: AuditDraft[] = [];

  audit(draft: AuditDraft): this {
    this.auditDrafts.push(draft);
    return this;
  }

  add(item: TransactItem, onConditionFailed?: () => Error): this {
    this.items.push(item);
    this.failures.push(onConditionFailed);
    return this;
  }

  get size(): number {
    return this.items.length;
  }

  /** The error declared for the first item whose condition failed, if any. */
  errorFor(reasons: readonly { Code?: string }[]): Error | undefined {
    for (const [index, reason] of reasons.entries()) {
      if (reason.Code === "ConditionalCheckFailed") {
        const failure = this.failures[index];
        if (failure) return failure();
      }
    }
    return undefined;
  }
}

const MAX_CONFLICT_RETRIES = 3;

/** What commits a transaction that carries audit drafts (store/audit-chain.ts). */
export interface AuditAppender {
  commit(tx: WriteTransaction): Promise<unknown>;
}

/**
 * Sends the transaction as one TransactWriteItems. With audit drafts it goes through the audit chain,
 * which adds the events and the head move to the same transaction; without a chain such a transaction
 * is refused rather than committed without its record.
 */
export async function commitTransaction(
  doc: DynamoDBDocumentClient,
  tx: WriteTransaction,
  audit?: AuditAppender,
): Promise<void> {
  if (tx.auditDrafts.length > 0) {
    if (!audit) throw new Error("a transaction with audit drafts needs the audit chain to commit it");
    await audit.commit(tx);
    return;
  }
  if (tx.size === 0) return;
  for (let attempt = 0; ; attempt++) {
    try {
      await doc.send(new TransactWriteCommand({ TransactItems: tx.items }));
      for (const callback of tx.afterCommit) callback();
      return;
    } catch (error) {
      if (!isTransactionCanceled(error)) throw error;
      const reasons = error.CancellationReasons ?? [];
      const declared = tx.errorFor(reasons);
      if (declared) throw declared;
      const conflict = reasons.some((reason) => reason.Code === "TransactionConflict");
      if (conflict && attempt < MAX_CONFLICT_RETRIES) {
        await new Promise((resolve) => setTimeout(resolve, 10 * 2 ** attempt + Math.random() * 10));
        continue;
      }
      if (conflict) throw new ServiceUnavailableError("the write conflicted with concurrent writes; retry");
      throw error;
    }
  }
}

/** A cancelled TransactWriteItems; with ReturnValuesOnConditionCheckFailure, reasons carry the item. */
export interface CanceledError extends Error {
  CancellationReasons?: { Code?: string; Message?: string; Item?: Record<string, unknown> }[];
}

export function isTransactionCanceled(error: unknown): error is CanceledError {
  return error instanceof Error && error.name === "TransactionCanceledException";
}

export function isConditionalCheckFailed(error: unknown): boolean {
  return error instanceof Error && error.name === "ConditionalCheckFailedException";
}
