/**
 * Job claims through the full stack (RFC 9421 signature check, the claim use case, its conditional
 * DynamoDB transaction with the audit event) over loopback HTTP, against DynamoDB Local in memory:
 *
 * 1. throughput: N agents (1, 8, 32) claim from a deep queue as fast as they can; jobs claimed per
 *    second (200 replies only), and double claims (a job claimed twice for one attempt: must be 0).
 *    Baseline, alternating with each run on its own fresh queue: raw TransactWriteItems writing the same
 *    items a claim writes (the job's conditional update, the agent's active check, the job-count move,
 *    the sealed audit event, the conditional chain head move), one after another as the single audit chain requires — no HTTP, no signature, no
 *    queue query: the limit for an audited claim on this database;
 * 2. queue-to-claim latency: N idle reference-agent loops at the default claim interval (with its ±10 %
 *    jitter) while jobs arrive at random; p50/p90/max from a job's creation to its claim (p99 only with
 *    at least 100 samples).
 *
 * `npx tsx bench/claims.ts` or `npm run bench -- claims`. BENCH_CLAIM_JOBS (default 300) sets the queue
 * depth, BENCH_LATENCY_SECONDS (default 25) the length of each latency run.
 */
import { randomBytes } from "node:crypto";
import { setMaxListeners } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { type DynamoDBDocumentClient, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { ulid } from "ulid";
import { jittered, sleep } from "../runtime/src/agent/backoff";
import { type AgentIdentity, signedFetch } from "../runtime/src/agent/signed-fetch";
import { loadEnv } from "../runtime/src/config/env";
import { auditSealing } from "../runtime/src/domain/audit/audit-event";
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
import { enoughFor, median, percentile } from "./support/measure";
import { report } from "./support/summary";

const AGENT_COUNTS = [1, 8, 32];
const LATENCY_AGENT_COUNTS = [1, 32];
const JOBS = Number(process.env.BENCH_CLAIM_JOBS ?? 300);
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 25);
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
  p90: number;
  p99: number;
  max: number;
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

