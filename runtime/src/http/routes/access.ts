import { z } from "zod";
import { parseDuration } from "../../cli/duration";
import { settings } from "../../domain/settings";
import { permissions, roles } from "../../identity/permissions";
import { defineRoutes, userWith } from "../route";
import { parseInput } from "../validate";

/** Who has access to what: role bindings, API tokens, users' sessions, and the permission matrix itself. */

const role = z.enum(roles);
const subject = z.string().min(3).max(300);
const bindingBody = z.strictObject({ subject, role });
const bindingQuery = z.strictObject({ subject });
const ttl = z
  .union([
    z.number().int().min(60).max(settings.apiToken.maxTtlSeconds),
    z
      .string()
      .max(16)
      .transform((value, context) => {
        try {
          return parseDuration(value);
        } catch (error) {
          context.addIssue({ code: "custom", message: (error as Error).message });
          return z.NEVER;
        }
      })
      .pipe(z.number().min(60).max(settings.apiToken.maxTtlSeconds)),
  ])
  .optional();
const tokenBody = z.strictObject({
  name: z
    .string()
    .trim()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9][A-Za-z0-9 ._:/-]*$/, "letters, digits and . _ : / - only"),
  role,
  /** Seconds, or a duration such as `30d`; default 30 days. */
  ttl,
});
const listQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(2048).optional(),
});
const tokenPath = z.object({
  token_id: z.string().regex(/^[0-9a-f]{12}$/, "a token_id from GET /access/tokens"),
});
const userPath = z.object({
  user_id: z.string().regex(/^[\x21-\x7e]{1,300}$/, "a user id, e.g. github-id:583231"),
});

export const accessRoutes = defineRoutes([
  {
    method: "GET",
    path: "/access/permissions",
    access: userWith("access:read"),
    handle: async (_req, res) => {
      res.json({ roles, permissions });
    },
  },
  {
    method: "GET",
    path: "/access/bindings",
    access: userWith("access:read"),
    handle: async (_req, res, runtime) => {
      res.json({ bindings: await runtime.bindings.list() });
    },
  },
  {
    method: "PUT",
    path: "/access/bindings",
    access: userWith("access:manage"),
    handle: async (req, res, runtime) => {
      const body = parseInput(bindingBody, req.body, "body");
      res.json(await runtime.bindings.put(body.subject, body.role, req.context));
    },
  },
  {
    method: "DELETE",
    path: "/access/bindings",
    access: userWith("access:manage"),
    handle: async (req, res, runtime) => {
      const query = parseInput(bindingQuery, req.query, "query");
      await runtime.bindings.remove(query.subject, req.context);
      res.status(204).end();
    },
  },
  {
    method: "GET",
    path: "/access/tokens",
    access: userWith("access:read"),
    handle: async (req, res, runtime) => {
      const query = parseInput(listQuery, req.query, "query");
      res.json(await runtime.credentials.listApiTokens(query.limit, query.cursor));
    },
  },
  {
    method: "POST",
    path: "/access/tokens",
    access: userWith("tokens:manage"),
    rateLimit: "tokens",
    handle: async (req, res, runtime) => {
      const body = parseInput(tokenBody, req.body, "body");
      const created = await runtime.credentials.createApiToken(
        { name: body.name, role: body.role, ttlSeconds: body.ttl },
        req.context,
      );
      res.setHeader("Cache-Control", "no-store");
      res.status(201).json({ ...created, name: body.name, role: body.role });
    },
  },
  {
    method: "DELETE",
    path: "/access/tokens/:token_id",
    access: userWith("tokens:manage"),
    handle: async (req, res, runtime) => {
      const { token_id } = parseInput(tokenPath, req.params, "path");
      await runtime.credentials.revokeApiToken(token_id, req.context);
      res.status(204).end();
    },
  },
  {
    method: "GET",
    path: "/access/users/:user_id/sessions",
    access: userWith("access:read"),
    handle: async (req, res, runtime) => {
      const { user_id } = parseInput(userPath, req.params, "path");
      res.json({ user_id, sessions: await runtime.sessions.devices(user_id) });
    },
  },
  {
    // Force sign-out: every session of the user ends now (their API tokens are revoked separately).
    method: "POST",
    path: "/access/users/:user_id/sign-out",
    access: userWith("access:manage"),
    handle: async (req, res, runtime) => {
      const { user_id } = parseInput(userPath, req.params, "path");
      const ended = await runtime.sessions.forceSignOut(user_id, req.context);
      res.json({ status: "signed out", user_id, sessions_ended: ended });
    },
  },
]);
