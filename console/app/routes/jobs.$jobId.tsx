import { idPatterns } from "@hybrid-cicd/runtime/domain/ids";
import { isTerminal } from "@hybrid-cicd/runtime/domain/jobs/job-view";
import { type ActionFunctionArgs, data, type LoaderFunctionArgs, type MetaFunction } from "@remix-run/node";
import { Link, useFetcher, useLoaderData } from "@remix-run/react";
import { z } from "zod";
import { Csrf, FormErrors, PageHeader, StatusBadge, usePolling } from "../components/ui";
import { requirePermission } from "../utils/auth.server";
import { dateTime, duration } from "../utils/format";
import { handleForm } from "../utils/forms.server";
import { useCan, useViewer } from "../utils/user";

/** The last this many bytes of the log are shown (the API serves all of it). */
const LOG_TAIL_BYTES = 256 * 1024;

const jobIdParam = z.string().regex(idPatterns.job);

/** The job page's buttons: one schema, the intent says which. */
const jobActionSchema = z.object({ intent: z.enum(["cancel", "approve", "reject"]) });

function jobIdOf(params: { jobId?: string }): string {
  const parsed = jobIdParam.safeParse(params.jobId);
  if (!parsed.success) throw data({ message: `${params.jobId} is not a job id.` }, { status: 404 });
  return parsed.data;
}

export async function loader({ request, context, params }: LoaderFunctionArgs) {
  requirePermission(request, context, "jobs:read");
  const jobId = jobIdOf(params);
  const job = await context.runtime.jobs.get(jobId).catch((error: unknown) => {
    if (error instanceof Error && error.name === "NotFoundError") {
      throw data({ message: `There is no job ${jobId}.` }, { status: 404 });
    }
    throw error;
  });
  const size = job.log_size ?? 0;
  const offset = Math.max(0, size - LOG_TAIL_BYTES);
  const log = await context.runtime.jobs.logs(jobId, offset, LOG_TAIL_BYTES);
  return { job, log, now: context.runtime.clock().toISOString() };
}

export async function action({ request, context, params }: ActionFunctionArgs) {
  const jobId = jobIdOf(params);
  const intent = (await request.clone().formData()).get("intent");
  requirePermission(request, context, intent === "cancel" ? "jobs:cancel" : "jobs:approve");
  return handleForm(request, jobActionSchema, async (value) => {
    if (value.intent === "cancel") {
      const { pending } = await context.runtime.jobs.cancel(jobId, context.request);
      return pending ? "Cancellation requested: the agent stops the job." : "Job cancelled.";
    }
    if (value.intent === "approve") {
      await context.runtime.jobs.approve(jobId, context.request);
      return "Job approved and queued.";
    }
    await context.runtime.jobs.reject(jobId, context.request);
    return "Job rejected.";
  });
}

interface TimelineEntry {
  time: string;
  label: string;
}

function timelineOf(job: ReturnType<typeof useLoaderData<typeof loader>>["job"]): TimelineEntry[] {
  const entries: TimelineEntry[] = [{ time: job.created_at, label: `created by ${job.created_by}` }];
  if (job.approved_at) entries.push({ time: job.approved_at, label: `approved by ${job.approved_by}` });
  if (job.rejected_at) entries.push({ time: job.rejected_at, label: `rejected by ${job.rejected_by}` });
  for (const attempt of job.attempts ?? []) {
    entries.push({
      time: attempt.claimed_at,
      label: `attempt ${attempt.attempt} claimed by ${attempt.agent_id}`,
    });
    if (attempt.ended_at) {
      entries.push({
        time: attempt.ended_at,
        label: `attempt ${attempt.attempt} ended: ${attempt.outcome ?? "?"}`,
      });
    }
  }
  if (job.cancel_requested_at) {
    entries.push({ time: job.cancel_requested_at, label: `cancel requested by ${job.cancel_requested_by}` });
  }
  if (job.finished_at) {
    entries.push({
      time: job.finished_at,
      label: `${job.status}${job.exit_code !== undefined ? ` (exit code ${job.exit_code})` : ""}`,
    });
  }
  return entries.sort((a, b) => a.time.localeCompare(b.time));
}

