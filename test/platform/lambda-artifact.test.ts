import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadEnv } from "@hybrid-cicd/runtime/config/env";
import { systemContext } from "@hybrid-cicd/runtime/domain/principal";
import { decodeAgentSecret } from "@hybrid-cicd/runtime/identity/agent-keys";
import { signRequest } from "@hybrid-cicd/runtime/identity/http-signatures";
import { createLogger } from "@hybrid-cicd/runtime/logger";
import { createRuntime } from "@hybrid-cicd/runtime/runtime";
import { LocalSecretStore } from "@hybrid-cicd/runtime/secrets/local-secret-store";
import { version } from "@hybrid-cicd/runtime/version";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  buildLambdaArtifact,
  type LambdaArtifact,
  lambdaArtifact,
  resolveLambdaEntry,
} from "../../platform/src/lambda-artifact";
import { httpApiEvent } from "../support/apigateway-event";
import { type FreshTables, freshTables } from "../support/dynamodb";
import { type LambdaProcess, startLambdaProcess } from "./support/lambda-process";
import { readZip, type ZipEntry } from "./support/zip";

/**
 * The Lambda artifact exactly as the component builds it: deterministic, self-contained, and working
 * when unpacked and loaded in a fresh Node process the way the Lambda runtime loads it.
 */

interface HttpResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  isBase64Encoded?: boolean;
}

/** Unpacks an artifact into an empty directory (no node_modules anywhere above it that could help). */
async function unpack(artifact: LambdaArtifact): Promise<{ directory: string; entries: ZipEntry[] }> {
  const directory = await mkdtemp(path.join(tmpdir(), "hybrid-cicd-lambda-test-"));
  const entries = readZip(artifact.zip);
  for (const entry of entries) {
    await mkdir(path.dirname(path.join(directory, entry.name)), { recursive: true });
    await writeFile(path.join(directory, entry.name), entry.contents);
  }
  return { directory, entries };
}

const handlerModule = (directory: string, artifact: LambdaArtifact) =>
  path.join(directory, `${artifact.handler.split(".")[0]}.mjs`);

const json = (result: unknown) => {
  const response = result as HttpResult;
  const body = response.isBase64Encoded ? Buffer.from(response.body, "base64").toString() : response.body;
  return { status: response.statusCode, headers: response.headers, body: JSON.parse(body) };
};

