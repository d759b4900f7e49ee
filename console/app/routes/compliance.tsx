import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { Form, Link, type ShouldRevalidateFunction, useLoaderData, useNavigation } from "@remix-run/react";
import { FormErrors, PageHeader, StatusBadge } from "../components/ui";
import { requirePermission } from "../utils/auth.server";
import { dateTime } from "../utils/format";
import { reportQuery, reportRequest } from "../utils/report-query";

const DAY_MS = 86_400_000;
const exportsOffered = [
  { format: "json", label: "JSON" },
  { format: "csv", label: "CSV (zip)" },
  { format: "pdf", label: "PDF" },
  { format: "bundle", label: "Evidence bundle" },
] as const;

/**
 * The selection lives in the URL (a GET form): a preview is a link one can share, works without
 * JavaScript, and the export links carry the same parameters to the download route. A preview is a
 * report like any other: recorded in the audit trail (`report.export`, format json) before it is read.
 */
export async function loader({ request, context }: LoaderFunctionArgs) {
  requirePermission(request, context, "reports:export");
  const url = new URL(request.url);
  const now = context.runtime.clock();
  const given = Object.fromEntries(
    [...url.searchParams].filter(([key, value]) => value !== "" && key !== "preview"),
  );
  const selection = {
    target_environment: given.target_environment ?? "",
    from: given.from ?? new Date(now.getTime() - 30 * DAY_MS).toISOString().slice(0, 10),
    to: given.to ?? now.toISOString().slice(0, 10),
  };
  const base = { environments: context.runtime.environments.known, selection, errors: null, preview: null };
  if (!url.searchParams.has("preview")) return base;
  const parsed = reportQuery.safeParse({ ...given, format: "json" });
  if (!parsed.success) return { ...base, errors: parsed.error.issues.map((issue) => issue.message) };
  const { report } = await context.runtime.reports.export(
    { ...reportRequest(parsed.data, now), format: "json" },
    context.request,
  );
  const { summary, access, change_management, secrets, agents, monitoring, evidence } = report.sections;
  return {
    ...base,
    preview: {
      report_id: report.report_id,
      generated_at: report.generated_at,
      period: report.period,
      target_environment: report.target_environment,
      totals: summary.totals,
      controls: summary.controls,
      exceptions: summary.exceptions,
      chain: summary.chain_verification,
      sections: [
        {
          name: "Access",
          figures: `${access.users.length} users, ${access.sign_ins} sign-ins, ${access.failed_sign_ins.length} failed, ${access.role_binding_changes.length} role-binding changes`,
        },
        {
          name: "Change management",
          figures: `${change_management.jobs.length} jobs, ${change_management.production_jobs.length} in production, ${change_management.unapproved_production_jobs.length} unapproved`,
        },
        {
          name: "Secrets",
          figures: `${secrets.secrets.length} secrets, ${secrets.rotation_history.length} rotation steps, ${secrets.secrets.filter((s) => s.compliant === false).length} past their maximum age`,
        },
        {
          name: "Agents",
          figures: `${agents.inventory.length} agents, ${agents.registrations.length} registrations, ${agents.revocations.length} revocations`,
        },
        {
          name: "Monitoring",
          figures: monitoring.applicable ? "the deployment record" : (monitoring.reason ?? "not applicable"),
        },
        {
          name: "Evidence",
          figures: `${evidence.events} events, ${evidence.digests.length} signed digests, ${evidence.sealed ? "sealed" : "not sealed"}`,
        },
      ],
    },
  };
}

/** Only a new selection makes a new report (each one is an audited export). */
export const shouldRevalidate: ShouldRevalidateFunction = ({ currentUrl, nextUrl }) =>
  currentUrl.search !== nextUrl.search;

