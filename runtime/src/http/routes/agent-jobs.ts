import * as z from "zod";
import { agentAccess, defineRoutes } from "../route";
import { agentIdPath, idempotencyKey, jobIdPath } from "../schemas";
import { parseInput } from "../validate";

/**
 * The agent's side of a job: claim the next one, upload its log, report its result. Every call is
 * RFC 9421-signed by the agent; writes name the attempt they belong to (fencing, decision 005).
 */

const attempt = z.number().int().min(1).max(1_000_000);

const claimBody = z.strictObject({}).optional();

/** Log uploads may be larger than the default body cap: a 256 KiB chunk, JSON-escaped. */
export const LOG_UPLOAD_MAX_BODY_BYTES = 2 * 1024 * 1024;

const logBody = z.strictObject({
  attempt,
  offset: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  data: z.string(),
});

const completeBody = z
  .strictObject({
    attempt,
    status: z.enum(["completed", "failed", "cancelled"]),
    exit_code: z.number().int().min(0).max(255).nullable().optional(),
    error_message: z.string().min(1).max(1024).optional(),
  })
  .refine((body) => body.status !== "completed" || (body.exit_code ?? 0) === 0, {
    message: "a completed job has exit code 0",
    path: ["exit_code"],
  });

export const agentJobRoutes = defineRoutes([
  {
    method: "POST",
    path: "/agents/:agent_id/jobs/claim",
    access: agentAccess,
    handle: async (req, res, runtime) => {
      const { agent_id } = parseInput(agentIdPath, req.params, "path");
      parseInput(claimBody, req.body, "body");
      const key = parseInput(idempotencyKey, req.headers["idempotency-key"], "header");
      const claimed = await runtime.agentJobs.claim(agent_id, req.context, key);
      res.setHeader("Cache-Control", "no-store");
      if (!claimed) {
        res.status(204).end();
        return;
      }
      res.json(claimed);
    },
  },
  {
    method: "POST",
    path: "/jobs/:job_id/logs",
    access: agentAccess,
    maxBodyBytes: LOG_UPLOAD_MAX_BODY_BYTES,
    handle: async (req, res, runtime) => {
      const { job_id } = parseInput(jobIdPath, req.params, "path");
      const body = parseInput(logBody, req.body, "body");
      res.json(await runtime.agentJobs.appendLog(req.principal!.id, job_id, body, req.context));
    },
  },
  {
    method: "POST",
    path: "/jobs/:job_id/complete",
    access: agentAccess,
    handle: async (req, res, runtime) => {
      const { job_id } = parseInput(jobIdPath, req.params, "path");
      const body = parseInput(completeBody, req.body, "body");
      const { job, replayed } = await runtime.agentJobs.complete(
        req.principal!.id,
        job_id,
        body,
        req.context,
      );
      if (replayed) res.setHeader("Idempotent-Replayed", "true");
      res.json(job);
    },
  },
]);
