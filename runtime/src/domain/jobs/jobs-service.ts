import { createHash } from "node:crypto";
import {
  type JobRecord,
  type JobStatus,
  jobStatuses,
  type PlacedJob,
  queueAttributes,
  queueKeyOf,
} from "../../store/jobs-repository";
import { LISTING_PARTITION } from "../../store/schema";
import type { Store } from "../../store/store";
import {
  assertNoEnvironmentTags,
  defaultTargetEnvironments,
  needsApproval,
  resolveEnvironment,
  type TargetEnvironments,
} from "../environments";
import { ConflictError, IdempotencyMismatchError, NotFoundError } from "../errors";
import { newId } from "../ids";
import { auditActor, type Clock, epochSeconds, personOf, type RequestContext } from "../principal";
import { defaultLifecycleSettings, type LifecycleSettings, settings } from "../settings";
import { LogGapError, SelfApprovalError } from "./job-errors";
import { isTerminal, JobChangedError, type JobView, jobView } from "./job-view";

export type { JobView } from "./job-view";

export interface CreateJobInput {
  git_ref: string;
  repository?: string;
  command?: string;
  tags: string[];
  environment?: string;
  priority: number;
  timeout_seconds?: number;
  retry?: { agent_lost: number };
}

/** How often a use case re-reads a job whose state moved under it before giving up with a 409. */
const MAX_STATE_RACES = 3;

class IdempotencyKeyTaken extends Error {}

export interface JobLogPage {
  job_id: string;
  /** Where `data` starts (bytes). */
  offset: number;
  /** Where the next read should start. */
  next_offset: number;
  /** Bytes stored so far. */
  size: number;
  /** True once the job has finished and every stored byte has been read. */
  complete: boolean;
  /** True when the log reached its cap and later output was dropped. */
  truncated: boolean;
  data: string;
}

/**
 * Jobs as people and automation see them: queued (production ones after a second person's approval),
 * listed, read with their logs, cancelled. Agents run them through AgentJobsService.
 */
