import { parse as parseCookies } from "cookie";
import type { Request, RequestHandler, Response } from "express";
import { ForbiddenError, UnauthenticatedError } from "../domain/errors";
import { idPatterns } from "../domain/ids";
import { epochSeconds, type Principal } from "../domain/principal";
import { settings } from "../domain/settings";
import { CSRF_COOKIE, CSRF_HEADER, csrfToken, verifyCsrfToken } from "../identity/csrf";
import { verifyRequest } from "../identity/http-signatures";
import { can } from "../identity/permissions";
import type { Runtime } from "../runtime";
import type { AgentRecord } from "../store/agents-repository";
import type { SessionRecord } from "../store/sessions-repository";
import type { Access } from "./route";

export const SESSION_COOKIE = "hcp_session";
/**
 * The session cookie's name over HTTPS: the `__Host-` prefix makes browsers accept it only when it is
 * Secure, has Path=/ and no Domain, so a sibling (sub)domain cannot plant or shadow a session.
 */
export const HTTPS_SESSION_COOKIE = `__Host-${SESSION_COOKIE}`;

const sessionCookieName = (secure: boolean) => (secure ? HTTPS_SESSION_COOKIE : SESSION_COOKIE);

/** Methods that change state: a cookie alone never authorizes them (CSRF). */
const UNSAFE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** The session id from the cookie, if any. */
export function sessionCookie(req: Request): string | undefined {
  const header = req.headers.cookie;
  return header ? parseCookies(header)[sessionCookieName(req.app.locals.secureCookies === true)] : undefined;
}

/**
 * Sets the session cookie (HttpOnly, SameSite=Lax, Secure except on loopback http) and the CSRF cookie
 * that the console's scripts read and echo in `X-CSRF-Token`.
 */
export function setSessionCookies(res: Response, sessionId: string, session: SessionRecord): void {
  const secure = res.app.locals.secureCookies === true;
  const maxAge = Math.max(0, session.expires_at - epochSeconds(new Date())) * 1000;
  res.cookie(sessionCookieName(secure), sessionId, {
    httpOnly: true,
    sameSite: "lax",
    secure,
    path: "/",
    maxAge,
  });
  res.cookie(CSRF_COOKIE, csrfToken(sessionId), {
    httpOnly: false,
    sameSite: "strict",
    secure,
    path: "/",
    maxAge,
  });
}

export function clearSessionCookies(res: Response): void {
  const secure = res.app.locals.secureCookies === true;
  res.clearCookie(sessionCookieName(secure), { path: "/", secure });
  res.clearCookie(CSRF_COOKIE, { path: "/" });
}

/** A state-changing request authenticated by the session cookie must carry the session's CSRF token. */
export function requireCsrfToken(req: Request, sessionId: string): void {
  if (!UNSAFE_METHODS.has(req.method)) return;
  const header = req.headers[CSRF_HEADER];
  if (!verifyCsrfToken(sessionId, typeof header === "string" ? header : undefined)) {
    throw new ForbiddenError(
      "a state-changing request made with the session cookie needs the X-CSRF-Token header " +
        "(the hcp_csrf cookie's value, or csrf_token from GET /auth/me)",
    );
  }
}

function hasSignature(req: Request): boolean {
  return req.headers.signature !== undefined || req.headers["signature-input"] !== undefined;
}

type UserPrincipal = Extract<Principal, { type: "user" }>;

async function authenticateUser(req: Request, res: Response, runtime: Runtime): Promise<UserPrincipal> {
  const authorization = req.headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer ([^\s]+)$/i.exec(authorization);
    if (!match) throw new UnauthenticatedError("the Authorization header must be `Bearer <token>`");
    return runtime.credentials.authenticateApiToken(match[1]!, req.context);
  }
  const presented = sessionCookie(req);
  if (presented !== undefined) {
    const { principal, session, rotatedSessionId } = await runtime.sessions.authenticate(
      presented,
      req.context,
    );
    if (rotatedSessionId !== undefined) setSessionCookies(res, rotatedSessionId, session);
    res.locals.session = session;
    res.locals.sessionId = rotatedSessionId ?? presented;
    requireCsrfToken(req, presented);
    return principal;
  }
  if (hasSignature(req)) {
    throw new UnauthenticatedError("this endpoint is for users: an agent signature is not accepted here");
  }
  throw new UnauthenticatedError("sign in or send `Authorization: Bearer <API token>`");
}

/** Verifies an agent's RFC 9421 signature and that it signs for the agent named in the path. */
async function authenticateAgent(req: Request, runtime: Runtime): Promise<Principal> {
  if (!hasSignature(req)) {
    const detail =
      req.headers.authorization !== undefined || sessionCookie(req) !== undefined
        ? "this endpoint is for agents: sign the request (RFC 9421); user credentials are not accepted here"
        : "the request must carry an RFC 9421 signature (Signature-Input and Signature)";
    throw new UnauthenticatedError(detail, "Signature");
  }
  let revoked = false;
  let snapshot: AgentRecord | undefined;
  const result = await verifyRequest(
    { method: req.method, url: req.originalUrl, headers: req.headers, body: req.rawBody },
    {
      now: epochSeconds(runtime.clock()),
      maxAgeSeconds: settings.signature.maxAgeSeconds,
      lookupKey: async (keyId) => {
        // Agent keyids are agent ids: anything else is unknown without asking the store.
        if (!idPatterns.agent.test(keyId)) return undefined;
        const found = await runtime.agents.signatureKeys(keyId);
        revoked = found.revoked;
        snapshot = found.agent;
        return found.keys;
      },
      checkNonce: (keyId, nonce, expiresAt) => runtime.store.nonces.remember(keyId, nonce, expiresAt),
    },
  );
  if (!result.ok) {
    throw new UnauthenticatedError(
      revoked ? "the agent has been revoked" : `the signature was refused: ${result.reason}`,
      "Signature",
    );
  }
  const pathAgent = req.params.agent_id;
  if (pathAgent !== undefined && pathAgent !== result.keyId) {
    throw new ForbiddenError("the request is signed by a different agent than the one in the path");
  }
  if (snapshot?.agent_id === result.keyId) req.signedAgent = snapshot;
  return { type: "agent", id: result.keyId };
}

/**
 * The one access check, applied to every route from its declared access: who is calling (API token,
 * session cookie + CSRF token, or agent signature; 401 otherwise), then whether the one permission matrix
 * lets their role do this (403 otherwise).
 */
export function authorize(access: Access, runtime: Runtime): RequestHandler {
  return async (req, res, next) => {
    try {
      if (access.kind === "agent") {
        req.principal = await authenticateAgent(req, runtime);
      } else if (access.kind === "user" || access.kind === "anyUser") {
        const user = await authenticateUser(req, res, runtime);
        req.principal = user;
        // Known before the permission check, so a denied request is recorded with who was denied.
        req.context = { ...req.context, principal: user };
        if (access.kind === "user" && !can(user.role, access.permission)) {
          throw new ForbiddenError(
            user.role === null
              ? `signed in as ${user.id}, but no role is bound to this identity: ask an admin for one`
              : `the ${user.role} role does not have the ${access.permission} permission`,
          );
        }
      }
      req.context = { ...req.context, principal: req.principal };
      next();
    } catch (error) {
      next(error);
    }
  };
}
