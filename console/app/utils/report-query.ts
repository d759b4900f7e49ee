import { z } from "zod";

export const reportFormatChoices = ["json", "csv", "pdf", "bundle"] as const;

/** A day picked in the form (`YYYY-MM-DD`, UTC): the period runs from its start / to its end. */
const day = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, "a date, e.g. 2026-01-31")
  .refine((value) => {
    const parsed = new Date(`${value}T00:00:00Z`);
    return !Number.isNaN(parsed.getTime()) && parsed.toISOString().startsWith(value);
  }, "not a calendar date");

/**
 * The compliance form, shared by the preview (action) and the download (resource route): target
 * environment ("" = all), period by whole UTC days (empty = open), format.
 */
export const reportQuery = z
  .object({
    target_environment: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,62}$/, "an environment name, e.g. production")
      .optional(),
    from: day.optional(),
    to: day.optional(),
    format: z.enum(reportFormatChoices).default("json"),
  })
  .refine((value) => !value.from || !value.to || value.from <= value.to, {
    message: "the period must not end before it starts",
    path: ["to"],
  });

export type ReportQuery = z.output<typeof reportQuery>;

/** The service's request: whole days as instants; an end in the future is "now" (the service's default). */
export function reportRequest(query: ReportQuery, now: Date) {
  const end = query.to ? new Date(`${query.to}T23:59:59.999Z`) : undefined;
  return {
    from: query.from ? new Date(`${query.from}T00:00:00.000Z`).toISOString() : undefined,
    to: end && end < now ? end.toISOString() : undefined,
    targetEnvironment: query.target_environment || undefined,
  };
}