describe("the API function's artifact", () => {
  let first: LambdaArtifact;
  let second: LambdaArtifact;
  let deployed: LambdaArtifact;
  let unpacked: { directory: string; entries: ZipEntry[] };

  beforeAll(async () => {
    const entry = resolveLambdaEntry("api");
    [first, second, deployed] = await Promise.all([
      buildLambdaArtifact(entry),
      buildLambdaArtifact(entry),
      lambdaArtifact("api"),
    ]);
    unpacked = await unpack(first);
  });

  afterAll(async () => {
    if (unpacked) await rm(unpacked.directory, { recursive: true, force: true });
  });

  test("is byte-identical when built twice from the same sources, and is what the component deploys", () => {
    expect(first.zip.equals(second.zip)).toBe(true);
    expect(first.sha256).toBe(second.sha256);
    expect(deployed.sha256).toBe(first.sha256);
    expect(first.sourceCodeHash).toBe(Buffer.from(first.sha256, "hex").toString("base64"));
    expect(first.handler).toBe("index.handler");
  });

  test("holds sorted entries with fixed timestamps and permissions and no extra metadata", () => {
    const names = unpacked.entries.map((entry) => entry.name);
    expect(names).toEqual([...names].sort());
    expect(names).toContain("index.mjs");
    for (const entry of unpacked.entries) {
      expect(entry.dosDate).toBe((0 << 9) | (1 << 5) | 1); // 1980-01-01
      expect(entry.dosTime).toBe(0);
      expect(entry.mode).toBe(0o100644);
      expect(entry.madeBy >> 8).toBe(3); // Unix, so the mode is honoured
      expect(entry.extraFieldLength).toBe(0);
    }
    const bundle = unpacked.entries.find((entry) => entry.name === "index.mjs")?.contents ?? Buffer.alloc(0);
    expect(bundle.toString()).not.toContain(path.resolve(import.meta.dirname, "../.."));
    expect(first.bundleBytes).toBe(bundle.length);
  });

  describe("unpacked and loaded in a fresh process", () => {
    let tables: FreshTables;
    let dataDirectory: string;
    let lambda: LambdaProcess;
    let adminToken: string;
    let variables: Record<string, string>;

    beforeAll(async () => {
      tables = await freshTables("lambda-artifact");
      dataDirectory = await mkdtemp(path.join(tmpdir(), "hybrid-cicd-lambda-data-"));
      variables = {
        HYBRID_CICD_ENVIRONMENT: "test",
        HYBRID_CICD_TABLE_PREFIX: tables.prefix,
        HYBRID_CICD_SECRET_STORE: "local",
        HYBRID_CICD_DATA_DIR: dataDirectory,
        DYNAMODB_ENDPOINT: tables.endpoint,
        AWS_REGION: "us-east-1",
        LOG_LEVEL: "silent",
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      };
      // An administrator's API token, minted by the runtime itself on the same tables and secret store.
      const runtime = createRuntime({
        env: loadEnv(variables),
        doc: tables.doc,
        secretStore: await LocalSecretStore.open(dataDirectory),
        logger: createLogger({ level: "silent" }),
      });
      adminToken = (
        await runtime.credentials.createApiToken(
          { role: "admin", name: "artifact-test" },
          systemContext("artifact-test"),
        )
      ).token;
      lambda = await startLambdaProcess(handlerModule(unpacked.directory, first), variables);
    });

    afterAll(async () => {
      await lambda?.close();
      await tables?.cleanup();
      if (dataDirectory) await rm(dataDirectory, { recursive: true, force: true });
    });

    test("answers GET /health from an API Gateway v2 event", async () => {
      const response = json(await lambda.invoke(httpApiEvent("GET", "/health")));
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ status: "healthy", version });
    });

    test("accepts a signed agent heartbeat against DynamoDB Local and refuses its replay", async () => {
      const admin = { authorization: `Bearer ${adminToken}`, "content-type": "application/json" };
      const registration = json(
        await lambda.invoke(
          httpApiEvent("POST", "/agents/registration-tokens", { headers: admin, body: "{}" }),
        ),
      );
      expect(registration.status).toBe(201);
      const registered = json(
        await lambda.invoke(
          httpApiEvent("POST", "/agents/register", {
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
              registration_token: registration.body.token,
              name: "artifact-agent",
              region: "eu-west-1",
            }),
          }),
        ),
      );
      expect(registered.status).toBe(201);
      const agentId: string = registered.body.agent_id;

      const heartbeatPath = `/agents/${agentId}/heartbeat`;
      const body = JSON.stringify({
        cpu_percent: 12.5,
        memory_percent: 40,
        disk_percent: 55,
        jobs_queued: 0,
        jobs_completed: 3,
        uptime_seconds: 3600,
      });
      const headers = await signRequest(
        { method: "POST", url: heartbeatPath, headers: { "content-type": "application/json" }, body },
        { keyId: agentId, key: decodeAgentSecret(registered.body.workload_identity_secret) },
      );
      const event = httpApiEvent("POST", heartbeatPath, { headers, body });

      const accepted = json(await lambda.invoke(event));
      expect(accepted.status).toBe(200);
      expect(accepted.body).toMatchObject({
        status: expect.any(String),
        next_check_interval: expect.any(Number),
      });

      const agent = json(
        await lambda.invoke(
          httpApiEvent("GET", `/agents/${agentId}`, { headers: { authorization: admin.authorization } }),
        ),
      );
      expect(agent.status).toBe(200);
      expect(agent.body).toMatchObject({ last_figures: { cpu_percent: 12.5, jobs_completed: 3 } });
      expect(agent.body.last_heartbeat_at).toEqual(expect.any(String));

      const replayed = json(await lambda.invoke(event));
      expect(replayed.status).toBe(401);
      expect(replayed.headers["content-type"]).toContain("application/problem+json");
    });

    test("draws a compliance report as PDF (pdfkit and its font data inside the zip)", async () => {
      const response = (await lambda.invoke(
        httpApiEvent("GET", "/reports/compliance?format=pdf", {
          headers: { authorization: `Bearer ${adminToken}` },
        }),
      )) as HttpResult;
      const body = Buffer.from(response.body, response.isBase64Encoded ? "base64" : "utf8");
      expect(response.statusCode, body.toString().slice(0, 500)).toBe(200);
      expect(response.headers["content-type"]).toContain("application/pdf");
      expect(response.isBase64Encoded).toBe(true);
      expect(body.subarray(0, 5).toString("latin1")).toBe("%PDF-");
      expect(body.subarray(-6).toString("latin1")).toContain("%%EOF");
      // The standard fonts the report draws with are embedded by name.
      expect(body.toString("latin1")).toMatch(/\/BaseFont \/Helvetica-Bold/);
    });

    test("the scheduled function's artifact runs the sweep EventBridge asks for, and refuses an unknown task", async () => {
      const artifact = await lambdaArtifact("scheduled");
      const scheduled = await unpack(artifact);
      const process = await startLambdaProcess(handlerModule(scheduled.directory, artifact), variables);
      try {
        const result = (await process.invoke({ task: "sweep" })) as Record<string, unknown>;
        expect(Object.keys(result)).toEqual(["sweep"]);
        await expect(process.invoke({ task: "vacuum" })).rejects.toThrow(/unknown maintenance task "vacuum"/);
      } finally {
        await process.close();
        await rm(scheduled.directory, { recursive: true, force: true });
      }
    });
  });
});

describe("the placeholder functions' artifacts", () => {
  const loaded: { directory: string; lambda: LambdaProcess }[] = [];

  async function load(kind: "console" | "rotation") {
    const artifact = await lambdaArtifact(kind);
    const { directory } = await unpack(artifact);
    const lambda = await startLambdaProcess(handlerModule(directory, artifact), {});
    loaded.push({ directory, lambda });
    return lambda;
  }

  afterAll(async () => {
    for (const { directory, lambda } of loaded) {
      await lambda.close();
      await rm(directory, { recursive: true, force: true });
    }
  });

  test("the console answers 503 problem+json saying it is not deployed yet", async () => {
    const lambda = await load("console");
    const response = json(await lambda.invoke(httpApiEvent("GET", "/console/jobs")));
    expect(response.status).toBe(503);
    expect(response.headers["content-type"]).toBe("application/problem+json");
    expect(response.body).toMatchObject({
      status: 503,
      detail: expect.stringContaining("console not deployed yet"),
    });
  });

  test("the rotation function loads and refuses a malformed rotation event before touching any secret", async () => {
    const lambda = await load("rotation");
    await expect(
      lambda.invoke({ Step: "deleteSecret", SecretId: "arn:aws:secretsmanager:x", ClientRequestToken: "t" }),
    ).rejects.toThrow(/Step|ClientRequestToken/);
  });
});
