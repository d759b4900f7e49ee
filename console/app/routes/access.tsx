import { getFormProps, getInputProps, getSelectProps, useForm } from "@conform-to/react";
import { getZodConstraint, parseWithZod } from "@conform-to/zod/v4";
import { can, roles } from "@hybrid-cicd/runtime/identity/permissions";
import { type ActionFunctionArgs, data, type LoaderFunctionArgs, type MetaFunction } from "@remix-run/node";
import { Form, useActionData, useFetcher, useLoaderData, useNavigation } from "@remix-run/react";
import { z } from "zod";
import { ShownOnce } from "../components/copy";
import { Csrf, FieldError, FormErrors, PageHeader, StatusBadge } from "../components/ui";
import { requirePermission, requireUser } from "../utils/auth.server";
import { ago, dateTime } from "../utils/format";
import { handleForm } from "../utils/forms.server";
import { useCan, useViewer } from "../utils/user";

/** One schema per form on this page; the `intent` field says which form was sent. */
const endDeviceSchema = z.object({ intent: z.literal("end-device"), id: z.string().regex(/^[0-9a-f]{12}$/) });
const bindSchema = z.object({
  intent: z.literal("bind"),
  subject: z.string({ error: "an e-mail, domain or GitHub login is required" }).max(255),
  role: z.enum(roles),
});
const unbindSchema = z.object({ intent: z.literal("unbind"), subject: z.string().max(255) });
const createTokenSchema = z.object({
  intent: z.literal("create-token"),
  name: z
    .string({ error: "a name is required" })
    .max(100)
    .regex(/^[A-Za-z0-9 ._-]+$/, "letters, digits, spaces and . _ - only"),
  role: z.enum(roles),
  ttl_days: z.number().int().min(1).max(365).default(90),
});
const revokeTokenSchema = z.object({
  intent: z.literal("revoke-token"),
  token_id: z.string().regex(/^[0-9a-f]{12}$/),
});

export async function loader({ request, context }: LoaderFunctionArgs) {
  const user = requirePermission(request, context, "sessions:self");
  const { runtime } = context;
  const readsAccess = can(user.role, "access:read");
  const [devices, bindings, tokens] = await Promise.all([
    runtime.sessions.devices(user.id, context.sessionHash),
    readsAccess ? runtime.bindings.list() : null,
    readsAccess ? runtime.credentials.listApiTokens(50) : null,
  ]);
  return {
    devices,
    bindings,
    tokens: tokens?.tokens ?? null,
    now: runtime.clock().toISOString(),
  };
}

export async function action({ request, context }: ActionFunctionArgs) {
  const user = requireUser(request, context);
  const intent = (await request.clone().formData()).get("intent");
  const { runtime } = context;
  switch (intent) {
    case "end-device":
      requirePermission(request, context, "sessions:self");
      return handleForm(request, endDeviceSchema, async (value) => {
        await runtime.sessions.endDevice(user.id, value.id, context.request);
        return { message: "That device is signed out." };
      });
    case "bind":
      requirePermission(request, context, "access:manage");
      return handleForm(request, bindSchema, async (value) => {
        const binding = await runtime.bindings.put(value.subject, value.role, context.request);
        return { message: `${binding.subject} now has the ${binding.role} role.` };
      });
    case "unbind":
      requirePermission(request, context, "access:manage");
      return handleForm(request, unbindSchema, async (value) => {
        await runtime.bindings.remove(value.subject, context.request);
        return { message: `${value.subject} no longer has a role.` };
      });
    case "create-token":
      requirePermission(request, context, "tokens:manage");
      return handleForm(request, createTokenSchema, async (value) => {
        const created = await runtime.credentials.createApiToken(
          { role: value.role, name: value.name, ttlSeconds: value.ttl_days * 86_400 },
          context.request,
        );
        return { message: `API token "${value.name}" created.`, token: created.token };
      });
    case "revoke-token":
      requirePermission(request, context, "tokens:manage");
      return handleForm(request, revokeTokenSchema, async (value) => {
        await runtime.credentials.revokeApiToken(value.token_id, context.request);
        return { message: "API token revoked." };
      });
    default:
      throw data({ message: "Unknown form." }, { status: 400 });
  }
}

function Done({ done }: { done: { message: string; token?: string } | null | undefined }) {
  if (!done) return null;
  return done.token ? (
    <ShownOnce label={done.message} value={done.token} />
  ) : (
    <p className="notice" role="status">
      {done.message}
    </p>
  );
}

