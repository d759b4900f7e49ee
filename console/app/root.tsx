import type { Permission } from "@hybrid-cicd/runtime/identity/permissions";
import type { LinksFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import {
  Form,
  Links,
  Meta,
  NavLink,
  Outlet,
  Scripts,
  ScrollRestoration,
  useNavigation,
  useRouteLoaderData,
} from "@remix-run/react";
import type { ReactNode } from "react";
import { Csrf } from "./components/ui";
import stylesheet from "./styles.css?url";
import { type Viewer, viewer } from "./utils/auth.server";
import { useNonce } from "./utils/nonce";

export const links: LinksFunction = () => [{ rel: "stylesheet", href: stylesheet }];

export async function loader({ context }: LoaderFunctionArgs) {
  return { viewer: viewer(context), environment: context.runtime.env.HYBRID_CICD_ENVIRONMENT };
}

/** Navigation: each entry only for a user whose role may open it. */
const sections: { to: string; label: string; permission: Permission; end?: boolean }[] = [
  { to: "/", label: "Overview", permission: "jobs:read", end: true },
  { to: "/jobs", label: "Jobs", permission: "jobs:read" },
  { to: "/agents", label: "Agents", permission: "agents:read" },
  { to: "/secrets", label: "Secrets", permission: "secrets:read" },
  { to: "/audit", label: "Audit", permission: "audit:read" },
  { to: "/compliance", label: "Compliance", permission: "reports:export" },
  { to: "/access", label: "Access", permission: "sessions:self" },
];

function Shell({
  children,
  user,
  environment,
}: {
  children: ReactNode;
  user: Viewer | null;
  environment?: string;
}) {
  const navigation = useNavigation();
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="top">
        <div className="brand">
          <span aria-hidden="true">◆</span> Hybrid CI/CD{" "}
          {environment ? <span className="env">{environment}</span> : null}
        </div>
        {user ? (
          <nav aria-label="Main">
            <ul>
              {sections
                .filter((section) => user.permissions.includes(section.permission))
                .map((section) => (
                  <li key={section.to}>
                    <NavLink to={section.to} end={section.end} prefetch="intent">
                      {section.label}
                    </NavLink>
                  </li>
                ))}
            </ul>
          </nav>
        ) : null}
        {user ? (
          <div className="who">
            <span>
              {user.id} <span className="role">{user.role ?? "no role"}</span>
            </span>
            <Form method="post" action="/sign-out">
              <Csrf token={user.csrf} />
              <button type="submit" className="link-button">
                Sign out
              </button>
            </Form>
          </div>
        ) : null}
      </header>
      <div
        className={`progress${navigation.state !== "idle" ? " progress-active" : ""}`}
        aria-hidden="true"
      />
      <main id="main">{children}</main>
    </>
  );
}

export function Layout({ children }: { children: ReactNode }) {
  const data = useRouteLoaderData<typeof loader>("root");
  const nonce = useNonce();
  return (
    <html lang="en">
      <head>
        <meta charSet="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <Meta />
        <Links />
      </head>
      <body>
        <Shell user={data?.viewer ?? null} environment={data?.environment}>
          {children}
        </Shell>
        <ScrollRestoration nonce={nonce} />
        <Scripts nonce={nonce} />
      </body>
    </html>
  );
}

export default function App() {
  return <Outlet />;
}

export const meta: MetaFunction = () => [{ title: "Hybrid CI/CD console" }];

export { ErrorBoundary } from "./components/error-page";
