import { once } from "node:events";
import { z } from "zod";
import { defineRoutes, publicAccess, userWith } from "../route";
import { parseInput } from "../validate";

/** A timestamp with an offset, normalised to the stored form (UTC, milliseconds). */
const instant = z.iso.datetime({ offset: true }).transform((value) => new Date(value).toISOString());

const period = {
  from: instant.optional(),
  to: instant.optional(),
};

const inOrder = (value: { from?: string; to?: string }) =>
  value.from === undefined || value.to === undefined || value.from <= value.to;
const orderMessage = { message: "from must not be after to", path: ["from"] };

const typedId = z
  .string()
  .min(3)
  .max(512)
  .regex(/^[a-z_]+:.+$/, "type:id, e.g. user:alice or job:job_01...");

const eventsQuery = z
  .strictObject({
    ...period,
    actor: typedId.optional(),
    target: typedId.optional(),
    /** Exact (`job.create`) or a prefix ending in `*` (`job.*`). */
    action: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?$/, "a dotted action, optionally ending in .*")
      .optional(),
    outcome: z.enum(["success", "denied", "error"]).optional(),
    order: z.enum(["desc", "asc"]).default("desc"),
    limit: z.coerce.number().int().min(1).max(200).default(50),
    cursor: z.string().max(2048).optional(),
  })
  .refine(inOrder, orderMessage);

const exportQuery = z
  .strictObject({ ...period, format: z.enum(["jsonl"]).default("jsonl") })
  .refine(inOrder, orderMessage);
const verifyQuery = z.strictObject(period).refine(inOrder, orderMessage);

export const auditRoutes = defineRoutes([
  {
    method: "GET",
    path: "/audit/events",
    access: userWith("audit:read"),
    handle: async (req, res, runtime) => {
      const { action, ...query } = parseInput(eventsQuery, req.query, "query");
      const prefix = action?.endsWith(".*") ? action.slice(0, -1) : undefined;
      res.json(
        await runtime.audit.list({
          ...query,
          ...(prefix !== undefined ? { actionPrefix: prefix } : { action }),
        }),
      );
    },
  },
  {
    // Streams: the file can be large. The export is recorded and sealed before the first byte; a
    // failure mid-stream cuts the file short, which the verifier reports (no end record).
    method: "GET",
    path: "/audit/export",
    access: userWith("audit:read"),
    handle: async (req, res, runtime) => {
      const query = parseInput(exportQuery, req.query, "query");
      const lines = runtime.audit.exportLines({ from: query.from, to: query.to }, req.context);
      const first = await lines.next();
      const stamp = new Date().toISOString().replace(/[:.]/g, "-");
      res.status(200);
      res.setHeader("Content-Type", "application/jsonl; charset=utf-8");
      res.setHeader("Cache-Control", "no-store");
      res.setHeader(
        "Content-Disposition",
        `attachment; filename="audit-${runtime.env.HYBRID_CICD_ENVIRONMENT}-${stamp}.jsonl"`,
      );
      try {
        if (!first.done) res.write(first.value);
        for await (const line of lines) {
          if (!res.write(line)) await once(res, "drain");
        }
        res.end();
      } catch (error) {
        runtime.logger.error(
          { request_id: req.context.requestId, err: error },
          "audit export failed mid-stream",
        );
        res.destroy();
      }
    },
  },
  {
    method: "GET",
    path: "/audit/verify",
    access: userWith("audit:read"),
    handle: async (req, res, runtime) => {
      const query = parseInput(verifyQuery, req.query, "query");
      res.setHeader("Cache-Control", "no-store");
      res.json(await runtime.audit.verify(query, req.context));
    },
  },
  {
    // On demand (the schedule makes one every interval): seals everything written so far, this
    // request's own audit event included. Admins only, and rate-limited: each one is a signature and
    // a stored item.
    method: "POST",
    path: "/audit/digests",
    access: userWith("audit:seal"),
    rateLimit: "digests",
    handle: async (req, res, runtime) => {
      res.status(201).json(await runtime.audit.sealOnDemand(req.context));
    },
  },
  {
    method: "GET",
    path: "/audit/public-key",
    access: publicAccess,
    handle: async (_req, res, runtime) => {
      res.setHeader("Cache-Control", "public, max-age=300");
      res.json(await runtime.audit.publicKeys());
    },
  },
]);
