import { createHmac } from "node:crypto";
import { constantTimeEqual } from "./tokens";

/**
 * CSRF tokens for cookie-authenticated requests: a synchronizer token derived from the session id
 * (HMAC-SHA256 keyed by the session id), so nothing extra is stored, the token changes whenever the
 * session id rotates, and only someone who holds the session id (the browser's HttpOnly cookie, the
 * server) can compute it. The browser gets it in the readable `hcp_csrf` cookie and from `GET /auth/me`,
 * and sends it back in the `X-CSRF-Token` header (or the console's form field).
 */
export const CSRF_COOKIE = "hcp_csrf";
export const CSRF_HEADER = "x-csrf-token";
export const CSRF_FORM_FIELD = "_csrf";

export function csrfToken(sessionId: string): string {
  return createHmac("sha256", sessionId).update("hybrid-cicd csrf v1").digest("base64url");
}

export function verifyCsrfToken(sessionId: string, presented: string | undefined): boolean {
  return presented !== undefined && constantTimeEqual(csrfToken(sessionId), presented);
}
