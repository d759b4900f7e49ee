import { ServiceUnavailableError } from "@hybrid-cicd/runtime/domain/errors";
import { type RotationStep, secretKeyByName } from "@hybrid-cicd/runtime/domain/secrets/key-rotation";
import { SecretStoreBusyError } from "@hybrid-cicd/runtime/secrets/local-secret-store";
import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Form, Link, useActionData, useFetcher, useLoaderData, useNavigation } from "@remix-run/react";
import { z } from "zod";
import { Csrf, FormErrors, PageHeader, StatusBadge, usePolling } from "../components/ui";
import { requirePermission } from "../utils/auth.server";
import { ago, dateTime } from "../utils/format";
import { handleForm } from "../utils/forms.server";
import { useCan, useViewer } from "../utils/user";

const HISTORY = 5;
/** The engine's steps, in order (key-rotation.ts is server code: only its type comes to the browser). */
const rotationSteps = [
  "createSecret",
  "setSecret",
  "testSecret",
  "finishSecret",
] as const satisfies readonly RotationStep[];

/** Rotate (after the confirmation step) or abort: the secret by its catalog name. */
const rotationForm = z.object({
  intent: z.enum(["rotate", "abort"]),
  name: z.string().min(1).max(128),
});

/** The OAuth client secrets take their new values from the admin (API or CLI), never generated here. */
const GIVEN_NOT_GENERATED = "oauth-client-secrets";

export async function loader({ request, context }: LoaderFunctionArgs) {
  requirePermission(request, context, "secrets:read");
  const rotation = context.runtime.rotation;
  const overviews = await rotation.list();
  const secrets = await Promise.all(
    overviews.map(async (secret) => {
      const history = await rotation.history(secretKeyByName(secret.name), HISTORY);
      const active = secret.rotation
        ? history.find((r) => r.rotation_id === secret.rotation?.rotation_id)
        : undefined;
      const acknowledgements =
        secret.rotation && secret.rotation.expected !== null
          ? await rotation.acknowledgements(
              rotation.secretId(secretKeyByName(secret.name)),
              secret.rotation.rotation_id,
            )
          : null;
      return { ...secret, history, active: active ?? null, acknowledgements };
    }),
  );
  const confirm = new URL(request.url).searchParams.get("confirm");
  return {
    secrets,
    confirm: secrets.some((secret) => secret.name === confirm) ? confirm : null,
    now: context.runtime.clock().toISOString(),
  };
}

export async function action({ request, context }: ActionFunctionArgs) {
  requirePermission(request, context, "secrets:rotate");
  return handleForm(request, rotationForm, async ({ intent, name }) => {
    const key = secretKeyByName(name);
    const rotation = context.runtime.rotation;
    try {
      if (intent === "abort") return await rotation.abort(key, context.request);
      const started = await rotation.start(key, { trigger: "api" }, context.request);
      // As `POST /secrets/{name}/rotate`: generated keys without dependants finish at once; the root key
      // waits for the agents' acknowledgements (the maintenance timer carries it on).
      return (await rotation.advance(key, context.request)) ?? started;
    } catch (error) {
      if (error instanceof SecretStoreBusyError) throw new ServiceUnavailableError(error.message, 2);
      throw error;
    }
  });
}

type SecretRow = ReturnType<typeof useLoaderData<typeof loader>>["secrets"][number];

function statusOf(secret: SecretRow, now: number): string {
  if (secret.rotation) return "in_progress";
  if (secret.due_at && Date.parse(secret.due_at) <= now) return "due";
  return "current";
}

