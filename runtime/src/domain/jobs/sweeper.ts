import type { Store } from "../../store/store";
import { defaultTargetEnvironments, type TargetEnvironments } from "../environments";
import type { Clock } from "../principal";
import { defaultLifecycleSettings, type LifecycleSettings } from "../settings";
import { type AbandonCause, abandonAttempt, placed } from "./attempt-endings";

export interface SweepReport {
  /** Leases found expired. */
  expired: number;
  /** Queued again as a new attempt (the job asked for `retry.agent_lost`). */
  requeued: number;
  /** Failed with "agent lost". */
  failed: number;
  /** Were being cancelled when their agent was lost, or past the cancel deadline: cancelled. */
  cancelled: number;
  /** Past their server deadline (timeout or cancel deadline), whatever their agent says. */
  past_deadline: number;
  /** Renewed, finished or already handled between the read and the write. */
  skipped: number;
  /** Idle tag sets removed from the queue registry. */
  queues_forgotten: number;
}

const PAGE = 100;
const SWEEPER = { type: "system" as const, id: "sweeper" };

/**
 * Finds jobs whose agent stopped renewing the lease. Jobs may have side effects, so a lost job is not
 * silently run again: it fails with "agent lost", unless it asked for `retry: {agent_lost: N}` and has
 * been lost fewer than N times, in which case it is queued again (its next claim is a new attempt, and
 * every write of the lost attempt is refused from then on). A job being cancelled is simply cancelled.
 *
 * One function with two triggers: the local control plane's timer and the scheduled Lambda on AWS.
 * Safe to run concurrently with itself: each verdict is a conditional write on the lease it read.
 */
export class Sweeper {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly lifecycle: LifecycleSettings = defaultLifecycleSettings,
    private readonly environments: TargetEnvironments = defaultTargetEnvironments,
  ) {}

  async sweep(): Promise<SweepReport> {
    const report: SweepReport = {
      expired: 0,
      requeued: 0,
      failed: 0,
      cancelled: 0,
      past_deadline: 0,
      skipped: 0,
      queues_forgotten: 0,
    };
    const seen = new Set<string>();
    // Past the server's deadline first: a job timed out while its agent still heartbeats is failed (or,
    // being cancelled, cancelled) now, not when its lease runs out.
    for (;;) {
      const now = this.clock();
      const due = (await this.store.jobs.pastDeadline(now.toISOString(), PAGE)).filter(
        (key) => !seen.has(`${key.job_id}@deadline@${key.deadline_at}`),
      );
      if (due.length === 0) break;
      for (const key of due) {
        seen.add(`${key.job_id}@deadline@${key.deadline_at}`);
        const outcome = await this.end(key.job_id, now, { kind: "deadline", deadline_at: key.deadline_at });
        if (outcome !== "skipped") report.past_deadline++;
        report[outcome]++;
      }
    }
    for (;;) {
      const now = this.clock();
      const expired = (await this.store.jobs.expiredLeases(now.toISOString(), PAGE)).filter(
        (key) => !seen.has(`${key.job_id}@${key.lease_expires_at}`),
      );
      if (expired.length === 0) break;
      for (const key of expired) {
        seen.add(`${key.job_id}@${key.lease_expires_at}`);
        report.expired++;
        const outcome = await this.end(key.job_id, now, {
          kind: "lease_expired",
          lease_expires_at: key.lease_expires_at,
        });
        report[outcome]++;
      }
    }
    report.queues_forgotten = await this.forgetIdleQueues();
    return report;
  }

  /** Re-reads the job (the index may lag) and ends the attempt if the cause still holds. */
  private async end(jobId: string, now: Date, cause: AbandonCause) {
    const job = await this.store.jobs.get(jobId);
    const at = now.toISOString();
    const stillDue =
      cause.kind === "deadline"
        ? job?.deadline_at !== undefined && job.deadline_at < at
        : job?.lease_expires_at !== undefined && job.lease_expires_at < at;
    if (!job || !stillDue) return "skipped" as const;
    const current: AbandonCause =
      cause.kind === "deadline"
        ? { kind: "deadline", deadline_at: job.deadline_at! }
        : { kind: "lease_expired", lease_expires_at: job.lease_expires_at! };
    return abandonAttempt(this.store, placed(job, this.environments), current, {
      now,
      lifecycle: this.lifecycle,
      actor: SWEEPER,
      requestId: `sweep-${now.getTime()}`,
    });
  }

  /** Tag sets with no queued job and nothing queued for `queueIdleSeconds` leave the registry. */
  private async forgetIdleQueues(): Promise<number> {
    const cutoff = new Date(this.clock().getTime() - this.lifecycle.queueIdleSeconds * 1000).toISOString();
    let forgotten = 0;
    for (const queue of await this.store.jobQueues.list()) {
      if (queue.last_queued_at >= cutoff) continue;
      if ((await this.store.jobs.queueHead(queue.queue_key, 1)).length > 0) continue;
      if (await this.store.jobQueues.forget(queue.queue_key, queue.last_queued_at)) forgotten++;
    }
    return forgotten;
  }
}