export default function JobPage() {
  const { job, log } = useLoaderData<typeof loader>();
  const user = useViewer();
  const canCancel = useCan("jobs:cancel");
  const canApprove = useCan("jobs:approve");
  const fetcher = useFetcher<typeof action>();
  const finished = isTerminal(job.status);
  // Live: logs and state every 2 s until the job has finished.
  usePolling(2_000, !finished);
  const busy = fetcher.state !== "idle";
  const runSeconds =
    job.started_at && (job.finished_at ?? null)
      ? (Date.parse(job.finished_at!) - Date.parse(job.started_at)) / 1000
      : null;
  return (
    <>
      <PageHeader title={`Job ${job.job_id}`}>
        <StatusBadge status={job.status} />
      </PageHeader>
      {fetcher.data?.done ? (
        <p className="notice" role="status">
          {fetcher.data.done}
        </p>
      ) : null}
      <FormErrors errors={fetcher.data?.result.error?.[""] ?? undefined} />
      <div className="page-actions">
        {canCancel && !finished && job.status !== "cancelling" ? (
          <fetcher.Form method="post">
            <Csrf token={user?.csrf ?? ""} />
            <button type="submit" name="intent" value="cancel" className="danger" disabled={busy}>
              {busy ? "Cancelling…" : "Cancel job"}
            </button>
          </fetcher.Form>
        ) : null}
        {canApprove && job.status === "awaiting_approval" ? (
          <fetcher.Form method="post" className="inline">
            <Csrf token={user?.csrf ?? ""} />
            <button type="submit" name="intent" value="approve" disabled={busy}>
              Approve
            </button>
            <button type="submit" name="intent" value="reject" className="secondary" disabled={busy}>
              Reject
            </button>
          </fetcher.Form>
        ) : null}
      </div>
      <div className="panels">
        <section className="panel" aria-labelledby="job-facts">
          <h2 id="job-facts">Details</h2>
          <dl className="facts">
            <dt>Ref</dt>
            <dd>
              <code>{job.git_ref}</code>
            </dd>
            <dt>Repository</dt>
            <dd>{job.repository ?? "–"}</dd>
            <dt>Environment</dt>
            <dd>{job.environment ?? "default"}</dd>
            <dt>Tags</dt>
            <dd>{job.tags.length > 0 ? job.tags.join(", ") : "none"}</dd>
            <dt>Agent</dt>
            <dd>{job.agent_id ? <Link to={`/agents/${job.agent_id}`}>{job.agent_id}</Link> : "–"}</dd>
            <dt>Run time</dt>
            <dd>{duration(runSeconds)}</dd>
            <dt>Command</dt>
            <dd>
              <code>{job.command ?? "–"}</code>
            </dd>
            {job.error_message ? (
              <>
                <dt>Error</dt>
                <dd>{job.error_message}</dd>
              </>
            ) : null}
          </dl>
        </section>
        <section className="panel" aria-labelledby="job-timeline">
          <h2 id="job-timeline">Timeline</h2>
          <ol className="timeline">
            {timelineOf(job).map((entry) => (
              <li key={`${entry.time}-${entry.label}`}>
                <time dateTime={entry.time}>{dateTime(entry.time)}</time> — {entry.label}
              </li>
            ))}
          </ol>
        </section>
      </div>
      <section aria-labelledby="job-log">
        <h2 id="job-log">Log</h2>
        {log.offset > 0 ? (
          <p className="hint">Showing the last {Math.round((log.size - log.offset) / 1024)} KiB.</p>
        ) : null}
        {/* biome-ignore lint/a11y/noNoninteractiveTabindex: the log scrolls; keyboard users need to reach it */}
        <pre className="log" aria-live={finished ? "off" : "polite"} tabIndex={0} data-testid="job-log">
          {log.data || (finished ? "(no output)" : "(waiting for output…)")}
        </pre>
        {log.truncated ? (
          <p className="hint">The log reached its size cap; later output was dropped.</p>
        ) : null}
      </section>
    </>
  );
}

export const meta: MetaFunction = () => [{ title: "Job · Hybrid CI/CD" }];
export { ErrorBoundary } from "../components/error-page";
