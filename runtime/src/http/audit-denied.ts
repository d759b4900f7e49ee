import type { Request, RequestHandler } from "express";
import { auditActor } from "../domain/principal";
import type { Runtime } from "../runtime";
import { sessionCookie } from "./authenticate";

/**
 * Every 401 and 403 the API answers is counted for the audit trail (decision 004). Counting is a map
 * update after the response has gone: a flood of refusals neither waits for nor floods the chain.
 */
export function auditDeniedRequests(runtime: Runtime): RequestHandler {
  return (req, res, next) => {
    res.on("finish", () => {
      if (res.statusCode !== 401 && res.statusCode !== 403) return;
      const detail = res.locals.problemDetail;
      runtime.audit.recordDenied({
        status: res.statusCode,
        method: req.method,
        route: typeof req.route?.path === "string" ? req.route.path : "(no route)",
        reason: typeof detail === "string" ? detail.slice(0, 200) : `HTTP ${res.statusCode}`,
        actor: auditActor({ ...req.context, principal: req.principal ?? req.context?.principal }),
        requestId: req.context?.requestId ?? "unknown",
        credential: presentedCredential(req),
        claimedAgent: claimedAgent(req),
      });
    });
    next();
  };
}

/** The bearer token or session id presented, so refusals of one credential can be correlated (HMAC'd). */
function presentedCredential(req: Request): string | undefined {
  const bearer = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? "");
  return bearer?.[1] ?? sessionCookie(req);
}

/** The key id a signature claimed (an agent id: not a secret). */
function claimedAgent(req: Request): string | undefined {
  const input = req.headers["signature-input"];
  const keyId = typeof input === "string" ? /keyid="([^"]{1,64})"/.exec(input)?.[1] : undefined;
  return keyId && /^[A-Za-z0-9_-]+$/.test(keyId) ? keyId : undefined;
}
