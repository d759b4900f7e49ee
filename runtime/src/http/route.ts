import type { Request, Response } from "express";
import type { Permission } from "../identity/permissions";
import type { Runtime } from "../runtime";

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE";

/**
 * Who may call a route: anyone (`public`), a registered agent with an RFC 9421 signature (`agent`), a
 * signed-in user holding a permission from the one permission matrix, or any signed-in user, even one
 * without a role binding (`anyUser`: only signing out).
 */
export type Access =
  | { kind: "public" }
  | { kind: "agent" }
  | { kind: "user"; permission: Permission }
  | { kind: "anyUser" };

export const publicAccess: Access = { kind: "public" };
export const agentAccess: Access = { kind: "agent" };
export const userWith = (permission: Permission): Access => ({ kind: "user", permission });
export const anyUser: Access = { kind: "anyUser" };

/**
 * Rate limits by client address (http/security.ts): sign-in endpoints, endpoints that mint tokens, and
 * on-demand audit digests.
 */
export type RateLimitName = "signin" | "tokens" | "digests";

export interface RouteDefinition {
  method: HttpMethod;
  /** Express path, e.g. `/agents/:agent_id/config`. */
  path: string;
  access: Access;
  /** Counted against this per-client rate limit (429 with Retry-After beyond it). */
  rateLimit?: RateLimitName;
  /** A larger request-body cap than the default 64 KiB (e.g. log uploads). */
  maxBodyBytes?: number;
  /** Returns nothing when it has written the response itself. */
  handle: (req: Request, res: Response, runtime: Runtime) => Promise<void>;
}

export const defineRoutes = (routes: RouteDefinition[]): RouteDefinition[] => routes;
