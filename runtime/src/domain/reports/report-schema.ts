import type { AuditDigest } from "../audit/audit-event";

/**
 * The compliance report, schema `hybrid-cicd-compliance-report/1` (decision 019). Every figure in
 * `sections` is a pure function of the period's audit events and the `inputs` snapshot, so
 * `hybrid-cicd verify` recomputes them from the audit export in the bundle (report-builder.ts).
 * Additive changes keep version 1; renaming or removing a member makes version 2.
 */

export const REPORT_SCHEMA = "hybrid-cicd-compliance-report/1";
export const REPORT_SCHEMA_VERSION = 1;

export interface ReportMeta {
  schema: typeof REPORT_SCHEMA;
  schema_version: typeof REPORT_SCHEMA_VERSION;
  report_id: string;
  generated_at: string;
  /** `type:id` of whoever asked for it. */
  generated_by: string;
  product_version: string;
  environment: string;
  period: { from: string | null; to: string };
  /** Jobs of this target environment only (null = all). */
  target_environment: string | null;
}

/** What the report reads besides events: state at `generated_at`, attested by the bundle signature. */
export interface ReportInputs {
  settings: {
    protected_environments: string[];
    unhealthy_after_seconds: number;
    dead_after_seconds: number;
    resource_limit_percent: number;
    digest_interval_seconds: number;
  };
  /** Version metadata only (never values), from the secret store. */
  secrets: {
    key: string;
    name: string;
    rotation_days: number | null;
    versions: { version_id: string; created_at: string; stages: string[] }[];
  }[];
  agents: {
    agent_id: string;
    name: string;
    region: string;
    tags: string[];
    key_epoch: number;
    registered_at: string;
    registered_by: string;
    last_heartbeat_at: string | null;
    last_figures: { cpu_percent: number; memory_percent: number; disk_percent: number } | null;
    revoked_at: string | null;
    revoked_by: string | null;
  }[];
  /** The newest deployment record `pulumi up` wrote (decision 105); null when there is none (local). */
  deployment: Record<string, unknown> | null;
  /** The chain check of the period when the report was made (`GET /audit/verify`). */
  chain_verification: {
    ok: boolean;
    events: number;
    digests: number;
    sealed_through_seq: number | null;
    first_problem: string | null;
  };
}

export type ControlStatus = "effective" | "exceptions" | "not_applicable";

export interface Control {
  id: string;
  framework: "SOC 2";
  title: string;
  iso27001: string[];
  /** Report paths that evidence it, e.g. `access.role_binding_changes`. */
  evidence: string[];
  status: ControlStatus;
  exceptions: number;
}

export interface ReportException {
  kind:
    | "production_self_approval_attempt"
    | "production_unapproved"
    | "secret_past_max_age"
    | "revoked_agent_heartbeating"
    | "audit_gap"
    | "audit_chain_broken";
  control: string;
  description: string;
  /** Audit seqs or ids an auditor samples. */
  refs: (number | string)[];
}

export interface JobRow {
  job_id: string;
  queued_by: string | null;
  queued_at: string | null;
  git_ref: string | null;
  repository: string | null;
  environment: string | null;
  approved_by: string | null;
  approved_at: string | null;
  rejected_by: string | null;
  agent_id: string | null;
  attempts: number;
  started_at: string | null;
  ended_at: string | null;
  outcome: string | null;
  exit_code: number | null;
  cancelled_by: string | null;
}

