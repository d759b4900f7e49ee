/**
 * Job claims through the full stack (RFC 9421 signature check, the claim use case, its conditional
 * DynamoDB transaction with the audit event) over loopback HTTP, against DynamoDB Local in memory:
 *
 * 1. throughput: N agents (1, 8, 32) claim from a deep queue as fast as they can; jobs claimed per
 *    second, and double claims (a job claimed twice for one attempt: must be 0);
 * 2. queue-to-claim latency: N idle agents poll at the default claim interval (with its ±10 % jitter)
 *    while jobs arrive at random; p50/p99 from a job's creation to its claim.
 *
 * `npx tsx bench/claims.ts` or `npm run bench -- claims`. BENCH_CLAIM_JOBS (default 300) sets the queue
 * depth, BENCH_LATENCY_SECONDS (default 20) the length of each latency run.
 */
import { randomBytes } from "node:crypto";
import { setMaxListeners } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { jittered, sleep } from "../runtime/src/agent/backoff";
import { type AgentIdentity, signedFetch } from "../runtime/src/agent/signed-fetch";
import { loadEnv } from "../runtime/src/config/env";
import { systemContext } from "../runtime/src/domain/principal";
import { defaultLifecycleSettings } from "../runtime/src/domain/settings";
import { createApp } from "../runtime/src/http/app";
import { decodeAgentSecret } from "../runtime/src/identity/agent-keys";
import { startDynamoDbLocal } from "../runtime/src/local/dynamodb-local";
import { createLogger } from "../runtime/src/logger";
import { createRuntime, type Runtime } from "../runtime/src/runtime";
import { LocalSecretStore } from "../runtime/src/secrets/local-secret-store";
import type { SecretStore } from "../runtime/src/secrets/secret-store";
import { createDynamoClients } from "../runtime/src/store/client";
import { ensureTables } from "../runtime/src/store/tables";
import { percentile } from "./support/measure";

const AGENT_COUNTS = [1, 8, 32];
const JOBS = Number(process.env.BENCH_CLAIM_JOBS ?? 300);
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 20);
/** Mean gap between arriving jobs in the latency runs. */
const ARRIVAL_MEAN_MS = 250;

interface Throughput {
  agents: number;
  jobs: number;
  seconds: number;
  perSecond: number;
  doubleClaims: number;
  emptyClaims: number;
}

interface Latency {
  agents: number;
  samples: number;
  p50: number;
  p99: number;
}

interface BenchControlPlane {
  runtime: Runtime;
  url: string;
  close(): Promise<void>;
}

async function startControlPlane(
  endpoint: string,
  doc: DynamoDBDocumentClient,
  secretStore: SecretStore,
  dataDir: string,
): Promise<BenchControlPlane> {
  const prefix = `bench-claims-${randomBytes(4).toString("hex")}-`;
  const { dynamodb } = createDynamoClients({ endpoint, region: "us-east-1" });
  await ensureTables(dynamodb, prefix);
  dynamodb.destroy();
  const env = loadEnv({
    HYBRID_CICD_TABLE_PREFIX: prefix,
    HYBRID_CICD_DATA_DIR: dataDir,
    DYNAMODB_ENDPOINT: endpoint,
  });
  const runtime = createRuntime({ env, doc, secretStore, logger: createLogger({ level: "silent" }) });
  await runtime.workloadKeys.ensureRootKey();
  const server = createServer(createApp(runtime, { secureCookies: false }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    runtime,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function registerAgents(runtime: Runtime, count: number): Promise<AgentIdentity[]> {
  const context = systemContext("bench");
  return Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const { token } = await runtime.agents.createRegistrationToken(context);
      const agent = await runtime.agents.register(
        { registration_token: token, name: `bench-${index}`, region: "local", tags: [] },
        context,
      );
      return { agentId: agent.agent_id, key: decodeAgentSecret(agent.workload_identity_secret) };
    }),
  );
}

async function queueJobs(runtime: Runtime, count: number): Promise<string[]> {
  const context = systemContext("bench");
  const ids: string[] = [];
  for (let start = 0; start < count; start += 16) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(16, count - start) }, (_, index) =>
        runtime.jobs.create(
          { git_ref: "main", command: `echo ${start + index}`, tags: [], priority: 50 },
          context,
        ),
      ),
    );
    ids.push(...batch.map(({ job }) => job.job_id));
  }
  return ids;
}

type ClaimReply = { job: { job_id: string; created_at: string }; attempt: number };

function claimOnce(url: string, agent: AgentIdentity) {
  return signedFetch<ClaimReply>(url, agent, "POST", `/agents/${agent.agentId}/jobs/claim`, {});
}

