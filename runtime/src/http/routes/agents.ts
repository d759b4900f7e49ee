import * as z from "zod";
import { agentHealthStates } from "../../domain/agents/agent-health";
import { MAX_HELD_JOBS } from "../../domain/jobs/agent-jobs-service";
import { settings } from "../../domain/settings";
import { agentAccess, defineRoutes, publicAccess, userWith } from "../route";
import { agentIdPath, jobId, tags } from "../schemas";
import { parseInput } from "../validate";

const label = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9 ._:/-]*$/, "letters, digits and . _ : / - only");

const registrationTokenBody = z
  .strictObject({
    ttl_seconds: z.number().int().min(60).max(settings.registrationToken.maxTtlSeconds).optional(),
    /** The environment the agent will belong to (one the deployment knows; default the non-protected one). */
    environment: z.string().min(1).max(32).optional(),
  })
  .optional();

const registerBody = z.strictObject({
  registration_token: z.string().min(1).max(256),
  name: label,
  region: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[a-z0-9][a-z0-9-]*$/, "lower-case letters, digits and dashes"),
  tags,
  version: z.string().min(1).max(64).optional(),
});

const percent = z.number().min(0).max(100);
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const heartbeatBody = z.strictObject({
  cpu_percent: percent,
  memory_percent: percent,
  disk_percent: percent,
  jobs_queued: count,
  jobs_completed: count,
  uptime_seconds: z.number().min(0).max(1e10),
  /** The jobs the agent is running: their leases are extended, and the reply says what to do with each. */
  jobs: z
    .array(z.strictObject({ job_id: jobId, attempt: z.number().int().min(1) }))
    .max(MAX_HELD_JOBS)
    .default([]),
});

const listQuery = z.strictObject({
  region: z.string().min(1).max(64).optional(),
  status: z.enum(agentHealthStates).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(25),
  cursor: z.string().max(2048).optional(),
});

export const agentRoutes = defineRoutes([
  {
    method: "POST",
    path: "/agents/registration-tokens",
    access: userWith("agents:register-token"),
    rateLimit: "tokens",
    handle: async (req, res, runtime) => {
      const body = parseInput(registrationTokenBody, req.body, "body");
      res
        .status(201)
        .json(
          await runtime.agents.createRegistrationToken(req.context, body?.ttl_seconds, body?.environment),
        );
    },
  },
  {
    // Authenticated by the one-time registration token in the body.
    method: "POST",
    path: "/agents/register",
    access: publicAccess,
    rateLimit: "tokens",
    handle: async (req, res, runtime) => {
      const body = parseInput(registerBody, req.body, "body");
      res.setHeader("Cache-Control", "no-store");
      res.status(201).json(await runtime.agents.register(body, req.context));
    },
  },
  {
    method: "GET",
    path: "/agents/:agent_id/config",
    access: agentAccess,
    handle: async (req, res, runtime) => {
      const { agent_id } = parseInput(agentIdPath, req.params, "path");
      res.setHeader("Cache-Control", "no-store");
      res.json(await runtime.agents.config(agent_id, req.context, req.signedKeyRole));
    },
  },
  {
    method: "POST",
    path: "/agents/:agent_id/heartbeat",
    access: agentAccess,
    handle: async (req, res, runtime) => {
      const { agent_id } = parseInput(agentIdPath, req.params, "path");
      const { jobs, ...figures } = parseInput(heartbeatBody, req.body, "body");
      const reply = await runtime.agents.heartbeat(
        agent_id,
        figures,
        req.context,
        req.signedAgent,
        req.signedKeyRole,
      );
      res.json({ ...reply, jobs: await runtime.agentJobs.renewLeases(agent_id, jobs) });
    },
  },
  {
    method: "GET",
    path: "/agents",
    access: userWith("agents:read"),
    handle: async (req, res, runtime) => {
      const query = parseInput(listQuery, req.query, "query");
      res.json(await runtime.agents.list(query));
    },
  },
  {
    method: "GET",
    path: "/agents/:agent_id",
    access: userWith("agents:read"),
    handle: async (req, res, runtime) => {
      const { agent_id } = parseInput(agentIdPath, req.params, "path");
      res.json(await runtime.agents.get(agent_id));
    },
  },
  {
    method: "POST",
    path: "/agents/:agent_id/revoke",
    access: userWith("agents:revoke"),
    handle: async (req, res, runtime) => {
      const { agent_id } = parseInput(agentIdPath, req.params, "path");
      res.json(await runtime.agents.revoke(agent_id, req.context));
    },
  },
]);
