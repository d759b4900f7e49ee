import { isIP } from "node:net";
import { z } from "zod";
import { ForbiddenError } from "../../domain/errors";
import { settings } from "../../domain/settings";
import { SESSION_COOKIE, sessionCookie } from "../authenticate";
import { defineRoutes, publicAccess } from "../route";
import { parseInput } from "../validate";

const validateBody = z.strictObject({ session_id: z.string().min(1).max(512) });
const logoutQuery = z.object({ session_id: z.string().min(1).max(512).optional() });
const signinQuery = z.object({ token: z.string().min(1).max(512) });

function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const plain = address.startsWith("::ffff:") ? address.slice(7) : address;
  return plain === "::1" || (isIP(plain) === 4 && plain.startsWith("127."));
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
    method: "POST",
    path: "/auth/logout",
    access: publicAccess,
    handle: async (req, res, runtime) => {
      const query = parseInput(logoutQuery, req.query, "query");
      const sessionId = query.session_id ?? sessionCookie(req);
      if (sessionId !== undefined) await runtime.sessions.logout(sessionId, req.context);
      res.clearCookie(SESSION_COOKIE, { path: "/" });
      res.json({ status: "logged out" });
    },
  },
  {
    // The one-time link printed by `npm start` / `hybrid-cicd signin-link`: loopback only.
    method: "GET",
    path: "/auth/signin-link",
    access: publicAccess,
    handle: async (req, res, runtime) => {
      if (!isLoopback(req.socket.remoteAddress) || req.headers["x-forwarded-for"] !== undefined) {
        throw new ForbiddenError("sign-in links work only from this machine (loopback)");
      }
      const query = parseInput(signinQuery, req.query, "query");
      const { sessionId } = await runtime.sessions.signInWithLink(query.token, req.context);
      res.cookie(SESSION_COOKIE, sessionId, {
        httpOnly: true,
        sameSite: "lax",
        secure: res.app.locals.secureCookies === true,
        path: "/",
        maxAge: settings.session.absoluteSeconds * 1000,
      });
      res.setHeader("Cache-Control", "no-store");
      res.redirect(303, "/console/");
    },
  },
]);
