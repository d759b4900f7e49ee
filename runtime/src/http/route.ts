import type { Request, Response } from "express";
import type { Permission } from "../identity/permissions";
import type { Runtime } from "../runtime";

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE";

/**
 * Who may call a route: anyone (`public`), a registered agent with an RFC 9421 signature (`agent`), or
 * a signed-in user holding a permission from the one permission matrix.
 */
export type Access = { kind: "public" } | { kind: "agent" } | { kind: "user"; permission: Permission };

export const publicAccess: Access = { kind: "public" };
export const agentAccess: Access = { kind: "agent" };
export const userWith = (permission: Permission): Access => ({ kind: "user", permission });

export interface RouteDefinition {
  method: HttpMethod;
  /** Express path, e.g. `/agents/:agent_id/config`. */
  path: string;
  access: Access;
  /** Returns nothing when it has written the response itself. */
  handle: (req: Request, res: Response, runtime: Runtime) => Promise<void>;
}

export const defineRoutes = (routes: RouteDefinition[]): RouteDefinition[] => routes;
