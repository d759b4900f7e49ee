import * as z from "zod";
import { idPatterns, maxTagLength, maxTags, tagPattern } from "../domain/ids";

/** Input schemas several route files share. */
export const agentIdPath = z.object({ agent_id: z.string().regex(idPatterns.agent, "not an agent id") });
export const jobIdPath = z.object({ job_id: z.string().regex(idPatterns.job, "not a job id") });
export const jobId = z.string().regex(idPatterns.job, "not a job id");

export const tags = z
  .array(
    z.string().min(1).max(maxTagLength).regex(tagPattern, "lower-case letters, digits and . _ : / = - only"),
  )
  .max(maxTags)
  .default([]);

/** The `Idempotency-Key` header (job creation, claims): visible ASCII. */
export const idempotencyKey = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, "visible ASCII only")
  .optional();
