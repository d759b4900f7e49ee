import { sign } from "node:crypto";
import { Readable } from "node:stream";
import { ulid } from "ulid";
import { secrets as secretCatalog, secretId } from "../../secrets/catalog";
import type { SecretStore } from "../../secrets/secret-store";
import type { AgentRecord } from "../../store/agents-repository";
import type { Store } from "../../store/store";
import type { HealthThresholds } from "../agents/agent-health";
import { type AuditEvent, MAIN_CHAIN } from "../audit/audit-event";
import { mergeChainRecords } from "../audit/audit-export";
import type { AuditService } from "../audit/audit-service";
import type { TargetEnvironments } from "../environments";
import { auditActor, type Clock, type RequestContext } from "../principal";
import { settings } from "../settings";
import { BUNDLE_FORMAT, type BundleManifest, MANIFEST_FILE, SIGNATURE_FILE } from "./evidence-bundle";
import { AUDIT_EXPORT_FILE, ReportBuilder } from "./report-builder";
import { eventsCsv, tableCsv } from "./report-csv";
import { reportPdf } from "./report-pdf";
import {
  type ComplianceReport,
  REPORT_SCHEMA,
  REPORT_SCHEMA_VERSION,
  type ReportInputs,
  type ReportMeta,
} from "./report-schema";
import { reportTables } from "./report-tables";
import { streamZip, type ZipEntry } from "./zip-writer";

export const reportFormats = ["json", "csv", "pdf", "bundle"] as const;
export type ReportFormat = (typeof reportFormats)[number];

export interface ReportRequest {
  /** ISO 8601 UTC; undefined = from the start of the trail. */
  from?: string;
  /** ISO 8601 UTC; undefined = now. */
  to?: string;
  targetEnvironment?: string;
  format: ReportFormat;
}

export interface ReportOutput {
  report: ComplianceReport;
  contentType: string;
  fileName: string;
  body: Readable | Buffer;
}

/** A deployment record (decision 105) as the report reads it; undefined when none was written. */
export type DeploymentSource = (environment: string) => Promise<Record<string, unknown> | undefined>;

export interface ReportsServiceOptions {
  environment: string;
  version: string;
  secretPrefix: string;
  clock: Clock;
  health: HealthThresholds;
  deployments: DeploymentSource;
  /** The known target environments; those needing approval are the report's protected ones. */
  environments: TargetEnvironments;
}

/**
 * Compliance reports (issue 12, decision 019): records the export in the audit chain, checks the chain
 * for the period, seals it with a digest, snapshots the state the report reads, and computes every
 * figure with ReportBuilder over the period's events, read once from the store. Formats are views of
 * that one report; the bundle adds the audit export and a signed manifest (decision 021).
 */
export class ReportsService {
  private readonly chain = MAIN_CHAIN;

  constructor(
    private readonly store: Store,
    private readonly audit: AuditService,
    private readonly secretStore: SecretStore,
    private readonly options: ReportsServiceOptions,
  ) {}

