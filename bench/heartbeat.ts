/**
 * Heartbeats through the full stack (RFC 9421 signature check + zod validation + DynamoDB write) beside
 * a bare express route doing the same single write to the same DynamoDB Local, over loopback HTTP; then
 * the same pair through the Lambda handler in-process (serverless-http, API Gateway v2 events).
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import serverless from "serverless-http";
import { loadEnv } from "../runtime/src/config/env";
import { decodeAgentSecret } from "../runtime/src/identity/agent-keys";
import { signRequest } from "../runtime/src/identity/http-signatures";
import { createApiHandler } from "../runtime/src/lambda/api";
import { startDynamoDbLocal } from "../runtime/src/local/dynamodb-local";
import { createLogger } from "../runtime/src/logger";
import { createRuntime } from "../runtime/src/runtime";
import { LocalSecretStore } from "../runtime/src/secrets/local-secret-store";
import { createDynamoClients } from "../runtime/src/store/client";
import { ensureTables } from "../runtime/src/store/tables";
import { httpApiEvent, lambdaContext } from "../test/support/apigateway-event";
import { bareHeartbeatApp } from "./support/bare-heartbeat";
import { closedLoop, type Figures, printBars, printTable } from "./support/measure";

const CONCURRENCY = 10;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const MAX_REQUESTS = 20_000;
const figures = {
  cpu_percent: 10,
  memory_percent: 20,
  disk_percent: 30,
  jobs_queued: 0,
  jobs_completed: 1,
  uptime_seconds: 60,
};

interface Signed {
  path: string;
  headers: Record<string, string>;
  body: string;
}

async function presign(agentId: string, key: Uint8Array, count: number): Promise<Signed[]> {
  const body = JSON.stringify(figures);
  const path = `/agents/${agentId}/heartbeat`;
  const signed: Signed[] = [];
  for (let index = 0; index < count; index++) {
    const headers = await signRequest(
      { method: "POST", url: path, headers: { "content-type": "application/json" }, body },
      { keyId: agentId, key },
    );
    signed.push({ path, headers, body });
  }
  return signed;
}

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

export async function runHeartbeatBench(): Promise<Figures[]> {
  const database = await startDynamoDbLocal({});
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
    const { dynamodb, doc } = createDynamoClients({ endpoint: database.endpoint, region: "us-east-1" });
    await ensureTables(dynamodb, prefix);
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
      `heartbeat bench: ${CONCURRENCY} concurrent clients, ${SECONDS} s per scenario, DynamoDB Local in memory`,
    );

    const http = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const signedForHttp = await presign(agentId, key, MAX_REQUESTS);
    const body = JSON.stringify(figures);
    const bareHttp = await closedLoop(
      "bare express + 1 DynamoDB write (HTTP)",
      { concurrency: CONCURRENCY, seconds: SECONDS, maxRequests: MAX_REQUESTS },
      async () =>
        (await post(
          http,
          ready.bare,
          `/bare/${agentId}/heartbeat`,
          { "content-type": "application/json" },
          body,
        )) === 200,
    );
    const fullHttp = await closedLoop(
      "full stack: signature + zod + write (HTTP)",
      { concurrency: CONCURRENCY, seconds: SECONDS, maxRequests: MAX_REQUESTS },
      async (index) => {
        const signed = signedForHttp[index]!;
        return (await post(http, ready.full, signed.path, signed.headers, signed.body)) === 200;
      },
    );
    http.destroy();
    child.kill("SIGTERM");

    // In-process Lambda: the same handler the platform deploys, API Gateway v2 events.
    const env = loadEnv({
      HYBRID_CICD_TABLE_PREFIX: prefix,
      HYBRID_CICD_DATA_DIR: dataDir,
      DYNAMODB_ENDPOINT: database.endpoint,
    });
    const runtime = createRuntime({
      env,
      doc,
      secretStore: await LocalSecretStore.open(dataDir),
      logger: createLogger({ level: "silent" }),
    });
    const handler = createApiHandler(runtime);
    const bareApp = bareHeartbeatApp(doc, runtime.store.tables.agents);
    const bareHandler = serverless(bareApp) as unknown as typeof handler;
    const signedForLambda = await presign(agentId, key, MAX_REQUESTS);
    const bareLambda = await closedLoop(
      "bare express + 1 write (Lambda in-process)",
      { concurrency: CONCURRENCY, seconds: SECONDS, maxRequests: MAX_REQUESTS },
      async () => {
        const result = await bareHandler(
          httpApiEvent("POST", `/bare/${agentId}/heartbeat`, {
            headers: { "content-type": "application/json" },
            body,
          }),
          lambdaContext,
        );
        return result.statusCode === 200;
      },
    );
    const fullLambda = await closedLoop(
      "full stack (Lambda in-process)",
      { concurrency: CONCURRENCY, seconds: SECONDS, maxRequests: MAX_REQUESTS },
      async (index) => {
        const signed = signedForLambda[index]!;
        const result = await handler(
          httpApiEvent("POST", signed.path, { headers: signed.headers, body: signed.body }),
          lambdaContext,
        );
        return result.statusCode === 200;
      },
    );
    dynamodb.destroy();

    printTable(
      "Heartbeats over loopback HTTP (baseline: bare express route, same single write)",
      [bareHttp, fullHttp],
      bareHttp,
    );
    printTable("Heartbeats through the Lambda handler in-process", [bareLambda, fullLambda], bareLambda);
    printBars(
      "Heartbeats per second",
      [bareHttp, fullHttp, bareLambda, fullLambda].map((row) => ({
        label: row.label,
        value: row.perSecond,
        unit: "req/s",
      })),
    );
    return [bareHttp, fullHttp, bareLambda, fullLambda];
  } finally {
    child.kill("SIGTERM");
    await database.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await runHeartbeatBench();
}
