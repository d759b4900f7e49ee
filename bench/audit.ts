/**
 * Audit trail figures (issue 4): audit appends per second through the API and directly through the
 * services, and the offline verification rate of a 100,000-event export beside the raw SHA-256
 * throughput of this machine in the same run (the physical limit of a hash-chain check).
 *
 * Runs its own in-memory DynamoDB Local. `npx tsx bench/audit.ts`, or `npm run bench -- audit`.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { loadEnv } from "../runtime/src/config/env";
import { canonicalJson } from "../runtime/src/domain/audit/audit-event";
import { verifyExport } from "../runtime/src/domain/audit/audit-export";
import { systemContext } from "../runtime/src/domain/principal";
import { createApp } from "../runtime/src/http/app";
import { startDynamoDbLocal } from "../runtime/src/local/dynamodb-local";
import { createLogger } from "../runtime/src/logger";
import { createRuntime } from "../runtime/src/runtime";
import { LocalSecretStore } from "../runtime/src/secrets/local-secret-store";
import { createDynamoClients } from "../runtime/src/store/client";
import { ensureTables } from "../runtime/src/store/tables";
import { buildChain, exportFile } from "../test/support/audit-chain";
import { closedLoop, type Figures, median, printTable } from "./support/measure";
import { report as summarize } from "./support/summary";

const EXPORT_EVENTS = 100_000;
const LOOP = { concurrency: 8, seconds: 8, maxRequests: 3_000 };
const ROUNDS = 3;

export async function runAuditBench(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const appends = await measureAppends();
  printTable(
    "Audit appends (each row: one TransactWriteItems with the event, the head move and any change)",
    appends,
  );
  const verification = await measureVerification();
  printVerification(verification);
}

async function measureAppends(): Promise<Figures[]> {
  const database = await startDynamoDbLocal({ startTimeoutMs: 180_000 });
  const dataDir = await mkdtemp(join(tmpdir(), "hcp-bench-audit-"));
  const { dynamodb, doc } = createDynamoClients({ endpoint: database.endpoint, region: "us-east-1" });
  const prefix = "bench-audit-";
  try {
    await ensureTables(dynamodb, prefix);
    const env = loadEnv({
      HYBRID_CICD_ENVIRONMENT: "bench",
      HYBRID_CICD_TABLE_PREFIX: prefix,
      HYBRID_CICD_DATA_DIR: dataDir,
      DYNAMODB_ENDPOINT: database.endpoint,
      LOG_LEVEL: "silent",
    });
    const secretStore = await LocalSecretStore.open(dataDir);
    const newRuntime = () =>
      createRuntime({ env, doc, secretStore, logger: createLogger({ level: "silent" }) });
    const runtime = newRuntime();
    await runtime.workloadKeys.ensureRootKey();
    await runtime.auditKeys.ensureKey();
    const server = createServer(createApp(runtime, { secureCookies: false }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { token } = await runtime.credentials.createApiToken(
      { role: "operator", name: "bench" },
      systemContext("bench"),
    );
    const draft = (index: number) => ({
      action: "agent.config.read",
      actor: { type: "agent" as const, id: `agt_bench${index % 16}`, ip: "127.0.0.1" },
      target: { type: "agent", id: `agt_bench${index % 16}` },
      outcome: "success" as const,
      request_id: `bench-${index}`,
      details: { key_epoch: 0 },
    });
    const jobInput = (index: number) => ({ git_ref: `bench-${index}`, tags: [], priority: 50 });
    // JIT warm-up of DynamoDB Local and of this process.
    for (let index = 0; index < 300; index++) await runtime.audit.record(draft(index));

    const rows: Figures[] = [];
    rows.push(
      await closedLoop("service: audit.record (event only)", LOOP, async (index) => {
        await runtime.audit.record(draft(index));
        return true;
      }),
    );
    rows.push(
      await closedLoop("service: jobs.create (job + event)", LOOP, async (index) => {
        await runtime.jobs.create(jobInput(index), systemContext("bench", `bench-${index}`));
        return true;
      }),
    );
    rows.push(
      await closedLoop("API: POST /jobs over HTTP (job + event)", LOOP, async (index) => {
        const response = await fetch(`${url}/jobs`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify(jobInput(index)),
        });
        await response.arrayBuffer();
        return response.status === 201;
      }),
    );
    // Four runtimes sharing only the tables, as four Lambda instances: they race for the chain head.
    const instances = Array.from({ length: 4 }, newRuntime);
    rows.push(
      await closedLoop("service: audit.record, 4 instances racing", LOOP, async (index) => {
        await instances[index % 4]!.audit.record(draft(index));
        return true;
      }),
    );
    const check = await runtime.audit.verify({}, systemContext("bench"));
    if (!check.ok) throw new Error(`the bench chain does not verify: ${check.first_problem?.message}`);
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return rows;
  } finally {
    dynamodb.destroy();
    await database.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

interface VerificationFigures {
  events: number;
  bytes: number;
  verifySeconds: number;
  sha256Seconds: number;
  sha256Hashes: number;
  sha256Bytes: number;
  ok: boolean;
}

/**
 * Offline verification through the CLI's own code path (file → lines → verifyExport), against SHA-256
 * alone over the very bytes the chain hashes (prev_hash || JCS form of each event).
 */