  async export(request: ReportRequest, context: RequestContext): Promise<ReportOutput> {
    const generatedAt = this.options.clock().toISOString();
    const actor = auditActor(context);
    const meta: ReportMeta = {
      schema: REPORT_SCHEMA,
      schema_version: REPORT_SCHEMA_VERSION,
      report_id: `rpt_${ulid()}`,
      generated_at: generatedAt,
      generated_by: `${actor.type}:${actor.id}`,
      product_version: this.options.version,
      environment: this.options.environment,
      period: { from: request.from ?? null, to: request.to ?? generatedAt },
      target_environment: request.targetEnvironment ?? null,
    };
    const period = { from: meta.period.from ?? undefined, to: meta.period.to };
    // Every export is an event of the chain, recorded before anything is read (fails closed).
    await this.audit.record({
      action: "report.export",
      actor,
      target: { type: "compliance_report", id: meta.report_id },
      outcome: "success",
      request_id: context.requestId,
      details: {
        format: request.format,
        from: meta.period.from,
        to: meta.period.to,
        target_environment: meta.target_environment,
      },
    });
    const verification = await this.audit.verify(period, context);
    // The bundle's audit export starts now: it records itself and seals its range before its first line,
    // so the report below reads exactly the events and digests the export holds.
    const exportLines = request.format === "bundle" ? this.audit.exportLines(period, context) : undefined;
    const exportHeader = exportLines ? await exportLines.next() : undefined;
    if (!exportLines) await this.seal();

    const inputs: ReportInputs = {
      settings: {
        protected_environments: [...this.options.environments.approval],
        unhealthy_after_seconds: this.options.health.unhealthyAfterSeconds,
        dead_after_seconds: this.options.health.deadAfterSeconds,
        resource_limit_percent: this.options.health.resourceLimitPercent,
        digest_interval_seconds: settings.audit.digestIntervalSeconds,
      },
      secrets: await this.secretsSnapshot(),
      agents: await this.agentsSnapshot(),
      deployment: (await this.options.deployments(this.options.environment)) ?? null,
      chain_verification: {
        ok: verification.ok,
        events: verification.events,
        digests: verification.digests,
        sealed_through_seq: verification.sealed_through_seq,
        first_problem: verification.first_problem
          ? `${verification.first_problem.kind}: ${verification.first_problem.message}`
          : null,
      },
    };
    const builder = new ReportBuilder(meta, inputs);
    const range = await this.seqRange(meta.period);
    if (range) {
      const firstCovering = await this.store.audit.firstDigestCovering(this.chain, range.from);
      const digests = firstCovering ? this.store.audit.digests(this.chain, firstCovering.digest_seq) : [];
      for await (const record of mergeChainRecords(
        this.store.audit.events(this.chain, range.from, range.to),
        digests,
      )) {
        if (record.kind === "event") builder.add(record.event);
        else builder.addDigest(record.digest);
      }
    }
    const report: ComplianceReport = { ...meta, inputs, sections: builder.build() };
    const base = `compliance-${meta.environment}-${meta.generated_at.replace(/[:.]/g, "-")}`;
    const json = `${JSON.stringify(report, null, 2)}\n`;
    const csvEntries = (): ZipEntry[] => [
      ...reportTables(report).map((table) => ({ path: `csv/${table.name}.csv`, content: tableCsv(table) })),
      { path: "csv/7-events.csv", content: () => eventsCsv(this.periodEvents(range, meta.period)) },
    ];
    switch (request.format) {
      case "json":
        return { report, contentType: "application/json", fileName: `${base}.json`, body: Buffer.from(json) };
      case "pdf":
        return {
          report,
          contentType: "application/pdf",
          fileName: `${base}.pdf`,
          body: await reportPdf(report),
        };
      case "csv":
        return {
          report,
          contentType: "application/zip",
          fileName: `${base}-csv.zip`,
          body: streamZip(csvEntries()),
        };
      case "bundle": {
        const pdf = await reportPdf(report);
        const lines = exportLines!;
        const header = exportHeader!;
        const entries: ZipEntry[] = [
          { path: "report.json", content: json },
          { path: "report.pdf", content: () => pdf },
          ...csvEntries(),
          {
            path: AUDIT_EXPORT_FILE,
            content: () =>
              Readable.from(
                (async function* () {
                  if (!header.done) yield header.value;
                  yield* lines;
                })(),
              ),
          },
        ];
        const signer = await this.audit.keys.signer();
        const publicKeys = await this.audit.keys.publicKeys();
        const body = streamZip(entries, (written) => {
          const manifest: BundleManifest = {
            format: BUNDLE_FORMAT,
            report_id: meta.report_id,
            environment: meta.environment,
            generated_at: meta.generated_at,
            algorithm: "sha256",
            files: written.map((entry) => ({ path: entry.path, sha256: entry.sha256, bytes: entry.bytes })),
          };
          const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, "utf8");
          const signature = {
            algorithm: "ed25519",
            key_id: signer.keyId,
            signed_file: MANIFEST_FILE,
            signature: sign(null, manifestBytes, signer.privateKey).toString("base64url"),
            public_keys: publicKeys,
          };
          return [
            { path: MANIFEST_FILE, content: manifestBytes },
            { path: SIGNATURE_FILE, content: `${JSON.stringify(signature, null, 2)}\n` },
          ];
        });
        return { report, contentType: "application/zip", fileName: `${base}-bundle.zip`, body };
      }
    }
  }

  /** Signs the chain head when the latest digest does not reach it, so the report's last event is sealed. */
  private async seal(): Promise<void> {
    const [head, latest] = await Promise.all([
      this.store.audit.head(this.chain),
      this.store.audit.latestDigest(this.chain),
    ]);
    if (head && head.seq > 0 && (!latest || latest.head_seq < head.seq || latest.merkle_root === undefined))
      await this.audit.createDigest("export");
  }

  private async seqRange(period: ReportMeta["period"]): Promise<{ from: number; to: number } | undefined> {
    const from =
      period.from === null ? 1 : await this.store.audit.seqAt(this.chain, period.from, "first-after");
    const to = await this.store.audit.seqAt(this.chain, period.to, "last-before");
    if (from === undefined || to === undefined || from > to) return undefined;
    return { from, to };
  }

  private async *periodEvents(
    range: { from: number; to: number } | undefined,
    period: ReportMeta["period"],
  ): AsyncGenerator<AuditEvent> {
    if (!range) return;
    for await (const event of this.store.audit.events(this.chain, range.from, range.to)) {
      if ((period.from === null || event.time >= period.from) && event.time <= period.to) yield event;
    }
  }

  /** Version metadata of every catalogued secret: ids, dates and labels, never values. */
  private async secretsSnapshot(): Promise<ReportInputs["secrets"]> {
    const snapshot: ReportInputs["secrets"] = [];
    for (const [key, declaration] of Object.entries(secretCatalog)) {
      const versions = await this.secretStore.listVersions(
        secretId(this.options.secretPrefix, key as keyof typeof secretCatalog),
      );
      snapshot.push({
        key,
        name: declaration.name,
        rotation_days: "rotationDays" in declaration ? declaration.rotationDays : null,
        versions: versions.map((version) => ({
          version_id: version.versionId,
          created_at: version.createdAt,
          stages: [...version.stages],
        })),
      });
    }
    return snapshot;
  }

  private async agentsSnapshot(): Promise<ReportInputs["agents"]> {
    const agents: ReportInputs["agents"] = [];
    let cursor: string | undefined;
    do {
      const page = await this.store.agents.list({ limit: 100, cursor });
      for (const agent of page.items as AgentRecord[]) {
        agents.push({
          agent_id: agent.agent_id,
          name: agent.name,
          region: agent.region,
          tags: agent.tags,
          key_epoch: agent.key_epoch,
          registered_at: agent.registered_at,
          registered_by: agent.registered_by,
          last_heartbeat_at: agent.last_heartbeat_at ?? null,
          last_figures: agent.last_figures
            ? {
                cpu_percent: agent.last_figures.cpu_percent,
                memory_percent: agent.last_figures.memory_percent,
                disk_percent: agent.last_figures.disk_percent,
              }
            : null,
          revoked_at: agent.revoked_at ?? null,
          revoked_by: agent.revoked_by ?? null,
        });
      }
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return agents;
  }
}
