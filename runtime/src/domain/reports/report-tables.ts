import type { ComplianceReport } from "./report-schema";

/**
 * The report's sections as flat tables: one CSV file each (report-csv.ts) and the PDF's tables
 * (report-pdf.ts), so both formats show the same columns.
 */

export interface ReportTable {
  /** File name without `.csv`. */
  name: string;
  title: string;
  columns: string[];
  rows: unknown[][];
}

export function cell(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.map(cell).join("; ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

const table = <T extends object>(
  name: string,
  title: string,
  rows: T[],
  columns: (keyof T & string)[],
): ReportTable => ({ name, title, columns, rows: rows.map((row) => columns.map((column) => row[column])) });

const entries = (record: Record<string, number>) =>
  Object.entries(record).map(([key, count]) => ({ key, count }));

export function reportTables(report: ComplianceReport): ReportTable[] {
  const {
    summary,
    access,
    change_management: change,
    secrets,
    agents,
    monitoring,
    evidence,
  } = report.sections;
  return [
    {
      name: "1-scope",
      title: "Scope",
      columns: ["field", "value"],
      rows: [
        ["report_id", report.report_id],
        ["environment", report.environment],
        ["period_from", report.period.from ?? "start of the trail"],
        ["period_to", report.period.to],
        ["target_environment", report.target_environment ?? "all"],
        ["generated_at", report.generated_at],
        ["generated_by", report.generated_by],
        ["product_version", report.product_version],
        ["audit_chain_verified", summary.chain_verification.ok],
        ["events", summary.totals.events],
      ],
    },
    table("1-controls", "Control matrix", summary.controls, [
      "id",
      "framework",
      "title",
      "iso27001",
      "evidence",
      "status",
      "exceptions",
    ]),
    table("1-exceptions", "Exceptions", summary.exceptions, ["kind", "control", "description", "refs"]),
    table("2-users", "Users and sign-ins", access.users, [
      "user_id",
      "role",
      "sign_ins",
      "providers",
      "devices",
      "last_sign_in_at",
    ]),
    table("2-role-binding-changes", "Role-binding changes", access.role_binding_changes, [
      "seq",
      "time",
      "by",
      "subject",
      "change",
      "role",
      "previous_role",
    ]),
    table("2-failed-sign-ins", "Failed sign-ins", access.failed_sign_ins, [
      "seq",
      "time",
      "provider",
      "reason",
      "ip",
    ]),
    table("2-api-tokens-issued", "API tokens issued", access.api_tokens.issued, [
      "seq",
      "time",
      "token_id",
      "name",
      "role",
      "by",
      "expires_at",
    ]),
    table("2-api-tokens-revoked", "API tokens revoked", access.api_tokens.revoked, [
      "seq",
      "time",
      "token_id",
      "by",
    ]),
    table("2-denied-requests", "Denied requests", access.denied_requests.by_route, [
      "route",
      "status",
      "count",
    ]),
    table("3-jobs", "Jobs and deployments", change.jobs, [
      "job_id",
      "environment",
      "queued_by",
      "queued_at",
      "git_ref",
      "repository",
      "approved_by",
      "agent_id",
      "started_at",
      "ended_at",
      "outcome",
      "exit_code",
    ]),
    table("3-self-approval-attempts", "Self-approval attempts (refused)", change.self_approval_attempts, [
      "seq",
      "time",
      "job_id",
      "by",
    ]),
    table("4-secrets", "Secrets", secrets.secrets, [
      "key",
      "name",
      "max_age_days",
      "last_rotation_at",
      "age_days",
      "compliant",
      "versions",
    ]),
    table("4-rotation-history", "Rotation history", secrets.rotation_history, [
      "seq",
      "time",
      "secret",
      "step",
      "result",
      "version_id",
      "by",
      "outcome",
    ]),
    table("5-agents", "Agent inventory", agents.inventory, [
      "agent_id",
      "name",
      "region",
      "tags",
      "key_epoch",
      "registered_at",
      "registered_by",
      "last_heartbeat_at",
      "health",
      "revoked_at",
    ]),
    table("5-registrations", "Agent registrations", agents.registrations, [
      "seq",
      "time",
      "agent_id",
      "name",
      "registration_token",
      "token_issued_by",
    ]),
    table("5-revocations", "Agent revocations", agents.revocations, ["seq", "time", "agent_id", "by"]),
    table("5-revoked-still-heartbeating", "Revoked agents still calling", agents.revoked_still_heartbeating, [
      "agent_id",
      "refused_requests",
      "last_at",
    ]),
    table("5-health-changes", "Agent health changes", entries(agents.health_changes), ["key", "count"]),
    {
      name: "6-monitoring",
      title: "Monitoring and infrastructure",
      columns: ["field", "value"],
      rows: monitoring.deployment
        ? [
            ["applicable", true],
            ["deployed_at", monitoring.deployment.deployed_at],
            ["stack", monitoring.deployment.stack],
            ["versions", monitoring.deployment.versions],
            ["rules_passed", monitoring.deployment.rules_passed],
            ["rules_failed", monitoring.deployment.rules_failed],
          ]
        : [
            ["applicable", false],
            ["reason", monitoring.reason],
          ],
    },
    table("7-digests", "Digests sealing the period", evidence.digests, [
      "digest_seq",
      "head_seq",
      "time",
      "digest_hash",
      "merkle_root",
      "key_id",
    ]),
    table("7-events-by-action", "Events by action", entries(evidence.by_action), ["key", "count"]),
  ];
}
