import express, { type Express, type RequestHandler } from "express";
import { ulid } from "ulid";
import { MethodNotAllowedError, NotFoundError } from "../domain/errors";
import type { Runtime } from "../runtime";
import { authorize } from "./authenticate";
import { bodyParsing } from "./body";
import "./express-request";
import { errorHandler } from "./problem";
import type { RouteDefinition } from "./route";
import { agentRoutes } from "./routes/agents";
import { authRoutes } from "./routes/auth";
import { jobRoutes } from "./routes/jobs";
import { systemRoutes } from "./routes/system";

/** Every route of the API, in one list: the access matrix tests walk exactly this. */
export const routes: RouteDefinition[] = [...systemRoutes, ...authRoutes, ...agentRoutes, ...jobRoutes];

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
  /** Trust X-Forwarded-* (API Gateway in front). */
  trustProxy?: boolean;
}

/** The express application: the same one serves Lambda (serverless-http) and the local server. */
export function createApp(runtime: Runtime, options: AppOptions): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", options.trustProxy ?? false);
  app.set("query parser", "simple");
  app.locals.secureCookies = options.secureCookies;
  app.use(requestContext(runtime));
  app.use(bodyParsing());
  for (const route of routes) {
    app[route.method.toLowerCase() as "get" | "post" | "put" | "delete"](
      route.path,
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

function pathMatches(pattern: string, path: string): boolean {
  const expression = new RegExp(`^${pattern.replace(/:[a-z_]+/g, "[^/]+")}/?$`);
  return expression.test(path);
}
