import { isIP } from "node:net";
import type { Request, Response } from "express";
import * as z from "zod";
import { DomainError, ForbiddenError } from "../../domain/errors";
import { OAUTH_FLOW_TTL_SECONDS } from "../../domain/sessions/oauth-sign-in";
import { csrfToken } from "../../identity/csrf";
import { permissionsOf } from "../../identity/permissions";
import type { Runtime } from "../../runtime";
import type { SessionRecord } from "../../store/sessions-repository";
import { clearSessionCookies, requireCsrfToken, sessionCookie, setSessionCookies } from "../authenticate";
import { anyUser, defineRoutes, publicAccess, userWith } from "../route";
import { parseInput } from "../validate";

/** Binds an OAuth flow to the browser that started it; sent back only to the callback path. */
const FLOW_COOKIE = "hcp_oauth";
const CALLBACK_PATH = "/auth/callback";

const validateBody = z.strictObject({ session_id: z.string().min(1).max(512) });
const logoutQuery = z.object({ session_id: z.string().min(1).max(512).optional() });
const signinQuery = z.object({ token: z.string().min(1).max(512) });
const providerPath = z.object({ provider: z.string().regex(/^[a-z]{1,32}$/, "a provider id") });
const loginQuery = z.object({ return_to: z.string().max(512).optional() });
const sessionPath = z.object({
  session_id: z.string().regex(/^[0-9a-f]{12}$/, "a session id from GET /auth/sessions"),
});

function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const plain = address.startsWith("::ffff:") ? address.slice(7) : address;
  return plain === "::1" || (isIP(plain) === 4 && plain.startsWith("127."));
}

/** The base URL the browser reaches us at: configured, or as the request (through the proxy) says. */
function publicBase(req: Request, runtime: Runtime): string {
  const configured = runtime.env.HYBRID_CICD_PUBLIC_URL;
  return (configured ?? `${req.protocol}://${req.get("host")}`).replace(/\/+$/, "");
}

function signedIn(res: Response, sessionId: string, session: SessionRecord, location: string): void {
  setSessionCookies(res, sessionId, session);
  res.setHeader("Cache-Control", "no-store");
  res.redirect(303, location);
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);

/**
 * Sign-in endpoints are opened by a browser: a failure there is an error page saying what happened and
 * how to retry, not JSON. API clients (Accept: application/json) still get problem+json.
 */
async function asBrowserPage(
  req: Request,
  res: Response,
  action: () => Promise<void>,
  retry: string | undefined,
): Promise<void> {
  try {
    await action();
  } catch (error) {
    if (!(error instanceof DomainError) || req.accepts(["json", "html"]) !== "html") throw error;
    for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
    const links = [
      retry ? `<a href="${escapeHtml(retry)}">Try again</a>` : undefined,
      `<a href="/console/">Back to the console</a>`,
    ].filter(Boolean);
    res
      .status(error.status)
      .type("html")
      .setHeader("Cache-Control", "no-store")
      .send(
        `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in failed</title></head>` +
          `<body><main><h1>${escapeHtml(error.title)}</h1><p>${escapeHtml(error.message)}</p>` +
          `<p>${links.join(" · ")}</p><p><small>Request ${escapeHtml(req.context.requestId)}</small></p>` +
          `</main></body></html>`,
      );
  }
}

