import { once } from "node:events";
import * as z from "zod";
import { reportFormats } from "../../domain/reports/reports-service";
import { defineRoutes, userWith } from "../route";
import { parseInput } from "../validate";

const instant = z.iso.datetime({ offset: true }).transform((value) => new Date(value).toISOString());

const reportQuery = z
  .strictObject({
    from: instant.optional(),
    to: instant.optional(),
    target_environment: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,62}$/, "an environment name, e.g. production")
      .optional(),
    format: z.enum(reportFormats).default("json"),
  })
  .refine((value) => value.from === undefined || value.to === undefined || value.from <= value.to, {
    message: "from must not be after to",
    path: ["from"],
  });

/** Compliance reports (issue 12, decisions 019 and 021). */
export const reportRoutes = defineRoutes([
  {
    // Recorded, verified and sealed before the first byte; the body streams (a failure mid-stream cuts
    // the file short, which the zip reader or `hybrid-cicd verify` reports).
    method: "GET",
    path: "/reports/compliance",
    access: userWith("reports:export"),
    handle: async (req, res, runtime) => {
      const query = parseInput(reportQuery, req.query, "query");
      const output = await runtime.reports.export(
        { from: query.from, to: query.to, targetEnvironment: query.target_environment, format: query.format },
        req.context,
      );
      res.status(200);
      res.setHeader("Content-Type", output.contentType);
      res.setHeader("Cache-Control", "no-store");
      res.setHeader("Content-Disposition", `attachment; filename="${output.fileName}"`);
      res.setHeader("X-Report-Id", output.report.report_id);
      res.setHeader("X-Report-Events", String(output.report.sections.evidence.events));
      if (Buffer.isBuffer(output.body)) {
        res.end(output.body);
        return;
      }
      try {
        for await (const chunk of output.body) {
          if (!res.write(chunk)) await once(res, "drain");
        }
        res.end();
      } catch (error) {
        runtime.logger.error(
          { request_id: req.context.requestId, err: error },
          "report export failed mid-stream",
        );
        res.destroy();
      }
    },
  },
]);
