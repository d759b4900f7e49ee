import type { AgentRecord } from "../../store/agents-repository";
import { agentHealth } from "../agents/agent-health";
import type { AuditDigest, AuditEvent } from "../audit/audit-event";
import { DENIED_ACTION } from "../audit/denied-requests";
import {
  CONTROLS,
  type Control,
  type JobRow,
  type ReportException,
  type ReportInputs,
  type ReportMeta,
  type ReportSections,
} from "./report-schema";

/**
 * The one computation of a report's figures (decision 019): fed the audit events (seq order) and
 * digests, then `build()`. The control plane runs it over the store; `hybrid-cicd verify` runs it over
 * the bundle's audit export and compares. Memory grows with the people, jobs and agents of the period,
 * not with its events.
 */

export const AUDIT_EXPORT_FILE = "audit-export.jsonl";

const str = (value: unknown): string | null => (typeof value === "string" ? value : null);
const num = (value: unknown): number | null => (typeof value === "number" ? value : null);
const actorOf = (event: AuditEvent) => `${event.actor.type}:${event.actor.id}`;
const increment = (record: Record<string, number>, key: string, by = 1) => {
  record[key] = (record[key] ?? 0) + by;
};
const sortedRecord = (record: Record<string, number>) =>
  Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
const byKey =
  <T>(key: (value: T) => string) =>
  (a: T, b: T) =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;

/** Whether an event belongs to the report's period (inclusive bounds, ISO 8601 UTC strings compare). */
export function inPeriod(event: { time: string }, period: ReportMeta["period"]): boolean {
  return (period.from === null || event.time >= period.from) && event.time <= period.to;
}

export class ReportBuilder {
  private events = 0;
  private firstSeq: number | null = null;
  private lastSeq: number | null = null;
  private readonly byAction: Record<string, number> = {};
  private readonly byOutcome: Record<string, number> = {};
  private readonly digests: AuditDigest[] = [];

  private readonly users = new Map<
    string,
    {
      role: string | null;
      signIns: number;
      providers: Record<string, number>;
      devices: Set<string>;
      last: string | null;
    }
  >();
  private readonly bindingChanges: ReportSections["access"]["role_binding_changes"] = [];
  private signIns = 0;
  private readonly signOuts: Record<string, number> = {};
  private readonly failedSignIns: ReportSections["access"]["failed_sign_ins"] = [];
  private readonly tokensIssued: ReportSections["access"]["api_tokens"]["issued"] = [];
  private readonly tokensRevoked: ReportSections["access"]["api_tokens"]["revoked"] = [];
  private signinLinks = 0;
  private deniedTotal = 0;
  private readonly deniedByRoute = new Map<string, { route: string; status: number; count: number }>();

  private readonly jobs = new Map<string, JobRow>();
  private readonly selfApprovals: ReportSections["change_management"]["self_approval_attempts"] = [];

  private readonly rotations: ReportSections["secrets"]["rotation_history"] = [];

  private readonly registrationTokens = new Map<string, string>();
  private readonly registrations: ReportSections["agents"]["registrations"] = [];
  private readonly revocations: ReportSections["agents"]["revocations"] = [];
  private readonly revokedAt = new Map<string, string>();
  private readonly healthChanges: Record<string, number> = {};
  private configReads = 0;
  private readonly revokedHeartbeats = new Map<
    string,
    { agent_id: string; refused_requests: number; last_at: string }
  >();

  constructor(
    private readonly meta: ReportMeta,
    private readonly inputs: ReportInputs,
  ) {
    for (const agent of inputs.agents)
      if (agent.revoked_at) this.revokedAt.set(agent.agent_id, agent.revoked_at);
  }