function BindForm({ csrf }: { csrf: string }) {
  const actionData = useActionData<typeof action>();
  const navigation = useNavigation();
  const mine = navigation.formData?.get("intent") === "bind";
  const [form, fields] = useForm({
    id: "bind",
    lastResult: navigation.state === "idle" ? actionData?.result : undefined,
    constraint: getZodConstraint(bindSchema),
    shouldValidate: "onBlur",
    onValidate: ({ formData }) => parseWithZod(formData, { schema: bindSchema }),
  });
  return (
    <Form method="post" className="inline" {...getFormProps(form)}>
      <Csrf token={csrf} />
      <input type="hidden" name="intent" value="bind" />
      <FormErrors errors={form.errors} id={form.errorId} />
      <div>
        <label htmlFor={fields.subject.id}>
          Subject <span className="hint">e-mail, @domain or github:login</span>
        </label>
        <input {...getInputProps(fields.subject, { type: "text" })} />
        <FieldError id={fields.subject.errorId} errors={fields.subject.errors} />
      </div>
      <div>
        <label htmlFor={fields.role.id}>Role</label>
        <select {...getSelectProps(fields.role)} defaultValue="viewer">
          {roles.map((role) => (
            <option key={role} value={role}>
              {role}
            </option>
          ))}
        </select>
      </div>
      <button type="submit" disabled={mine && navigation.state === "submitting"}>
        {mine && navigation.state === "submitting" ? "Saving…" : "Bind role"}
      </button>
    </Form>
  );
}

function CreateTokenForm({ csrf }: { csrf: string }) {
  const actionData = useActionData<typeof action>();
  const navigation = useNavigation();
  const mine = navigation.formData?.get("intent") === "create-token";
  const [form, fields] = useForm({
    id: "create-token",
    lastResult: navigation.state === "idle" ? actionData?.result : undefined,
    constraint: getZodConstraint(createTokenSchema),
    shouldValidate: "onBlur",
    onValidate: ({ formData }) => parseWithZod(formData, { schema: createTokenSchema }),
  });
  return (
    <Form method="post" className="inline" {...getFormProps(form)}>
      <Csrf token={csrf} />
      <input type="hidden" name="intent" value="create-token" />
      <FormErrors errors={form.errors} id={form.errorId} />
      <div>
        <label htmlFor={fields.name.id}>Name</label>
        <input {...getInputProps(fields.name, { type: "text" })} />
        <FieldError id={fields.name.errorId} errors={fields.name.errors} />
      </div>
      <div>
        <label htmlFor={fields.role.id}>Role</label>
        <select {...getSelectProps(fields.role)} defaultValue="viewer">
          {roles.map((role) => (
            <option key={role} value={role}>
              {role}
            </option>
          ))}
        </select>
      </div>
      <div>
        <label htmlFor={fields.ttl_days.id}>Valid for (days)</label>
        <input {...getInputProps(fields.ttl_days, { type: "number" })} defaultValue="90" />
        <FieldError id={fields.ttl_days.errorId} errors={fields.ttl_days.errors} />
      </div>
      <button type="submit" disabled={mine && navigation.state === "submitting"}>
        {mine && navigation.state === "submitting" ? "Creating…" : "Create API token"}
      </button>
    </Form>
  );
}

/** A one-button form posted without a reload (with JavaScript), or as a normal post (without). */
function ButtonForm({
  intent,
  fields,
  label,
  csrf,
}: {
  intent: string;
  fields: Record<string, string>;
  label: string;
  csrf: string;
}) {
  const fetcher = useFetcher<typeof action>();
  return (
    <fetcher.Form method="post">
      <Csrf token={csrf} />
      <input type="hidden" name="intent" value={intent} />
      {Object.entries(fields).map(([name, value]) => (
        <input key={name} type="hidden" name={name} value={value} />
      ))}
      <button type="submit" className="secondary" disabled={fetcher.state !== "idle"}>
        {fetcher.state !== "idle" ? "Working…" : label}
      </button>
      <FormErrors errors={fetcher.data?.result.error?.[""] ?? undefined} />
    </fetcher.Form>
  );
}