export const authRoutes = defineRoutes([
  {
    method: "POST",
    path: "/auth/validate",
    access: publicAccess,
    handle: async (req, res, runtime) => {
      const body = parseInput(validateBody, req.body, "body");
      res.json(await runtime.sessions.validate(body.session_id));
    },
  },
  {
    // Knowing the session id (query) is proof enough; the cookie alone is not (CSRF token required).
    method: "POST",
    path: "/auth/logout",
    access: publicAccess,
    handle: async (req, res, runtime) => {
      const query = parseInput(logoutQuery, req.query, "query");
      let sessionId = query.session_id;
      if (sessionId === undefined) {
        sessionId = sessionCookie(req);
        if (sessionId !== undefined) requireCsrfToken(req, sessionId);
      }
      if (sessionId !== undefined) await runtime.sessions.logout(sessionId, req.context);
      clearSessionCookies(res);
      res.json({ status: "logged out" });
    },
  },
  {
    // Sign out everywhere: every session of the signed-in user, this one included.
    method: "POST",
    path: "/auth/logout-all",
    access: anyUser,
    handle: async (req, res, runtime) => {
      const ended = await runtime.sessions.logoutEverywhere(req.principal!.id, req.context);
      clearSessionCookies(res);
      res.json({ status: "logged out", sessions_ended: ended });
    },
  },
  {
    // The one-time link printed by `npm start` / `hybrid-cicd signin-link`: loopback only.
    method: "GET",
    path: "/auth/signin-link",
    access: publicAccess,
    rateLimit: "signin",
    handle: async (req, res, runtime) => {
      if (!isLoopback(req.socket.remoteAddress) || req.headers["x-forwarded-for"] !== undefined) {
        throw new ForbiddenError("sign-in links work only from this machine (loopback)");
      }
      const query = parseInput(signinQuery, req.query, "query");
      const { sessionId, session } = await runtime.sessions.signInWithLink(query.token, req.context);
      signedIn(res, sessionId, session, "/console/");
    },
  },
  {
    method: "GET",
    path: "/auth/providers",
    access: publicAccess,
    handle: async (_req, res, runtime) => {
      res.json({ providers: runtime.signIn.providers() });
    },
  },
  {
    method: "GET",
    path: "/auth/login/:provider",
    access: publicAccess,
    rateLimit: "signin",
    handle: async (req, res, runtime) => {
      const { provider } = parseInput(providerPath, req.params, "path");
      const query = parseInput(loginQuery, req.query, "query");
      await asBrowserPage(
        req,
        res,
        async () => {
          const redirectUri = `${publicBase(req, runtime)}${CALLBACK_PATH}/${provider}`;
          const flow = await runtime.signIn.begin(provider, redirectUri, query.return_to, req.context);
          res.cookie(FLOW_COOKIE, flow.binding, {
            httpOnly: true,
            sameSite: "lax",
            secure: res.app.locals.secureCookies === true,
            path: CALLBACK_PATH,
            maxAge: OAUTH_FLOW_TTL_SECONDS * 1000,
          });
          res.setHeader("Cache-Control", "no-store");
          res.redirect(303, flow.url);
        },
        undefined,
      );
    },
  },
  {
    method: "GET",
    path: "/auth/callback/:provider",
    access: publicAccess,
    rateLimit: "signin",
    handle: async (req, res, runtime) => {
      const { provider } = parseInput(providerPath, req.params, "path");
      res.clearCookie(FLOW_COOKIE, { path: CALLBACK_PATH });
      await asBrowserPage(
        req,
        res,
        async () => {
          const binding = req.headers.cookie
            ?.split(/;\s*/)
            .find((pair) => pair.startsWith(`${FLOW_COOKIE}=`))
            ?.slice(FLOW_COOKIE.length + 1);
          const query = new URLSearchParams(req.originalUrl.split("?")[1] ?? "");
          const signed = await runtime.signIn.complete(provider, query, binding, req.context);
          signedIn(res, signed.sessionId, signed.session, signed.returnTo);
        },
        `/auth/login/${provider}`,
      );
    },
  },
  {
    method: "GET",
    path: "/auth/me",
    access: userWith("sessions:self"),
    handle: async (req, res) => {
      const principal = req.principal!;
      if (principal.type !== "user") return;
      const session = res.locals.session as SessionRecord | undefined;
      const sessionId = res.locals.sessionId as string | undefined;
      res.setHeader("Cache-Control", "no-store");
      res.json({
        user_id: principal.id,
        role: principal.role,
        provider: principal.provider,
        via: principal.via,
        permissions: permissionsOf(principal.role),
        email: session?.email ?? null,
        name: session?.name ?? null,
        session: session
          ? {
              id: principal.credential_id,
              created_at: session.created_at,
              expires_at: new Date(
                Math.min(session.expires_at, session.idle_expires_at) * 1000,
              ).toISOString(),
            }
          : null,
        csrf_token: sessionId ? csrfToken(sessionId) : null,
      });
    },
  },
  {
    // My active devices.
    method: "GET",
    path: "/auth/sessions",
    access: userWith("sessions:self"),
    handle: async (req, res, runtime) => {
      const session = res.locals.session as SessionRecord | undefined;
      res.json({ sessions: await runtime.sessions.devices(req.principal!.id, session?.session_hash) });
    },
  },
  {
    method: "DELETE",
    path: "/auth/sessions/:session_id",
    access: userWith("sessions:self"),
    handle: async (req, res, runtime) => {
      const { session_id } = parseInput(sessionPath, req.params, "path");
      await runtime.sessions.endDevice(req.principal!.id, session_id, req.context);
      const current = res.locals.session as SessionRecord | undefined;
      if (current?.session_hash.startsWith(session_id)) clearSessionCookies(res);
      res.json({ status: "signed out", session: session_id });
    },
  },
]);
