import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Link } from "@remix-run/react";
import { PageHeader } from "../components/ui";
import { requirePermission } from "../utils/auth.server";

export async function loader({ request, context }: LoaderFunctionArgs) {
  requirePermission(request, context, "reports:export");
  return null;
}

/** Waits for the compliance report service (issue 12). */
export default function Compliance() {
  return (
    <>
      <PageHeader title="Compliance" />
      <div className="notice" role="status">
        <p>
          <strong>Not available yet.</strong> Compliance reports (JSON, CSV, PDF and signed evidence bundles)
          arrive with the report service. Until then the <Link to="/audit">audit trail</Link> can be searched
          and verified here, and exported with <code>GET /audit/export</code> and checked offline with{" "}
          <code>hybrid-cicd verify</code>.
        </p>
      </div>
    </>
  );
}

export const meta: MetaFunction = () => [{ title: "Compliance · Hybrid CI/CD" }];
export { ErrorBoundary } from "../components/error-page";
