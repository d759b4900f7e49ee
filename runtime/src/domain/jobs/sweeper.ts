import { type JobRecord, queueKeyOf } from "../../store/jobs-repository";
import type { Store } from "../../store/store";
import type { Clock } from "../principal";
import { defaultLifecycleSettings, type LifecycleSettings } from "../settings";
import { JobChangedError } from "./job-view";

export interface SweepReport {
  /** Leases found expired. */
  expired: number;
  /** Queued again as a new attempt (the job asked for `retry.agent_lost`). */
  requeued: number;
  /** Failed with "agent lost". */
  failed: number;
  /** Were being cancelled when their agent was lost: cancelled. */
  cancelled: number;
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
  ) {}

  async sweep(): Promise<SweepReport> {
    const report: SweepReport = {
      expired: 0,
      requeued: 0,
      failed: 0,
      cancelled: 0,
      skipped: 0,
      queues_forgotten: 0,
    };
    const seen = new Set<string>();
    for (;;) {
      const now = this.clock();
      const expired = (await this.store.jobs.expiredLeases(now.toISOString(), PAGE)).filter(
        (key) => !seen.has(`${key.job_id}@${key.lease_expires_at}`),
      );
      if (expired.length === 0) break;
      for (const key of expired) {
        seen.add(`${key.job_id}@${key.lease_expires_at}`);
        report.expired++;
        const outcome = await this.endLostAttempt(key.job_id, now);
        report[outcome]++;
      }
    }
    report.queues_forgotten = await this.forgetIdleQueues();
    return report;
  }

  private async endLostAttempt(
    jobId: string,
    now: Date,
  ): Promise<"requeued" | "failed" | "cancelled" | "skipped"> {
    const job = await this.store.jobs.get(jobId);
    if (
      !job ||
      job.lease_expires_at === undefined ||
      job.lease_expires_at >= now.toISOString() ||
      (job.status !== "running" && job.status !== "cancelling")
    ) {
      return "skipped";
    }
    const leased = job as JobRecord & { lease_expires_at: string };
    const lost = job.lost_attempts ?? 0;
    const allowed = Math.min(job.retry?.agent_lost ?? 0, this.lifecycle.maxAgentLostRetries);
    const verdict =
      job.status === "cancelling"
        ? ({
            kind: "end",
            status: "cancelled",
            errorMessage: "agent lost while the job was being cancelled",
          } as const)
        : lost < allowed
          ? ({ kind: "requeue" } as const)
          : ({ kind: "end", status: "failed", errorMessage: "agent lost" } as const);
    const tx = this.store.transaction();
    this.store.jobs.endLostAttempt(
      tx,
      leased,
      { ...verdict, now: now.toISOString() },
      () => new JobChangedError(),
    );
    tx.audit({
      action: verdict.kind === "requeue" ? "job.requeue" : "job.fail_lost",
      actor: SWEEPER,
      target: { type: "job", id: job.job_id },
      outcome: "success",
      request_id: `sweep-${now.getTime()}`,
      details: {
        attempt: job.attempt,
        agent_id: job.agent_id,
        lease_expired_at: leased.lease_expires_at,
        status: verdict.kind === "requeue" ? "queued" : verdict.status,
        lost_attempts: lost + 1,
        retry_agent_lost: job.retry?.agent_lost ?? 0,
      },
    });
    try {
      if (verdict.kind === "requeue")
        await this.store.jobQueues.record(queueKeyOf(job.tags), job.tags, now.toISOString());
      await this.store.commit(tx);
    } catch (error) {
      if (error instanceof JobChangedError) return "skipped";
      throw error;
    }
    return verdict.kind === "requeue" ? "requeued" : verdict.status;
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
