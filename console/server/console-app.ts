import { existsSync } from "node:fs";
import type { IncomingHttpHeaders } from "node:http";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { fileURLToPath, pathToFileURL } from "node:url";
import { UnauthenticatedError } from "@hybrid-cicd/runtime/domain/errors";
import type { RequestContext } from "@hybrid-cicd/runtime/domain/principal";
import {
  clearSessionCookies,
  sessionCookie,
  setSessionCookies,
} from "@hybrid-cicd/runtime/http/authenticate";
import { type AppLoadContext, createRequestHandler, type ServerBuild } from "@remix-run/node";
import "@hybrid-cicd/runtime/http/express-request";
import { securityHeaders } from "@hybrid-cicd/runtime/http/security";
import { CSRF_FORM_FIELD, CSRF_HEADER, verifyCsrfToken } from "@hybrid-cicd/runtime/identity/csrf";
import type { Runtime } from "@hybrid-cicd/runtime/runtime";
import express, { type Express, type Request, type Response } from "express";
import { ulid } from "ulid";
import type { ConsoleContext } from "../app/context";

/**
 * Where `remix vite:build` writes the console (server bundle and browser assets): `build/` of the
 * console package, or next to a bundle that has no `import.meta.url` (CommonJS Lambda bundles).
 */
export function defaultBuildDirectory(): string {
  const here = typeof import.meta.url === "string" ? dirname(fileURLToPath(import.meta.url)) : __dirname;
  return join(here, "..", "build");
}

export class ConsoleNotBuiltError extends Error {
  override name = "ConsoleNotBuiltError";
}

/** Form posts are small; anything bigger is refused before it reaches a route. */
const MAX_FORM_BYTES = 64 * 1024;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export interface ConsoleOptions {
  /** `Secure` cookies and HSTS (false only for plain-http loopback). */
  secureCookies: boolean;
  /** Proxy hops to trust for the client address (1 behind API Gateway). */
  trustProxy?: number;
  /** The built console (default: console/build). */
  buildDirectory?: string;
  /** A server build already loaded (the Lambda bundle imports it statically). */
  build?: ServerBuild;
}

/** Loads `build/server/index.js`, or says how to build it. */
export async function loadConsoleBuild(buildDirectory = defaultBuildDirectory()): Promise<ServerBuild> {
  const entry = join(buildDirectory, "server", "index.js");
  if (!existsSync(entry)) {
    throw new ConsoleNotBuiltError(
      `the console is not built (${entry} is missing): run \`npm run build -w @hybrid-cicd/console\``,
    );
  }
  return (await import(pathToFileURL(entry).href)) as ServerBuild;
}

/**
 * The console as an express 5 sub-application mounted at /console (decision 200): the browser assets
 * from `build/client`, then every other request handed to Remix's fetch-API request handler through a
 * small adapter (express request → `Request`, `Response` → express response), with the signed-in user,
 * the runtime and the CSP nonce in the load context. `@remix-run/express` is not used: it declares a
 * peer of express 4.
 */
export async function createConsoleApp(runtime: Runtime, options: ConsoleOptions): Promise<Express> {
  const buildDirectory = options.buildDirectory ?? defaultBuildDirectory();
  const build = options.build ?? (await loadConsoleBuild(buildDirectory));
  const handleRequest = createRequestHandler(build, "production");
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", options.trustProxy ?? false);
  app.locals.secureCookies = options.secureCookies;
  app.use((req, res, next) => {
    // `/console` → `/console/`: the router's base ends with a slash. (`/console.data`, the overview's
    // data URL, is mounted too and passes.)
    if (req.originalUrl.split("?")[0] === req.baseUrl && !req.baseUrl.endsWith(".data")) {
      const query = req.originalUrl.includes("?") ? req.originalUrl.slice(req.originalUrl.indexOf("?")) : "";
      res.redirect(302, `${req.baseUrl}/${query}`);
      return;
    }
    next();
  });
  const clientDirectory = join(buildDirectory, "client");
  if (existsSync(clientDirectory)) {
    // Hashed file names: cache for a year. Other files (favicon) briefly.
    app.use(
      "/assets",
      express.static(join(clientDirectory, "assets"), { immutable: true, maxAge: "1y", index: false }),
    );
    app.use(express.static(clientDirectory, { maxAge: "1h", index: false, redirect: false }));
  }
  app.use(securityHeaders({ https: options.secureCookies }));
  app.use(async (req, res, next) => {
    try {
      const sent = req.headers["x-request-id"];
      const requestId = typeof sent === "string" && REQUEST_ID.test(sent) ? sent : ulid();
      res.setHeader("X-Request-Id", requestId);
      res.setHeader("Cache-Control", "no-store");
      const started = process.hrtime.bigint();
      const base: RequestContext = {
        requestId,
        ip: req.ip ?? req.socket.remoteAddress,
        userAgent: req.headers["user-agent"],
      };
      const context = await signedInContext(req, res, runtime, base, res.locals.cspNonce as string);
      const body = UNSAFE.has(req.method) ? await readBody(req) : undefined;
      if (body === null) {
        res.status(413).type("text/plain").send("The form is too large.");
        return;
      }
      if (
        body !== undefined &&
        context.sessionId !== undefined &&
        !csrfPresented(req, body, context.sessionId)
      ) {
        // A cookie alone never authorizes a change: the form carries the session's CSRF token.
        res.status(403).type("text/plain").send("This form has expired: reload the page and try again.");
        return;
      }
      const response = await handleRequest(
        toFetchRequest(req, res, body),
        context as unknown as AppLoadContext,
      );
      await sendResponse(res, response);
      runtime.logger.info(
        {
          request_id: requestId,
          method: req.method,
          path: req.originalUrl.split("?")[0],
          status: response.status,
          duration_ms: Number(process.hrtime.bigint() - started) / 1e6,
          actor: context.user ? `user:${context.user.id}` : undefined,
        },
        "console request",
      );
    } catch (error) {
      next(error);
    }
  });
  app.use((error: unknown, req: Request, res: Response, _next: express.NextFunction) => {
    runtime.logger.error({ err: error, path: req.path }, "console request failed");
    if (res.headersSent) {
      res.end();
      return;
    }
    res
      .status(500)
      .type("text/plain")
      .send(`The console could not answer this request (request id ${res.getHeader("X-Request-Id")}).`);
  });
  return app;
}