async function throughput(cp: BenchControlPlane, agents: number): Promise<Throughput> {
  const jobIds = await queueJobs(cp.runtime, JOBS);
  const identities = await registerAgents(cp.runtime, agents);
  const claimsPerJob = new Map<string, number>();
  let emptyClaims = 0;
  const started = performance.now();
  await Promise.all(
    identities.map(async (agent) => {
      for (;;) {
        const response = await claimOnce(cp.url, agent);
        if (response.status === 204) return;
        if (response.status !== 200) {
          emptyClaims++;
          continue;
        }
        const id = response.body.job.job_id;
        claimsPerJob.set(id, (claimsPerJob.get(id) ?? 0) + 1);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  let doubleClaims = 0;
  for (const count of claimsPerJob.values()) doubleClaims += count - 1;
  const stored = await Promise.all(jobIds.map((id) => cp.runtime.store.jobs.get(id)));
  doubleClaims += stored.filter((job) => (job?.attempts?.length ?? 0) > 1).length;
  const claimed = [...claimsPerJob.values()].length;
  return { agents, jobs: claimed, seconds, perSecond: claimed / seconds, doubleClaims, emptyClaims };
}

async function latency(cp: BenchControlPlane, agents: number): Promise<Latency> {
  const identities = await registerAgents(cp.runtime, agents);
  const interval = defaultLifecycleSettings.claimIntervalSeconds;
  const waits: number[] = [];
  const stop = new AbortController();
  setMaxListeners(0, stop.signal);
  let created = 0;
  const pollers = identities.map(async (agent) => {
    // Agents come up at random moments, as a real fleet does.
    await sleep(Math.random() * interval * 1000, stop.signal);
    while (!stop.signal.aborted) {
      const response = await claimOnce(cp.url, agent);
      if (response.status === 200) {
        waits.push(Date.now() - Date.parse(response.body.job.created_at));
        continue;
      }
      await sleep(jittered(interval), stop.signal);
    }
  });
  const context = systemContext("bench");
  const deadline = Date.now() + LATENCY_SECONDS * 1000;
  while (Date.now() < deadline) {
    await sleep(-Math.log(1 - Math.random()) * ARRIVAL_MEAN_MS);
    await cp.runtime.jobs.create({ git_ref: "main", command: "true", tags: [], priority: 50 }, context);
    created++;
  }
  const drained = Date.now() + (interval + 2) * 1000;
  while (waits.length < created && Date.now() < drained) await sleep(100);
  stop.abort();
  await Promise.all(pollers);
  waits.sort((a, b) => a - b);
  return { agents, samples: waits.length, p50: percentile(waits, 50), p99: percentile(waits, 99) };
}

function table(header: string[], rows: string[][]): void {
  const widths = header.map((cell, column) =>
    Math.max(cell.length, ...rows.map((row) => row[column]!.length)),
  );
  const line = (cells: string[]) => cells.map((cell, column) => cell.padStart(widths[column]!)).join("  ");
  console.log(line(header));
  console.log(widths.map((width) => "-".repeat(width)).join("  "));
  for (const row of rows) console.log(line(row));
}

export async function runClaimsBench(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const database = await startDynamoDbLocal({});
  const dataDir = await mkdtemp(join(tmpdir(), "hcp-bench-claims-"));
  const { dynamodb, doc } = createDynamoClients({ endpoint: database.endpoint, region: "us-east-1" });
  try {
    const secretStore = await LocalSecretStore.open(dataDir);
    console.log(
      `claims bench: full stack over loopback HTTP, DynamoDB Local in memory; ${JOBS} queued jobs per throughput run, ` +
        `${LATENCY_SECONDS} s of jobs arriving every ${ARRIVAL_MEAN_MS} ms on average per latency run, ` +
        `claim interval ${defaultLifecycleSettings.claimIntervalSeconds} s ± 10 %`,
    );
    const throughputs: Throughput[] = [];
    const latencies: Latency[] = [];
    for (const agents of AGENT_COUNTS) {
      const cp = await startControlPlane(database.endpoint, doc, secretStore, dataDir);
      try {
        throughputs.push(await throughput(cp, agents));
      } finally {
        await cp.close();
      }
    }
    for (const agents of AGENT_COUNTS) {
      const cp = await startControlPlane(database.endpoint, doc, secretStore, dataDir);
      try {
        latencies.push(await latency(cp, agents));
      } finally {
        await cp.close();
      }
    }
    console.log("\nClaims by N concurrent agents (one control plane process)");
    table(
      [
        "agents",
        "jobs claimed",
        "seconds",
        "claims/s",
        "double claims",
        "non-200 replies",
        "queue-to-claim p50 ms",
        "p99 ms",
        "samples",
      ],
      throughputs.map((row, index) => {
        const wait = latencies[index]!;
        return [
          String(row.agents),
          String(row.jobs),
          row.seconds.toFixed(2),
          row.perSecond.toFixed(0),
          String(row.doubleClaims),
          String(row.emptyClaims),
          wait.p50.toFixed(0),
          wait.p99.toFixed(0),
          String(wait.samples),
        ];
      }),
    );
  } finally {
    dynamodb.destroy();
    await database.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await runClaimsBench();
}
