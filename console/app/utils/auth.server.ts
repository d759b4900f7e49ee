import { csrfToken } from "@hybrid-cicd/runtime/identity/csrf";
import { can, type Permission, permissionsOf } from "@hybrid-cicd/runtime/identity/permissions";
import { data, redirect } from "@remix-run/node";
import type { ConsoleContext, UserPrincipal } from "../context";

/**
 * The console's base path (vite.config.ts `basename`). Remix adds it to redirects thrown by loaders and
 * actions, so those name paths inside the console (`/sign-in`); full URLs (`return_to`) carry it.
 */
export const BASE = "/console";

/** A path inside the console as Remix's redirect wants it (without the base). */
export const withinConsole = (path: string) => (path.startsWith(`${BASE}/`) ? path.slice(BASE.length) : path);

/** The signed-in user, or a redirect to sign-in that comes back here afterwards. */
export function requireUser(request: Request, context: ConsoleContext): UserPrincipal {
  if (context.user) return context.user;
  const url = new URL(request.url);
  const returnTo = `${url.pathname}${url.search}`;
  throw redirect(`/sign-in?return_to=${encodeURIComponent(returnTo)}`);
}

/**
 * The signed-in user holding `permission` (from the one permission matrix), or a 403 page saying which
 * permission is missing.
 */
export function requirePermission(
  request: Request,
  context: ConsoleContext,
  permission: Permission,
): UserPrincipal {
  const user = requireUser(request, context);
  if (!can(user.role, permission)) {
    throw data(
      {
        message:
          user.role === null
            ? `You are signed in as ${user.id}, but no role is bound to this identity. Ask an admin for one.`
            : `The ${user.role} role does not have the ${permission} permission this page needs.`,
      },
      { status: 403 },
    );
  }
  return user;
}

/** What the page may show about the user: id, role, the permissions it holds, the CSRF token. */
export function viewer(context: ConsoleContext) {
  const user = context.user;
  if (!user) return null;
  return {
    id: user.id,
    role: user.role,
    provider: user.provider,
    permissions: permissionsOf(user.role),
    csrf: context.sessionId ? csrfToken(context.sessionId) : "",
  };
}

export type Viewer = NonNullable<ReturnType<typeof viewer>>;