export interface ReportSections {
  summary: {
    controls: Control[];
    exceptions: ReportException[];
    totals: {
      events: number;
      users: number;
      sign_ins: number;
      failed_sign_ins: number;
      jobs: number;
      production_jobs: number;
      agents: number;
      secrets: number;
      denied_requests: number;
    };
    chain_verification: ReportInputs["chain_verification"];
  };
  access: {
    users: {
      user_id: string;
      role: string | null;
      sign_ins: number;
      providers: Record<string, number>;
      devices: number;
      last_sign_in_at: string | null;
    }[];
    role_binding_changes: {
      seq: number;
      time: string;
      by: string;
      subject: string;
      change: "put" | "delete";
      role: string | null;
      previous_role: string | null;
    }[];
    sign_ins: number;
    sign_outs: Record<string, number>;
    failed_sign_ins: {
      seq: number;
      time: string;
      provider: string | null;
      reason: string | null;
      ip: string | null;
    }[];
    api_tokens: {
      issued: {
        seq: number;
        time: string;
        token_id: string;
        name: string | null;
        role: string | null;
        by: string;
        expires_at: number | null;
      }[];
      revoked: { seq: number; time: string; token_id: string; by: string }[];
      /** Use of a token is not an audit event (only refusals are): the issue and revoke trail is. */
      used: string;
    };
    signin_links_issued: number;
    denied_requests: { total: number; by_route: { route: string; status: number; count: number }[] };
  };
  change_management: {
    jobs: JobRow[];
    by_outcome: Record<string, number>;
    by_environment: Record<string, number>;
    production_jobs: string[];
    self_approval_attempts: { seq: number; time: string; job_id: string; by: string }[];
    unapproved_production_jobs: string[];
  };
  secrets: {
    secrets: {
      key: string;
      name: string;
      max_age_days: number | null;
      last_rotation_at: string | null;
      age_days: number | null;
      compliant: boolean | null;
      versions: number;
    }[];
    rotation_history: {
      seq: number;
      time: string;
      secret: string;
      step: string;
      result: string | null;
      version_id: string | null;
      by: string;
      outcome: string;
    }[];
    notes: string[];
  };
  agents: {
    inventory: {
      agent_id: string;
      name: string;
      region: string;
      tags: string[];
      key_epoch: number;
      registered_at: string;
      registered_by: string;
      last_heartbeat_at: string | null;
      health: string;
      revoked_at: string | null;
      revoked_by: string | null;
    }[];
    registrations: {
      seq: number;
      time: string;
      agent_id: string;
      name: string | null;
      registration_token: string | null;
      token_issued_by: string | null;
    }[];
    revocations: { seq: number; time: string; agent_id: string; by: string }[];
    health_changes: Record<string, number>;
    config_reads: number;
    revoked_still_heartbeating: { agent_id: string; refused_requests: number; last_at: string }[];
  };
  monitoring: {
    applicable: boolean;
    reason: string | null;
    deployment: {
      deployed_at: unknown;
      stack: unknown;
      versions: unknown;
      rules_passed: number;
      rules_failed: number;
      record: Record<string, unknown>;
    } | null;
  };
  evidence: {
    first_seq: number | null;
    last_seq: number | null;
    events: number;
    by_action: Record<string, number>;
    by_outcome: Record<string, number>;
    digests: Pick<
      AuditDigest,
      "digest_seq" | "head_seq" | "time" | "digest_hash" | "key_id" | "merkle_root"
    >[];
    /** The last event of the period is signed by a digest in `digests`. */
    sealed: boolean;
    gaps: { after_digest_seq: number; seconds: number }[];
    audit_export: string;
  };
}

export interface ComplianceReport extends ReportMeta {
  inputs: ReportInputs;
  sections: ReportSections;
}

/** The SOC 2 controls the report evidences and their ISO/IEC 27001:2022 Annex A equivalents. */
export const CONTROLS: Omit<Control, "status" | "exceptions">[] = [
  {
    id: "CC6.1",
    framework: "SOC 2",
    title: "Logical access security: authentication, credentials and encryption keys",
    iso27001: ["A.5.15", "A.8.5", "A.8.24"],
    evidence: ["access.users", "access.api_tokens", "secrets.secrets", "secrets.rotation_history"],
  },
  {
    id: "CC6.2",
    framework: "SOC 2",
    title: "Registration and authorisation of users and agents before access is granted",
    iso27001: ["A.5.16", "A.5.18"],
    evidence: ["access.role_binding_changes", "access.api_tokens", "agents.registrations"],
  },
  {
    id: "CC6.3",
    framework: "SOC 2",
    title: "Role-based access; access changed and removed when no longer needed",
    iso27001: ["A.5.15", "A.5.18", "A.8.2"],
    evidence: [
      "access.role_binding_changes",
      "access.api_tokens.revoked",
      "agents.revocations",
      "access.denied_requests",
    ],
  },
  {
    id: "CC6.6",
    framework: "SOC 2",
    title: "Access from outside the system boundary is authenticated and refused when not",
    iso27001: ["A.8.5", "A.8.20"],
    evidence: ["access.failed_sign_ins", "access.denied_requests", "agents.revoked_still_heartbeating"],
  },
  {
    id: "CC7.2",
    framework: "SOC 2",
    title: "System components are monitored; the audit trail is complete and tamper-evident",
    iso27001: ["A.8.15", "A.8.16"],
    evidence: ["summary.chain_verification", "evidence", "monitoring", "agents.health_changes"],
  },
  {
    id: "CC8.1",
    framework: "SOC 2",
    title: "Changes are authorised, recorded and approved before production",
    iso27001: ["A.8.32", "A.8.9"],
    evidence: ["change_management.jobs", "change_management.production_jobs"],
  },
];
