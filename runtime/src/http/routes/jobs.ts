import * as z from "zod";
import { defaultLifecycleSettings, settings } from "../../domain/settings";
import { jobStatuses } from "../../store/jobs-repository";
import { defineRoutes, userWith } from "../route";
import { idempotencyKey, jobIdPath, tags } from "../schemas";
import { parseInput } from "../validate";

/** A git ref as `git check-ref-format` allows it (branch, tag, or a full/abbreviated commit). */
const gitRef = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9._/-]+$/, "letters, digits and . _ / - only")
  .refine(
    (ref) =>
      !ref.includes("..") &&
      !ref.startsWith("/") &&
      !ref.endsWith("/") &&
      !ref.endsWith(".lock") &&
      !ref.includes("//"),
    "not a valid git ref",
  );

const jobFields = {
  git_ref: gitRef,
  repository: z.string().min(1).max(512).optional(),
  command: z
    .string()
    .min(1)
    .max(16 * 1024)
    .optional(),
  tags,
  environment: z
    .string()
    .min(1)
    .max(32)
    .regex(/^[a-z][a-z0-9-]*$/, "lower-case letters, digits and dashes")
    .optional(),
  priority: z.number().int().min(0).max(100).default(50),
  timeout_seconds: z.number().int().min(1).max(settings.job.maxTimeoutSeconds).optional(),
  /** Queue the job again (as a new attempt) up to N times if its agent is lost; default: fail it. */
  retry: z
    .strictObject({ agent_lost: z.number().int().min(0).max(defaultLifecycleSettings.maxAgentLostRetries) })
    .optional(),
};

const createBody = z.strictObject({ ...jobFields, git_ref: gitRef.optional() }).optional();
const createQuery = z.strictObject({ git_ref: gitRef.optional() });
const createInput = z.strictObject(jobFields);

const listQuery = z.strictObject({
  status: z.enum(jobStatuses).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(25),
  cursor: z.string().max(2048).optional(),
});

const emptyBody = z.strictObject({}).optional();

const logsQuery = z.strictObject({
  offset: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(4 * 1024 * 1024)
    .default(1024 * 1024),
});

export const jobRoutes = defineRoutes([
  {
    method: "POST",
    path: "/jobs",
    access: userWith("jobs:create"),
    handle: async (req, res, runtime) => {
      const query = parseInput(createQuery, req.query, "query");
      const body = parseInput(createBody, req.body, "body");
      const input = parseInput(createInput, { ...body, git_ref: body?.git_ref ?? query.git_ref }, "body");
      const key = parseInput(idempotencyKey, req.headers["idempotency-key"], "header");
      const { job, replayed } = await runtime.jobs.create(input, req.context, key);
      if (replayed) res.setHeader("Idempotent-Replayed", "true");
      res.status(201).location(`/jobs/${job.job_id}`).json(job);
    },
  },
  {
    method: "GET",
    path: "/jobs",
    access: userWith("jobs:read"),
    handle: async (req, res, runtime) => {
      const query = parseInput(listQuery, req.query, "query");
      res.json(await runtime.jobs.list(query));
    },
  },
  {
    method: "GET",
    path: "/jobs/:job_id",
    access: userWith("jobs:read"),
    handle: async (req, res, runtime) => {
      const { job_id } = parseInput(jobIdPath, req.params, "path");
      res.json(await runtime.jobs.get(job_id));
    },
  },
  {
    method: "GET",
    path: "/jobs/:job_id/logs",
    access: userWith("jobs:read"),
    handle: async (req, res, runtime) => {
      const { job_id } = parseInput(jobIdPath, req.params, "path");
      const query = parseInput(logsQuery, req.query, "query");
      res.json(await runtime.jobs.logs(job_id, query.offset, query.limit));
    },
  },
  {
    // Queued or awaiting approval: 200, cancelled. Running: 202, cancelling until the agent stops it.
    method: "POST",
    path: "/jobs/:job_id/cancel",
    access: userWith("jobs:cancel"),
    handle: async (req, res, runtime) => {
      const { job_id } = parseInput(jobIdPath, req.params, "path");
      parseInput(emptyBody, req.body, "body");
      const { job, pending } = await runtime.jobs.cancel(job_id, req.context);
      res.status(pending ? 202 : 200).json(job);
    },
  },
  {
    method: "POST",
    path: "/jobs/:job_id/approve",
    access: userWith("jobs:approve"),
    handle: async (req, res, runtime) => {
      const { job_id } = parseInput(jobIdPath, req.params, "path");
      parseInput(emptyBody, req.body, "body");
      res.json(await runtime.jobs.approve(job_id, req.context));
    },
  },
  {
    method: "POST",
    path: "/jobs/:job_id/reject",
    access: userWith("jobs:approve"),
    handle: async (req, res, runtime) => {
      const { job_id } = parseInput(jobIdPath, req.params, "path");
      parseInput(emptyBody, req.body, "body");
      res.json(await runtime.jobs.reject(job_id, req.context));
    },
  },
  {
    // For autoscalers and dashboards: index reads only, no scan (decision 005).
    method: "GET",
    path: "/metrics/queue",
    access: userWith("jobs:read"),
    handle: async (_req, res, runtime) => {
      res.setHeader("Cache-Control", "no-store");
      res.json(await runtime.queueMetrics.read());
    },
  },
]);
