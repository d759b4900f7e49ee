import { jobStatuses } from "@hybrid-cicd/runtime/store/jobs-repository";
import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Form, Link, useLoaderData, useNavigation, useSearchParams } from "@remix-run/react";
import { z } from "zod";
import { PageHeader, StatusBadge } from "../components/ui";
import { requirePermission } from "../utils/auth.server";
import { ago } from "../utils/format";
import { useCan } from "../utils/user";

const PAGE_SIZE = 25;

const filters = z.object({
  status: z.enum(jobStatuses).optional().catch(undefined),
  cursor: z.string().max(2048).optional().catch(undefined),
});

export async function loader({ request, context }: LoaderFunctionArgs) {
  requirePermission(request, context, "jobs:read");
  const query = filters.parse(Object.fromEntries(new URL(request.url).searchParams));
  const page = await context.runtime.jobs
    .list({ status: query.status, limit: PAGE_SIZE, cursor: query.cursor })
    .catch((error: unknown) => {
      // A cursor from another listing (or edited by hand) starts the list over instead of failing.
      if (query.cursor && error instanceof Error && error.name === "ValidationError") {
        return context.runtime.jobs.list({ status: query.status, limit: PAGE_SIZE });
      }
      throw error;
    });
  return { ...page, status: query.status ?? null, now: context.runtime.clock().toISOString() };
}

export default function Jobs() {
  const { jobs, total, next_cursor, status, now } = useLoaderData<typeof loader>();
  const canCreate = useCan("jobs:create");
  const navigation = useNavigation();
  const [params] = useSearchParams();
  const nextParams = new URLSearchParams(params);
  if (next_cursor) nextParams.set("cursor", next_cursor);
  return (
    <>
      <PageHeader title="Jobs">
        {canCreate ? (
          <Link className="button" to="/jobs/new">
            Queue a job
          </Link>
        ) : null}
      </PageHeader>
      <Form method="get" className="inline" aria-label="Filter jobs">
        <label>
          Status
          <select name="status" defaultValue={status ?? ""}>
            <option value="">any</option>
            {jobStatuses.map((value) => (
              <option key={value} value={value}>
                {value.replace(/_/g, " ")}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" className="secondary" disabled={navigation.state === "loading"}>
          {navigation.state === "loading" ? "Filtering…" : "Filter"}
        </button>
      </Form>
      <p className="hint">
        {total} {status ? status.replace(/_/g, " ") : ""} job{total === 1 ? "" : "s"}
      </p>
      <div className="table-wrap">
        <table>
          <caption className="visually-hidden">Jobs, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Job</th>
              <th scope="col">Status</th>
              <th scope="col">Ref</th>
              <th scope="col" className="hide-narrow">
                Environment
              </th>
              <th scope="col" className="hide-narrow">
                Agent
              </th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {jobs.length === 0 ? (
              <tr>
                <td colSpan={6}>No jobs.</td>
              </tr>
            ) : (
              jobs.map((job) => (
                <tr key={job.job_id}>
                  <td>
                    <Link to={`/jobs/${job.job_id}`}>
                      <code>{job.job_id.slice(-10)}</code>
                    </Link>
                  </td>
                  <td>
                    <StatusBadge status={job.status} />
                  </td>
                  <td>
                    <code>{job.git_ref}</code>
                  </td>
                  <td className="hide-narrow">{job.environment ?? "default"}</td>
                  <td className="hide-narrow">
                    {job.agent_id ? (
                      <Link to={`/agents/${job.agent_id}`}>{job.agent_id.slice(-10)}</Link>
                    ) : (
                      "–"
                    )}
                  </td>
                  <td>{ago(job.created_at, Date.parse(now))}</td>
                </tr>
              ))
            )}
          </tbody>
        </table>
      </div>
      <nav className="pager" aria-label="Pages">
        {params.get("cursor") ? <Link to={status ? `?status=${status}` : "."}>First page</Link> : null}
        {next_cursor ? <Link to={`?${nextParams}`}>Next page</Link> : null}
      </nav>
    </>
  );
}

export const meta: MetaFunction = () => [{ title: "Jobs · Hybrid CI/CD" }];
export { ErrorBoundary } from "../components/error-page";
