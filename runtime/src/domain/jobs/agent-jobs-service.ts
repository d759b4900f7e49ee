import { createHash } from "node:crypto";
import {
  type JobRecord,
  type QueuedJobKey,
  queuedAtOf,
  type TerminalJobStatus,
} from "../../store/jobs-repository";
import type { Store } from "../../store/store";
import { agentEnvironment } from "../agents/agents-service";
import { defaultTargetEnvironments, type TargetEnvironments } from "../environments";
import { NotFoundError, ServiceUnavailableError, UnauthenticatedError } from "../errors";
import { auditActor, type Clock, epochSeconds, type RequestContext } from "../principal";
import { defaultLifecycleSettings, type LifecycleSettings, settings } from "../settings";
import {
  JobNotLeasedError,
  JobNotRunningError,
  LogChunkTooLargeError,
  LogGapError,
  LogOverlapError,
  StaleAttemptError,
} from "./job-errors";
import { isTerminal, JobChangedError, type JobView, jobView } from "./job-view";

export interface ClaimedJob {
  job: JobView;
  attempt: number;
  lease_expires_at: string;
  /** Where this attempt's log continues (earlier attempts' output stays in front of it). */
  log_offset: number;
}

export interface LogAppendInput {
  attempt: number;
  offset: number;
  data: string;
}

export interface LogAppendResult {
  /** Bytes stored; the next chunk starts here. */
  size: number;
  /** The log reached its cap: stop uploading, the rest is dropped. */
  truncated: boolean;
  /** This exact chunk was already stored (a retried upload). */
  duplicate: boolean;
  lease_expires_at: string;
  /** The job is being cancelled: stop it and finish it as cancelled. */
  cancel_requested: boolean;
}

export interface FinishInput {
  attempt: number;
  status: TerminalJobStatus;
  exit_code?: number | null;
  error_message?: string;
}

export interface HeldJob {
  job_id: string;
  attempt: number;
}

/** What an agent must do with a job it reported holding. */
export type LeaseVerdict =
  | { job_id: string; attempt: number; action: "continue" | "cancel"; lease_expires_at: string }
  | { job_id: string; attempt: number; action: "stop"; reason: string };

/**
 * Queued jobs read per tag set in a claim's first round (more while other claims are in flight, and
 * doubling each round), and rounds before the agent is told to come back later.
 */
const HEAD_SIZE = 25;
const MAX_HEAD_SIZE = 400;
const MAX_CLAIM_ROUNDS = 10;
/** Jobs an agent may report in one heartbeat. */
export const MAX_HELD_JOBS = 16;

/**
 * What agents do with jobs: claim the next one they can run, upload its log, report its result, and keep
 * their lease. Every write names the attempt it belongs to; a write for an attempt that is not the
 * job's current one, or not this agent's, is refused, so a zombie agent can never change a job again.
 */
