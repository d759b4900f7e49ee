import { type DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { decodeCursor, encodeCursor, pageFrom } from "./cursor";
import { LISTING_PARTITION } from "./schema";
import { isConditionalCheckFailed, type WriteTransaction } from "./transaction";
import { type Change, updateParts } from "./update-expression";

export const jobStatuses = [
  "awaiting_approval",
  "queued",
  "running",
  "cancelling",
  "completed",
  "failed",
  "cancelled",
] as const;
export type JobStatus = (typeof jobStatuses)[number];

export const terminalJobStatuses = ["completed", "failed", "cancelled"] as const satisfies JobStatus[];
export type TerminalJobStatus = (typeof terminalJobStatuses)[number];

/** One claim of a job by an agent; the job keeps the whole history. */
export interface JobAttempt {
  attempt: number;
  agent_id: string;
  claimed_at: string;
  ended_at?: string;
  outcome?: TerminalJobStatus | "agent_lost";
}

export interface JobRecord {
  job_id: string;
  status: JobStatus;
  git_ref: string;
  repository?: string;
  command?: string;
  tags: string[];
  environment?: string;
  priority: number;
  timeout_seconds: number;
  /** `agent_lost`: how many times a job whose agent was lost may be queued again. */
  retry?: { agent_lost: number };
  created_at: string;
  updated_at: string;
  /** The requester (the audit actor id of whoever queued it). */
  created_by: string;
  listing: typeof LISTING_PARTITION;
  /** 0 until the first claim; each claim makes a new attempt. */
  attempt: number;
  attempts?: JobAttempt[];
  agent_id?: string;
  started_at?: string;
  finished_at?: string;
  exit_code?: number;
  error_message?: string;
  /** When the job last entered the queue (queue waits are measured from here). */
  queued_at?: string;
  /** Present only while queued (the sparse jobs-by-queue index). */
  queue_key?: string;
  queue_order?: string;
  /** Present only while an agent holds the job (the sparse jobs-by-lease index). */
  lease_partition?: typeof LEASE_PARTITION;
  lease_expires_at?: string;
  /** Attempts that ended because their agent was lost. */
  lost_attempts?: number;
  approved_by?: string;
  approved_at?: string;
  rejected_by?: string;
  rejected_at?: string;
  cancel_requested_by?: string;
  cancel_requested_at?: string;
  /** Bytes of log stored; the next chunk must start here. */
  log_size?: number;
  log_truncated?: boolean;
}

/** The constant partition of the jobs-by-lease index. */
export const LEASE_PARTITION = "leased";

/** The jobs-by-queue partition of a tag set: `q:` + the sorted tags, comma-separated. */
export function queueKeyOf(tags: readonly string[]): string {
  return `q:${[...new Set(tags)].sort().join(",")}`;
}

/**
 * The jobs-by-queue sort key: highest priority first (100 - priority, zero-padded), then oldest (job
 * ids are ULIDs, ordered by creation time), with the time the job entered the queue last, so queue
 * waits can be read from the index keys alone.
 */
export function queueOrderOf(priority: number, jobId: string, queuedAt: string): string {
  return `${String(100 - priority).padStart(3, "0")}#${jobId}#${queuedAt}`;
}

export function queuedAtOf(queueOrder: string): string {
  return queueOrder.split("#")[2] ?? "";
}

/** The attributes that put a job in the queue. */
export function queueAttributes(job: Pick<JobRecord, "job_id" | "tags" | "priority">, queuedAt: string) {
  return {
    queue_key: queueKeyOf(job.tags),
    queue_order: queueOrderOf(job.priority, job.job_id, queuedAt),
    queued_at: queuedAt,
  };
}

export interface QueuedJobKey {
  job_id: string;
  queue_key: string;
  queue_order: string;
}

/** Who may write for a leased job: the agent holding this attempt, while it runs or is being cancelled. */
export interface Fence {
  agentId: string;
  attempt: number;
}

const FENCE =
  "#attempt = :fence_attempt AND #agent_id = :fence_agent AND #status IN (:fence_running, :fence_cancelling)";

function fenceValues(fence: Fence) {
  return {
    ":fence_attempt": fence.attempt,
    ":fence_agent": fence.agentId,
    ":fence_running": "running",
    ":fence_cancelling": "cancelling",
  };
}

export class JobsRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  put(tx: WriteTransaction, record: JobRecord, onExists: () => Error): void {
    tx.add(
      { Put: { TableName: this.table, Item: record, ConditionExpression: "attribute_not_exists(job_id)" } },
      onExists,
    );
  }

  async get(jobId: string): Promise<JobRecord | undefined> {
    const result = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { job_id: jobId }, ConsistentRead: true }),
    );
    return result.Item as JobRecord | undefined;
  }

  private change(tx: WriteTransaction, jobId: string, change: Change, onRefused: () => Error): void {
    tx.add({ Update: { TableName: this.table, Key: { job_id: jobId }, ...updateParts(change) } }, onRefused);
  }

  /**
   * A new attempt for `agentId`: only if the job is still queued at the attempt that was read, so two
   * claimers can never both win the same attempt.
   */
  claim(
    tx: WriteTransaction,
    job: JobRecord,
    claim: { agentId: string; now: string; leaseExpiresAt: string },
    onLost: () => Error,
  ): number {
    const attempt = job.attempt + 1;
    this.change(
      tx,
      job.job_id,
      {
        set: {
          status: "running",
          attempt,
          agent_id: claim.agentId,
          started_at: claim.now,
          updated_at: claim.now,
          lease_partition: LEASE_PARTITION,
          lease_expires_at: claim.leaseExpiresAt,
        },
        setRaw: [
          "#attempts = list_append(if_not_exists(#attempts, :no_attempts), :attempt_entry)",
          "#log_size = if_not_exists(#log_size, :zero)",
        ],
        remove: ["queue_key", "queue_order", "finished_at", "exit_code", "error_message"],
        condition: "#status = :queued AND #attempt = :seen_attempt",
        values: {
          ":queued": "queued",
          ":seen_attempt": job.attempt,
          ":no_attempts": [],
          ":attempt_entry": [{ attempt, agent_id: claim.agentId, claimed_at: claim.now }],
          ":zero": 0,
        },
      },
      onLost,
    );
    return attempt;
  }

  /**
   * Extends the lease of a job the agent holds; undefined when it no longer does (superseded, finished,
   * someone else's). Not a lifecycle change, so not a transaction: it retries a write that collided with
   * a concurrent transaction on the same job.
   */
  async renewLease(
    jobId: string,
    fence: Fence,
    leaseExpiresAt: string,
    now: string,
  ): Promise<JobRecord | undefined> {
    const parts = updateParts({
      set: { lease_expires_at: leaseExpiresAt, updated_at: now },
      condition: FENCE,
      values: fenceValues(fence),
    });
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await this.doc.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { job_id: jobId },
            ...parts,
            ReturnValues: "ALL_NEW",
          }),
        );
        return result.Attributes as JobRecord;
      } catch (error) {
        if (isConditionalCheckFailed(error)) return undefined;
        const conflict = error instanceof Error && error.name === "TransactionConflictException";
        if (!conflict || attempt >= 3) throw error;
        await new Promise((resolve) => setTimeout(resolve, 10 * 2 ** attempt + Math.random() * 10));
      }
    }
  }

  /**
   * The job side of a log upload: the new size (only if the chunk starts exactly at the stored size,
   * when `offset` is given) and a longer lease, for the agent holding the attempt.
   */
  recordLog(
    tx: WriteTransaction,
    jobId: string,
    fence: Fence,
    log: { offset?: number; size: number; truncated: boolean; leaseExpiresAt: string; now: string },
    onRefused: () => Error,
  ): void {
    this.change(
      tx,
      jobId,
      {
        set: {
          log_size: log.size,
          lease_expires_at: log.leaseExpiresAt,
          updated_at: log.now,
          log_truncated: log.truncated ? true : undefined,
        },
        condition: log.offset === undefined ? FENCE : `${FENCE} AND #log_size = :offset`,
        values: { ...fenceValues(fence), ...(log.offset === undefined ? {} : { ":offset": log.offset }) },
      },
      onRefused,
    );
  }

  /** The agent's result for its attempt; the lease ends with it. */
  finish(
    tx: WriteTransaction,
    jobId: string,
    fence: Fence,
    result: { status: TerminalJobStatus; exitCode?: number; errorMessage?: string; now: string },
    onRefused: () => Error,
  ): void {
    const index = fence.attempt - 1;
    this.change(
      tx,
      jobId,
      {
        set: {
          status: result.status,
          finished_at: result.now,
          updated_at: result.now,
          exit_code: result.exitCode,
          error_message: result.errorMessage,
        },
        setRaw: [`#attempts[${index}].ended_at = :now`, `#attempts[${index}].outcome = :outcome`],
        remove: ["lease_partition", "lease_expires_at"],
        condition: FENCE,
        values: { ...fenceValues(fence), ":now": result.now, ":outcome": result.status },
      },
      onRefused,
    );
  }

  /** A job nobody runs yet (queued or awaiting approval) ends as cancelled. */
  cancelWaiting(
    tx: WriteTransaction,
    job: JobRecord,
    change: { now: string; fields: Partial<JobRecord> },
    onRefused: () => Error,
  ): void {
    this.change(
      tx,
      job.job_id,
      {
        set: { ...change.fields, status: "cancelled", finished_at: change.now, updated_at: change.now },
        remove: ["queue_key", "queue_order"],
        condition: "#status = :seen_status",
        values: { ":seen_status": job.status },
      },
      onRefused,
    );
  }

  /** A running attempt is asked to stop; its agent learns it from its next reply. */
  requestCancel(
    tx: WriteTransaction,
    job: JobRecord,
    change: { by: string; now: string },
    onRefused: () => Error,
  ): void {
    this.change(
      tx,
      job.job_id,
      {
        set: {
          status: "cancelling",
          cancel_requested_by: change.by,
          cancel_requested_at: change.now,
          updated_at: change.now,
        },
        condition: "#status = :running AND #attempt = :seen_attempt",
        values: { ":running": "running", ":seen_attempt": job.attempt },
      },
      onRefused,
    );
  }

  /** Segregation of duties in the write itself: the approver is never the requester. */
  approve(
    tx: WriteTransaction,
    job: JobRecord,
    change: { by: string; now: string },
    onRefused: () => Error,
  ): void {
    this.change(
      tx,
      job.job_id,
      {
        set: {
          status: "queued",
          approved_by: change.by,
          approved_at: change.now,
          updated_at: change.now,
          ...queueAttributes(job, change.now),
        },
        condition: "#status = :awaiting AND #created_by <> :approver",
        values: { ":awaiting": "awaiting_approval", ":approver": change.by },
      },
      onRefused,
    );
  }

  /**
   * The sweeper's verdict on an attempt whose lease expired: only if the lease read is still the lease
   * stored (a late heartbeat wins) and the attempt has not moved on.
   */
  endLostAttempt(
    tx: WriteTransaction,
    job: JobRecord & { lease_expires_at: string },
    verdict:
      | { kind: "requeue"; now: string }
      | { kind: "end"; status: "failed" | "cancelled"; errorMessage: string; now: string },
    onRefused: () => Error,
  ): void {
    const index = job.attempt - 1;
    const common: Change = {
      setRaw: [
        `#attempts[${index}].ended_at = :now`,
        `#attempts[${index}].outcome = :agent_lost`,
        "#lost_attempts = if_not_exists(#lost_attempts, :zero) + :one",
      ],
      condition: "#status = :seen_status AND #attempt = :seen_attempt AND #lease_expires_at = :seen_lease",
      values: {
        ":seen_status": job.status,
        ":seen_attempt": job.attempt,
        ":seen_lease": job.lease_expires_at,
        ":now": verdict.now,
        ":agent_lost": "agent_lost",
        ":zero": 0,
        ":one": 1,
      },
    };
    const change: Change =
      verdict.kind === "requeue"
        ? {
            ...common,
            set: {
              status: "queued",
              updated_at: verdict.now,
              // Back in line at its original place: it has waited since then.
              ...queueAttributes(job, job.queued_at ?? job.created_at),
            },
            remove: ["agent_id", "lease_partition", "lease_expires_at", "started_at"],
          }
        : {
            ...common,
            set: {
              status: verdict.status,
              updated_at: verdict.now,
              finished_at: verdict.now,
              error_message: verdict.errorMessage,
            },
            remove: ["lease_partition", "lease_expires_at"],
          };
    this.change(tx, job.job_id, change, onRefused);
  }

  /** The first `limit` queued jobs of one tag set, in claim order (index keys only). */
  async queueHead(queueKey: string, limit: number): Promise<QueuedJobKey[]> {
    const result = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: "jobs-by-queue",
        KeyConditionExpression: "queue_key = :queue",
        ExpressionAttributeValues: { ":queue": queueKey },
        Limit: limit,
      }),
    );
    return (result.Items ?? []) as QueuedJobKey[];
  }

  /** Every queued job of one tag set (index keys only: about 100 bytes a job). */
  async queuedKeys(queueKey: string): Promise<QueuedJobKey[]> {
    const keys: QueuedJobKey[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const result = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: "jobs-by-queue",
          KeyConditionExpression: "queue_key = :queue",
          ExpressionAttributeValues: { ":queue": queueKey },
          ExclusiveStartKey: start,
        }),
      );
      keys.push(...((result.Items ?? []) as QueuedJobKey[]));
      start = result.LastEvaluatedKey;
    } while (start);
    return keys;
  }

  /** Leased jobs whose lease ended before `now`, oldest lease first (index keys only). */
  async expiredLeases(now: string, limit: number): Promise<{ job_id: string; lease_expires_at: string }[]> {
    const result = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: "jobs-by-lease",
        KeyConditionExpression: "lease_partition = :leased AND lease_expires_at < :now",
        ExpressionAttributeValues: { ":leased": LEASE_PARTITION, ":now": now },
        Limit: limit,
      }),
    );
    return (result.Items ?? []) as { job_id: string; lease_expires_at: string }[];
  }

  private query(status: JobStatus | undefined) {
    return status === undefined
      ? {
          IndexName: "jobs-by-created",
          KeyConditionExpression: "listing = :value",
          ExpressionAttributeValues: { ":value": LISTING_PARTITION },
        }
      : {
          IndexName: "jobs-by-status",
          KeyConditionExpression: "#status = :value",
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: { ":value": status },
        };
  }

  /** Newest first, one page. */
  async list(options: {
    status?: JobStatus;
    limit: number;
    cursor?: string;
  }): Promise<{ items: JobRecord[]; nextCursor: string | null }> {
    const query = this.query(options.status);
    const start = decodeCursor(options.cursor, {
      table: "jobs",
      index: query.IndexName,
      partition: options.status === undefined ? { listing: LISTING_PARTITION } : { status: options.status },
    });
    const result = await pageFrom(start, () =>
      this.doc.send(
        new QueryCommand({
          TableName: this.table,
          ...query,
          ScanIndexForward: false,
          Limit: options.limit,
          ExclusiveStartKey: start,
        }),
      ),
    );
    return { items: (result.Items ?? []) as JobRecord[], nextCursor: encodeCursor(result.LastEvaluatedKey) };
  }

  /** How many jobs match; reads index keys only (Select COUNT), page by page. */
  async count(status?: JobStatus): Promise<number> {
    const query = this.query(status);
    let total = 0;
    let start: Record<string, unknown> | undefined;
    do {
      const result = await this.doc.send(
        new QueryCommand({ TableName: this.table, ...query, Select: "COUNT", ExclusiveStartKey: start }),
      );
      total += result.Count ?? 0;
      start = result.LastEvaluatedKey;
    } while (start);
    return total;
  }
}