export default function Access() {
  const { devices, bindings, tokens, now } = useLoaderData<typeof loader>();
  const actionData = useActionData<typeof action>();
  const user = useViewer();
  const csrf = user?.csrf ?? "";
  const canBind = useCan("access:manage");
  const canTokens = useCan("tokens:manage");
  const nowMs = Date.parse(now);
  return (
    <>
      <PageHeader title="Access" />
      <Done done={actionData?.done} />
      <section aria-labelledby="me">
        <h2 id="me">Me</h2>
        <p>
          Signed in as <strong>{user?.id}</strong> ({user?.provider}) with the{" "}
          <strong>{user?.role ?? "no"}</strong> role: {user?.permissions.join(", ") || "no permissions"}.
        </p>
      </section>
      <section aria-labelledby="sessions">
        <h2 id="sessions">My sessions</h2>
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">My active sessions</caption>
            <thead>
              <tr>
                <th scope="col">Device</th>
                <th scope="col">Signed in</th>
                <th scope="col">Last seen</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {devices.map((device) => (
                <tr key={device.id}>
                  <td>
                    {device.user_agent?.slice(0, 60) ?? "unknown"} {device.ip ? `· ${device.ip}` : ""}
                  </td>
                  <td>{dateTime(device.created_at)}</td>
                  <td>{ago(device.last_seen_at, nowMs)}</td>
                  <td>
                    {device.current ? (
                      "this device"
                    ) : (
                      <ButtonForm
                        intent="end-device"
                        fields={{ id: device.id }}
                        label="Sign out"
                        csrf={csrf}
                      />
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <Form method="post" action="/sign-out">
          <Csrf token={csrf} />
          <input type="hidden" name="everywhere" value="yes" />
          <button type="submit" className="danger">
            Sign out everywhere
          </button>
        </Form>
      </section>
      {bindings ? (
        <section aria-labelledby="bindings">
          <h2 id="bindings">Users and roles</h2>
          <div className="table-wrap">
            <table>
              <caption className="visually-hidden">Role bindings</caption>
              <thead>
                <tr>
                  <th scope="col">Subject</th>
                  <th scope="col">Role</th>
                  <th scope="col">Source</th>
                  {canBind ? (
                    <th scope="col">
                      <span className="visually-hidden">Actions</span>
                    </th>
                  ) : null}
                </tr>
              </thead>
              <tbody>
                {bindings.length === 0 ? (
                  <tr>
                    <td colSpan={canBind ? 4 : 3}>No role bindings yet.</td>
                  </tr>
                ) : null}
                {bindings.map((binding) => (
                  <tr key={binding.subject}>
                    <td>{binding.subject}</td>
                    <td>{binding.role}</td>
                    <td>{binding.source}</td>
                    {canBind ? (
                      <td>
                        {binding.source === "api" ? (
                          <ButtonForm
                            intent="unbind"
                            fields={{ subject: binding.subject }}
                            label="Remove"
                            csrf={csrf}
                          />
                        ) : (
                          <span className="hint">set in configuration</span>
                        )}
                      </td>
                    ) : null}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {canBind ? <BindForm csrf={csrf} /> : null}
        </section>
      ) : null}
      {tokens ? (
        <section aria-labelledby="tokens">
          <h2 id="tokens">API tokens</h2>
          <div className="table-wrap">
            <table>
              <caption className="visually-hidden">API tokens</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Role</th>
                  <th scope="col">Status</th>
                  <th scope="col" className="hide-narrow">
                    Last used
                  </th>
                  <th scope="col">Expires</th>
                  {canTokens ? (
                    <th scope="col">
                      <span className="visually-hidden">Actions</span>
                    </th>
                  ) : null}
                </tr>
              </thead>
              <tbody>
                {tokens.length === 0 ? (
                  <tr>
                    <td colSpan={6}>No API tokens.</td>
                  </tr>
                ) : (
                  tokens.map((token) => (
                    <tr key={token.token_id}>
                      <td>{token.name}</td>
                      <td>{token.role}</td>
                      <td>
                        <StatusBadge status={token.status} />
                      </td>
                      <td className="hide-narrow">{ago(token.last_used_at, nowMs)}</td>
                      <td>{dateTime(token.expires_at)}</td>
                      {canTokens ? (
                        <td>
                          {token.status === "active" ? (
                            <ButtonForm
                              intent="revoke-token"
                              fields={{ token_id: token.token_id }}
                              label="Revoke"
                              csrf={csrf}
                            />
                          ) : null}
                        </td>
                      ) : null}
                    </tr>
                  ))
                )}
              </tbody>
            </table>
          </div>
          {canTokens ? <CreateTokenForm csrf={csrf} /> : null}
        </section>
      ) : null}
    </>
  );
}

export const meta: MetaFunction = () => [{ title: "Access · Hybrid CI/CD" }];
export { ErrorBoundary } from "../components/error-page";
