import { describe, expect, it } from "vitest";
import {
  type AuditDigest,
  type AuditEvent,
  GENESIS_HASH,
  sealEvent,
} from "../../runtime/src/domain/audit/audit-event";
import { ReportBuilder } from "../../runtime/src/domain/reports/report-builder";
import {
  REPORT_SCHEMA,
  type ReportInputs,
  type ReportMeta,
} from "../../runtime/src/domain/reports/report-schema";

const meta: ReportMeta = {
  schema: REPORT_SCHEMA,
  schema_version: 1,
  report_id: "rpt_TEST",
  generated_at: "2026-03-01T00:00:00.000Z",
  generated_by: "user:auditor",
  product_version: "0.1.0",
  environment: "test",
  period: { from: "2026-02-01T00:00:00.000Z", to: "2026-02-28T23:59:59.999Z" },
  target_environment: null,
};

const inputs = (overrides: Partial<ReportInputs> = {}): ReportInputs => ({
  settings: {
    protected_environments: ["production"],
    unhealthy_after_seconds: 90,
    dead_after_seconds: 300,
    resource_limit_percent: 95,
    digest_interval_seconds: 3600,
  },
  secrets: [],
  agents: [],
  deployment: null,
  chain_verification: { ok: true, events: 0, digests: 0, sealed_through_seq: null, first_problem: null },
  ...overrides,
});

/** A chain of events from drafts, one minute apart from the period's start. */
function chain(
  drafts: {
    action: string;
    actor?: string;
    target: string;
    outcome?: AuditEvent["outcome"];
    details?: Record<string, unknown>;
    time?: string;
  }[],
) {
  let prevHash = GENESIS_HASH;
  return drafts.map((draft, index) => {
    const [type, id] = draft.target.split(":") as [string, string];
    const [actorType, actorId] = (draft.actor ?? "user:alice").split(":") as ["user", string];
    const event = sealEvent(
      {
        action: draft.action,
        actor: { type: actorType, id: actorId },
        target: { type, id },
        outcome: draft.outcome ?? "success",
        details: draft.details,
      },
      {
        seq: index + 1,
        prevHash,
        time: draft.time ?? new Date(Date.parse("2026-02-02T00:00:00Z") + index * 60_000).toISOString(),
        eventId: `01J${String(index).padStart(23, "0")}`,
        environment: "test",
      },
    );
    prevHash = event.hash;
    return event;
  });
}

const digest = (digestSeq: number, headSeq: number, time: string): AuditDigest =>
  ({
    digest_seq: digestSeq,
    head_seq: headSeq,
    time,
    digest_hash: "a".repeat(64),
    key_id: "ed25519:k",
    merkle_root: "b".repeat(64),
  }) as AuditDigest;

describe("ReportBuilder exceptions an auditor samples first", () => {
  it("flags a production job that ran without approval, and leaves events outside the period out", () => {
    const builder = new ReportBuilder(meta, inputs());
    for (const event of chain([
      {
        action: "job.create",
        target: "job:job_before",
        details: { environment: "production" },
        time: "2026-01-31T23:59:59.999Z",
      },
      { action: "job.create", target: "job:job_prod", details: { environment: "production", git_ref: "v1" } },
      { action: "job.claim", actor: "agent:agt_1", target: "job:job_prod", details: { attempt: 1 } },
      {
        action: "job.finish",
        actor: "agent:agt_1",
        target: "job:job_prod",
        details: { status: "failed", exit_code: 2 },
      },
    ]))
      builder.add(event);
    const report = builder.build();
    expect(report.evidence.events).toBe(3);
    expect(report.change_management.jobs.map((job) => [job.job_id, job.outcome, job.exit_code])).toEqual([
      ["job_prod", "failed", 2],
    ]);
    expect(report.change_management.unapproved_production_jobs).toEqual(["job_prod"]);
    expect(report.summary.exceptions).toMatchObject([
      { kind: "production_unapproved", control: "CC8.1", refs: ["job_prod"] },
    ]);
    expect(report.summary.controls.find((control) => control.id === "CC8.1")).toMatchObject({
      status: "exceptions",
      exceptions: 1,
    });
  });

  it("flags a secret past its maximum age, judged at generation time from the version metadata", () => {
    const builder = new ReportBuilder(
      meta,
      inputs({
        secrets: [
          {
            key: "workloadIdentityRootKey",
            name: "workload-identity-root-key",
            rotation_days: 30,
            versions: [{ version_id: "v1", created_at: "2026-01-15T00:00:00.000Z", stages: ["AWSCURRENT"] }],
          },
          {
            key: "auditSigningKey",
            name: "audit-signing-key",
            rotation_days: 90,
            versions: [{ version_id: "v2", created_at: "2026-01-15T00:00:00.000Z", stages: ["AWSCURRENT"] }],
          },
        ],
      }),
    );
    const { secrets, summary } = builder.build();
    expect(secrets.secrets.map((secret) => [secret.key, secret.age_days, secret.compliant])).toEqual([
      ["auditSigningKey", 45, true],
      ["workloadIdentityRootKey", 45, false],
    ]);
    expect(summary.exceptions).toMatchObject([
      { kind: "secret_past_max_age", control: "CC6.1", refs: ["workloadIdentityRootKey"] },
    ]);
  });

  it("flags a gap between the digests sealing the period, and a chain that did not verify", () => {
    const builder = new ReportBuilder(
      meta,
      inputs({
        chain_verification: {
          ok: false,
          events: 2,
          digests: 2,
          sealed_through_seq: 1,
          first_problem: "hash_mismatch: seq 2",
        },
      }),
    );
    for (const event of chain([
      { action: "job.create", target: "job:a" },
      { action: "job.create", target: "job:b" },
    ]))
      builder.add(event);
    builder.addDigest(digest(1, 1, "2026-02-02T00:30:00.000Z"));
    builder.addDigest(digest(2, 2, "2026-02-02T05:30:00.000Z"));
    builder.addDigest(digest(3, 2, "2026-02-02T06:30:00.000Z"));
    const { evidence, summary } = builder.build();
    expect(evidence.digests.map((entry) => entry.digest_seq)).toEqual([1, 2]);
    expect(evidence.sealed).toBe(true);
    expect(evidence.gaps).toEqual([{ after_digest_seq: 1, seconds: 18_000 }]);
    expect(summary.exceptions.map((exception) => exception.kind)).toEqual([
      "audit_gap",
      "audit_chain_broken",
    ]);
    expect(summary.controls.find((control) => control.id === "CC7.2")).toMatchObject({
      status: "exceptions",
      exceptions: 2,
    });
  });
});