  /** Feeds one event (seq order); events outside the period are ignored. */
  add(event: AuditEvent): void {
    if (!inPeriod(event, this.meta.period)) return;
    this.events++;
    this.firstSeq ??= event.seq;
    this.lastSeq = event.seq;
    increment(this.byAction, event.action);
    increment(this.byOutcome, event.outcome);
    const details = event.details ?? {};
    const at = { seq: event.seq, time: event.time };
    switch (event.action) {
      case "session.create": {
        if (event.outcome !== "success") {
          this.failedSignIns.push({
            ...at,
            provider: str(details.provider),
            reason: str(details.reason),
            ip: event.actor.ip ?? null,
          });
          break;
        }
        this.signIns++;
        const user = this.user(event.actor.id);
        user.signIns++;
        user.role = str(details.role) ?? user.role;
        increment(user.providers, str(details.provider) ?? "unknown");
        if (event.actor.user_agent) user.devices.add(event.actor.user_agent);
        user.last = event.time;
        break;
      }
      case "session.delete":
        increment(this.signOuts, str(details.reason) ?? "unknown");
        break;
      case "binding.put":
      case "binding.delete":
        this.bindingChanges.push({
          ...at,
          by: actorOf(event),
          subject: event.target.id,
          change: event.action === "binding.put" ? "put" : "delete",
          role: str(details.role),
          previous_role: str(details.previous_role),
        });
        break;
      case "token.create":
        this.tokensIssued.push({
          ...at,
          token_id: event.target.id,
          name: str(details.name),
          role: str(details.role),
          by: actorOf(event),
          expires_at: num(details.expires_at),
        });
        break;
      case "token.revoke":
        this.tokensRevoked.push({ ...at, token_id: event.target.id, by: actorOf(event) });
        break;
      case "signin_link.create":
        this.signinLinks++;
        break;
      case DENIED_ACTION:
        this.denied(event);
        break;
      case "job.create":
      case "job.approve":
      case "job.reject":
      case "job.claim":
      case "job.finish":
      case "job.cancel":
      case "job.requeue":
      case "job.fail_lost":
        this.job(event);
        break;
      case "agent.registration_token.create":
        this.registrationTokens.set(event.target.id, actorOf(event));
        break;
      case "agent.register": {
        const token = str(details.registration_token);
        this.registrations.push({
          ...at,
          agent_id: event.target.id,
          name: str(details.name),
          registration_token: token,
          token_issued_by: token === null ? null : (this.registrationTokens.get(token) ?? null),
        });
        break;
      }
      case "agent.revoke":
        this.revocations.push({ ...at, agent_id: event.target.id, by: actorOf(event) });
        if (!this.revokedAt.has(event.target.id) || this.revokedAt.get(event.target.id)! > event.time)
          this.revokedAt.set(event.target.id, event.time);
        break;
      case "agent.health.change":
        increment(this.healthChanges, str(details.to) ?? "unknown");
        break;
      case "agent.config.read":
        this.configReads++;
        break;
      default:
        if (event.action.startsWith("secret.rotate.")) {
          this.rotations.push({
            ...at,
            secret: event.target.id,
            step: event.action.slice("secret.rotate.".length),
            result: str(details.result),
            version_id: str(details.version_id),
            by: actorOf(event),
            outcome: event.outcome,
          });
        }
    }
  }

  /** Feeds one digest (digest_seq order). */
  addDigest(digest: AuditDigest): void {
    this.digests.push(digest);
  }

  private user(id: string) {
    let user = this.users.get(id);
    if (!user) {
      user = { role: null, signIns: 0, providers: {}, devices: new Set(), last: null };
      this.users.set(id, user);
    }
    return user;
  }

  private denied(event: AuditEvent): void {
    const details = event.details ?? {};
    const count = num(details.count) ?? 1;
    const status = num(details.status) ?? 0;
    this.deniedTotal += count;
    const key = `${event.target.id}|${status}`;
    const row = this.deniedByRoute.get(key) ?? { route: event.target.id, status, count: 0 };
    row.count += count;
    this.deniedByRoute.set(key, row);
    const claimed = Array.isArray(details.claimed_agents) ? details.claimed_agents : [];
    for (const agentId of claimed) {
      if (typeof agentId !== "string") continue;
      const revokedAt = this.revokedAt.get(agentId);
      const lastAt = str(details.last_at) ?? event.time;
      if (revokedAt === undefined || lastAt < revokedAt) continue;
      const entry = this.revokedHeartbeats.get(agentId) ?? {
        agent_id: agentId,
        refused_requests: 0,
        last_at: lastAt,
      };
      entry.refused_requests += count;
      if (lastAt > entry.last_at) entry.last_at = lastAt;
      this.revokedHeartbeats.set(agentId, entry);
    }
  }

