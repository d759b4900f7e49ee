import { DomainError } from "@hybrid-cicd/runtime/domain/errors";
import { createReadableStreamFromReadable, type LoaderFunctionArgs } from "@remix-run/node";
import { requirePermission } from "../utils/auth.server";
import { reportQuery, reportRequest } from "../utils/report-query";

function problem(status: number, title: string, detail: string): Response {
  return new Response(JSON.stringify({ type: "about:blank", title, status, detail }), {
    status,
    headers: { "Content-Type": "application/problem+json", "Cache-Control": "no-store" },
  });
}

/**
 * The download behind the Compliance page's export buttons: the report service streams the file (an
 * audit event `report.export` is recorded, and the period sealed, before the first byte), as
 * `GET /reports/compliance` does for API clients.
 */
export async function loader({ request, context }: LoaderFunctionArgs) {
  requirePermission(request, context, "reports:export");
  const given = [...new URL(request.url).searchParams].filter(([, value]) => value !== "");
  const parsed = reportQuery.safeParse(Object.fromEntries(given));
  if (!parsed.success) {
    return problem(
      400,
      "Invalid report request",
      parsed.error.issues.map((issue) => issue.message).join("; "),
    );
  }
  try {
    const output = await context.runtime.reports.export(
      { ...reportRequest(parsed.data, context.runtime.clock()), format: parsed.data.format },
      context.request,
    );
    const body = Buffer.isBuffer(output.body)
      ? new Uint8Array(output.body)
      : createReadableStreamFromReadable(output.body);
    return new Response(body, {
      status: 200,
      headers: {
        "Content-Type": output.contentType,
        "Content-Disposition": `attachment; filename="${output.fileName}"`,
        "Cache-Control": "no-store",
        "X-Report-Id": output.report.report_id,
      },
    });
  } catch (error) {
    if (error instanceof DomainError) return problem(error.status, error.title, error.message);
    throw error;
  }
}
