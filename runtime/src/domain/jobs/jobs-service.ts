import { createHash } from "node:crypto";
import { ulid } from "ulid";
import type { JobRecord, JobStatus } from "../../store/jobs-repository";
import { LISTING_PARTITION } from "../../store/schema";
import type { Store } from "../../store/store";
import { ConflictError, IdempotencyMismatchError, NotFoundError } from "../errors";
import { auditActor, type Clock, epochSeconds, type RequestContext } from "../principal";
import { settings } from "../settings";

export interface CreateJobInput {
  git_ref: string;
  repository?: string;
  command?: string;
  tags: string[];
  environment?: string;
  priority: number;
  timeout_seconds?: number;
}

export type JobView = Omit<JobRecord, "listing">;

class IdempotencyKeyTaken extends Error {}

/** Jobs: queued by people or automation, listed and read by anyone signed in. */
export class JobsService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /**
   * Queues a job. With an Idempotency-Key, the job and the key are written in one transaction: the
   * same key and request return the first job (`replayed: true`); the same key with another request is
   * refused.
   */
  async create(
    input: CreateJobInput,
    context: RequestContext,
    idempotencyKey?: string,
  ): Promise<{ job: JobView; replayed: boolean }> {
    const now = this.clock();
    const actor = auditActor(context);
    const job: JobRecord = {
      job_id: `job_${ulid().toLowerCase()}`,
      status: "queued",
      git_ref: input.git_ref,
      repository: input.repository,
      command: input.command,
      tags: [...new Set(input.tags)].sort(),
      environment: input.environment,
      priority: input.priority,
      timeout_seconds: input.timeout_seconds ?? settings.job.defaultTimeoutSeconds,
      created_at: now.toISOString(),
      updated_at: now.toISOString(),
      created_by: actor.id,
      listing: LISTING_PARTITION,
      attempt: 0,
    };
    const tx = this.store.transaction();
    this.store.jobs.put(tx, job, () => new ConflictError("job id collision; retry"));
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
      await this.store.commit(tx);
      return { job: view(job), replayed: false };
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
    const job = await this.store.jobs.get(jobId);
    if (!job) throw new NotFoundError(`job ${jobId} does not exist`);
    return view(job);
  }

  async list(options: { status?: JobStatus; limit: number; cursor?: string }) {
    const [page, total] = await Promise.all([
      this.store.jobs.list(options),
      this.store.jobs.count(options.status),
    ]);
    return { jobs: page.items.map(view), total, next_cursor: page.nextCursor };
  }
}

function view(job: JobRecord): JobView {
  const { listing: _listing, ...rest } = job;
  return rest;
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