/** The four steps of the rotation under way, each done, current or to come, with the agents' acks. */
function RotationProgress({ secret }: { secret: SecretRow }) {
  const done = new Set((secret.active?.steps ?? []).map((entry) => entry.step));
  const current = rotationSteps.find((step) => !done.has(step));
  const acks = secret.acknowledgements;
  return (
    <div aria-live="polite" data-testid={`rotation-${secret.name}`}>
      <ol className="steps" aria-label={`Rotation steps of ${secret.name}`}>
        {rotationSteps.map((step) => {
          const entry = secret.active?.steps.find((e) => e.step === step);
          const state = entry ? "done" : step === current ? "current" : "todo";
          return (
            <li key={step} className={`step-${state}`} data-state={state}>
              <code>{step}</code>
              {entry ? (
                <>
                  {" "}
                  — {entry.outcome} <time dateTime={entry.at}>{dateTime(entry.at)}</time>
                </>
              ) : state === "current" ? (
                " — under way"
              ) : null}
            </li>
          );
        })}
      </ol>
      {acks ? (
        <p className="hint" data-testid={`acks-${secret.name}`}>
          Agents acknowledged the new key: {acks.acknowledged} of {acks.expected}
          {acks.laggards.length > 0 ? ` (waiting for ${acks.laggards.join(", ")})` : ""}
          {acks.offline.length > 0 ? `; offline, not waited for: ${acks.offline.join(", ")}` : ""}.
        </p>
      ) : null}
    </div>
  );
}

