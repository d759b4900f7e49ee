import { can } from "@hybrid-cicd/runtime/identity/permissions";
import { version } from "@hybrid-cicd/runtime/version";
import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Link, useLoaderData } from "@remix-run/react";
import { JobsPerDayChart } from "../components/charts";
import { PageHeader, StatusBadge, usePolling } from "../components/ui";
import { requirePermission } from "../utils/auth.server";
import { durationPercentiles, jobsPerDay } from "../utils/charts";
import { ago, duration } from "../utils/format";

/** How many recent jobs the charts are drawn from (one index query). */
const CHART_JOBS = 300;
const DAY_MS = 86_400_000;

export async function loader({ request, context }: LoaderFunctionArgs) {
  const user = requirePermission(request, context, "jobs:read");
  const { runtime } = context;
  const now = runtime.clock();
  const [queue, failed, recent, lastEvent, lastVerify] = await Promise.all([
    runtime.queueMetrics.read(),
    runtime.jobs.list({ status: "failed", limit: 100 }),
    runtime.jobs.list({ limit: CHART_JOBS }),
    can(user.role, "audit:read") ? runtime.audit.list({ order: "desc", limit: 1 }) : undefined,
    can(user.role, "audit:read")
      ? runtime.audit.list({ action: "audit.verify", order: "desc", limit: 1 })
      : undefined,
  ]);
  const since = now.getTime() - DAY_MS;
  const failures24h = failed.jobs.filter((job) => Date.parse(job.finished_at ?? job.updated_at) >= since);
  return {
    now: now.toISOString(),
    health: { status: "ok", version, environment: runtime.env.HYBRID_CICD_ENVIRONMENT },
    queue,
    failures24h: {
      count: failures24h.length,
      // More than one page of failures: at least this many.
      atLeast: failed.next_cursor !== null && failures24h.length === failed.jobs.length,
      latest: failures24h
        .slice(0, 5)
        .map((job) => ({ job_id: job.job_id, git_ref: job.git_ref, finished_at: job.finished_at ?? null })),
    },
    days: jobsPerDay(recent.jobs, 7, now),
    durations: durationPercentiles(recent.jobs),
    sampled: recent.jobs.length,
    audit: lastEvent
      ? {
          head: lastEvent.events[0] ? { seq: lastEvent.events[0].seq, time: lastEvent.events[0].time } : null,
          lastVerify: lastVerify?.events[0]
            ? { time: lastVerify.events[0].time, by: lastVerify.events[0].actor.id }
            : null,
        }
      : null,
  };
}

export default function Overview() {
  const data = useLoaderData<typeof loader>();
  usePolling(5_000);
  const { queue } = data;
  return (
    <>
      <PageHeader title="Overview">
        <p className="hint" aria-live="polite">
          Updated {data.now.slice(11, 19)} UTC · refreshes every 5 s
        </p>
      </PageHeader>
      <div className="cards">
        <section className="card" aria-labelledby="card-api">
          <h2 id="card-api">API</h2>
          <div className="figure">
            <StatusBadge status={data.health.status} />
          </div>
          <p>
            version {data.health.version} · {data.health.environment}
          </p>
        </section>
        <section className="card" aria-labelledby="card-agents">
          <h2 id="card-agents">Agents</h2>
          <div className="figure">{queue.agents.healthy}</div>
          <p>
            healthy · {queue.agents.unhealthy} unhealthy · {queue.agents.dead} dead · {queue.agents.revoked}{" "}
            revoked
          </p>
        </section>
        <section className="card" aria-labelledby="card-queued">
          <h2 id="card-queued">Jobs queued</h2>
          <div className="figure">{queue.queued.jobs}</div>
          <p>
            oldest waits {duration(queue.queued.oldest_wait_seconds)} · {queue.awaiting_approval} awaiting
            approval
          </p>
        </section>
        <section className="card" aria-labelledby="card-running">
          <h2 id="card-running">Jobs running</h2>
          <div className="figure">{queue.running}</div>
          <p>{queue.cancelling} being cancelled</p>
        </section>
        <section className="card" aria-labelledby="card-failures">
          <h2 id="card-failures">Failures, last 24 h</h2>
          <div className="figure">
            {data.failures24h.count}
            {data.failures24h.atLeast ? "+" : ""}
          </div>
          <p>
            <Link to="/jobs?status=failed">failed jobs</Link>
          </p>
        </section>
        {data.audit ? (
          <section className="card" aria-labelledby="card-audit">
            <h2 id="card-audit">Audit chain</h2>
            <div className="figure">{data.audit.head ? `#${data.audit.head.seq}` : "empty"}</div>
            <p>
              last verified{" "}
              {data.audit.lastVerify ? `${ago(data.audit.lastVerify.time, Date.parse(data.now))}` : "never"} ·{" "}
              <Link to="/audit">verify</Link>
            </p>
          </section>
        ) : null}
      </div>
      <div className="panels">
        <section className="panel" aria-labelledby="chart-days">
          <h2 id="chart-days">Jobs per day by outcome</h2>
          <JobsPerDayChart days={data.days} />
          <p className="hint">From the {data.sampled} most recent jobs.</p>
        </section>
        <section className="panel" aria-labelledby="chart-durations">
          <h2 id="chart-durations">Job duration</h2>
          <dl className="facts">
            <dt>p50</dt>
            <dd>{duration(data.durations.p50)}</dd>
            <dt>p90</dt>
            <dd>{duration(data.durations.p90)}</dd>
            <dt>p99</dt>
            <dd>{duration(data.durations.p99)}</dd>
            <dt>longest</dt>
            <dd>{duration(data.durations.max)}</dd>
            <dt>finished jobs</dt>
            <dd>{data.durations.count}</dd>
          </dl>
        </section>
        <section className="panel" aria-labelledby="recent-failures">
          <h2 id="recent-failures">Recent failures</h2>
          {data.failures24h.latest.length === 0 ? (
            <p>No job failed in the last 24 hours.</p>
          ) : (
            <ul>
              {data.failures24h.latest.map((job) => (
                <li key={job.job_id}>
                  <Link to={`/jobs/${job.job_id}`}>{job.git_ref}</Link> ·{" "}
                  {ago(job.finished_at, Date.parse(data.now))}
                </li>
              ))}
            </ul>
          )}
        </section>
      </div>
    </>
  );
}

export const meta: MetaFunction = () => [{ title: "Overview · Hybrid CI/CD" }];
export { ErrorBoundary } from "../components/error-page";