  private job(event: AuditEvent): void {
    const details = event.details ?? {};
    const jobId = event.target.id;
    let row = this.jobs.get(jobId);
    if (!row) {
      row = {
        job_id: jobId,
        queued_by: null,
        queued_at: null,
        git_ref: null,
        repository: null,
        environment: null,
        approved_by: null,
        approved_at: null,
        rejected_by: null,
        agent_id: null,
        attempts: 0,
        started_at: null,
        ended_at: null,
        outcome: null,
        exit_code: null,
        cancelled_by: null,
      };
      this.jobs.set(jobId, row);
    }
    switch (event.action) {
      case "job.create":
        row.queued_by = actorOf(event);
        row.queued_at = event.time;
        row.git_ref = str(details.git_ref);
        row.repository = str(details.repository);
        row.environment = str(details.environment);
        row.outcome = str(details.status);
        break;
      case "job.approve":
        row.environment ??= str(details.environment);
        if (event.outcome === "success") {
          row.approved_by = actorOf(event);
          row.approved_at = event.time;
          row.outcome = "queued";
        } else {
          this.selfApprovals.push({ seq: event.seq, time: event.time, job_id: jobId, by: actorOf(event) });
        }
        break;
      case "job.reject":
        row.environment ??= str(details.environment);
        row.rejected_by = actorOf(event);
        row.outcome = "cancelled";
        row.ended_at = event.time;
        break;
      case "job.claim":
        row.agent_id = event.actor.id;
        row.attempts = Math.max(row.attempts, num(details.attempt) ?? row.attempts + 1);
        row.started_at ??= event.time;
        row.outcome = "running";
        break;
      case "job.finish":
        row.ended_at = event.time;
        row.outcome = str(details.status);
        row.exit_code = num(details.exit_code);
        break;
      case "job.cancel":
        row.cancelled_by = actorOf(event);
        if (str(details.status) === "cancelled") {
          row.outcome = "cancelled";
          row.ended_at = event.time;
        }
        break;
      case "job.requeue":
        row.outcome = "queued";
        break;
      case "job.fail_lost":
        row.outcome = "failed";
        row.ended_at = event.time;
        break;
    }
  }

