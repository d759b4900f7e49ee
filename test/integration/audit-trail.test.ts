import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadEnv } from "../../runtime/src/config/env";
import type { AuditEvent } from "../../runtime/src/domain/audit/audit-event";
import { verifyExport } from "../../runtime/src/domain/audit/audit-export";
import { parsePublicKeys } from "../../runtime/src/domain/audit/audit-signing";
import { systemContext } from "../../runtime/src/domain/principal";
import { createApiHandler } from "../../runtime/src/lambda/api";
import { createLogger } from "../../runtime/src/logger";
import { createRuntime } from "../../runtime/src/runtime";
import { LocalSecretStore } from "../../runtime/src/secrets/local-secret-store";
import { httpApiEvent, lambdaContext } from "../support/apigateway-event";
import { runCli } from "../support/cli";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";
import { freshTables } from "../support/dynamodb";

let cp: TestControlPlane;
let admin: string;
let auditor: string;
let scratch: string;

beforeAll(async () => {
  cp = await startTestControlPlane("audit-trail");
  admin = await cp.token("admin");
  auditor = await cp.token("auditor");
  scratch = await mkdtemp(join(tmpdir(), "hcp-audit-"));
});
afterAll(async () => {
  await cp.close();
  await rm(scratch, { recursive: true, force: true });
});

async function events(query: string): Promise<AuditEvent[]> {
  const response = await cp.request("GET", `/audit/events?${query}`, { token: auditor });
  expect(response.status).toBe(200);
  return response.body.events;
}

