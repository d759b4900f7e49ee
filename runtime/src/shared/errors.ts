/**
 * The one error path (a shared kernel: domain and store code throw these); the HTTP layer turns any of them into an RFC 9457
 * problem+json response with the status and type declared here. Messages are safe to show a client:
 * they never carry secrets, tokens or internals.
 */
export interface FieldError {
  readonly field: string;
  readonly message: string;
}

export abstract class DomainError extends Error {
  abstract readonly status: number;
  /** Short slug, published as the problem `type` (`/problems/<slug>`). */
  abstract readonly slug: string;
  abstract readonly title: string;
  /** Extra problem members (e.g. `errors`, `current_size`). */
  readonly extensions: Record<string, unknown> = {};
  readonly headers: Record<string, string> = {};
}

export class ValidationError extends DomainError {
  override name = "ValidationError";
  readonly status = 400;
  readonly slug = "validation";
  readonly title = "The request is not valid";
  constructor(
    detail: string,
    readonly errors: FieldError[] = [],
  ) {
    super(detail);
    this.extensions.errors = errors;
  }
}

export class MalformedBodyError extends DomainError {
  override name = "MalformedBodyError";
  readonly status = 400;
  readonly slug = "malformed-body";
  readonly title = "The request body is not valid JSON";
}

export class PayloadTooLargeError extends DomainError {
  override name = "PayloadTooLargeError";
  readonly status = 413;
  readonly slug = "payload-too-large";
  readonly title = "The request body is too large";
}

export class UnsupportedMediaTypeError extends DomainError {
  override name = "UnsupportedMediaTypeError";
  readonly status = 415;
  readonly slug = "unsupported-media-type";
  readonly title = "The request body must be application/json";
}

export class UnauthenticatedError extends DomainError {
  override name = "UnauthenticatedError";
  readonly status = 401;
  readonly slug = "unauthenticated";
  readonly title = "Authentication is required";
  constructor(detail: string, scheme: "Bearer" | "Signature" = "Bearer") {
    super(detail);
    this.headers["WWW-Authenticate"] =
      scheme === "Bearer" ? 'Bearer realm="hybrid-cicd"' : 'Signature realm="hybrid-cicd", alg="hmac-sha256"';
  }
}

export class ForbiddenError extends DomainError {
  override name = "ForbiddenError";
  readonly status = 403;
  readonly slug = "forbidden";
  readonly title = "This action is not allowed";
}

export class NotFoundError extends DomainError {
  override name = "NotFoundError";
  readonly status = 404;
  readonly slug = "not-found";
  readonly title = "Not found";
}

export class MethodNotAllowedError extends DomainError {
  override name = "MethodNotAllowedError";
  readonly status = 405;
  readonly slug = "method-not-allowed";
  readonly title = "Method not allowed";
  constructor(detail: string, allow: string[]) {
    super(detail);
    this.headers.Allow = allow.join(", ");
  }
}

export class ConflictError extends DomainError {
  override name = "ConflictError";
  readonly status = 409;
  readonly slug = "conflict";
  readonly title = "The request conflicts with the current state";
}

export class IdempotencyMismatchError extends DomainError {
  override name = "IdempotencyMismatchError";
  readonly status = 422;
  readonly slug = "idempotency-key-reused";
  readonly title = "Idempotency-Key was used with a different request";
}

export class TooManyRequestsError extends DomainError {
  override name = "TooManyRequestsError";
  readonly status = 429;
  readonly slug = "too-many-requests";
  readonly title = "Too many requests";
  constructor(detail: string, retryAfterSeconds: number) {
    super(detail);
    this.headers["Retry-After"] = String(Math.max(1, Math.ceil(retryAfterSeconds)));
  }
}

/** A dependency (DynamoDB, the secret store) could not do its part; the request changed nothing. */
export class ServiceUnavailableError extends DomainError {
  override name = "ServiceUnavailableError";
  readonly status = 503;
  readonly slug = "service-unavailable";
  readonly title = "The service is temporarily unavailable";
  constructor(detail: string, retryAfterSeconds = 1) {
    super(detail);
    this.headers["Retry-After"] = String(retryAfterSeconds);
  }
}