async function throughput(cp: BenchControlPlane, agents: number, jobCount: number): Promise<Throughput> {
  const jobIds = await queueJobs(cp.runtime, jobCount);
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

/**
 * The baseline: the items a claim writes, built by the same repository code (the job's conditional
 * update, the agent's active check, the job-count move; the sealed `job.claim` event and the
 * conditional head move), sent as raw TransactWriteItems
 * one after another (one audit chain takes one append at a time) on a fresh queue of the same depth.
 */
async function rawClaims(cp: BenchControlPlane, jobCount: number): Promise<Throughput> {
  const jobIds = await queueJobs(cp.runtime, jobCount);
  const jobs = await Promise.all(jobIds.map((id) => cp.runtime.store.jobs.get(id)));
  const store = cp.runtime.store;
  const chain = auditSealing.defaultChain;
  let head = (await store.audit.head(chain))!;
  // A registered, active agent: the claim's condition on the agent item must hold for it.
  const [{ agentId }] = (await registerAgents(cp.runtime, 1)) as [AgentIdentity];
  let claimed = 0;
  let refused = 0;
  const started = performance.now();
  for (const job of jobs) {
    const now = new Date();
    const leaseExpiresAt = new Date(now.getTime() + 600_000).toISOString();
    const tx = store.transaction();
    const margin =
      defaultLifecycleSettings.cancelGraceSeconds + 2 * defaultLifecycleSettings.jobHeartbeatIntervalSeconds;
    const deadlineAt = new Date(now.getTime() + (job!.timeout_seconds + margin) * 1000).toISOString();
    const attempt = store.jobs.claim(
      tx,
      job!,
      { agentId, now: now.toISOString(), leaseExpiresAt, deadlineAt },
      () => Error("lost"),
    );
    store.agents.assertActive(tx, agentId, () => Error("revoked"));
    store.jobCounts.move(tx, "queued", "running");
    tx.audit({
      action: "job.claim",
      actor: { type: "agent", id: agentId, ip: "127.0.0.1" },
      target: { type: "job", id: job!.job_id },
      outcome: "success",
      request_id: `raw-${job!.job_id}`,
      details: { attempt, tags: job!.tags, queue_wait_seconds: 0, lease_expires_at: leaseExpiresAt },
    });
    const time = head.time !== null && head.time > now.toISOString() ? head.time : now.toISOString();
    const event = auditSealing.seal(tx.auditDrafts[0]!, {
      seq: head.seq + 1,
      prevHash: head.hash,
      time,
      eventId: ulid(Date.parse(time)),
      environment: "local",
    });
    const auditItems = store.audit.appendItems(chain, [event], head, { id: "raw-baseline", now: Date.now() });
    try {
      await store.doc.send(new TransactWriteCommand({ TransactItems: [...tx.items, ...auditItems] }));
      head = { seq: event.seq, hash: event.hash, time: event.time };
      claimed++;
    } catch {
      refused++;
      head = (await store.audit.head(chain))!;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  // The control plane's cached head is now stale: let it read the head again.
  store.auditChain.forgetHead();
  return {
    agents: 0,
    jobs: claimed,
    seconds,
    perSecond: claimed / seconds,
    doubleClaims: 0,
    emptyClaims: refused,
  };
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
  return {
    agents,
    samples: waits.length,
    p50: percentile(waits, 50),
    p90: enoughFor(90, waits.length) ? percentile(waits, 90) : Number.NaN,
    p99: enoughFor(99, waits.length) ? percentile(waits, 99) : Number.NaN,
    max: waits.at(-1) ?? Number.NaN,
    missed: created - waits.length,
  } as Latency;
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
  const database = await startDynamoDbLocal({ startTimeoutMs: 180_000 });
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
    const baselines: Throughput[] = [];
    const latencies: Latency[] = [];
    const cp = await startControlPlane(database.endpoint, doc, secretStore, dataDir);
    try {
      // Warm-up of DynamoDB Local's JVM and this process: a short run of each, not reported.
      await throughput(cp, 8, 60);
      await rawClaims(cp, 60);
      for (const agents of AGENT_COUNTS) {
        // Alternate which goes first, so neither always gets the warmer database.
        if (agents % 2 === 0) {
          baselines.push(await rawClaims(cp, JOBS));
          throughputs.push(await throughput(cp, agents, JOBS));
        } else {
          throughputs.push(await throughput(cp, agents, JOBS));
          baselines.push(await rawClaims(cp, JOBS));
        }
      }
    } finally {
      await cp.close();
    }
    for (const agents of LATENCY_AGENT_COUNTS) {
      const fresh = await startControlPlane(database.endpoint, doc, secretStore, dataDir);
      try {
        latencies.push(await latency(fresh, agents));
      } finally {
        await fresh.close();
      }
    }
    console.log("\nClaims by N concurrent agents (one control plane process), beside raw TransactWriteItems");
    table(
      [
        "agents",
        "jobs claimed",
        "seconds",
        "claims/s",
        "raw tx/s",
        "vs raw",
        "double claims",
        "non-200 replies",
      ],
      throughputs.map((row, index) => {
        const raw = baselines[index]!;
        return [
          String(row.agents),
          String(row.jobs),
          row.seconds.toFixed(2),
          row.perSecond.toFixed(0),
          raw.perSecond.toFixed(0),
          `${(row.perSecond / raw.perSecond).toFixed(2)}x`,
          String(row.doubleClaims),
          String(row.emptyClaims),
        ];
      }),
    );
    const ms = (value: number) => (Number.isFinite(value) ? value.toFixed(0) : "n/a");
    console.log("\nQueue-to-claim at the default claim interval (jobs arriving at random)");
    table(
      ["agents", "samples", "missed", "p50 ms", "p90 ms", "p99 ms", "max ms"],
      latencies.map((row) => [
        String(row.agents),
        String(row.samples),
        String((row as Latency & { missed: number }).missed),
        ms(row.p50),
        ms(row.p90),
        ms(row.p99),
        ms(row.max),
      ]),
    );
    const at32 = throughputs.at(-1)!;
    const raw32 = baselines.at(-1)!;
    report({
      figure: `claim throughput, ${at32.agents} agents (HTTP, signed)`,
      value: at32.perSecond,
      unit: "claims/s",
      baseline: { label: "raw TransactWriteItems, same items", value: raw32.perSecond },
      ratio: at32.perSecond / raw32.perSecond,
      goal: ">= 0.8x, 0 double claims",
      detail: `double claims ${at32.doubleClaims}; ${at32.jobs} jobs; raw runs median ${median(baselines.map((b) => b.perSecond)).toFixed(0)}/s`,
    });
    const one = latencies[0]!;
    report({
      figure: "queue-to-claim, 1 agent, default settings",
      value: one.max,
      unit: "ms max",
      goal: "every job < 1000 ms",
      detail: `p50 ${ms(one.p50)} ms, p90 ${ms(one.p90)} ms, ${one.samples} samples`,
    });
  } finally {
    dynamodb.destroy();
    await database.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await runClaimsBench();
}
