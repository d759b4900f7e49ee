import { ValidationError } from "@hybrid-cicd/runtime/domain/errors";
import { idPatterns } from "@hybrid-cicd/runtime/domain/ids";
import { type ActionFunctionArgs, data, type LoaderFunctionArgs, type MetaFunction } from "@remix-run/node";
import { Link, useFetcher, useLoaderData } from "@remix-run/react";
import { z } from "zod";
import { Meter } from "../components/charts";
import { Csrf, FormErrors, PageHeader, StatusBadge, usePolling } from "../components/ui";
import { requirePermission } from "../utils/auth.server";
import { ago, dateTime, duration } from "../utils/format";
import { handleForm } from "../utils/forms.server";
import { useCan, useViewer } from "../utils/user";

const agentIdParam = z.string().regex(idPatterns.agent);
/** Revoking asks for the agent's name again, so a misclick cannot revoke. */
const revokeSchema = z.object({
  intent: z.literal("revoke"),
  confirm: z.string({ error: "type the agent's name" }),
});

function agentIdOf(params: { agentId?: string }): string {
  const parsed = agentIdParam.safeParse(params.agentId);
  if (!parsed.success) throw data({ message: `${params.agentId} is not an agent id.` }, { status: 404 });
  return parsed.data;
}

async function agentOr404(context: LoaderFunctionArgs["context"], agentId: string) {
  return context.runtime.agents.get(agentId).catch((error: unknown) => {
    if (error instanceof Error && error.name === "NotFoundError") {
      throw data({ message: `There is no agent ${agentId}.` }, { status: 404 });
    }
    throw error;
  });
}

export async function loader({ request, context, params }: LoaderFunctionArgs) {
  requirePermission(request, context, "agents:read");
  const agent = await agentOr404(context, agentIdOf(params));
  return { agent, now: context.runtime.clock().toISOString() };
}

export async function action({ request, context, params }: ActionFunctionArgs) {
  requirePermission(request, context, "agents:revoke");
  const agent = await agentOr404(context, agentIdOf(params));
  return handleForm(request, revokeSchema, async (value) => {
    if (value.confirm !== agent.name) {
      throw new ValidationError(`type ${agent.name} to confirm`, [
        { field: "confirm", message: `type ${agent.name} to confirm` },
      ]);
    }
    await context.runtime.agents.revoke(agent.agent_id, context.request);
    return "Agent revoked: its signatures are refused from now on.";
  });
}

export default function AgentPage() {
  const { agent, now } = useLoaderData<typeof loader>();
  const user = useViewer();
  const canRevoke = useCan("agents:revoke");
  const fetcher = useFetcher<typeof action>();
  usePolling(10_000);
  const figures = agent.last_figures;
  const errors = fetcher.data?.result.error;
  return (
    <>
      <PageHeader title={`Agent ${agent.name}`}>
        <StatusBadge status={agent.revoked_at ? "revoked" : agent.status} />
      </PageHeader>
      <div className="panels">
        <section className="panel" aria-labelledby="agent-facts">
          <h2 id="agent-facts">Details</h2>
          <dl className="facts">
            <dt>Id</dt>
            <dd>
              <code>{agent.agent_id}</code>
            </dd>
            <dt>Region</dt>
            <dd>{agent.region}</dd>
            <dt>Tags</dt>
            <dd>{agent.tags.length > 0 ? agent.tags.join(", ") : "none"}</dd>
            <dt>Version</dt>
            <dd>{agent.version ?? "–"}</dd>
            <dt>Registered</dt>
            <dd>{dateTime(agent.registered_at)}</dd>
            <dt>Last heartbeat</dt>
            <dd>{ago(agent.last_heartbeat_at, Date.parse(now))}</dd>
            <dt>Key epoch</dt>
            <dd>{agent.key_epoch}</dd>
            {agent.revoked_at ? (
              <>
                <dt>Revoked</dt>
                <dd>{dateTime(agent.revoked_at)}</dd>
              </>
            ) : null}
          </dl>
        </section>
        <section className="panel" aria-labelledby="agent-resources">
          <h2 id="agent-resources">Resources (last heartbeat)</h2>
          <div className="meters">
            <Meter label="CPU" percent={figures?.cpu_percent} />
            <Meter label="Memory" percent={figures?.memory_percent} />
            <Meter label="Disk" percent={figures?.disk_percent} />
          </div>
          {figures ? (
            <p className="hint">
              {figures.jobs_completed} jobs completed · up {duration(figures.uptime_seconds)}
            </p>
          ) : (
            <p className="hint">No heartbeat yet.</p>
          )}
        </section>
      </div>
      <p>
        <Link to="/jobs">Jobs</Link>
      </p>
      {canRevoke && !agent.revoked_at ? (
        <section className="panel" aria-labelledby="agent-revoke">
          <h2 id="agent-revoke">Revoke</h2>
          {fetcher.data?.done ? (
            <p className="notice" role="status">
              {fetcher.data.done}
            </p>
          ) : null}
          <FormErrors errors={errors?.[""] ?? undefined} />
          <fetcher.Form method="post" className="inline">
            <Csrf token={user?.csrf ?? ""} />
            <input type="hidden" name="intent" value="revoke" />
            <label>
              Type <code>{agent.name}</code> to confirm
              <input
                name="confirm"
                required
                autoComplete="off"
                aria-invalid={errors?.confirm ? true : undefined}
                aria-describedby={errors?.confirm ? "confirm-error" : undefined}
              />
            </label>
            <button type="submit" className="danger" disabled={fetcher.state !== "idle"}>
              {fetcher.state !== "idle" ? "Revoking…" : "Revoke agent"}
            </button>
          </fetcher.Form>
          {errors?.confirm ? (
            <p className="field-error" id="confirm-error">
              {errors.confirm.join(" ")}
            </p>
          ) : null}
        </section>
      ) : null}
    </>
  );
}

export const meta: MetaFunction = () => [{ title: "Agent · Hybrid CI/CD" }];
export { ErrorBoundary } from "../components/error-page";