/** Who is asking: the session cookie checked by the runtime's sessions service (rotated when due). */
async function signedInContext(
  req: Request,
  res: Response,
  runtime: Runtime,
  base: RequestContext,
  cspNonce: string,
): Promise<ConsoleContext> {
  const presented = sessionCookie(req);
  if (presented !== undefined) {
    try {
      const { principal, session, rotatedSessionId } = await runtime.sessions.authenticate(presented, base);
      if (rotatedSessionId !== undefined) setSessionCookies(res, rotatedSessionId, session);
      const sessionId = rotatedSessionId ?? presented;
      return {
        runtime,
        user: principal,
        sessionId,
        sessionHash: session.session_hash,
        request: { ...base, principal },
        cspNonce,
      };
    } catch (error) {
      if (!(error instanceof UnauthenticatedError)) throw error;
      clearSessionCookies(res);
    }
  }
  return { runtime, user: null, request: base, cspNonce };
}

async function readBody(req: Request): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer | string>) {
    const buffer = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    size += buffer.length;
    if (size > MAX_FORM_BYTES) return null;
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

function csrfPresented(req: Request, body: Buffer, sessionId: string): boolean {
  const header = req.headers[CSRF_HEADER];
  if (typeof header === "string") return verifyCsrfToken(sessionId, header);
  const type = req.headers["content-type"] ?? "";
  if (type.startsWith("application/x-www-form-urlencoded")) {
    const field = new URLSearchParams(body.toString("utf8")).get(CSRF_FORM_FIELD);
    return verifyCsrfToken(sessionId, field ?? undefined);
  }
  if (type.startsWith("multipart/form-data")) {
    const match = new RegExp(`name="${CSRF_FORM_FIELD}"\\r\\n\\r\\n([^\\r]*)\\r\\n`).exec(
      body.toString("utf8"),
    );
    return verifyCsrfToken(sessionId, match?.[1]);
  }
  return false;
}

function toFetchRequest(req: Request, res: Response, body: Buffer | undefined): globalThis.Request {
  const host = req.headers.host ?? "localhost";
  const protocol = req.protocol === "https" ? "https" : "http";
  const url = new URL(req.originalUrl, `${protocol}://${host}`);
  const controller = new AbortController();
  res.on("close", () => controller.abort());
  return new globalThis.Request(url, {
    method: req.method,
    headers: toHeaders(req.headers),
    body: body && body.length > 0 ? new Uint8Array(body) : undefined,
    signal: controller.signal,
  });
}

function toHeaders(incoming: IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || name.startsWith(":")) continue;
    if (Array.isArray(value)) for (const item of value) headers.append(name, item);
    else headers.set(name, value);
  }
  return headers;
}

async function sendResponse(res: Response, response: globalThis.Response): Promise<void> {
  res.status(response.status);
  for (const [name, value] of response.headers) {
    if (name === "set-cookie") continue;
    res.setHeader(name, value);
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) res.append("Set-Cookie", cookies);
  if (!response.body) {
    res.end();
    return;
  }
  await new Promise<void>((resolve, reject) => {
    Readable.fromWeb(response.body as unknown as NodeReadableStream)
      .on("error", reject)
      .pipe(res)
      .on("finish", resolve)
      .on("error", reject);
  });
}
