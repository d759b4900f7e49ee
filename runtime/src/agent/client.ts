import { backoffDelay, retryAfterMs, sleep } from "./backoff";
import { type AgentIdentity, type SignedResponse, signedFetch } from "./signed-fetch";

/** The control plane refused the agent's credentials (401, or 403 for the agent itself): stop. */
export class AgentUnauthorizedError extends Error {
  override name = "AgentUnauthorizedError";
  constructor(
    readonly status: number,
    detail: string,
  ) {
    super(`the control plane refused this agent (${status}): ${detail}`);
  }
}

/** A network error, 429 or 5xx that outlasted the retry window; the caller decides what next. */
export class TransientFailureError extends Error {
  override name = "TransientFailureError";
  constructor(
    message: string,
    /** The server's Retry-After, when it sent one. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export interface ProblemBody {
  type?: string;
  detail?: string;
  current_size?: number;
  max_chunk_bytes?: number;
}

const TRANSIENT_STATUSES = new Set([408, 425, 429, 500, 502, 503, 504]);
const MAX_RETRY_AFTER_MS = 5 * 60_000;

export interface ClientOptions {
  baseUrl: string;
  identity: AgentIdentity;
  /** Per-request timeout. @default 30_000 */
  timeoutMs?: number;
  random?: () => number;
  /** Aborts every retry wait (the agent is shutting down). */
  signal?: AbortSignal;
}

/**
 * Signed calls to the control plane with the agent's retry rules: network errors, 429 and 5xx are
 * retried with full-jitter backoff (the server's Retry-After wins) for as long as the caller allows;
 * 401 — or a 403 about the agent itself — throws AgentUnauthorizedError; any other answer is returned.
 */
export class ControlPlaneClient {
  constructor(private readonly options: ClientOptions) {}

  get agentId(): string {
    return this.options.identity.agentId;
  }

  async request<T = unknown>(
    method: "GET" | "POST",
    path: string,
    body?: unknown,
    retryForMs = 0,
    headers?: Record<string, string>,
  ): Promise<SignedResponse<T>> {
    const deadline = Date.now() + retryForMs;
    for (let failures = 0; ; failures++) {
      let wait: number | undefined;
      let reason: string;
      try {
        const response = await signedFetch<T>(
          this.options.baseUrl,
          this.options.identity,
          method,
          path,
          body,
          {
            headers,
            signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
          },
        );
        if (!TRANSIENT_STATUSES.has(response.status)) {
          refuseIfUnauthorized(response);
          return response;
        }
        wait = retryAfterMs(response.headers.get("retry-after"));
        reason = `${method} ${path} answered ${response.status}`;
      } catch (error) {
        if (error instanceof AgentUnauthorizedError) throw error;
        reason = `${method} ${path} failed: ${describe(error)}`;
      }
      const delay = Math.min(wait ?? backoffDelay(failures, {}, this.options.random), MAX_RETRY_AFTER_MS);
      if (Date.now() + delay > deadline || this.options.signal?.aborted) {
        throw new TransientFailureError(reason, wait);
      }
      await sleep(delay, this.options.signal);
    }
  }
}

function refuseIfUnauthorized(response: SignedResponse<unknown>): void {
  const problem = (typeof response.body === "object" ? response.body : undefined) as ProblemBody | undefined;
  const aboutTheAgent =
    response.status === 403 && (problem?.type ?? "/problems/forbidden") === "/problems/forbidden";
  if (response.status === 401 || aboutTheAgent) {
    throw new AgentUnauthorizedError(response.status, problem?.detail ?? "no detail");
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? error.message;
}

export function problemOf(response: SignedResponse<unknown>): ProblemBody {
  return (typeof response.body === "object" && response.body !== null ? response.body : {}) as ProblemBody;
}
