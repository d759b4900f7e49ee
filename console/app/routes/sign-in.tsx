import { type LoaderFunctionArgs, type MetaFunction, redirect } from "@remix-run/node";
import { useLoaderData } from "@remix-run/react";
import { BASE, withinConsole } from "../utils/auth.server";

/** Only a path inside the console may be a return target (no open redirect). */
function safeReturnTo(value: string | null): string {
  return value?.startsWith(`${BASE}/`) && !value.startsWith("//") && !value.includes("\\")
    ? value
    : `${BASE}/`;
}

export async function loader({ request, context }: LoaderFunctionArgs) {
  const returnTo = safeReturnTo(new URL(request.url).searchParams.get("return_to"));
  if (context.user) throw redirect(withinConsole(returnTo));
  return {
    returnTo,
    providers: context.runtime.signIn.providers(),
    // The one-time link exists where the control plane runs on this machine (`npm start`).
    localLink: context.runtime.env.HYBRID_CICD_SECRET_STORE === "local",
  };
}

export default function SignIn() {
  const { providers, localLink, returnTo } = useLoaderData<typeof loader>();
  return (
    <section className="sign-in" aria-labelledby="sign-in-title">
      <h1 id="sign-in-title">Sign in</h1>
      {providers.length > 0 ? (
        <ul className="providers">
          {providers.map((provider) => (
            <li key={provider.id}>
              <a className="button" href={`${provider.login_url}?return_to=${encodeURIComponent(returnTo)}`}>
                Sign in with {provider.name}
              </a>
            </li>
          ))}
        </ul>
      ) : (
        <p>No sign-in provider (GitHub, Google, OIDC) is configured for this control plane.</p>
      )}
      {localLink ? (
        <div className="panel">
          <h2>One-time sign-in link</h2>
          <p>
            <code>npm start</code> prints a one-time link (valid 10 minutes, this machine only). Open it, or
            run <code>npx hybrid-cicd signin-link</code> for a new one and paste its token here.
          </p>
          <form method="get" action="/auth/signin-link" className="inline">
            <label>
              Sign-in token
              <input name="token" required autoComplete="off" spellCheck={false} />
            </label>
            <button type="submit">Sign in</button>
          </form>
        </div>
      ) : null}
    </section>
  );
}

export const meta: MetaFunction = () => [{ title: "Sign in · Hybrid CI/CD" }];
