/**
 * Signed heartbeats through the full stack (RFC 9421 signature check, nonce, zod validation, the
 * heartbeat write) over loopback HTTP, beside two bare express routes served by the same process on the
 * same DynamoDB Local: one PutItem (the limit: one round trip), and the same DynamoDB calls the landed
 * heartbeat makes without anything else (what the rest of the stack costs).
 *
 * Honest by construction: the server runs in a child process (the load generator does not share its
 * event loop); every scenario is warmed up first; scenarios alternate over several rounds so neither
 * gets the colder JVM; each request is signed just before it is sent (no signature can expire
 * mid-run); only 2xx replies count towards req/s and latency.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { decodeAgentSecret } from "../runtime/src/identity/agent-keys";
import { signRequest } from "../runtime/src/identity/http-signatures";
import { startDynamoDbLocal } from "../runtime/src/local/dynamodb-local";
import { createDynamoClients } from "../runtime/src/store/client";
import { ensureTables } from "../runtime/src/store/tables";
import { closedLoop, combine, type Figures, printTable } from "./support/measure";
import { report } from "./support/summary";

const CONCURRENCY = 10;
/** Seconds per scenario per round. */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARM_UP_SECONDS = 2;
const MAX_REQUESTS = 1_000_000;
const figures = {
  cpu_percent: 10,
  memory_percent: 20,
  disk_percent: 30,
  jobs_queued: 0,
  jobs_completed: 1,
  uptime_seconds: 60,
};

function post(
  agent: Agent,
  base: string,
  path: string,
  headers: Record<string, string>,
  body: string,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, base);
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: "POST",
        headers: { ...headers, "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const ok = (status: number) => status >= 200 && status < 300;

export async function runHeartbeatBench(): Promise<Figures[]> {
  const database = await startDynamoDbLocal({ startTimeoutMs: 180_000 });
  const dataDir = await mkdtemp(join(tmpdir(), "hcp-bench-"));
  const prefix = `bench-${Date.now()}-`;
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      fileURLToPath(new URL("./support/heartbeat-server.ts", import.meta.url)),
      database.endpoint,
      prefix,
      dataDir,
    ],
    {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    },
  );
  try {
    const { dynamodb } = createDynamoClients({ endpoint: database.endpoint, region: "us-east-1" });
    await ensureTables(dynamodb, prefix);
    dynamodb.destroy();
    const ready = await new Promise<{
      full: string;
      bare: string;
      agent: { agent_id: string; workload_identity_secret: string };
    }>((resolve, reject) => {
      let buffer = "";
      child.stdout!.on("data", (chunk) => {
        buffer += chunk;
        const line = buffer.split("\n")[0];
        if (buffer.includes("\n") && line) resolve(JSON.parse(line));
      });
      child.on("exit", (code) => reject(new Error(`bench server exited with ${code}`)));
    });
    const agentId = ready.agent.agent_id;
    const key = decodeAgentSecret(ready.agent.workload_identity_secret);
    console.log(
      `heartbeat bench: ${CONCURRENCY} concurrent clients over loopback HTTP, ${ROUNDS} alternating rounds of ` +
        `${SECONDS} s per scenario after ${WARM_UP_SECONDS} s of warm-up each, DynamoDB Local in memory`,
    );

    const http = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const body = JSON.stringify(figures);
    const path = `/agents/${agentId}/heartbeat`;
    const scenarios: { label: string; send: () => Promise<boolean> }[] = [
      {
        label: "bare express + 1 PutItem",
        send: async () =>
          ok(
            await post(
              http,
              ready.bare,
              `/bare/${agentId}/put`,
              { "content-type": "application/json" },
              body,
            ),
          ),
      },
      {
        label: "bare express + the heartbeat's DynamoDB calls",
        send: async () =>
          ok(
            await post(
              http,
              ready.bare,
              `/bare/${agentId}/same-calls`,
              { "content-type": "application/json" },
              body,
            ),
          ),
      },
      {
        label: "full stack: signed heartbeat",
        send: async () => {
          // Signed now: a signature older than the server's window would be refused (and not counted).
          const headers = await signRequest(
            { method: "POST", url: path, headers: { "content-type": "application/json" }, body },
            { keyId: agentId, key },
          );
          return ok(await post(http, ready.full, path, headers, body));
        },
      },
    ];
    for (const scenario of scenarios) {
      await closedLoop(
        "warm-up",
        { concurrency: CONCURRENCY, seconds: WARM_UP_SECONDS, maxRequests: MAX_REQUESTS },
        () => scenario.send(),
      );
    }
    const runs = new Map<string, Figures[]>(scenarios.map((scenario) => [scenario.label, []]));
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order each round, so no scenario always runs first or last.
      for (let step = 0; step < scenarios.length; step++) {
        const scenario = scenarios[(round + step) % scenarios.length]!;
        runs
          .get(scenario.label)!
          .push(
            await closedLoop(
              scenario.label,
              { concurrency: CONCURRENCY, seconds: SECONDS, maxRequests: MAX_REQUESTS },
              () => scenario.send(),
            ),
          );
      }
    }
    http.destroy();
    const [put, same, full] = scenarios.map((scenario) => combine(runs.get(scenario.label)!)) as [
      Figures,
      Figures,
      Figures,
    ];
    printTable("Heartbeats over loopback HTTP (baseline: bare express + 1 PutItem)", [put, same, full], put);
    report({
      figure: "signed heartbeat, full stack (HTTP, 10 clients)",
      value: full.perSecond,
      unit: "2xx/s",
      baseline: { label: "bare express + 1 PutItem", value: put.perSecond },
      ratio: full.perSecond / put.perSecond,
      goal: ">= 0.8x",
      detail: `p50 ${full.p50.toFixed(1)} ms vs ${put.p50.toFixed(1)} ms; non-2xx ${full.errors}; bare route making the heartbeat's own DynamoDB calls: ${same.perSecond.toFixed(0)}/s`,
    });
    return [put, same, full];
  } finally {
    child.kill("SIGTERM");
    await database.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await runHeartbeatBench();
}