export default function Secrets() {
  const { secrets, confirm, now } = useLoaderData<typeof loader>();
  const canRotate = useCan("secrets:rotate");
  const user = useViewer();
  const fetcher = useFetcher<typeof action>();
  const rotated = useActionData<typeof action>();
  const navigation = useNavigation();
  const underWay = secrets.some((secret) => secret.rotation);
  // Live while a rotation is under way (revalidation, no reload); slowly otherwise.
  usePolling(underWay ? 2_000 : 15_000);
  const nowMs = Date.parse(now);
  const busy = fetcher.state !== "idle" || navigation.state === "submitting";
  return (
    <>
      <PageHeader title="Secrets" />
      <p className="hint">
        Every secret the control plane owns: its age, its rotation policy and the rotation under way. Values
        are never shown. A rotation runs four steps: <code>createSecret</code> (a new pending version),{" "}
        <code>setSecret</code> (agents receive it), <code>testSecret</code> (every active agent signed with
        it) and <code>finishSecret</code> (it becomes current; the previous one is accepted for the grace
        period).
      </p>
      <FormErrors errors={fetcher.data?.result.error?.[""] ?? rotated?.result.error?.[""] ?? undefined} />
      {rotated?.done ? (
        <p className="notice" role="status" data-testid="rotation-started">
          Rotation {rotated.done.rotation_id} of <code>{rotated.done.secret.split("/").pop()}</code>:{" "}
          {rotated.done.status === "finished" ? "finished" : `under way (last step: ${rotated.done.step})`}.
        </p>
      ) : null}
      <div className="table-wrap">
        <table>
          <caption className="visually-hidden">Secrets</caption>
          <thead>
            <tr>
              <th scope="col">Secret</th>
              <th scope="col">Status</th>
              <th scope="col">Age</th>
              <th scope="col" className="hide-narrow">
                Policy
              </th>
              <th scope="col">Last rotated</th>
              {canRotate ? <th scope="col">Action</th> : null}
            </tr>
          </thead>
          <tbody>
            {secrets.map((secret) => (
              <tr key={secret.name}>
                <td>
                  <code>{secret.name}</code>
                  <div className="hint">{secret.description}</div>
                </td>
                <td>
                  <StatusBadge status={statusOf(secret, nowMs)} />
                </td>
                <td>{secret.age_days === null ? "—" : `${secret.age_days} d`}</td>
                <td className="hide-narrow">
                  {secret.rotation_days ? `every ${secret.rotation_days} d` : "on demand"}
                  {secret.due_at ? <div className="hint">due {dateTime(secret.due_at)}</div> : null}
                </td>
                <td>{secret.last_rotated_at ? ago(secret.last_rotated_at, nowMs) : "never"}</td>
                {canRotate ? (
                  <td>
                    {secret.rotation ? (
                      <fetcher.Form method="post">
                        <Csrf token={user?.csrf ?? ""} />
                        <input type="hidden" name="name" value={secret.name} />
                        <button
                          type="submit"
                          name="intent"
                          value="abort"
                          className="secondary"
                          disabled={busy}
                          aria-label={`Abort rotation of ${secret.name}`}
                        >
                          Abort
                        </button>
                      </fetcher.Form>
                    ) : secret.name === GIVEN_NOT_GENERATED ? (
                      <span className="hint">
                        new values via <code>POST /secrets/{secret.name}/rotate</code>
                      </span>
                    ) : (
                      <Link
                        className="button"
                        to={`?confirm=${encodeURIComponent(secret.name)}`}
                        aria-label={`Rotate ${secret.name}`}
                        preventScrollReset
                      >
                        Rotate…
                      </Link>
                    )}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {canRotate && confirm && !secrets.find((s) => s.name === confirm)?.rotation ? (
        <section className="panel notice" aria-labelledby="confirm-rotation">
          <h2 id="confirm-rotation">Rotate {confirm}?</h2>
          <p>
            A new version is created now and handed to its dependants.
            {confirm === "workload-identity-root-key"
              ? " Every agent receives its new derived key with its next heartbeat; the rotation finishes once all active agents have signed with it (or the acknowledgement timeout passes). Agents keep working throughout."
              : " The previous version stays accepted for the grace period."}
          </p>
          {/* Posts to the page without ?confirm: after the rotation starts the question is gone. */}
          <Form method="post" className="inline" action="/secrets" preventScrollReset>
            <Csrf token={user?.csrf ?? ""} />
            <input type="hidden" name="name" value={confirm} />
            <button type="submit" name="intent" value="rotate" disabled={busy}>
              {busy ? "Rotating…" : "Rotate now"}
            </button>
            <Link to="/secrets" className="link-button" preventScrollReset>
              Cancel
            </Link>
          </Form>
        </section>
      ) : null}
      {secrets
        .filter((secret) => secret.rotation)
        .map((secret) => (
          <section className="panel" key={secret.name} aria-labelledby={`progress-${secret.name}`}>
            <h2 id={`progress-${secret.name}`}>Rotation of {secret.name} under way</h2>
            <RotationProgress secret={secret} />
          </section>
        ))}
      <section aria-labelledby="rotation-history">
        <h2 id="rotation-history">Rotation history</h2>
        <div className="table-wrap">
          <table data-testid="rotation-history">
            <caption className="visually-hidden">Recent rotations (last {HISTORY} per secret)</caption>
            <thead>
              <tr>
                <th scope="col">Secret</th>
                <th scope="col">Started</th>
                <th scope="col">Status</th>
                <th scope="col" className="hide-narrow">
                  By
                </th>
                <th scope="col">Last step</th>
              </tr>
            </thead>
            <tbody>
              {secrets.flatMap((secret) => secret.history).length === 0 ? (
                <tr>
                  <td colSpan={5}>No rotations yet.</td>
                </tr>
              ) : (
                secrets.flatMap((secret) =>
                  secret.history.map((rotation) => (
                    <tr key={rotation.rotation_id}>
                      <td>
                        <code>{secret.name}</code>
                      </td>
                      <td>
                        <time dateTime={rotation.started_at}>{dateTime(rotation.started_at)}</time>
                      </td>
                      <td>
                        <StatusBadge status={rotation.status} />
                      </td>
                      <td className="hide-narrow">
                        {rotation.started_by} ({rotation.trigger})
                      </td>
                      <td>
                        <code>{rotation.step}</code>
                      </td>
                    </tr>
                  )),
                )
              )}
            </tbody>
          </table>
        </div>
      </section>
    </>
  );
}

export const meta: MetaFunction = () => [{ title: "Secrets · Hybrid CI/CD" }];
export { ErrorBoundary } from "../components/error-page";
