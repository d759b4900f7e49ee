import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Form, Link, useFetcher, useLoaderData, useNavigation, useSearchParams } from "@remix-run/react";
import { z } from "zod";
import { Csrf, FormErrors, PageHeader, StatusBadge } from "../components/ui";
import { requirePermission } from "../utils/auth.server";
import { dateTime } from "../utils/format";
import { handleForm } from "../utils/forms.server";
import { useViewer } from "../utils/user";

const PAGE_SIZE = 50;
const ref = z
  .string()
  .max(200)
  .regex(/^[a-z_]+:[^\s]+$/, "type:id, e.g. user:alice");

/** The search form (GET): invalid values are dropped rather than failing the page. */
const searchSchema = z.object({
  action: z
    .string()
    .max(100)
    .regex(/^[a-z_.]+$/)
    .optional()
    .catch(undefined),
  actor: ref.optional().catch(undefined),
  target: ref.optional().catch(undefined),
  outcome: z.enum(["success", "denied", "error"]).optional().catch(undefined),
  from: z.iso.datetime().optional().catch(undefined),
  to: z.iso.datetime().optional().catch(undefined),
  cursor: z.string().max(2048).optional().catch(undefined),
});

const verifySchema = z.object({ intent: z.literal("verify") });

export async function loader({ request, context }: LoaderFunctionArgs) {
  requirePermission(request, context, "audit:read");
  const search = searchSchema.parse(
    Object.fromEntries([...new URL(request.url).searchParams].filter(([, value]) => value !== "")),
  );
  const { action, ...rest } = search;
  // A trailing dot (`job.`) searches the family; a full action name matches exactly.
  const page = await context.runtime.audit.list({
    ...rest,
    ...(action ? (action.endsWith(".") ? { actionPrefix: action } : { action }) : {}),
    order: "desc",
    limit: PAGE_SIZE,
  });
  return { ...page, search };
}

export async function action({ request, context }: ActionFunctionArgs) {
  requirePermission(request, context, "audit:read");
  return handleForm(request, verifySchema, async () => {
    const report = await context.runtime.audit.verify({}, context.request);
    return {
      ok: report.ok,
      events: report.events,
      digests: report.digests,
      last_seq: report.last_seq,
      sealed_through_seq: report.sealed_through_seq,
      unsealed_events: report.unsealed_events,
      problem_count: report.problem_count,
      first_problem: report.first_problem?.message ?? null,
      warnings: report.warnings,
    };
  });
}

export default function Audit() {
  const { events, next_cursor, search } = useLoaderData<typeof loader>();
  const user = useViewer();
  const verify = useFetcher<typeof action>();
  const navigation = useNavigation();
  const [params] = useSearchParams();
  const nextParams = new URLSearchParams(params);
  if (next_cursor) nextParams.set("cursor", next_cursor);
  const report = verify.data?.done;
  return (
    <>
      <PageHeader title="Audit trail">
        <verify.Form method="post">
          <Csrf token={user?.csrf ?? ""} />
          <button type="submit" name="intent" value="verify" disabled={verify.state !== "idle"}>
            {verify.state !== "idle" ? "Verifying…" : "Verify chain"}
          </button>
        </verify.Form>
      </PageHeader>
      <FormErrors errors={verify.data?.result.error?.[""] ?? undefined} />
      {report ? (
        <div className={report.ok ? "notice" : "form-errors"} role="status" data-testid="verify-result">
          <p>
            <strong>{report.ok ? "The chain verifies." : "The chain does NOT verify."}</strong>{" "}
            {report.events} events, {report.digests} signed digests; sealed through #
            {report.sealed_through_seq ?? 0}, {report.unsealed_events} not yet sealed.
          </p>
          {report.first_problem ? (
            <p>
              First of {report.problem_count} problems: {report.first_problem}
            </p>
          ) : null}
          {report.warnings.map((warning) => (
            <p key={warning}>{warning}</p>
          ))}
        </div>
      ) : null}
      <Form method="get" className="inline" aria-label="Search the audit trail">
        <label>
          Action <span className="hint">e.g. job. or job.create</span>
          <input name="action" defaultValue={search.action ?? ""} />
        </label>
        <label>
          Actor <span className="hint">type:id</span>
          <input name="actor" defaultValue={search.actor ?? ""} />
        </label>
        <label>
          Target <span className="hint">type:id</span>
          <input name="target" defaultValue={search.target ?? ""} />
        </label>
        <label>
          Outcome
          <select name="outcome" defaultValue={search.outcome ?? ""}>
            <option value="">any</option>
            <option value="success">success</option>
            <option value="denied">denied</option>
            <option value="error">error</option>
          </select>
        </label>
        <button type="submit" className="secondary" disabled={navigation.state === "loading"}>
          Search
        </button>
      </Form>
      <div className="table-wrap">
        <table>
          <caption className="visually-hidden">Audit events, newest first</caption>
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Time</th>
              <th scope="col">Action</th>
              <th scope="col">Actor</th>
              <th scope="col" className="hide-narrow">
                Target
              </th>
              <th scope="col">Outcome</th>
            </tr>
          </thead>
          <tbody>
            {events.length === 0 ? (
              <tr>
                <td colSpan={6}>No events match.</td>
              </tr>
            ) : (
              events.map((event) => (
                <tr key={event.event_id}>
                  <td>{event.seq}</td>
                  <td>{dateTime(event.time)}</td>
                  <td>
                    <details>
                      <summary>
                        <code>{event.action}</code>
                      </summary>
                      <dl className="facts">
                        <dt>Event id</dt>
                        <dd>
                          <code>{event.event_id}</code>
                        </dd>
                        <dt>Request</dt>
                        <dd>{event.request_id ?? "–"}</dd>
                        <dt>From</dt>
                        <dd>{event.actor.ip ?? "–"}</dd>
                        <dt>Details</dt>
                        <dd>
                          <code>{JSON.stringify(event.details ?? {})}</code>
                        </dd>
                        <dt>Hash</dt>
                        <dd>
                          <code>{event.hash}</code>
                        </dd>
                        <dt>Previous</dt>
                        <dd>
                          <code>{event.prev_hash}</code>
                        </dd>
                      </dl>
                    </details>
                  </td>
                  <td>
                    {event.actor.type}:{event.actor.id}
                  </td>
                  <td className="hide-narrow">
                    {event.target.type === "job" ? (
                      <Link to={`/jobs/${event.target.id}`}>job:{event.target.id}</Link>
                    ) : (
                      `${event.target.type}:${event.target.id}`
                    )}
                  </td>
                  <td>
                    <StatusBadge status={event.outcome} />
                  </td>
                </tr>
              ))
            )}
          </tbody>
        </table>
      </div>
      <nav className="pager" aria-label="Pages">
        {next_cursor ? <Link to={`?${nextParams}`}>Older events</Link> : null}
      </nav>
    </>
  );
}

export const meta: MetaFunction = () => [{ title: "Audit · Hybrid CI/CD" }];
export { ErrorBoundary } from "../components/error-page";
