import { parse as parseCookies } from "cookie";
import type { Request, RequestHandler } from "express";
import { ForbiddenError, UnauthenticatedError } from "../domain/errors";
import { epochSeconds, type Principal } from "../domain/principal";
import { settings } from "../domain/settings";
import { verifyRequest } from "../identity/http-signatures";
import { can } from "../identity/permissions";
import type { Runtime } from "../runtime";
import type { Access } from "./route";

export const SESSION_COOKIE = "hcp_session";

/** The session id from the cookie, if any. */
export function sessionCookie(req: Request): string | undefined {
  const header = req.headers.cookie;
  return header ? parseCookies(header)[SESSION_COOKIE] : undefined;
}

function hasSignature(req: Request): boolean {
  return req.headers.signature !== undefined || req.headers["signature-input"] !== undefined;
}

async function authenticateUser(
  req: Request,
  runtime: Runtime,
): Promise<Extract<Principal, { type: "user" }>> {
  const authorization = req.headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer ([^\s]+)$/i.exec(authorization);
    if (!match) throw new UnauthenticatedError("the Authorization header must be `Bearer <token>`");
    return runtime.credentials.authenticateApiToken(match[1]!);
  }
  const session = sessionCookie(req);
  if (session !== undefined) return runtime.sessions.authenticate(session);
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
  const result = await verifyRequest(
    { method: req.method, url: req.originalUrl, headers: req.headers, body: req.rawBody },
    {
      now: epochSeconds(runtime.clock()),
      maxAgeSeconds: settings.signature.maxAgeSeconds,
      lookupKey: async (keyId) => {
        const found = await runtime.agents.signatureKeys(keyId);
        revoked = found.revoked;
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
  return { type: "agent", id: result.keyId };
}

/** The one access check, applied to every route from its declared access. */
export function authorize(access: Access, runtime: Runtime): RequestHandler {
  return async (req, _res, next) => {
    try {
      if (access.kind === "agent") {
        req.principal = await authenticateAgent(req, runtime);
      } else if (access.kind === "user") {
        const user = await authenticateUser(req, runtime);
        req.principal = user;
        if (!can(user.role, access.permission)) {
          throw new ForbiddenError(`the ${user.role} role does not have the ${access.permission} permission`);
        }
      }
      req.context = { ...req.context, principal: req.principal };
      next();
    } catch (error) {
      next(error);
    }
  };
}
