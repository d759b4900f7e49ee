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
  outcome?: TerminalJobStatus | "agent_lost" | "agent_revoked" | "timed_out";
  /** What the agent reported, when the job ended otherwise (a `completed` for a job being cancelled). */
  reported_status?: TerminalJobStatus;
}

export interface JobRecord {
  job_id: string;
  status: JobStatus;
  git_ref: string;
  repository?: string;
  command?: string;
  tags: string[];
  /** The target environment (decision 010); only its agents receive the job. Absent on jobs older than that. */
  environment?: string;
  priority: number;
  timeout_seconds: number;
  /** `agent_lost`: how many times a job whose agent was lost may be queued again. */
  retry?: { agent_lost: number };
  created_at: string;
  updated_at: string;
  /** The requester (the audit actor id of whoever queued it). */
  created_by: string;
  /** The person behind the request (a token's issuer): the two-person rule compares this. */
  requested_by?: string;
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
  /** The server's deadline for the attempt (timeout, or cancel deadline): the sparse jobs-by-deadline index. */
  deadline_at?: string;
  /** The agent holding the attempt, only while leased (the sparse jobs-by-agent index). */
  held_by?: string;
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

/** The constant partition of the jobs-by-lease and jobs-by-deadline indexes. */
export const LEASE_PARTITION = "leased";

/** What a leased job carries (index keys included); all of it goes when the attempt ends. */
const LEASE_ATTRIBUTES = ["lease_partition", "lease_expires_at", "deadline_at", "held_by"];

/** A job whose environment is known (the domain fills it in for jobs older than environments). */
export type PlacedJob = JobRecord & { environment: string };

/**
 * The jobs-by-queue partition of an environment and a tag set: `q:` + the environment + `|` + the
 * sorted tags, comma-separated. Agents of one environment never look in another's partitions.
 */
export function queueKeyOf(environment: string, tags: readonly string[]): string {
  return `q:${environment}|${[...new Set(tags)].sort().join(",")}`;
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
export function queueAttributes(
  job: Pick<JobRecord, "job_id" | "tags" | "priority"> & { environment: string },
  queuedAt: string,
) {
  return {
    queue_key: queueKeyOf(job.environment, job.tags),
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
    claim: { agentId: string; now: string; leaseExpiresAt: string; deadlineAt: string },
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
          deadline_at: claim.deadlineAt,
          held_by: claim.agentId,
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
    result: {
      status: TerminalJobStatus;
      /** The status the agent reported, when the job ends otherwise (being cancelled: `cancelled`). */
      reported?: TerminalJobStatus;
      /** The status read: a result is only recorded on the state it was decided on. */
      seenStatus: "running" | "cancelling";
      exitCode?: number;
      errorMessage?: string;
      now: string;
    },
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
        setRaw: [
          `#attempts[${index}].ended_at = :now`,
          `#attempts[${index}].outcome = :outcome`,
          ...(result.reported ? [`#attempts[${index}].reported_status = :reported`] : []),
        ],
        remove: LEASE_ATTRIBUTES,
        condition: `${FENCE} AND #status = :seen_status`,
        values: {
          ...fenceValues(fence),
          ":now": result.now,
          ":outcome": result.status,
          ":seen_status": result.seenStatus,
          ...(result.reported ? { ":reported": result.reported } : {}),
        },
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
    change: { by: string; now: string; deadlineAt: string },
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
          deadline_at: change.deadlineAt,
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
    job: PlacedJob,
    change: { by: string; person: string; now: string },
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
        // People, not credentials: the approver's person differs from the requester's (jobs from before
        // `requested_by` existed compare the requesting actor).
        condition:
          "#status = :awaiting AND #created_by <> :approver AND #created_by <> :approver_person AND " +
          "(attribute_not_exists(#requested_by) OR #requested_by <> :approver_person)",
        values: {
          ":awaiting": "awaiting_approval",
          ":approver": change.by,
          ":approver_person": change.person,
        },
      },
      onRefused,
    );
  }

  /**
   * Ends (or queues again) an attempt its agent will not finish: the lease expired, the agent was revoked,
   * or the server's deadline passed. Only if the attempt read is still the job's, in the state read, and
   * (for an expired lease or deadline) the value read is still the one stored — a late heartbeat wins.
   */
  endAttempt(
    tx: WriteTransaction,
    job: PlacedJob,
    ending: {
      /** What the attempt's `outcome` records. */
      outcome: "agent_lost" | "agent_revoked" | "timed_out";
      /** Counts towards `retry.agent_lost` (the agent is gone, not the job at fault). */
      countsAsLost: boolean;
      /** The condition that made this verdict, re-checked in the write. */
      seen: { lease_expires_at: string } | { deadline_at: string } | { held_by: string };
    },
    verdict:
      | { kind: "requeue"; now: string }
      | { kind: "end"; status: "failed" | "cancelled"; errorMessage: string; now: string },
    onRefused: () => Error,
  ): void {
    const index = job.attempt - 1;
    const [seenName, seenValue] = Object.entries(ending.seen)[0] as [string, string];
    const common: Change = {
      setRaw: [
        `#attempts[${index}].ended_at = :now`,
        `#attempts[${index}].outcome = :outcome`,
        ...(ending.countsAsLost ? ["#lost_attempts = if_not_exists(#lost_attempts, :zero) + :one"] : []),
      ],
      condition: `#status = :seen_status AND #attempt = :seen_attempt AND #${seenName} = :seen_value`,
      values: {
        ":seen_status": job.status,
        ":seen_attempt": job.attempt,
        ":seen_value": seenValue,
        ":now": verdict.now,
        ":outcome": ending.outcome,
        ...(ending.countsAsLost ? { ":zero": 0, ":one": 1 } : {}),
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
            remove: ["agent_id", "started_at", ...LEASE_ATTRIBUTES],
          }
        : {
            ...common,
            set: {
              status: verdict.status,
              updated_at: verdict.now,
              finished_at: verdict.now,
              error_message: verdict.errorMessage,
            },
            remove: LEASE_ATTRIBUTES,
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

  /** Leased jobs whose server deadline passed before `now`, earliest first (index keys only). */
  async pastDeadline(now: string, limit: number): Promise<{ job_id: string; deadline_at: string }[]> {
    const result = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: "jobs-by-deadline",
        KeyConditionExpression: "lease_partition = :leased AND deadline_at < :now",
        ExpressionAttributeValues: { ":leased": LEASE_PARTITION, ":now": now },
        Limit: limit,
      }),
    );
    return (result.Items ?? []) as { job_id: string; deadline_at: string }[];
  }

  /** The jobs an agent holds right now (index keys only; the index follows the table within a moment). */
  async heldBy(agentId: string): Promise<string[]> {
    const ids: string[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const result = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: "jobs-by-agent",
          KeyConditionExpression: "held_by = :agent",
          ExpressionAttributeValues: { ":agent": agentId },
          ExclusiveStartKey: start,
        }),
      );
      ids.push(...(result.Items ?? []).map((item) => String(item.job_id)));
      start = result.LastEvaluatedKey;
    } while (start);
    return ids;
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
}
