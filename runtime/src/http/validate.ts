import type { z } from "zod";
import { ValidationError } from "../domain/errors";

/** Parses request input with a zod schema; a mismatch is a 400 naming each offending field. */
export function parseInput<T extends z.ZodType>(
  schema: T,
  input: unknown,
  where: "body" | "query" | "path" | "header",
): z.infer<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const errors = result.error.issues.map((issue) => ({
    field: [where, ...issue.path.map(String)].join("."),
    message: issue.message,
  }));
  throw new ValidationError(
    `invalid ${where}: ${errors.map((error) => `${error.field} ${error.message}`).join("; ")}`,
    errors,
  );
}