async function measureVerification(): Promise<VerificationFigures> {
  const dir = await mkdtemp(join(tmpdir(), "hcp-bench-verify-"));
  try {
    const chain = buildChain(EXPORT_EVENTS, { digestEvery: 1_000 });
    const file = join(dir, "export.jsonl");
    await writeFile(file, await exportFile(chain));
    const bytes = (await stat(file)).size;

    const inputs = chain.events.map(({ hash: _hash, ...body }) =>
      Buffer.concat([Buffer.from(body.prev_hash, "hex"), Buffer.from(canonicalJson(body), "utf8")]),
    );
    const sha256Bytes = inputs.reduce((sum, input) => sum + input.length, 0);
    const hashAll = () => {
      const started = performance.now();
      for (const input of inputs) createHash("sha256").update(input).digest();
      return (performance.now() - started) / 1000;
    };
    const verifyFile = async () => {
      const started = performance.now();
      const lines = createInterface({
        input: createReadStream(file, "utf8"),
        crlfDelay: Number.POSITIVE_INFINITY,
      });
      const result = await verifyExport(lines, { publicKeys: chain.key.trusted });
      return { seconds: (performance.now() - started) / 1000, result };
    };
    // Warm-up of both, then alternating rounds; each side's median.
    hashAll();
    let report = (await verifyFile()).result;
    const hashRuns: number[] = [];
    const verifyRuns: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      hashRuns.push(hashAll());
      const run = await verifyFile();
      verifyRuns.push(run.seconds);
      report = run.result;
      if (!report.ok) break;
    }
    const sha256Seconds = median(hashRuns);
    const verifySeconds = median(verifyRuns);
    return {
      events: report.events,
      bytes,
      verifySeconds,
      sha256Seconds,
      sha256Hashes: inputs.length,
      sha256Bytes,
      ok: report.ok,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function printVerification(figures: VerificationFigures): void {
  const rows = [
    ["measurement", "items", "seconds", "items/s", "MB/s"],
    [
      `hybrid-cicd verify (${figures.ok ? "verified" : "FAILED"}: parse, JCS, SHA-256, links, ${Math.ceil(figures.events / 1000)} Ed25519 digests)`,
      String(figures.events),
      figures.verifySeconds.toFixed(2),
      (figures.events / figures.verifySeconds).toFixed(0),
      (figures.bytes / 1e6 / figures.verifySeconds).toFixed(1),
    ],
    [
      "raw SHA-256 of the same hashed bytes (the limit)",
      String(figures.sha256Hashes),
      figures.sha256Seconds.toFixed(2),
      (figures.sha256Hashes / figures.sha256Seconds).toFixed(0),
      (figures.sha256Bytes / 1e6 / figures.sha256Seconds).toFixed(1),
    ],
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  console.log(
    `\nOffline verification of a ${figures.events.toLocaleString("en")}-event export (${(figures.bytes / 1e6).toFixed(1)} MB)`,
  );
  for (const [index, row] of rows.entries()) {
    console.log(
      row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join("  ")
        .trimEnd(),
    );
    if (index === 0) console.log(widths.map((width) => "-".repeat(width)).join("  "));
  }
  const share = (figures.sha256Seconds / figures.verifySeconds) * 100;
  console.log(
    `verification runs at ${share.toFixed(0)}% of raw SHA-256 speed (median of ${ROUNDS} alternating rounds each); the rest is reading, parsing and checking`,
  );
  summarize({
    figure: `offline audit verify, ${figures.events.toLocaleString("en")} events${figures.ok ? "" : " (FAILED)"}`,
    value: figures.events / figures.verifySeconds,
    unit: "events/s",
    baseline: {
      label: "raw SHA-256 of the same hashed bytes",
      value: figures.sha256Hashes / figures.sha256Seconds,
    },
    ratio: figures.sha256Seconds / figures.verifySeconds,
    goal: ">= 0.5x",
    detail: `${(figures.bytes / 1e6).toFixed(1)} MB file`,
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runAuditBench();
}
