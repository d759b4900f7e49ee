import type { JobRecord, JobStatus, TerminalJobStatus } from "../../store/jobs-repository";
import { terminalJobStatuses } from "../../store/jobs-repository";

/** A job as the API shows it: the record without its index bookkeeping. */
export type JobView = Omit<
  JobRecord,
  "listing" | "queue_key" | "queue_order" | "lease_partition" | "held_by"
>;

export function jobView(job: JobRecord): JobView {
  const {
    listing: _listing,
    queue_key: _key,
    queue_order: _order,
    lease_partition: _lease,
    held_by: _holder,
    ...rest
  } = job;
  return rest;
}

export function isTerminal(status: JobStatus): status is TerminalJobStatus {
  return (terminalJobStatuses as readonly string[]).includes(status);
}

/** Raised by a write's condition inside a use case that re-reads the job and decides again. */
export class JobChangedError extends Error {
  override name = "JobChangedError";
}
