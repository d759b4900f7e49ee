import { parseWithZod } from "@conform-to/zod/v4";
import { DomainError, ValidationError } from "@hybrid-cicd/runtime/domain/errors";
import { data } from "@remix-run/node";
import type { z } from "zod";

/**
 * One way every action handles its form: parse with the form's zod schema (the same one the browser
 * uses through Conform); invalid → 400 with the submission; a domain error → its status with its
 * message shown in the form (never a stack trace); otherwise whatever `run` returns.
 */
export async function handleForm<Schema extends z.ZodType, Result>(
  request: Request,
  schema: Schema,
  run: (value: z.output<Schema>) => Promise<Result>,
) {
  const formData = await request.formData();
  const submission = parseWithZod(formData, { schema });
  if (submission.status !== "success") {
    return data({ result: submission.reply(), done: null }, { status: 400 });
  }
  try {
    const done = await run(submission.value as z.output<Schema>);
    return data({ result: submission.reply({ resetForm: true }), done });
  } catch (error) {
    if (error instanceof DomainError) {
      const fieldErrors =
        error instanceof ValidationError
          ? Object.fromEntries(error.errors.map((field) => [field.field, [field.message]]))
          : undefined;
      return data(
        { result: submission.reply({ formErrors: [error.message], fieldErrors }), done: null },
        { status: error.status },
      );
    }
    throw error;
  }
}
