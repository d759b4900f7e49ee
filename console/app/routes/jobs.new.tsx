import { getFormProps, getInputProps, getSelectProps, getTextareaProps, useForm } from "@conform-to/react";
import { getZodConstraint, parseWithZod } from "@conform-to/zod/v4";
import { maxTagLength, maxTags, tagPattern } from "@hybrid-cicd/runtime/domain/ids";
import {
  type ActionFunctionArgs,
  type LoaderFunctionArgs,
  type MetaFunction,
  redirect,
} from "@remix-run/node";
import { Form, useActionData, useNavigation } from "@remix-run/react";
import { z } from "zod";
import { Csrf, FieldError, FormErrors, PageHeader } from "../components/ui";
import { requirePermission } from "../utils/auth.server";
import { handleForm } from "../utils/forms.server";
import { useViewer } from "../utils/user";

/** The queue-a-job form: the same schema checks it in the browser and on the server. */
export const queueJobSchema = z.object({
  git_ref: z
    .string({ error: "a git ref is required" })
    .max(255)
    .regex(/^[A-Za-z0-9._/-]+$/, "letters, digits and . _ / - only")
    .refine(
      (ref) => !ref.includes("..") && !ref.startsWith("/") && !ref.endsWith("/"),
      "not a valid git ref",
    ),
  repository: z.string().max(512).optional(),
  command: z
    .string()
    .max(16 * 1024)
    .optional(),
  tags: z
    .string()
    .max(2048)
    .optional()
    .transform((text) => [...new Set((text ?? "").split(/[\s,]+/).filter(Boolean))])
    .pipe(
      z
        .array(
          z
            .string()
            .max(maxTagLength)
            .regex(tagPattern, "tags: lower-case letters, digits and . _ : / = - only"),
        )
        .max(maxTags, `at most ${maxTags} tags`),
    ),
  environment: z.enum(["staging", "production"]).optional(),
});

export async function loader({ request, context }: LoaderFunctionArgs) {
  requirePermission(request, context, "jobs:create");
  return null;
}

export async function action({ request, context }: ActionFunctionArgs) {
  requirePermission(request, context, "jobs:create");
  const response = await handleForm(request, queueJobSchema, async (value) => {
    const { job } = await context.runtime.jobs.create(
      {
        git_ref: value.git_ref,
        repository: value.repository,
        command: value.command,
        tags: value.tags,
        environment: value.environment,
        priority: 50,
      },
      context.request,
    );
    return job.job_id;
  });
  if (response.data.done) throw redirect(`/jobs/${response.data.done}`);
  return response;
}

export default function QueueJob() {
  const actionData = useActionData<typeof action>();
  const navigation = useNavigation();
  const user = useViewer();
  const [form, fields] = useForm({
    id: "queue-job",
    lastResult: navigation.state === "idle" ? actionData?.result : undefined,
    constraint: getZodConstraint(queueJobSchema),
    shouldValidate: "onBlur",
    onValidate: ({ formData }) => parseWithZod(formData, { schema: queueJobSchema }),
  });
  const submitting = navigation.state === "submitting";
  return (
    <>
      <PageHeader title="Queue a job" />
      <Form method="post" className="stack" {...getFormProps(form)}>
        <Csrf token={user?.csrf ?? ""} />
        <FormErrors errors={form.errors} id={form.errorId} />
        <label htmlFor={fields.git_ref.id}>
          Git ref <span className="hint">branch, tag or commit</span>
        </label>
        <input {...getInputProps(fields.git_ref, { type: "text" })} placeholder="main" />
        <FieldError id={fields.git_ref.errorId} errors={fields.git_ref.errors} />
        <label htmlFor={fields.repository.id}>Repository</label>
        <input
          {...getInputProps(fields.repository, { type: "text" })}
          placeholder="https://github.com/org/repo"
        />
        <FieldError id={fields.repository.errorId} errors={fields.repository.errors} />
        <label htmlFor={fields.command.id}>
          Command <span className="hint">run by the agent's shell</span>
        </label>
        <textarea {...getTextareaProps(fields.command)} />
        <FieldError id={fields.command.errorId} errors={fields.command.errors} />
        <label htmlFor={fields.tags.id}>
          Tags <span className="hint">space or comma separated; an agent needs them all</span>
        </label>
        <input {...getInputProps(fields.tags, { type: "text" })} placeholder="linux docker" />
        <FieldError id={fields.tags.errorId} errors={fields.tags.errors} />
        <label htmlFor={fields.environment.id}>
          Environment <span className="hint">production waits for a second person's approval</span>
        </label>
        <select {...getSelectProps(fields.environment)}>
          <option value="">default (staging)</option>
          <option value="staging">staging</option>
          <option value="production">production</option>
        </select>
        <FieldError id={fields.environment.errorId} errors={fields.environment.errors} />
        <div>
          <button type="submit" disabled={submitting}>
            {submitting ? "Queueing…" : "Queue job"}
          </button>
        </div>
      </Form>
    </>
  );
}

export const meta: MetaFunction = () => [{ title: "Queue a job · Hybrid CI/CD" }];
export { ErrorBoundary } from "../components/error-page";
