import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { PageHeader } from "../components/ui";
import { requirePermission } from "../utils/auth.server";

export async function loader({ request, context }: LoaderFunctionArgs) {
  requirePermission(request, context, "secrets:rotate");
  return null;
}

/** Waits for the rotation service (issue 11): said plainly rather than shown half-built. */
export default function Secrets() {
  return (
    <>
      <PageHeader title="Secrets" />
      <div className="notice" role="status">
        <p>
          <strong>Not available yet.</strong> Secret ages, rotation policies and one-click rotation arrive
          with the rotation service. Until then the rotation function rotates keys on its schedule, and{" "}
          <code>hybrid-cicd</code> on this machine can inspect the local secret store.
        </p>
      </div>
    </>
  );
}

export const meta: MetaFunction = () => [{ title: "Secrets · Hybrid CI/CD" }];
export { ErrorBoundary } from "../components/error-page";