export class JobsService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly environments: TargetEnvironments = defaultTargetEnvironments,
    private readonly lifecycle: LifecycleSettings = defaultLifecycleSettings,
  ) {}

  /**
   * Queues a job in a known environment (default: the one needing no approval), or — where the
   * environment needs approval — records it as awaiting a second person. With an Idempotency-Key, the
   * job and the key are written in one transaction: the same key and request return the first job
   * (`replayed: true`); the same key with another request is refused.
   */
  async create(
    input: CreateJobInput,
    context: RequestContext,
    idempotencyKey?: string,
  ): Promise<{ job: JobView; replayed: boolean }> {
    assertNoEnvironmentTags(input.tags);
    const environment = resolveEnvironment(this.environments, input.environment);
    const now = this.clock();
    const actor = auditActor(context);
    const awaitsApproval = needsApproval(this.environments, environment);
    const jobId = newId("job");
    const tags = [...new Set(input.tags)].sort();
    const job: JobRecord = {
      job_id: jobId,
      status: awaitsApproval ? "awaiting_approval" : "queued",
      git_ref: input.git_ref,
      repository: input.repository,
      command: input.command,
      tags,
      environment,
      priority: input.priority,
      timeout_seconds: input.timeout_seconds ?? settings.job.defaultTimeoutSeconds,
      retry: input.retry,
      created_at: now.toISOString(),
      updated_at: now.toISOString(),
      created_by: actor.id,
      requested_by: personOf(context),
      listing: LISTING_PARTITION,
      attempt: 0,
      log_size: 0,
      ...(awaitsApproval
        ? {}
        : queueAttributes({ job_id: jobId, environment, tags, priority: input.priority }, now.toISOString())),
    };
    const tx = this.store.transaction();
    this.store.jobs.put(tx, job, () => new ConflictError("job id collision; retry"));
    this.store.jobCounts.move(tx, undefined, job.status);
    tx.audit({
      action: "job.create",
      actor: actor,
      target: { type: "job", id: job.job_id },
      outcome: "success",
      request_id: context.requestId,
      details: {
        git_ref: job.git_ref,
        repository: job.repository,
        environment: job.environment,
        tags: job.tags,
        priority: job.priority,
        status: job.status,
        retry: job.retry,
      },
    });
    const scopedKey =
      idempotencyKey === undefined ? undefined : `${actor.type}:${actor.id}#jobs.create#${idempotencyKey}`;
    const fingerprint = createHash("sha256")
      .update(JSON.stringify(canonical(input)))
      .digest("hex");
    if (scopedKey !== undefined) {
      this.store.idempotency.claim(
        tx,
        {
          idempotency_key: scopedKey,
          request_fingerprint: fingerprint,
          resource_id: job.job_id,
          created_at: now.toISOString(),
          expires_at: epochSeconds(now) + settings.idempotency.ttlSeconds,
        },
        () => new IdempotencyKeyTaken(),
      );
    }
    try {
      // The queue must be known before a job can sit in it, or no agent would look there.
      if (job.queue_key)
        await this.store.jobQueues.record(job.queue_key, environment, job.tags, job.created_at);
      await this.store.commit(tx);
      return { job: jobView(job), replayed: false };
    } catch (error) {
      if (!(error instanceof IdempotencyKeyTaken) || scopedKey === undefined) throw error;
      const first = await this.store.idempotency.get(scopedKey);
      if (!first) throw new ConflictError("a request with this Idempotency-Key is in progress; retry");
      if (first.request_fingerprint !== fingerprint) {
        throw new IdempotencyMismatchError(
          "this Idempotency-Key was already used for a different job request",
        );
      }
      return { job: await this.get(first.resource_id), replayed: true };
    }
  }

  async get(jobId: string): Promise<JobView> {
    return jobView(await this.require(jobId));
  }

  /** One page, newest first; `total` comes from the maintained counters (one read, at any history size). */
  async list(options: { status?: JobStatus; limit: number; cursor?: string }) {
    const [page, counts] = await Promise.all([this.store.jobs.list(options), this.store.jobCounts.read()]);
    const total =
      options.status === undefined
        ? jobStatuses.reduce((sum, status) => sum + counts[status], 0)
        : counts[options.status];
    return { jobs: page.items.map(jobView), total: Math.max(0, total), next_cursor: page.nextCursor };
  }

  /**
   * Cancels a job. Waiting (queued or awaiting approval): cancelled at once. Running: `cancelling`, which
   * its agent learns from its next heartbeat or log reply; the agent stops the job (SIGTERM, then
   * SIGKILL after the grace period) and finishes it as cancelled. `pending` says which happened.
   */
  async cancel(jobId: string, context: RequestContext): Promise<{ job: JobView; pending: boolean }> {
    const actor = auditActor(context);
    for (let race = 0; race < MAX_STATE_RACES; race++) {
      const job = await this.require(jobId);
      if (job.status === "cancelling") return { job: jobView(job), pending: true };
      if (isTerminal(job.status)) throw new ConflictError(`job ${jobId} has already ${finishedVerb(job)}`);
      const now = this.clock().toISOString();
      const tx = this.store.transaction();
      const changed = () => new JobChangedError();
      if (job.status === "running") {
        // The agent has until the cancel deadline to stop the job; then the sweeper marks it cancelled.
        const cancelDeadline = new Date(
          Date.parse(now) + this.lifecycle.cancelDeadlineSeconds * 1000,
        ).toISOString();
        const deadlineAt =
          job.deadline_at !== undefined && job.deadline_at < cancelDeadline
            ? job.deadline_at
            : cancelDeadline;
        this.store.jobs.requestCancel(tx, job, { by: actor.id, now, deadlineAt }, changed);
      } else {
        this.store.jobs.cancelWaiting(
          tx,
          job,
          { now, fields: { cancel_requested_by: actor.id, cancel_requested_at: now } },
          changed,
        );
      }
      this.store.jobCounts.move(tx, job.status, job.status === "running" ? "cancelling" : "cancelled");
      tx.audit({
        action: "job.cancel",
        actor,
        target: { type: "job", id: jobId },
        outcome: "success",
        request_id: context.requestId,
        details: {
          from: job.status,
          to: job.status === "running" ? "cancelling" : "cancelled",
          attempt: job.attempt,
          agent_id: job.agent_id,
        },
      });
      try {
        await this.store.commit(tx);
      } catch (error) {
        if (error instanceof JobChangedError) continue;
        throw error;
      }
      return { job: await this.get(jobId), pending: job.status === "running" };
    }
    throw new ConflictError(`job ${jobId} kept changing while it was being cancelled; retry`);
  }

  /**
   * Queues a job awaiting approval on behalf of a second person. The requester can never approve their
   * own job — compared as people, so their API token and their session count as one: the check is in
   * the write's condition, and a refused attempt is audited as denied.
   */
  async approve(jobId: string, context: RequestContext): Promise<JobView> {
    const actor = auditActor(context);
    const person = personOf(context);
    const job = await this.require(jobId);
    if (job.status !== "awaiting_approval") {
      throw new ConflictError(`job ${jobId} is ${job.status}, not awaiting approval`);
    }
    const refuse = async () => {
      const denied = this.store.transaction();
      denied.audit({
        action: "job.approve",
        actor,
        target: { type: "job", id: jobId },
        outcome: "denied",
        request_id: context.requestId,
        details: { reason: "self-approval", requested_by: job.requested_by ?? job.created_by },
      });
      await this.store.commit(denied);
      return new SelfApprovalError(
        "segregation of duties: the person who requested a production job cannot approve it",
      );
    };
    const isRequester = (candidate: JobRecord) =>
      candidate.created_by === actor.id ||
      candidate.created_by === person ||
      (candidate.requested_by ?? candidate.created_by) === person;
    if (isRequester(job)) throw await refuse();
    const now = this.clock().toISOString();
    const tx = this.store.transaction();
    this.store.jobs.approve(tx, job, { by: actor.id, person, now }, () => new JobChangedError());
    this.store.jobCounts.move(tx, "awaiting_approval", "queued");
    tx.audit({
      action: "job.approve",
      actor,
      target: { type: "job", id: jobId },
      outcome: "success",
      request_id: context.requestId,
      details: {
        requested_by: job.requested_by ?? job.created_by,
        approved_by: person,
        environment: job.environment,
        approved_at: now,
      },
    });
    try {
      await this.store.jobQueues.record(
        queueKeyOf(job.environment, job.tags),
        job.environment,
        job.tags,
        now,
      );
      await this.store.commit(tx);
    } catch (error) {
      if (!(error instanceof JobChangedError)) throw error;
      const current = await this.require(jobId);
      if (current.status === "awaiting_approval" && isRequester(current)) throw await refuse();
      throw new ConflictError(`job ${jobId} is ${current.status}, not awaiting approval`);
    }
    return this.get(jobId);
  }

  /** Declines a production job: it ends as cancelled, with who declined it and when. */
  async reject(jobId: string, context: RequestContext): Promise<JobView> {
    const actor = auditActor(context);
    const job = await this.require(jobId);
    if (job.status !== "awaiting_approval") {
      throw new ConflictError(`job ${jobId} is ${job.status}, not awaiting approval`);
    }
    const now = this.clock().toISOString();
    const tx = this.store.transaction();
    this.store.jobs.cancelWaiting(
      tx,
      job,
      { now, fields: { rejected_by: actor.id, rejected_at: now, error_message: `rejected by ${actor.id}` } },
      () => new ConflictError(`job ${jobId} is no longer awaiting approval`),
    );
    this.store.jobCounts.move(tx, "awaiting_approval", "cancelled");
    tx.audit({
      action: "job.reject",
      actor,
      target: { type: "job", id: jobId },
      outcome: "success",
      request_id: context.requestId,
      details: { requested_by: job.created_by, environment: job.environment },
    });
    await this.store.commit(tx);
    return this.get(jobId);
  }

  /** Up to `limit` bytes of the job's log from `offset` (whole chunks after the first). */
  async logs(jobId: string, offset: number, limit: number): Promise<JobLogPage> {
    const job = await this.require(jobId);
    const size = job.log_size ?? 0;
    if (offset > size) throw new LogGapError(offset, size);
    const chunks = offset === size ? [] : await this.store.jobLogs.read(jobId, offset, limit);
    const parts: Buffer[] = [];
    let end = offset;
    for (const chunk of chunks) {
      const bytes = Buffer.from(chunk.data, "utf8");
      const from = Math.max(0, end - chunk.offset);
      if (chunk.offset > end) break;
      parts.push(bytes.subarray(from));
      end = chunk.offset + chunk.length;
    }
    return {
      job_id: jobId,
      offset,
      next_offset: end,
      size,
      complete: isTerminal(job.status) && end >= size,
      truncated: job.log_truncated === true,
      data: Buffer.concat(parts).toString("utf8"),
    };
  }

  private async require(jobId: string): Promise<PlacedJob> {
    const job = await this.store.jobs.get(jobId);
    if (!job) throw new NotFoundError(`job ${jobId} does not exist`);
    // Jobs from before environments existed run in the default one.
    return { ...job, environment: job.environment ?? this.environments.default };
  }
}

function finishedVerb(job: JobRecord): string {
  return job.status === "cancelled" ? "been cancelled" : job.status;
}

/** Keys sorted at every level, so equal requests have equal fingerprints. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, entry]) => entry !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([key, entry]) => [key, canonical(entry)]),
    );
  }
  return value;
}
