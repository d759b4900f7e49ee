import { DomainError } from "../errors";

/**
 * The job lifecycle's refusals. Each has its own problem `type`, because an agent acts on it: stop the
 * job (`job-not-leased`, `stale-attempt`, `job-not-running`), resynchronise its log upload (`log-gap`,
 * `log-overlap`) or split its chunk (`log-chunk-too-large`).
 */

/** 403: the attempt named was never this agent's (another agent's job, or a made-up attempt). */
export class JobNotLeasedError extends DomainError {
  override name = "JobNotLeasedError";
  readonly status = 403;
  readonly slug = "job-not-leased";
  readonly title = "The job is not leased to this agent";
}

/** 409: a zombie: the agent held this attempt, but the job has moved on to a newer one. */
export class StaleAttemptError extends DomainError {
  override name = "StaleAttemptError";
  readonly status = 409;
  readonly slug = "stale-attempt";
  readonly title = "This attempt has been superseded; stop the job";
  constructor(attempt: number, currentAttempt: number) {
    super(`attempt ${attempt} has been superseded by attempt ${currentAttempt}: stop this job`);
    this.extensions.attempt = attempt;
    this.extensions.current_attempt = currentAttempt;
  }
}

/** 409: the job is not running any more (finished, or failed by the sweeper as "agent lost"). */
export class JobNotRunningError extends DomainError {
  override name = "JobNotRunningError";
  readonly status = 409;
  readonly slug = "job-not-running";
  readonly title = "The job is not running";
  constructor(detail: string, jobStatus: string) {
    super(detail);
    this.extensions.job_status = jobStatus;
  }
}

/** 416: the chunk starts after the end of the stored log; resend from `current_size`. */
export class LogGapError extends DomainError {
  override name = "LogGapError";
  readonly status = 416;
  readonly slug = "log-gap";
  readonly title = "The log chunk does not start at the end of the stored log";
  constructor(offset: number, currentSize: number) {
    super(
      `the chunk starts at byte ${offset} but the log holds ${currentSize} bytes: resend from ${currentSize}`,
    );
    this.extensions.current_size = currentSize;
    this.headers["Content-Range"] = `bytes */${currentSize}`;
  }
}

/** 409: the chunk overlaps stored bytes and is not a repeat of the chunk stored at that offset. */
export class LogOverlapError extends DomainError {
  override name = "LogOverlapError";
  readonly status = 409;
  readonly slug = "log-overlap";
  readonly title = "The log chunk overlaps bytes already stored";
  constructor(offset: number, currentSize: number) {
    super(
      `bytes from ${offset} are already stored with other content (the log holds ${currentSize} bytes): continue from ${currentSize}`,
    );
    this.extensions.current_size = currentSize;
  }
}

/** 413: one chunk over the cap; split it. */
export class LogChunkTooLargeError extends DomainError {
  override name = "LogChunkTooLargeError";
  readonly status = 413;
  readonly slug = "log-chunk-too-large";
  readonly title = "The log chunk is too large";
  constructor(bytes: number, maxBytes: number) {
    super(`the chunk has ${bytes} bytes; send at most ${maxBytes} per upload`);
    this.extensions.max_chunk_bytes = maxBytes;
  }
}

/** 403: segregation of duties — the requester of a production job cannot approve it. */
export class SelfApprovalError extends DomainError {
  override name = "SelfApprovalError";
  readonly status = 403;
  readonly slug = "self-approval";
  readonly title = "A job cannot be approved by the person who requested it";
}