describe("recording", () => {
  it("writes a change's event with it, chained to the previous one", async () => {
    const before = (await cp.runtime.store.audit.head("main"))!;
    const created = await cp.request("POST", "/jobs?git_ref=main", { token: admin });
    expect(created.status).toBe(201);
    const [event] = await events(`target=job:${created.body.job_id}`);
    expect(event).toMatchObject({
      action: "job.create",
      outcome: "success",
      environment: "test",
      target: { type: "job", id: created.body.job_id },
      actor: { type: "user", ip: expect.any(String) },
      request_id: created.headers.get("x-request-id"),
      seq: before.seq + 1,
      prev_hash: before.hash,
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      event_id: expect.stringMatching(/^[0-9A-HJKMNP-TV-Z]{26}$/),
    });
  });

  it("keeps a refused change's domain error and writes no event for it", async () => {
    const agent = await cp.registerAgent();
    expect((await cp.request("POST", `/agents/${agent.agentId}/revoke`, { token: admin })).status).toBe(200);
    const head = (await cp.runtime.store.audit.head("main"))!;
    const again = await cp.request("POST", `/agents/${agent.agentId}/revoke`, { token: admin });
    expect(again.status).toBe(409);
    expect((await cp.runtime.store.audit.head("main"))!.seq).toBe(head.seq);
  });

  it("records agent config reads and health changes, not every heartbeat", async () => {
    const agent = await cp.registerAgent({ name: "audited" });
    expect((await cp.agentRequest(agent, "GET", `/agents/${agent.agentId}/config`)).status).toBe(200);
    const figures = {
      cpu_percent: 10,
      memory_percent: 20,
      disk_percent: 30,
      jobs_queued: 0,
      jobs_completed: 0,
      uptime_seconds: 5,
    };
    for (let beat = 0; beat < 3; beat++) {
      expect(
        (await cp.agentRequest(agent, "POST", `/agents/${agent.agentId}/heartbeat`, figures)).status,
      ).toBe(200);
    }
    const busy = { ...figures, cpu_percent: 99 };
    expect((await cp.agentRequest(agent, "POST", `/agents/${agent.agentId}/heartbeat`, busy)).status).toBe(
      200,
    );

    const trail = await events(`target=agent:${agent.agentId}&order=asc`);
    expect(trail.map((event) => event.action)).toEqual([
      "agent.register",
      "agent.config.read",
      "agent.health.change",
      "agent.health.change",
    ]);
    expect(trail[2]!.details).toMatchObject({ from: "dead", to: "healthy" });
    expect(trail[3]!.details).toMatchObject({ from: "healthy", to: "unhealthy", cpu_percent: 99 });
    expect(trail[1]).toMatchObject({ actor: { type: "agent", id: agent.agentId } });
  });

  it("counts a flood of refused requests without holding them up, then writes one event per client and route", async () => {
    const head = (await cp.runtime.store.audit.head("main"))!;
    const started = performance.now();
    const refused = await Promise.all(
      Array.from({ length: 300 }, () => cp.request("GET", "/jobs", { token: "hcp_not-a-real-token" })),
    );
    const elapsed = performance.now() - started;
    expect(refused.every((response) => response.status === 401)).toBe(true);
    // Nothing went into the chain while the refusals were answered.
    expect((await cp.runtime.store.audit.head("main"))!.seq).toBe(head.seq);
    expect(elapsed).toBeLessThan(15_000);

    const viewer = await cp.token("viewer");
    expect((await cp.request("GET", "/audit/events", { token: viewer })).status).toBe(403);
    await cp.runtime.audit.flush();

    const denied = await events("action=request.denied&outcome=denied");
    const flood = denied.find((event) => event.target.id === "GET /jobs")!;
    expect(flood.details).toMatchObject({ status: 401, count: 300 });
    expect((flood.details!.credential_hmacs as string[]).length).toBe(1);
    expect(JSON.stringify(flood)).not.toContain("hcp_not-a-real-token");
    const forbidden = denied.find((event) => event.target.id === "GET /audit/events")!;
    expect(forbidden).toMatchObject({ actor: { type: "user" }, details: { status: 403, count: 1 } });
  });

  it("emits every committed event as one JSON log line", async () => {
    const tables = await freshTables("audit-log");
    const dataDir = await mkdtemp(join(tmpdir(), "hcp-audit-log-"));
    const lines: string[] = [];
    const logger = createLogger({
      level: "info",
      destination: { write: (line: string) => void lines.push(line) },
    });
    const env = loadEnv({
      HYBRID_CICD_ENVIRONMENT: "logtest",
      HYBRID_CICD_TABLE_PREFIX: tables.prefix,
      HYBRID_CICD_DATA_DIR: dataDir,
      DYNAMODB_ENDPOINT: tables.endpoint,
    });
    try {
      const runtime = createRuntime({
        env,
        doc: tables.doc,
        secretStore: await LocalSecretStore.open(dataDir),
        logger,
      });
      const { token_id } = await runtime.credentials.createApiToken(
        { role: "viewer", name: "log" },
        systemContext("test"),
      );
      const logged = lines.map((line) => JSON.parse(line)).filter((line) => line.msg === "audit event");
      expect(logged).toHaveLength(1);
      const stored = await runtime.store.audit.eventAt("main", 1);
      expect(logged[0].audit_event).toEqual(stored);
      expect(stored).toMatchObject({
        action: "token.create",
        environment: "logtest",
        target: { id: token_id },
      });
      expect(lines.join("")).not.toMatch(/hcp_[A-Za-z0-9_-]{20,}/);
    } finally {
      await tables.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe("GET /audit/events", () => {
  it("filters by actor, action, outcome and period, newest or oldest first, page by page", async () => {
    const from = new Date().toISOString();
    const ids: string[] = [];
    for (let index = 0; index < 5; index++) {
      ids.push((await cp.request("POST", `/jobs?git_ref=page-${index}`, { token: admin })).body.job_id);
    }
    const to = new Date().toISOString();
    const mine = await events(
      `actor=user:token:test-admin&action=job.create&from=${from}&to=${to}&order=asc`,
    );
    expect(mine.map((event) => event.target.id)).toEqual(ids);

    const seen: string[] = [];
    let cursor: string | null = "";
    while (cursor !== null) {
      const page = await cp.request(
        "GET",
        `/audit/events?action=job.*&from=${from}&limit=2${cursor ? `&cursor=${cursor}` : ""}`,
        { token: auditor },
      );
      expect(page.body.events.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.events.map((event: AuditEvent) => event.target.id));
      cursor = page.body.next_cursor;
    }
    expect(seen).toEqual([...ids].reverse());
    expect(await events(`outcome=error&from=${from}`)).toEqual([]);
  });

  it("answers bad input with 400 problem+json naming the field", async () => {
    for (const [query, field] of [
      ["from=yesterday", "query.from"],
      ["limit=0", "query.limit"],
      ["order=sideways", "query.order"],
      ["actor=alice", "query.actor"],
      ["colour=red", "query"],
      ["from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "query.from"],
      ["cursor=bm90LWEtY3Vyc29y", "cursor"],
    ] as const) {
      const response = await cp.request("GET", `/audit/events?${query}`, { token: auditor });
      expect(response.status, query).toBe(400);
      expect(response.headers.get("content-type")).toMatch(/application\/problem\+json/);
      expect(response.body.errors.map((error: { field: string }) => error.field).join(" "), query).toContain(
        field,
      );
    }
  });

  it("is refused to roles without audit:read", async () => {
    for (const role of ["operator", "viewer"] as const) {
      const response = await cp.request("GET", "/audit/events", { token: await cp.token(role) });
      expect(response.status).toBe(403);
    }
    expect((await cp.request("GET", "/audit/events")).status).toBe(401);
  });
});

describe("export, digests and verification", () => {
  it("publishes the digest key without sign-in and signs the head on demand", async () => {
    const key = await cp.request("GET", "/audit/public-key");
    expect(key.status).toBe(200);
    expect(key.body).toMatchObject({
      algorithm: "Ed25519",
      key_id: expect.stringMatching(/^ed25519:[0-9a-f]{16}$/),
    });
    const digest = await cp.request("POST", "/audit/digests", { token: await cp.token("admin") });
    expect(digest.status).toBe(201);
    const head = (await cp.runtime.store.audit.head("main"))!;
    expect(digest.body).toMatchObject({
      head_seq: head.seq,
      head_hash: head.hash,
      key_id: key.body.key_id,
      reason: "on_demand",
    });
  });

  it("streams an export that the CLI verifies offline with the published key, and records the export", async () => {
    const response = await cp.request("GET", "/audit/export?format=jsonl", { token: auditor });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/jsonl/);
    expect(response.headers.get("content-disposition")).toMatch(
      /attachment; filename="audit-test-.*\.jsonl"/,
    );
    const file = join(scratch, "export.jsonl");
    const keyFile = join(scratch, "public-key.json");
    await writeFile(file, response.body);
    await writeFile(keyFile, JSON.stringify((await cp.request("GET", "/audit/public-key")).body));

    const verified = await runCli(["verify", file, "--public-key", keyFile]);
    expect(verified.stderr).toBe("");
    expect(verified.stdout).toMatch(/VERIFIED/);
    expect(verified.code).toBe(0);

    const lines = (response.body as string).trim().split("\n");
    const exported = lines.map((line) => JSON.parse(line));
    expect(exported[0]).toMatchObject({ record: "header", first_seq: 1, environment: "test" });
    expect(exported.at(-1)).toMatchObject({ record: "end" });
    const exportEvent = exported.filter((record) => record.record === "event").at(-1);
    expect(exportEvent).toMatchObject({ action: "audit.export", actor: { id: "token:test-auditor" } });
  });

  it("exports a period on its own, still sealed by a digest", async () => {
    const from = new Date().toISOString();
    await cp.request("POST", "/jobs?git_ref=period", { token: admin });
    const to = new Date().toISOString();
    await cp.request("POST", "/jobs?git_ref=after", { token: admin });
    const response = await cp.request("GET", `/audit/export?from=${from}&to=${to}`, { token: auditor });
    const keys = parsePublicKeys(JSON.stringify((await cp.request("GET", "/audit/public-key")).body));
    const report = await verifyExport((response.body as string).split("\n"), { publicKeys: keys });
    expect(report.ok).toBe(true);
    expect(report.first_seq).toBeGreaterThan(1);
    expect(report.sealed_through_seq).toBe(report.last_seq);
  });

  it("re-verifies the stored chain and reports no break", async () => {
    const response = await cp.request("GET", "/audit/verify", { token: auditor });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ ok: true, first_problem: null, problem_count: 0 });
    expect(response.body.events).toBe(response.body.head.seq);
    expect(response.body.key_ids.length).toBeGreaterThan(0);
  });

  it("exports through the Lambda handler too (API Gateway payload 2.0), whole and verifiable", async () => {
    const handler = createApiHandler(cp.runtime);
    const result = await handler(
      httpApiEvent("GET", "/audit/export", { headers: { authorization: `Bearer ${auditor}` } }),
      lambdaContext,
    );
    expect(result.statusCode).toBe(200);
    const text = result.isBase64Encoded ? Buffer.from(result.body!, "base64").toString("utf8") : result.body!;
    const keys = parsePublicKeys(JSON.stringify((await cp.request("GET", "/audit/public-key")).body));
    expect((await verifyExport(text.split("\n"), { publicKeys: keys })).ok).toBe(true);
  });

  it("exits 2 when the export file cannot be read", async () => {
    const missing = await runCli(["verify", join(scratch, "missing.jsonl")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/does not exist/);
  });

  it("refuses a bad export format or period with 400", async () => {
    expect((await cp.request("GET", "/audit/export?format=csv", { token: auditor })).status).toBe(400);
    expect((await cp.request("GET", "/audit/verify?to=tomorrow", { token: auditor })).status).toBe(400);
  });
});
