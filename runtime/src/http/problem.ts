import type { ErrorRequestHandler, Response } from "express";
import {
  DomainError,
  MalformedBodyError,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
} from "../domain/errors";
import type { Logger } from "../logger";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

/** Sends an RFC 9457 problem details body. */
export function sendProblem(
  res: Response,
  problem: {
    status: number;
    slug: string;
    title: string;
    detail: string;
    extensions?: Record<string, unknown>;
  },
): void {
  const requestId = res.req.context?.requestId;
  // For the audit of refusals (http/audit-denied.ts): the detail is safe to show, so safe to record.
  res.locals.problemDetail = problem.detail;
  res
    .status(problem.status)
    .type(PROBLEM_CONTENT_TYPE)
    .send(
      JSON.stringify({
        type: `/problems/${problem.slug}`,
        title: problem.title,
        status: problem.status,
        detail: problem.detail,
        instance: res.req.path,
        request_id: requestId,
        ...problem.extensions,
      }),
    );
}

/** Errors raised by body-parser (express.raw) carry a `type`; map the client ones to ours. */
function fromBodyParser(error: unknown): DomainError | undefined {
  if (!(error instanceof Error) || !("type" in error)) return undefined;
  switch ((error as { type: string }).type) {
    case "entity.too.large":
      return new PayloadTooLargeError(
        `the request body exceeds ${"limit" in error ? `${error.limit} bytes` : "the limit"}`,
      );
    case "encoding.unsupported":
    case "charset.unsupported":
      return new UnsupportedMediaTypeError("the request body's encoding or charset is not supported");
    case "request.aborted":
    case "request.size.invalid":
    case "stream.encoding.set":
      return new MalformedBodyError("the request body was incomplete");
    default:
      return undefined;
  }
}

const transientAwsErrors = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
  "InternalServerError",
  "ServiceUnavailable",
  "TimeoutError",
  "ECONNREFUSED",
  "ECONNRESET",
]);

function isTransientDependencyError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: string }).code;
  return transientAwsErrors.has(error.name) || (code !== undefined && transientAwsErrors.has(code));
}

/** The one error path: anything thrown becomes problem+json; unknown errors are a 500 without internals. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error, req, res, _next) => {
    const known = error instanceof DomainError ? error : fromBodyParser(error);
    if (known) {
      for (const [name, value] of Object.entries(known.headers)) res.setHeader(name, value);
      if (known.status >= 500)
        logger.warn({ request_id: req.context?.requestId, err: known.message }, known.title);
      sendProblem(res, {
        status: known.status,
        slug: known.slug,
        title: known.title,
        detail: known.message,
        extensions: known.extensions,
      });
      return;
    }
    if (isTransientDependencyError(error)) {
      logger.warn(
        { request_id: req.context?.requestId, err: { name: error.name } },
        "dependency unavailable",
      );
      res.setHeader("Retry-After", "1");
      sendProblem(res, {
        status: 503,
        slug: "service-unavailable",
        title: "The service is temporarily unavailable",
        detail: "a dependency did not answer; nothing was changed, retry later",
      });
      return;
    }
    logger.error({ request_id: req.context?.requestId, err: error }, "unhandled error");
    sendProblem(res, {
      status: 500,
      slug: "internal",
      title: "Internal server error",
      detail: "an unexpected error occurred; quote the request id when reporting it",
    });
  };
}
