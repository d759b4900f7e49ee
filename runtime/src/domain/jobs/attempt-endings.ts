import { type PlacedJob, queueKeyOf } from "../../store/jobs-repository";
import type { Store } from "../../store/store";
import type { AuditDraft } from "../../store/transaction";
import type { TargetEnvironments } from "../environments";
import type { LifecycleSettings } from "../settings";
import { JobChangedError } from "./job-view";

/** Why the server ends an attempt its agent will not finish. */
export type AbandonCause =
  /** The lease expired: the agent stopped heartbeating. */
  | { kind: "lease_expired"; lease_expires_at: string }
  /** An admin revoked the agent holding it. */
  | { kind: "agent_revoked"; agent_id: string }
  /** The server's deadline passed (the job's timeout, or the cancel deadline) though the agent heartbeats. */
  | { kind: "deadline"; deadline_at: string };

export type AbandonOutcome = "requeued" | "failed" | "cancelled" | "skipped";

/**
 * Ends (or queues again) one abandoned attempt, with its audit event, in one conditional transaction
 * on the value that made the verdict: a heartbeat, a finish or another verdict that got there first wins
 * ("skipped"). A lost or revoked agent's job is queued again only where the job asked for
 * `retry.agent_lost`; a job past its deadline is never rerun.
 */
export async function abandonAttempt(
  store: Store,
  job: PlacedJob,
  cause: AbandonCause,
  options: {
    now: Date;
    lifecycle: LifecycleSettings;
    actor: AuditDraft["actor"];
    requestId: string;
  },
): Promise<AbandonOutcome> {
  if (job.status !== "running" && job.status !== "cancelling") return "skipped";
  const now = options.now.toISOString();
  const lost = job.lost_attempts ?? 0;
  const allowed = Math.min(job.retry?.agent_lost ?? 0, options.lifecycle.maxAgentLostRetries);
  const cancelling = job.status === "cancelling";
  let verdict: { kind: "requeue" } | { kind: "end"; status: "failed" | "cancelled"; errorMessage: string };
  let ending: Parameters<Store["jobs"]["endAttempt"]>[2];
  switch (cause.kind) {
    case "lease_expired":
    case "agent_revoked": {
      const what = cause.kind === "lease_expired" ? "agent lost" : "agent revoked";
      verdict = cancelling
        ? { kind: "end", status: "cancelled", errorMessage: `${what} while the job was being cancelled` }
        : lost < allowed
          ? { kind: "requeue" }
          : { kind: "end", status: "failed", errorMessage: what };
      ending = {
        outcome: cause.kind === "lease_expired" ? "agent_lost" : "agent_revoked",
        countsAsLost: true,
        seen:
          cause.kind === "lease_expired"
            ? { lease_expires_at: cause.lease_expires_at }
            : { held_by: cause.agent_id },
      };
      break;
    }
    case "deadline":
      verdict = cancelling
        ? {
            kind: "end",
            status: "cancelled",
            errorMessage: `cancelled: the agent did not stop the job within ${options.lifecycle.cancelDeadlineSeconds} s`,
          }
        : { kind: "end", status: "failed", errorMessage: `timed out after ${job.timeout_seconds} s` };
      ending = { outcome: "timed_out", countsAsLost: false, seen: { deadline_at: cause.deadline_at } };
      break;
  }
  const to = verdict.kind === "requeue" ? "queued" : verdict.status;
  const tx = store.transaction();
  store.jobs.endAttempt(tx, job, ending, { ...verdict, now }, () => new JobChangedError());
  store.jobCounts.move(tx, job.status, to);
  tx.audit({
    action:
      verdict.kind === "requeue"
        ? "job.requeue"
        : cause.kind === "deadline"
          ? "job.deadline"
          : cause.kind === "agent_revoked"
            ? "job.fail_revoked"
            : "job.fail_lost",
    actor: options.actor,
    target: { type: "job", id: job.job_id },
    outcome: "success",
    request_id: options.requestId,
    details: {
      attempt: job.attempt,
      agent_id: job.agent_id,
      cause: cause.kind,
      ...(cause.kind === "lease_expired" ? { lease_expired_at: cause.lease_expires_at } : {}),
      ...(cause.kind === "deadline" ? { deadline_at: cause.deadline_at, from: job.status } : {}),
      status: to,
      ...(ending.countsAsLost
        ? { lost_attempts: lost + 1, retry_agent_lost: job.retry?.agent_lost ?? 0 }
        : { timeout_seconds: job.timeout_seconds }),
    },
  });
  try {
    if (verdict.kind === "requeue") {
      await store.jobQueues.record(queueKeyOf(job.environment, job.tags), job.environment, job.tags, now);
    }
    await store.commit(tx);
  } catch (error) {
    if (error instanceof JobChangedError) return "skipped";
    throw error;
  }
  return verdict.kind === "requeue" ? "requeued" : verdict.status;
}

/** A job as stored, placed in its environment (jobs older than environments run in the default one). */
export function placed<T extends { environment?: string }>(
  job: T,
  environments: TargetEnvironments,
): T & { environment: string } {
  return { ...job, environment: job.environment ?? environments.default };
}
