/**
 * Entry of the console Lambda (API Gateway HTTP API route `/console/{proxy+}`, payload format 2.0).
 *
 * PLACEHOLDER until the console issue lands: it answers every request with 503 and an RFC 9457
 * problem document saying so. Dependency-free on purpose, so the platform can bundle and deploy it today.
 */

/** The parts of an API Gateway v2 (payload 2.0) event this placeholder reads. */
export interface ConsoleRequestEvent {
  readonly rawPath?: string;
  readonly requestContext?: { readonly requestId?: string };
}

export interface ConsoleResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export async function handler(event: ConsoleRequestEvent): Promise<ConsoleResponse> {
  const requestId = event?.requestContext?.requestId;
  return {
    statusCode: 503,
    headers: {
      "content-type": "application/problem+json",
      "cache-control": "no-store",
      "retry-after": "3600",
      ...(requestId ? { "x-request-id": requestId } : {}),
    },
    body: JSON.stringify({
      type: "about:blank",
      title: "Service Unavailable",
      status: 503,
      detail: "console not deployed yet: this is the placeholder console function",
      instance: event?.rawPath ?? "/console",
    }),
  };
}