export class AgentJobsService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly lifecycle: LifecycleSettings = defaultLifecycleSettings,
    private readonly environments: TargetEnvironments = defaultTargetEnvironments,
  ) {}

  /** Jobs a claim in this process is trying right now: other claims here skip them. */
  private readonly reserved = new Set<string>();
  private claimsInFlight = 0;

  /**
   * The highest-priority, then oldest, queued job whose tags the agent has, or undefined. Each try is a
   * conditional write on the job at the attempt read, so under any concurrency a job is claimed by at
   * most one agent per attempt. Concurrent claims in one process never try the same job (each takes
   * the first one no other claim here is trying), so they keep the exact order without wasting writes;
   * across processes (Lambda instances) the write's condition decides and the loser takes the next job.
   *
   * With an `idempotencyKey`, a repeat of a claim that won a job (say its reply was lost) returns the same
   * job and attempt instead of claiming another and orphaning the first.
   */
  async claim(
    agentId: string,
    context: RequestContext,
    idempotencyKey?: string,
  ): Promise<ClaimedJob | undefined> {
    this.claimsInFlight++;
    try {
      const scopedKey =
        idempotencyKey === undefined ? undefined : `agent:${agentId}#jobs.claim#${idempotencyKey}`;
      if (scopedKey !== undefined) {
        const replay = await this.replayClaim(scopedKey);
        if (replay) return replay;
      }
      return await this.claimNext(agentId, context, scopedKey);
    } finally {
      this.claimsInFlight--;
    }
  }

  private async replayClaim(scopedKey: string): Promise<ClaimedJob | undefined> {
    const first = await this.store.idempotency.get(scopedKey);
    if (!first || first.attempt === undefined) return undefined;
    const job = await this.requireJob(first.resource_id);
    return {
      job: jobView(job),
      attempt: first.attempt,
      lease_expires_at:
        job.attempt === first.attempt && job.lease_expires_at
          ? job.lease_expires_at
          : (first.lease_expires_at ?? first.created_at),
      log_offset: first.log_offset ?? 0,
    };
  }

  private async claimNext(
    agentId: string,
    context: RequestContext,
    scopedKey: string | undefined,
  ): Promise<ClaimedJob | undefined> {
    const agent = await this.store.agents.get(agentId);
    if (!agent || agent.revoked_at) {
      throw new UnauthenticatedError("the agent is unknown or revoked", "Signature");
    }
    // An agent only ever sees its own environment's queues (decision 010).
    const environment = agentEnvironment(agent, this.environments);
    const agentTags = new Set(agent.tags);
    const queues = (await this.store.jobQueues.list()).filter(
      (queue) => queue.environment === environment && queue.tags.every((tag) => agentTags.has(tag)),
    );
    if (queues.length === 0) return undefined;
    // Jobs this claim saw taken (or not claimable): the index may lag behind the table for a moment.
    const passed = new Set<string>();
    let window = Math.min(MAX_HEAD_SIZE, Math.max(HEAD_SIZE, this.claimsInFlight + HEAD_SIZE));
    for (let round = 0; round < MAX_CLAIM_ROUNDS; round++) {
      const pages = await Promise.all(
        queues.map((queue) => this.store.jobs.queueHead(queue.queue_key, window)),
      );
      const heads = pages.flat().sort((a, b) => (a.queue_order < b.queue_order ? -1 : 1));
      let busy = false;
      for (const candidate of heads) {
        if (passed.has(candidate.job_id)) continue;
        if (this.reserved.has(candidate.job_id)) {
          busy = true;
          continue;
        }
        passed.add(candidate.job_id);
        this.reserved.add(candidate.job_id);
        try {
          const job = await this.store.jobs.get(candidate.job_id);
          if (
            job?.status !== "queued" ||
            (job.environment ?? this.environments.default) !== environment ||
            !job.tags.every((tag) => agentTags.has(tag))
          ) {
            continue;
          }
          const claimed = await this.tryClaim(job, agentId, context, scopedKey);
          if (claimed) return claimed;
        } finally {
          this.reserved.delete(candidate.job_id);
        }
      }
      const sawWholeQueues = pages.every((page) => page.length < window);
      if (!busy && sawWholeQueues) return undefined;
      // Others here are trying the rest, or everything seen was taken: look again, further down.
      window = Math.min(MAX_HEAD_SIZE, window * 2);
      if (busy) await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 15));
    }
    return undefined;
  }

  private async tryClaim(
    job: JobRecord,
    agentId: string,
    context: RequestContext,
    scopedKey: string | undefined,
  ): Promise<ClaimedJob | undefined> {
    const now = this.clock();
    const leaseExpiresAt = new Date(now.getTime() + this.lifecycle.leaseSeconds * 1000).toISOString();
    const deadlineAt = this.deadlineFrom(now, job);
    const tx = this.store.transaction();
    const attempt = this.store.jobs.claim(
      tx,
      job,
      { agentId, now: now.toISOString(), leaseExpiresAt, deadlineAt },
      () => new JobChangedError(),
    );
    // Revoked between the read above and this write: the write's condition refuses it.
    this.store.agents.assertActive(
      tx,
      agentId,
      () => new UnauthenticatedError("the agent is unknown or revoked", "Signature"),
    );
    this.store.jobCounts.move(tx, "queued", "running");
    if (scopedKey !== undefined) {
      this.store.idempotency.claim(
        tx,
        {
          idempotency_key: scopedKey,
          request_fingerprint: "jobs.claim",
          resource_id: job.job_id,
          attempt,
          log_offset: job.log_size ?? 0,
          lease_expires_at: leaseExpiresAt,
          created_at: now.toISOString(),
          expires_at: epochSeconds(now) + settings.idempotency.ttlSeconds,
        },
        () => new ClaimKeyTaken(),
      );
    }
    const queuedAt = job.queued_at ?? job.created_at;
    tx.audit({
      action: "job.claim",
      actor: { ...auditActor(context), type: "agent", id: agentId },
      target: { type: "job", id: job.job_id },
      outcome: "success",
      request_id: context.requestId,
      details: {
        attempt,
        tags: job.tags,
        queue_wait_seconds: Math.max(0, (now.getTime() - Date.parse(queuedAt)) / 1000),
        lease_expires_at: leaseExpiresAt,
      },
    });
    try {
      await this.store.commit(tx);
    } catch (error) {
      // Another agent won this attempt: nothing changed; next job.
      if (error instanceof JobChangedError) return undefined;
      // A concurrent request with the same key won: answer what it won.
      if (error instanceof ClaimKeyTaken && scopedKey !== undefined) {
        const replay = await this.replayClaim(scopedKey);
        if (replay) return replay;
        throw new ServiceUnavailableError("a claim with this Idempotency-Key is in progress; retry");
      }
      if (error instanceof UnauthenticatedError) throw error;
      // Anything else may have landed (a timeout, a lost reply): look before moving on, so a job this
      // agent now holds is not abandoned while it claims another.
      const after = await this.store.jobs.get(job.job_id);
      const held = after?.attempts?.find((entry) => entry.attempt === attempt);
      if (held?.agent_id === agentId && held.claimed_at === now.toISOString()) {
        return this.claimedView(after!, attempt, leaseExpiresAt, job.log_size ?? 0);
      }
      if (after && after.attempt !== job.attempt) return undefined; // another agent's attempt
      throw error instanceof ServiceUnavailableError
        ? error
        : new ServiceUnavailableError(
            "the claim could not be confirmed; retry (with the same Idempotency-Key)",
          );
    }
    const claimed: JobRecord = {
      ...job,
      status: "running",
      attempt,
      agent_id: agentId,
      started_at: now.toISOString(),
      updated_at: now.toISOString(),
      lease_expires_at: leaseExpiresAt,
      deadline_at: deadlineAt,
      attempts: [...(job.attempts ?? []), { attempt, agent_id: agentId, claimed_at: now.toISOString() }],
      log_size: job.log_size ?? 0,
    };
    delete claimed.queue_key;
    delete claimed.queue_order;
    return this.claimedView(claimed, attempt, leaseExpiresAt, claimed.log_size ?? 0);
  }

  private claimedView(
    job: JobRecord,
    attempt: number,
    leaseExpiresAt: string,
    logOffset: number,
  ): ClaimedJob {
    return { job: jobView(job), attempt, lease_expires_at: leaseExpiresAt, log_offset: logOffset };
  }

  /**
   * The server's deadline for an attempt: its timeout, plus the agent's own stop (grace) and a
   * heartbeat's margin, so an agent that enforces the timeout reports first; the sweeper ends it then
   * whatever the agent says.
   */
  private deadlineFrom(now: Date, job: JobRecord): string {
    const margin = this.lifecycle.cancelGraceSeconds + 2 * this.lifecycle.jobHeartbeatIntervalSeconds;
    return new Date(now.getTime() + (job.timeout_seconds + margin) * 1000).toISOString();
  }

  /**
   * Appends a chunk at `offset` of the job's log and extends the lease. The offset must be the stored
   * size: a repeat of the chunk stored at that offset is acknowledged again (`duplicate`), a gap is a
   * 416 and any other overlap a 409, both with the stored size so the agent can resume. Past the cap the
   * rest is dropped and `truncated` recorded on the job.
   */
  async appendLog(
    agentId: string,
    jobId: string,
    input: LogAppendInput,
    context: RequestContext,
  ): Promise<LogAppendResult> {
    const bytes = Buffer.from(input.data, "utf8");
    if (bytes.length > this.lifecycle.logChunkMaxBytes) {
      throw new LogChunkTooLargeError(bytes.length, this.lifecycle.logChunkMaxBytes);
    }
    for (let race = 0; race < 3; race++) {
      const job = await this.requireJob(jobId);
      assertHeld(job, agentId, input.attempt);
      assertRunning(job);
      const size = job.log_size ?? 0;
      const now = this.clock();
      const leaseExpiresAt = this.leaseFrom(now);
      const fence = { agentId, attempt: input.attempt };
      const reply = (stored: number, truncated: boolean, duplicate = false): LogAppendResult => ({
        size: stored,
        truncated,
        duplicate,
        lease_expires_at: leaseExpiresAt,
        cancel_requested: job.status === "cancelling",
      });

      let keep = bytes;
      let offsetCheck: number | undefined = input.offset;
      if (job.log_truncated) {
        // Past the cap: acknowledged and dropped; only the lease moves.
        keep = Buffer.alloc(0);
        offsetCheck = undefined;
      } else if (input.offset > size) {
        throw new LogGapError(input.offset, size);
      } else if (input.offset < size) {
        const stored = await this.store.jobLogs.get(jobId, input.offset);
        if (stored && stored.length === bytes.length && stored.sha256 === sha256(bytes)) {
          await this.store.jobs.renewLease(jobId, fence, leaseExpiresAt, now.toISOString());
          return reply(size, false, true);
        }
        throw new LogOverlapError(input.offset, size);
      } else {
        keep = bytes.subarray(0, utf8Boundary(bytes, this.lifecycle.logMaxBytes - size));
      }
      const truncated = job.log_truncated === true || keep.length < bytes.length;
      const newSize = job.log_truncated ? size : size + keep.length;
      const tx = this.store.transaction();
      if (keep.length > 0) {
        this.store.jobLogs.put(
          tx,
          {
            job_id: jobId,
            offset: size,
            length: keep.length,
            data: keep.toString("utf8"),
            sha256: sha256(keep),
            attempt: input.attempt,
            agent_id: agentId,
            written_at: now.toISOString(),
            expires_at: epochSeconds(now) + this.lifecycle.logRetentionSeconds,
          },
          () => new JobChangedError(),
        );
      }
      this.store.jobs.recordLog(
        tx,
        jobId,
        fence,
        { offset: offsetCheck, size: newSize, truncated, leaseExpiresAt, now: now.toISOString() },
        () => new JobChangedError(),
      );
      if (truncated && !job.log_truncated) {
        tx.audit({
          action: "job.log_truncate",
          actor: { ...auditActor(context), type: "agent", id: agentId },
          target: { type: "job", id: jobId },
          outcome: "success",
          request_id: context.requestId,
          details: { attempt: input.attempt, max_bytes: this.lifecycle.logMaxBytes },
        });
      }
      try {
        await this.store.commit(tx);
      } catch (error) {
        if (error instanceof JobChangedError) continue;
        throw error;
      }
      return reply(newSize, truncated);
    }
    throw new ServiceUnavailableError("the job kept changing during the log upload; retry");
  }

  /**
   * The agent's result for its attempt. Repeating the same result is answered like the first time;
   * a different result for a finished job (or one the sweeper already ended) is a 409.
   */
  async complete(
    agentId: string,
    jobId: string,
    input: FinishInput,
    context: RequestContext,
  ): Promise<{ job: JobView; replayed: boolean }> {
    const exitCode = input.exit_code ?? undefined;
    for (let race = 0; race < 3; race++) {
      const job = await this.requireJob(jobId);
      assertHeld(job, agentId, input.attempt);
      if (isTerminal(job.status)) {
        const entry = job.attempts?.[input.attempt - 1];
        const reported = entry?.reported_status ?? entry?.outcome;
        if (entry?.outcome === job.status && reported === input.status && job.exit_code === exitCode) {
          return { job: jobView(job), replayed: true };
        }
        throw new JobNotRunningError(
          `job ${jobId} already ended as ${job.status}${job.error_message ? ` (${job.error_message})` : ""}`,
          job.status,
        );
      }
      assertRunning(job);
      const seenStatus = job.status as "running" | "cancelling";
      // A job being cancelled ends cancelled, whatever the agent reports (it may have raced the cancel).
      const status: TerminalJobStatus = seenStatus === "cancelling" ? "cancelled" : input.status;
      const errorMessage =
        status === input.status
          ? input.error_message
          : `cancelled by ${job.cancel_requested_by ?? "a user"}; the agent reported ${input.status}`;
      const now = this.clock().toISOString();
      const tx = this.store.transaction();
      this.store.jobs.finish(
        tx,
        jobId,
        { agentId, attempt: input.attempt },
        {
          status,
          reported: status === input.status ? undefined : input.status,
          seenStatus,
          exitCode,
          errorMessage,
          now,
        },
        () => new JobChangedError(),
      );
      this.store.jobCounts.move(tx, seenStatus, status);
      tx.audit({
        action: "job.finish",
        actor: { ...auditActor(context), type: "agent", id: agentId },
        target: { type: "job", id: jobId },
        outcome: "success",
        request_id: context.requestId,
        details: {
          attempt: input.attempt,
          status,
          ...(status === input.status ? {} : { reported_status: input.status }),
          exit_code: exitCode,
          cancel_requested_by: job.cancel_requested_by,
          log_bytes: job.log_size ?? 0,
        },
      });
      try {
        await this.store.commit(tx);
      } catch (error) {
        if (error instanceof JobChangedError) continue;
        throw error;
      }
      return { job: jobView((await this.store.jobs.get(jobId)) ?? job), replayed: false };
    }
    throw new ServiceUnavailableError("the job kept changing while it was being finished; retry");
  }

  /**
   * Extends the lease of each job the agent says it runs, and tells it what to do with each: carry on,
   * cancel (a user asked), or stop (the attempt is no longer its own: superseded, ended, unknown).
   */
  async renewLeases(agentId: string, held: readonly HeldJob[]): Promise<LeaseVerdict[]> {
    const now = this.clock();
    const leaseExpiresAt = this.leaseFrom(now);
    return Promise.all(
      held.slice(0, MAX_HELD_JOBS).map(async ({ job_id, attempt }): Promise<LeaseVerdict> => {
        const renewed = await this.store.jobs.renewLease(
          job_id,
          { agentId, attempt },
          leaseExpiresAt,
          now.toISOString(),
        );
        if (renewed) {
          return {
            job_id,
            attempt,
            action: renewed.status === "cancelling" ? "cancel" : "continue",
            lease_expires_at: leaseExpiresAt,
          };
        }
        const job = await this.store.jobs.get(job_id);
        return { job_id, attempt, action: "stop", reason: whyNotHeld(job, agentId, attempt) };
      }),
    );
  }

  private leaseFrom(now: Date): string {
    return new Date(now.getTime() + this.lifecycle.leaseSeconds * 1000).toISOString();
  }

  private async requireJob(jobId: string): Promise<JobRecord> {
    const job = await this.store.jobs.get(jobId);
    if (!job) throw new NotFoundError(`job ${jobId} does not exist`);
    return job;
  }
}