  build(): ReportSections {
    const { inputs, meta } = this;
    const generatedAt = new Date(meta.generated_at);
    const protectedEnvironments = new Set(inputs.settings.protected_environments);

    const jobs = [...this.jobs.values()]
      .filter((job) => meta.target_environment === null || job.environment === meta.target_environment)
      .sort(byKey((job) => `${job.queued_at ?? ""}|${job.job_id}`));
    const byOutcome: Record<string, number> = {};
    const byEnvironment: Record<string, number> = {};
    for (const job of jobs) {
      increment(byOutcome, job.outcome ?? "unknown");
      increment(byEnvironment, job.environment ?? "unknown");
    }
    const productionJobs = jobs.filter(
      (job) => job.environment !== null && protectedEnvironments.has(job.environment),
    );
    // Ran (claimed) in a protected environment, created in the period, and never approved.
    const unapproved = productionJobs.filter(
      (job) => job.queued_at !== null && job.started_at !== null && job.approved_by === null,
    );
    const selfApprovals = this.selfApprovals.filter((attempt) => {
      const job = this.jobs.get(attempt.job_id);
      return meta.target_environment === null || job?.environment === meta.target_environment;
    });

    const secrets = inputs.secrets
      .map((secret) => {
        const current = secret.versions.find((version) => version.stages.includes("AWSCURRENT"));
        const ageDays = current
          ? Math.floor(((generatedAt.getTime() - Date.parse(current.created_at)) / 86_400_000) * 10) / 10
          : null;
        return {
          key: secret.key,
          name: secret.name,
          max_age_days: secret.rotation_days,
          last_rotation_at: current?.created_at ?? null,
          age_days: ageDays,
          compliant:
            secret.rotation_days === null || ageDays === null ? null : ageDays <= secret.rotation_days,
          versions: secret.versions.length,
        };
      })
      .sort(byKey((secret) => secret.key));

    const inventory = inputs.agents
      .map((agent) => ({
        agent_id: agent.agent_id,
        name: agent.name,
        region: agent.region,
        tags: agent.tags,
        key_epoch: agent.key_epoch,
        registered_at: agent.registered_at,
        registered_by: agent.registered_by,
        last_heartbeat_at: agent.last_heartbeat_at,
        health: agent.revoked_at
          ? "revoked"
          : agentHealth(
              {
                ...agent,
                last_heartbeat_at: agent.last_heartbeat_at ?? undefined,
                last_figures: agent.last_figures ?? undefined,
                revoked_at: undefined,
              } as unknown as AgentRecord,
              generatedAt,
              {
                unhealthyAfterSeconds: inputs.settings.unhealthy_after_seconds,
                deadAfterSeconds: inputs.settings.dead_after_seconds,
                resourceLimitPercent: inputs.settings.resource_limit_percent,
              },
            ),
        revoked_at: agent.revoked_at,
        revoked_by: agent.revoked_by,
      }))
      .sort(byKey((agent) => agent.agent_id));
    const revokedHeartbeating = [...this.revokedHeartbeats.values()].sort(byKey((entry) => entry.agent_id));

    const deployment = inputs.deployment;
    const verdicts = Array.isArray(deployment?.policy_verdicts)
      ? (deployment.policy_verdicts as { passed?: unknown }[])
      : [];
    const monitoring: ReportSections["monitoring"] = deployment
      ? {
          applicable: true,
          reason: null,
          deployment: {
            deployed_at: deployment.deployed_at ?? null,
            stack: deployment.stack ?? null,
            versions: {
              product: deployment.product_version ?? null,
              platform: deployment.platform_version ?? null,
            },
            rules_passed: verdicts.filter((verdict) => verdict.passed === true).length,
            rules_failed: verdicts.filter((verdict) => verdict.passed === false).length,
            record: deployment,
          },
        }
      : {
          applicable: false,
          reason:
            "no deployment record: this control plane was not deployed with `pulumi up` (e.g. it runs locally), so alarms, retention, encryption and policy verdicts do not apply",
          deployment: null,
        };

    // The digests that seal the period: from the first whose head reaches the period to the first past it.
    const covering: AuditDigest[] = [];
    if (this.firstSeq !== null) {
      for (const digest of this.digests) {
        if (digest.head_seq < this.firstSeq) continue;
        covering.push(digest);
        if (digest.head_seq >= this.lastSeq!) break;
      }
    }
    const sealed = this.lastSeq !== null && covering.some((digest) => digest.head_seq >= this.lastSeq!);
    const gaps: ReportSections["evidence"]["gaps"] = [];
    for (let i = 1; i < covering.length; i++) {
      const seconds = (Date.parse(covering[i]!.time) - Date.parse(covering[i - 1]!.time)) / 1000;
      if (seconds > 2 * inputs.settings.digest_interval_seconds)
        gaps.push({ after_digest_seq: covering[i - 1]!.digest_seq, seconds });
    }

    const exceptions: ReportException[] = [
      ...selfApprovals.map((attempt) => ({
        kind: "production_self_approval_attempt" as const,
        control: "CC8.1",
        description: `${attempt.by} tried to approve their own job ${attempt.job_id} (refused)`,
        refs: [attempt.seq, attempt.job_id],
      })),
      ...unapproved.map((job) => ({
        kind: "production_unapproved" as const,
        control: "CC8.1",
        description: `job ${job.job_id} ran in ${job.environment} without an approval`,
        refs: [job.job_id],
      })),
      ...secrets
        .filter((secret) => secret.compliant === false)
        .map((secret) => ({
          kind: "secret_past_max_age" as const,
          control: "CC6.1",
          description: `${secret.name} is ${secret.age_days} days old; its policy allows ${secret.max_age_days}`,
          refs: [secret.key],
        })),
      ...revokedHeartbeating.map((entry) => ({
        kind: "revoked_agent_heartbeating" as const,
        control: "CC6.6",
        description: `revoked agent ${entry.agent_id} kept calling: ${entry.refused_requests} request(s) refused, the last at ${entry.last_at}`,
        refs: [entry.agent_id],
      })),
      ...gaps.map((gap) => ({
        kind: "audit_gap" as const,
        control: "CC7.2",
        description: `no digest for ${gap.seconds} s after digest ${gap.after_digest_seq} (interval ${inputs.settings.digest_interval_seconds} s)`,
        refs: [gap.after_digest_seq],
      })),
      ...(inputs.chain_verification.ok
        ? []
        : [
            {
              kind: "audit_chain_broken" as const,
              control: "CC7.2",
              description: `the audit chain did not verify: ${inputs.chain_verification.first_problem ?? "unknown problem"}`,
              refs: [],
            },
          ]),
    ];
    const controls: Control[] = CONTROLS.map((control) => {
      const count = exceptions.filter((exception) => exception.control === control.id).length;
      return { ...control, status: count > 0 ? "exceptions" : "effective", exceptions: count };
    });

    const users = [...this.users.entries()]
      .map(([userId, user]) => ({
        user_id: userId,
        role: user.role,
        sign_ins: user.signIns,
        providers: sortedRecord(user.providers),
        devices: user.devices.size,
        last_sign_in_at: user.last,
      }))
      .sort(byKey((user) => user.user_id));

    return {
      summary: {
        controls,
        exceptions,
        totals: {
          events: this.events,
          users: users.length,
          sign_ins: this.signIns,
          failed_sign_ins: this.failedSignIns.length,
          jobs: jobs.length,
          production_jobs: productionJobs.length,
          agents: inventory.length,
          secrets: secrets.length,
          denied_requests: this.deniedTotal,
        },
        chain_verification: inputs.chain_verification,
      },
      access: {
        users,
        role_binding_changes: this.bindingChanges,
        sign_ins: this.signIns,
        sign_outs: sortedRecord(this.signOuts),
        failed_sign_ins: this.failedSignIns,
        api_tokens: {
          issued: this.tokensIssued,
          revoked: this.tokensRevoked,
          used: "token use is not an audit event; refused uses are in denied_requests",
        },
        signin_links_issued: this.signinLinks,
        denied_requests: {
          total: this.deniedTotal,
          by_route: [...this.deniedByRoute.values()].sort(byKey((row) => `${row.route}|${row.status}`)),
        },
      },
      change_management: {
        jobs,
        by_outcome: sortedRecord(byOutcome),
        by_environment: sortedRecord(byEnvironment),
        production_jobs: productionJobs.map((job) => job.job_id),
        self_approval_attempts: selfApprovals,
        unapproved_production_jobs: unapproved.map((job) => job.job_id),
      },
      secrets: {
        secrets,
        rotation_history: this.rotations,
        notes: [
          "Rotation history comes from secret.rotate.* audit events; policies (maximum age) from the secret catalog; ages from the secret store's version metadata at generation time.",
          "Rotation locks and per-agent acknowledgements are not recorded by this version of the control plane; they are not reported.",
        ],
      },
      agents: {
        inventory,
        registrations: this.registrations,
        revocations: this.revocations,
        health_changes: sortedRecord(this.healthChanges),
        config_reads: this.configReads,
        revoked_still_heartbeating: revokedHeartbeating,
      },
      monitoring,
      evidence: {
        first_seq: this.firstSeq,
        last_seq: this.lastSeq,
        events: this.events,
        by_action: sortedRecord(this.byAction),
        by_outcome: sortedRecord(this.byOutcome),
        digests: covering.map((digest) => ({
          digest_seq: digest.digest_seq,
          head_seq: digest.head_seq,
          time: digest.time,
          digest_hash: digest.digest_hash,
          key_id: digest.key_id,
          ...(digest.merkle_root === undefined ? {} : { merkle_root: digest.merkle_root }),
        })),
        sealed,
        gaps,
        audit_export: AUDIT_EXPORT_FILE,
      },
    };
  }
}
