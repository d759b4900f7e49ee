import { agentHealthStates } from "@hybrid-cicd/runtime/domain/agents/agent-health";
import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Form, Link, useFetcher, useLoaderData, useNavigation, useSearchParams } from "@remix-run/react";
import { z } from "zod";
import { Meter } from "../components/charts";
import { ShownOnce } from "../components/copy";
import { Csrf, FormErrors, PageHeader, StatusBadge, usePolling } from "../components/ui";
import { requirePermission } from "../utils/auth.server";
import { ago } from "../utils/format";
import { handleForm } from "../utils/forms.server";
import { useCan, useViewer } from "../utils/user";

const PAGE_SIZE = 25;

const filters = z.object({
  region: z
    .string()
    .max(64)
    .regex(/^[a-z0-9-]+$/)
    .optional()
    .catch(undefined),
  status: z.enum(agentHealthStates).optional().catch(undefined),
  cursor: z.string().max(2048).optional().catch(undefined),
});

/** The registration-token form: no input beyond the CSRF token; the schema pins the intent. */
const registrationTokenSchema = z.object({ intent: z.literal("registration-token") });

export async function loader({ request, context }: LoaderFunctionArgs) {
  requirePermission(request, context, "agents:read");
  const query = filters.parse(Object.fromEntries(new URL(request.url).searchParams));
  const page = await context.runtime.agents.list({ ...query, limit: PAGE_SIZE });
  return { ...page, filters: query, now: context.runtime.clock().toISOString() };
}

export async function action({ request, context }: ActionFunctionArgs) {
  requirePermission(request, context, "agents:register-token");
  return handleForm(request, registrationTokenSchema, async () => {
    const created = await context.runtime.agents.createRegistrationToken(context.request);
    return { token: created.token, expires_at: created.expires_at };
  });
}

export default function Agents() {
  const { agents, next_cursor, filters: current, now } = useLoaderData<typeof loader>();
  const canIssue = useCan("agents:register-token");
  const user = useViewer();
  const fetcher = useFetcher<typeof action>();
  const navigation = useNavigation();
  const [params] = useSearchParams();
  usePolling(10_000);
  const nextParams = new URLSearchParams(params);
  if (next_cursor) nextParams.set("cursor", next_cursor);
  const issued = fetcher.data?.done;
  return (
    <>
      <PageHeader title="Agents">
        {canIssue ? (
          <fetcher.Form method="post">
            <Csrf token={user?.csrf ?? ""} />
            <button
              type="submit"
              name="intent"
              value="registration-token"
              disabled={fetcher.state !== "idle"}
            >
              {fetcher.state !== "idle" ? "Creating…" : "Create registration token"}
            </button>
          </fetcher.Form>
        ) : null}
      </PageHeader>
      <FormErrors errors={fetcher.data?.result.error?.[""] ?? undefined} />
      {issued ? (
        <>
          <ShownOnce label="Registration token" value={issued.token} />
          <p className="hint">
            Valid until {issued.expires_at}. On the agent's machine:{" "}
            <code>hybrid-cicd agent register --url … --token {"<token>"}</code>
          </p>
        </>
      ) : null}
      <Form method="get" className="inline" aria-label="Filter agents">
        <label>
          Region
          <input name="region" defaultValue={current.region ?? ""} placeholder="any" />
        </label>
        <label>
          Health
          <select name="status" defaultValue={current.status ?? ""}>
            <option value="">any</option>
            {agentHealthStates.map((state) => (
              <option key={state} value={state}>
                {state}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" className="secondary" disabled={navigation.state === "loading"}>
          Filter
        </button>
      </Form>
      <div className="table-wrap">
        <table>
          <caption className="visually-hidden">Agents</caption>
          <thead>
            <tr>
              <th scope="col">Agent</th>
              <th scope="col">Health</th>
              <th scope="col">Region</th>
              <th scope="col">Last heartbeat</th>
              <th scope="col" className="hide-narrow">
                Resources
              </th>
            </tr>
          </thead>
          <tbody>
            {agents.length === 0 ? (
              <tr>
                <td colSpan={5}>
                  No agents{current.region || current.status ? " match" : " registered yet"}.
                </td>
              </tr>
            ) : (
              agents.map((agent) => (
                <tr key={agent.agent_id}>
                  <td>
                    <Link to={`/agents/${agent.agent_id}`}>{agent.name}</Link>
                  </td>
                  <td>
                    <StatusBadge status={agent.revoked_at ? "revoked" : agent.status} />
                  </td>
                  <td>{agent.region}</td>
                  <td>{ago(agent.last_heartbeat_at, Date.parse(now))}</td>
                  <td className="hide-narrow">
                    <div className="meters">
                      <Meter label="CPU" of={agent.name} percent={agent.last_figures?.cpu_percent} />
                      <Meter label="Memory" of={agent.name} percent={agent.last_figures?.memory_percent} />
                    </div>
                  </td>
                </tr>
              ))
            )}
          </tbody>
        </table>
      </div>
      <nav className="pager" aria-label="Pages">
        {next_cursor ? <Link to={`?${nextParams}`}>Next page</Link> : null}
      </nav>
    </>
  );
}

export const meta: MetaFunction = () => [{ title: "Agents · Hybrid CI/CD" }];
export { ErrorBoundary } from "../components/error-page";