/** The Idempotency-Key of a claim was taken by a concurrent request in the same transaction's race. */
class ClaimKeyTaken extends Error {}

/** Oldest wait of a set of queued keys, in seconds (0 when empty). */
export function oldestWaitSeconds(keys: readonly QueuedJobKey[], now: Date): number {
  let oldest = Number.POSITIVE_INFINITY;
  for (const key of keys) oldest = Math.min(oldest, Date.parse(queuedAtOf(key.queue_order)));
  return Number.isFinite(oldest) ? Math.max(0, (now.getTime() - oldest) / 1000) : 0;
}

function assertHeld(job: JobRecord, agentId: string, attempt: number): void {
  const held = job.attempts?.find((entry) => entry.attempt === attempt);
  if (!held || held.agent_id !== agentId) {
    throw new JobNotLeasedError(`attempt ${attempt} of job ${job.job_id} is not leased to agent ${agentId}`);
  }
  if (job.attempt !== attempt) throw new StaleAttemptError(attempt, job.attempt);
}

function assertRunning(job: JobRecord): void {
  if (job.status !== "running" && job.status !== "cancelling") {
    throw new JobNotRunningError(
      `job ${job.job_id} is ${job.status}${job.error_message ? ` (${job.error_message})` : ""}: stop it`,
      job.status,
    );
  }
}

function whyNotHeld(job: JobRecord | undefined, agentId: string, attempt: number): string {
  if (!job) return "unknown job";
  try {
    assertHeld(job, agentId, attempt);
    assertRunning(job);
  } catch (error) {
    return (error as Error).message;
  }
  return "the lease could not be renewed";
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The largest length ≤ max that does not cut a UTF-8 character in two. */
export function utf8Boundary(bytes: Uint8Array, max: number): number {
  if (max >= bytes.length) return bytes.length;
  let end = Math.max(0, max);
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return end;
}
