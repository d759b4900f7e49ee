import { HTTPS_SESSION_COOKIE, SESSION_COOKIE } from "@hybrid-cicd/runtime/http/authenticate";
import { CSRF_COOKIE } from "@hybrid-cicd/runtime/identity/csrf";
import { type ActionFunctionArgs, redirect } from "@remix-run/node";
import { z } from "zod";

const schema = z.object({ everywhere: z.enum(["yes"]).optional() });

/** Both cookie names: `__Host-hcp_session` over HTTPS, `hcp_session` on loopback http. */
const cleared = [
  `${HTTPS_SESSION_COOKIE}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax`,
  `${SESSION_COOKIE}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax`,
  `${CSRF_COOKIE}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Strict`,
];

export async function loader() {
  return redirect("/");
}

/** Signs this session out, or (everywhere=yes) every session of the user; then back to sign-in. */
export async function action({ request, context }: ActionFunctionArgs) {
  const form = schema.safeParse(Object.fromEntries(await request.formData()));
  if (context.user && context.sessionId) {
    if (form.success && form.data.everywhere === "yes") {
      await context.runtime.sessions.logoutEverywhere(context.user.id, context.request);
    } else {
      await context.runtime.sessions.logout(context.sessionId, context.request);
    }
  }
  const headers = new Headers();
  for (const cookie of cleared) headers.append("Set-Cookie", cookie);
  return redirect("/sign-in", { headers });
}
