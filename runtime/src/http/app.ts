import express, { type Express, type RequestHandler } from "express";
import { ulid } from "ulid";
import { MethodNotAllowedError, NotFoundError } from "../domain/errors";
import type { Runtime } from "../runtime";
import { productName, version } from "../version";
import { auditDeniedRequests } from "./audit-denied";
import { authorize } from "./authenticate";
import { bodyParsing, MAX_BODY_BYTES } from "./body";
import "./express-request";
import { errorHandler } from "./problem";
import type { RouteDefinition } from "./route";
import { accessRoutes } from "./routes/access";
import { agentJobRoutes } from "./routes/agent-jobs";
import { agentRoutes } from "./routes/agents";
import { auditRoutes } from "./routes/audit";
import { auditProofRoutes } from "./routes/audit-proofs";
import { authRoutes } from "./routes/auth";
import { jobRoutes } from "./routes/jobs";
import { reportRoutes } from "./routes/reports";
import { secretRoutes } from "./routes/secrets";
import { systemRoutes } from "./routes/system";
import { rateLimiters, securityHeaders } from "./security";

/** Every route of the API, in one list: the access matrix tests walk exactly this. */
export const routes: RouteDefinition[] = [
  ...systemRoutes,
  ...authRoutes,
  ...accessRoutes,
  ...agentRoutes,
  ...jobRoutes,
  ...agentJobRoutes,
  ...auditRoutes,
  ...auditProofRoutes,
  ...reportRoutes,
  ...secretRoutes,
];

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function requestContext(runtime: Runtime): RequestHandler {
  return (req, res, next) => {
    const sent = req.headers["x-request-id"];
    const requestId = typeof sent === "string" && REQUEST_ID.test(sent) ? sent : ulid();
    res.setHeader("X-Request-Id", requestId);
    const userAgent = req.headers["user-agent"];
    req.context = { requestId, ip: req.ip ?? req.socket.remoteAddress, userAgent };
    req.rawBody = Buffer.alloc(0);
    const started = process.hrtime.bigint();
    res.on("finish", () => {
      // The path only: a query string may carry a session id.
      runtime.logger.info(
        {
          request_id: requestId,
          method: req.method,
          path: req.path,
          status: res.statusCode,
          duration_ms: Number(process.hrtime.bigint() - started) / 1e6,
          actor: req.principal ? `${req.principal.type}:${req.principal.id}` : undefined,
        },
        "request",
      );
    });
    next();
  };
}

function wrap(route: RouteDefinition, runtime: Runtime): RequestHandler {
  return async (req, res, next) => {
    try {
      await route.handle(req, res, runtime);
    } catch (error) {
      next(error);
    }
  };
}

export interface AppOptions {
  /** Set `Secure` on cookies (false only for plain-http loopback). */
  secureCookies: boolean;
  /** Proxy hops to trust for X-Forwarded-For (API Gateway in front = 1: the right-most entry is the client). */
  trustProxy?: number;
}

/** The express application: the same one serves Lambda (serverless-http) and the local server. */
export function createApp(runtime: Runtime, options: AppOptions): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", options.trustProxy ?? false);
  app.set("query parser", "simple");
  app.locals.secureCookies = options.secureCookies;
  app.use(requestContext(runtime));
  app.use(auditDeniedRequests(runtime));
  app.use(securityHeaders({ https: options.secureCookies }));
  const limiters = rateLimiters(runtime);
  app.use(bodyParsing(bodyLimitFor));
  app.get("/", rootIndex);
  for (const route of routes) {
    app[route.method.toLowerCase() as "get" | "post" | "put" | "delete"](
      route.path,
      ...(route.rateLimit ? [limiters[route.rateLimit]] : []),
      authorize(route.access, runtime),
      wrap(route, runtime),
    );
  }
  app.use((req, _res, next) => {
    const allowed = routes.filter((route) => pathMatches(route.path, req.path)).map((route) => route.method);
    next(
      allowed.length > 0
        ? new MethodNotAllowedError(`${req.method} is not allowed on ${req.path}`, [...new Set(allowed)])
        : new NotFoundError(`no route for ${req.method} ${req.path}`),
    );
  });
  app.use(errorHandler(runtime.logger));
  return app;
}

/**
 * `/`: a browser (Accept prefers HTML) goes to the console; an API client gets an index of links.
 */
const rootIndex: RequestHandler = (req, res) => {
  if (req.accepts(["json", "html"]) === "html") {
    res.redirect(302, "/console/");
    return;
  }
  res.setHeader("Cache-Control", "no-store");
  res.json({
    name: productName,
    version,
    links: {
      console: "/console/",
      health: "/health",
      info: "/info",
      sign_in_providers: "/auth/providers",
      me: "/auth/me",
      jobs: "/jobs",
      agents: "/agents",
      queue_metrics: "/metrics/queue",
      audit_events: "/audit/events",
      audit_public_key: "/audit/public-key",
    },
  });
};

/** The body cap of the route a path belongs to: 64 KiB unless the route declares more. */
function bodyLimitFor(path: string): number {
  const declared = routes
    .filter((route) => route.maxBodyBytes !== undefined && pathMatches(route.path, path))
    .map((route) => route.maxBodyBytes!);
  return Math.max(MAX_BODY_BYTES, ...declared);
}

function pathMatches(pattern: string, path: string): boolean {
  const expression = new RegExp(`^${pattern.replace(/:[a-z_]+/g, "[^/]+")}/?$`);
  return expression.test(path);
}