export default function Compliance() {
  const { environments, selection, errors, preview } = useLoaderData<typeof loader>();
  const navigation = useNavigation();
  const loading = navigation.state === "loading" && navigation.location.pathname.endsWith("/compliance");
  const params = new URLSearchParams(
    Object.entries(selection).filter(([, value]) => value !== "") as [string, string][],
  );
  return (
    <>
      <PageHeader title="Compliance" />
      <p className="hint">
        A SOC 2 / ISO 27001 evidence report computed from the audit trail: choose the target environment and
        the period (whole days, UTC), preview it, then export it. Every preview and export is recorded in the
        audit trail.
      </p>
      <Form method="get" className="inline" aria-label="Report selection">
        <label>
          Target environment
          <select name="target_environment" defaultValue={selection.target_environment}>
            <option value="">all</option>
            {environments.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <label>
          From
          <input type="date" name="from" defaultValue={selection.from} />
        </label>
        <label>
          To
          <input type="date" name="to" defaultValue={selection.to} />
        </label>
        <button type="submit" name="preview" value="1" disabled={loading}>
          {loading ? "Building…" : "Preview"}
        </button>
      </Form>
      <FormErrors errors={errors ?? undefined} />
      <section className="panel" aria-labelledby="export-heading">
        <h2 id="export-heading">Export</h2>
        <ul className="links" data-testid="exports">
          {exportsOffered.map(({ format, label }) => (
            <li key={format}>
              <Link
                reloadDocument
                className="button secondary"
                to={`/compliance/export?${params}&format=${format}`}
              >
                {label}
              </Link>
            </li>
          ))}
        </ul>
        <p>Verify an evidence bundle offline, with the audit public key kept somewhere you trust:</p>
        <pre className="command" data-testid="verify-command">
          <code>
            {`curl -s ${"$HCP"}/audit/public-key > audit-key.json\nnpx hybrid-cicd verify compliance-….zip --public-key audit-key.json`}
          </code>
        </pre>
        <p className="hint">
          It checks the manifest, its signature, the audit chain of the exported events and the report's
          figures recomputed from them, and names what fails.{" "}
          <a href="/audit/public-key">The audit public key</a>.
        </p>
      </section>
      {preview ? (
        <section aria-labelledby="preview-heading" data-testid="report-preview">
          <h2 id="preview-heading">Preview</h2>
          <p>
            Report <code>{preview.report_id}</code>,{" "}
            {preview.period.from ? dateTime(preview.period.from) : "the start"} to{" "}
            {dateTime(preview.period.to)}, {preview.target_environment ?? "all target environments"}. Audit
            chain: <StatusBadge status={preview.chain.ok ? "ok" : "broken"} />
          </p>
          <div className="cards">
            {Object.entries(preview.totals).map(([name, value]) => (
              <div className="card" key={name}>
                <div className="hint">{name.replace(/_/g, " ")}</div>
                <strong>{value}</strong>
              </div>
            ))}
          </div>
          <h3>Controls</h3>
          <div className="table-wrap">
            <table>
              <caption className="visually-hidden">Controls</caption>
              <thead>
                <tr>
                  <th scope="col">Control</th>
                  <th scope="col">Status</th>
                  <th scope="col">Exceptions</th>
                </tr>
              </thead>
              <tbody>
                {preview.controls.map((control) => (
                  <tr key={control.id}>
                    <td>
                      <strong>{control.id}</strong> {control.title}
                    </td>
                    <td>
                      <StatusBadge status={control.status === "effective" ? "ok" : control.status} />
                    </td>
                    <td>{control.exceptions}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {preview.exceptions.length > 0 ? (
            <>
              <h3>Exceptions</h3>
              <ul>
                {preview.exceptions.map((exception) => (
                  <li key={`${exception.kind}-${exception.refs.join(",")}`}>
                    {exception.control}: {exception.description}
                  </li>
                ))}
              </ul>
            </>
          ) : null}
          <h3>Sections</h3>
          <dl>
            {preview.sections.map((section) => (
              <div key={section.name}>
                <dt>{section.name}</dt>
                <dd>{section.figures}</dd>
              </div>
            ))}
          </dl>
        </section>
      ) : null}
    </>
  );
}

export const meta: MetaFunction = () => [{ title: "Compliance · Hybrid CI/CD" }];
export { ErrorBoundary } from "../components/error-page";
