import { execFileSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import yazl from "yazl";
import type { AuditEvent } from "../../runtime/src/domain/audit/audit-event";
import { leafHash, merkleRoot } from "../../runtime/src/domain/audit/merkle";
import type { RequestContext } from "../../runtime/src/domain/principal";
import { MANIFEST_FILE, SIGNATURE_FILE } from "../../runtime/src/domain/reports/evidence-bundle";
import type { ComplianceReport } from "../../runtime/src/domain/reports/report-schema";
import { readZip } from "../platform/support/zip";
import { runCli } from "../support/cli";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";

let cp: TestControlPlane;
let admin: string;
let operator: string;
let auditor: string;
let viewer: string;
let scratch: string;
let from: string;
const seeded = {
  stagingJob: "",
  productionJob: "",
  worker: "",
  productionWorker: "",
  revoked: "",
};
const tag = `rpt-${randomBytes(3).toString("hex")}`;
const context = (userAgent: string): RequestContext => ({
  requestId: `seed-${randomUUID()}`,
  ip: "198.51.100.7",
  userAgent,
  principal: { type: "system", id: "report-seed" },
});
const figures = {
  cpu_percent: 5,
  memory_percent: 10,
  disk_percent: 20,
  jobs_queued: 0,
  jobs_completed: 0,
  uptime_seconds: 1,
};

async function runJob(
  environment: "staging" | "production",
  worker: Awaited<ReturnType<TestControlPlane["registerAgent"]>>,
) {
  const created = await cp.request("POST", "/jobs", {
    token: admin,
    body: {
      git_ref: `refs/tags/${environment}-1`,
      repository: "https://git.example/app.git",
      environment,
      tags: [tag],
      command: "true",
    },
  });
  expect(created.status).toBe(201);
  const jobId: string = created.body.job_id;
  if (environment === "production") {
    expect((await cp.request("POST", `/jobs/${jobId}/approve`, { token: admin })).status).toBe(403);
    expect((await cp.request("POST", `/jobs/${jobId}/approve`, { token: operator })).status).toBe(200);
  }
  const claim = await cp.agentRequest(worker, "POST", `/agents/${worker.agentId}/jobs/claim`, {});
  expect(claim.status).toBe(200);
  expect(claim.body.job.job_id).toBe(jobId);
  const done = await cp.agentRequest(worker, "POST", `/jobs/${jobId}/complete`, {
    attempt: claim.body.attempt,
    status: "completed",
    exit_code: 0,
  });
  expect(done.status).toBe(200);
  return jobId;
}

beforeAll(async () => {
  cp = await startTestControlPlane("compliance-report");
  admin = await cp.token("admin");
  operator = await cp.token("operator");
  auditor = await cp.token("auditor");
  viewer = await cp.token("viewer");
  scratch = await mkdtemp(join(tmpdir(), "hcp-report-"));
  await new Promise((resolve) => setTimeout(resolve, 5));
  from = new Date().toISOString();
  await new Promise((resolve) => setTimeout(resolve, 5));

  // People: two bindings, three sign-ins (alice on two devices), two failed sign-ins, bob unbound.
  const seed = context("seed");
  await cp.runtime.bindings.put("google:alice-rpt", "admin", seed);
  await cp.runtime.bindings.put("google:bob-rpt", "viewer", seed);
  await cp.runtime.sessions.signInWithIdentity(
    { provider: "google", subject: "alice-rpt" },
    context("laptop"),
  );
  await cp.runtime.sessions.signInWithIdentity(
    { provider: "google", subject: "alice-rpt" },
    context("phone"),
  );
  await cp.runtime.sessions.signInWithIdentity({ provider: "google", subject: "bob-rpt" }, context("laptop"));
  await cp.runtime.bindings.remove("google:bob-rpt", seed);
  await cp.runtime.sessions.recordFailedSignIn("github", "state mismatch", context("attacker"));
  await cp.runtime.sessions.recordFailedSignIn("google", "email not verified", context("attacker"));

  // Jobs on staging and production (self-approval refused, then approved by a second person).
  // An agent belongs to the one environment its registration token granted (decision 010).
  const worker = await cp.registerAgent({ name: "rpt-worker", tags: [tag] });
  seeded.worker = worker.agentId;
  const productionWorker = await cp.registerAgent({
    name: "rpt-production-worker",
    tags: [tag],
    environment: "production",
  });
  seeded.productionWorker = productionWorker.agentId;
  seeded.stagingJob = await runJob("staging", worker);
  seeded.productionJob = await runJob("production", productionWorker);

  // A rotation of a key without dependants (it finishes at once, every step audited).
  await cp.runtime.rotation.start("auditSigningKey", { trigger: "api" }, seed);

  // A revoked agent that keeps heartbeating.
  const victim = await cp.registerAgent({ name: "rpt-revoked" });
  seeded.revoked = victim.agentId;
  expect((await cp.request("POST", `/agents/${victim.agentId}/revoke`, { token: admin })).status).toBe(200);
  expect((await cp.agentRequest(victim, "POST", `/agents/${victim.agentId}/heartbeat`, figures)).status).toBe(
    401,
  );
  await cp.runtime.audit.flush();
});
afterAll(async () => {
  await cp?.close();
  await rm(scratch, { recursive: true, force: true });
});

async function download(
  query: string,
  token = auditor,
): Promise<{ status: number; body: Buffer; headers: Headers }> {
  const response = await fetch(`${cp.url}/reports/compliance?${query}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return {
    status: response.status,
    body: Buffer.from(await response.arrayBuffer()),
    headers: response.headers,
  };
}

async function jsonReport(query = ""): Promise<ComplianceReport> {
  const response = await download(`from=${from}&format=json${query}`);
  expect(response.status).toBe(200);
  return JSON.parse(response.body.toString("utf8"));
}

async function periodEvents(report: ComplianceReport): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  for await (const event of cp.runtime.store.audit.events("main", 1)) {
    if (event.time >= from && event.time <= report.period.to) events.push(event);
  }
  return events;
}

describe("the report's figures, from a seeded history", () => {
  it("scope and summary: period, controls with ISO 27001 equivalents, a verified chain, the exceptions to sample", async () => {
    const report = await jsonReport();
    expect(report).toMatchObject({
      schema: "hybrid-cicd-compliance-report/1",
      schema_version: 1,
      environment: "test",
      period: { from },
      target_environment: null,
      generated_by: expect.stringMatching(/^user:/),
      report_id: expect.stringMatching(/^rpt_[0-9A-Z]{26}$/),
    });
    const { summary } = report.sections;
    expect(summary.controls.map((control) => control.id)).toEqual([
      "CC6.1",
      "CC6.2",
      "CC6.3",
      "CC6.6",
      "CC7.2",
      "CC8.1",
    ]);
    expect(summary.controls.find((control) => control.id === "CC8.1")).toMatchObject({
      iso27001: ["A.8.32", "A.8.9"],
      status: "exceptions",
      exceptions: 1,
    });
    expect(summary.chain_verification).toMatchObject({ ok: true, first_problem: null });
    expect(summary.exceptions.map((exception) => exception.kind).sort()).toEqual([
      "production_self_approval_attempt",
      "revoked_agent_heartbeating",
    ]);
    expect(summary.totals).toMatchObject({
      users: 2,
      sign_ins: 3,
      failed_sign_ins: 2,
      jobs: 2,
      production_jobs: 1,
    });
  });

  it("access: users, roles, devices, binding changes, failed sign-ins, tokens and refusals", async () => {
    const { access } = (await jsonReport()).sections;
    expect(access.users).toEqual([
      {
        user_id: "google:alice-rpt",
        role: "admin",
        sign_ins: 2,
        providers: { google: 2 },
        devices: 2,
        last_sign_in_at: expect.any(String),
      },
      {
        user_id: "google:bob-rpt",
        role: "viewer",
        sign_ins: 1,
        providers: { google: 1 },
        devices: 1,
        last_sign_in_at: expect.any(String),
      },
    ]);
    expect(
      access.role_binding_changes.map((change) => [
        change.subject,
        change.change,
        change.role,
        change.previous_role,
      ]),
    ).toEqual([
      ["google:alice-rpt", "put", "admin", null],
      ["google:bob-rpt", "put", "viewer", null],
      ["google:bob-rpt", "delete", null, "viewer"],
    ]);
    expect(access.sign_ins).toBe(3);
    expect(access.failed_sign_ins.map((failure) => [failure.provider, failure.reason, failure.ip])).toEqual([
      ["github", "state mismatch", "198.51.100.7"],
      ["google", "email not verified", "198.51.100.7"],
    ]);
    // The registration tokens of the two agents are the only credentials issued in the period.
    expect(access.api_tokens.issued).toEqual([]);
    expect(access.denied_requests.by_route).toContainEqual({
      route: "POST /agents/:agent_id/heartbeat",
      status: 401,
      count: 1,
    });
  });

  it("change management: each job with who, what, where, approval, agent and outcome", async () => {
    const { change_management: change } = (await jsonReport()).sections;
    expect(change.jobs).toHaveLength(2);
    const [staging, production] = change.jobs;
    expect(staging).toMatchObject({
      job_id: seeded.stagingJob,
      environment: "staging",
      queued_by: expect.stringMatching(/^user:/),
      git_ref: "refs/tags/staging-1",
      repository: "https://git.example/app.git",
      approved_by: null,
      agent_id: seeded.worker,
      attempts: 1,
      outcome: "completed",
      exit_code: 0,
    });
    expect(production).toMatchObject({
      job_id: seeded.productionJob,
      environment: "production",
      approved_by: expect.stringMatching(/^user:/),
      agent_id: seeded.productionWorker,
      outcome: "completed",
    });
    expect(production!.approved_by).not.toBe(production!.queued_by);
    expect(change.by_environment).toEqual({ production: 1, staging: 1 });
    expect(change.by_outcome).toEqual({ completed: 2 });
    expect(change.production_jobs).toEqual([seeded.productionJob]);
    expect(change.self_approval_attempts).toEqual([
      {
        seq: expect.any(Number),
        time: expect.any(String),
        job_id: seeded.productionJob,
        by: production!.queued_by,
      },
    ]);
    expect(change.unapproved_production_jobs).toEqual([]);

    const onlyProduction = (await jsonReport("&target_environment=production")).sections.change_management;
    expect(onlyProduction.jobs.map((job) => job.job_id)).toEqual([seeded.productionJob]);
  });

  it("secrets: each catalogued secret with its policy and age, and the rotation with its four steps", async () => {
    const { secrets } = (await jsonReport()).sections;
    expect(secrets.secrets.map((secret) => [secret.key, secret.max_age_days, secret.compliant])).toEqual([
      ["auditSigningKey", 90, true],
      ["oauthClientSecrets", null, null],
      ["workloadIdentityRootKey", 30, true],
    ]);
    const report = await jsonReport();
    const rotationEvents = (await periodEvents(report)).filter((event) =>
      event.action.startsWith("secret.rotate."),
    );
    expect(rotationEvents.length).toBeGreaterThanOrEqual(2);
    expect(
      report.sections.secrets.rotation_history.map((step) => [step.seq, step.secret, step.step]),
    ).toEqual(
      rotationEvents.map((event) => [
        event.seq,
        event.target.id,
        event.action.slice("secret.rotate.".length),
      ]),
    );
    expect(secrets.notes.join(" ")).toMatch(/not recorded by this version/);
  });

  it("agents: inventory, registrations, revocation, and the revoked agent still calling", async () => {
    const { agents } = (await jsonReport()).sections;
    expect(
      agents.inventory.map((agent) => [agent.agent_id, agent.health, agent.revoked_at !== null]),
    ).toEqual(
      [
        [seeded.worker, "dead", false],
        [seeded.productionWorker, "dead", false],
        [seeded.revoked, "revoked", true],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
    expect(
      agents.registrations.map((registration) => [registration.agent_id, registration.token_issued_by]),
    ).toEqual([
      [seeded.worker, expect.stringMatching(/^user:/)],
      [seeded.productionWorker, expect.stringMatching(/^user:/)],
      [seeded.revoked, expect.stringMatching(/^user:/)],
    ]);
    expect(agents.revocations.map((revocation) => revocation.agent_id)).toEqual([seeded.revoked]);
    expect(agents.revoked_still_heartbeating).toEqual([
      { agent_id: seeded.revoked, refused_requests: 1, last_at: expect.any(String) },
    ]);
  });

  it("monitoring: locally there is no deployment record, and the section says so", async () => {
    const { monitoring } = (await jsonReport()).sections;
    expect(monitoring).toMatchObject({ applicable: false, deployment: null });
    expect(monitoring.reason).toMatch(/pulumi up/);
  });

  it("evidence: every event of the period, counted by action, sealed by the digests listed", async () => {
    const report = await jsonReport();
    const { evidence } = report.sections;
    const events = await periodEvents(report);
    expect(evidence.events).toBe(events.length);
    expect(evidence.first_seq).toBe(events[0]!.seq);
    expect(evidence.last_seq).toBe(events.at(-1)!.seq);
    const byAction: Record<string, number> = {};
    for (const event of events) byAction[event.action] = (byAction[event.action] ?? 0) + 1;
    expect(evidence.by_action).toEqual(Object.fromEntries(Object.entries(byAction).sort()));
    expect(evidence.by_action["report.export"]).toBeGreaterThanOrEqual(1);
    expect(evidence.sealed).toBe(true);
    const last = evidence.digests.at(-1)!;
    expect(last.head_seq).toBeGreaterThanOrEqual(evidence.last_seq!);
    // The Merkle root a digest signs is the RFC 9162 tree head of events 1..head_seq.
    const leaves = [];
    for await (const event of cp.runtime.store.audit.events("main", 1, last.head_seq))
      leaves.push(leafHash(event.hash));
    expect(last.merkle_root).toBe(merkleRoot(leaves).toString("hex"));
  });

  it("records every export in the audit chain, and refuses a viewer and a bad period", async () => {
    const response = await download("format=json");
    const reportId = response.headers.get("x-report-id");
    const recorded = await cp.runtime.audit.list({
      target: `compliance_report:${reportId}`,
      limit: 5,
      order: "desc",
    });
    expect(recorded.events).toMatchObject([
      { action: "report.export", outcome: "success", details: { format: "json" } },
    ]);
    expect((await download("format=json", viewer)).status).toBe(403);
    const backwards = await download("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z");
    expect(backwards.status).toBe(400);
    expect(backwards.headers.get("content-type")).toMatch(/problem\+json/);
    expect((await download("format=docx")).status).toBe(400);
  });
});

describe("formats", () => {
  it("PDF: opens in a PDF reader, with a title page, the summary, every section and page numbers", async () => {
    const response = await download(`from=${from}&format=pdf`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/pdf");
    const file = join(scratch, "report.pdf");
    await writeFile(file, response.body);
    const text = execFileSync("pdftotext", ["-layout", file, "-"], { encoding: "utf8" });
    expect(text).toContain("Compliance report");
    expect(text).toContain("Environment: test");
    expect(text).toContain(response.headers.get("x-report-id")!);
    expect(text).toMatch(/Audit chain verified/);
    for (const heading of [
      "Summary",
      "Control matrix",
      "2. Access",
      "3. Change management",
      "4. Secrets",
      "5. Agents",
      "6. Monitoring and infrastructure",
      "7. Evidence",
    ])
      expect(text).toContain(heading);
    expect(text).toContain("CC8.1");
    expect(text).toContain(seeded.productionJob);
    const pages = Number(/page 1 of (\d+)/.exec(text)?.[1]);
    expect(pages).toBeGreaterThan(2);
    expect(text).toContain(`page ${pages} of ${pages}`);
  });

  it("CSV: one file per section table, zipped, with the rows of the JSON", async () => {
    const response = await download(`from=${from}&format=csv`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/zip");
    const files = new Map(
      readZip(response.body).map((entry) => [entry.name, entry.contents.toString("utf8")]),
    );
    expect([...files.keys()]).toEqual(
      expect.arrayContaining([
        "csv/1-controls.csv",
        "csv/2-users.csv",
        "csv/3-jobs.csv",
        "csv/4-secrets.csv",
        "csv/5-agents.csv",
        "csv/6-monitoring.csv",
        "csv/7-events.csv",
      ]),
    );
    const jobs = files.get("csv/3-jobs.csv")!.trim().split("\r\n");
    expect(jobs[0]).toBe(
      "job_id,environment,queued_by,queued_at,git_ref,repository,approved_by,agent_id,started_at,ended_at,outcome,exit_code",
    );
    expect(jobs.slice(1).map((line) => line.split(",")[0])).toEqual([
      seeded.stagingJob,
      seeded.productionJob,
    ]);
    const events = files.get("csv/7-events.csv")!.trim().split("\r\n");
    expect(events[0]).toBe("seq,time,action,outcome,actor,target,request_id,hash");
    expect(events.length - 1).toBeGreaterThan(20);
  });
});

// The CLI runs in child processes (tsx start-up takes seconds on a loaded machine): generous timeouts.
describe("the signed evidence bundle and `hybrid-cicd verify`", { timeout: 180_000 }, () => {
  let bundle: string;
  let keyFile: string;
  let entries: Map<string, Buffer>;

  beforeAll(async () => {
    const response = await download(`from=${from}&format=bundle`);
    expect(response.status).toBe(200);
    bundle = join(scratch, "bundle.zip");
    await writeFile(bundle, response.body);
    entries = new Map(readZip(response.body).map((entry) => [entry.name, entry.contents]));
    keyFile = join(scratch, "public-key.json");
    await writeFile(keyFile, JSON.stringify((await cp.request("GET", "/audit/public-key")).body));
  });

  /** The bundle again with one file replaced (the manifest left as it was, unless given). */
  async function tampered(name: string, change: (contents: Buffer) => Buffer): Promise<string> {
    const zip = new yazl.ZipFile();
    for (const [path, contents] of entries) zip.addBuffer(path === name ? change(contents) : contents, path);
    zip.end();
    const chunks: Buffer[] = [];
    for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
    const file = join(scratch, `tampered-${randomBytes(4).toString("hex")}.zip`);
    await writeFile(file, Buffer.concat(chunks));
    return file;
  }

  it("holds the JSON, CSVs, PDF, the audit export, a manifest of SHA-256 sums and its signature", () => {
    expect([...entries.keys()]).toEqual(
      expect.arrayContaining([
        "report.json",
        "report.pdf",
        "csv/3-jobs.csv",
        "csv/7-events.csv",
        "audit-export.jsonl",
        MANIFEST_FILE,
        SIGNATURE_FILE,
      ]),
    );
    const manifest = JSON.parse(entries.get(MANIFEST_FILE)!.toString("utf8"));
    expect(manifest.files.map((file: { path: string }) => file.path).sort()).toEqual(
      [...entries.keys()].filter((name) => name !== MANIFEST_FILE && name !== SIGNATURE_FILE).sort(),
    );
  });

  it("verifies: manifest, signature (with the published key), chain and every recomputed figure", async () => {
    const result = await runCli(["verify", bundle, "--public-key", keyFile]);
    expect(result.stdout).toContain("VERIFIED");
    expect(result.stdout).toContain("trusted, from --public-key");
    expect(result.code).toBe(0);
  });

  it.each([
    "report.json",
    "report.pdf",
    "csv/3-jobs.csv",
    "audit-export.jsonl",
    MANIFEST_FILE,
    SIGNATURE_FILE,
  ])("fails and names %s when that file is changed", async (name) => {
    const file = await tampered(name, (contents) => {
      const copy = Buffer.from(contents);
      const at = copy.indexOf("2");
      copy[at] = "3".charCodeAt(0);
      return copy;
    });
    const result = await runCli(["verify", file, "--public-key", keyFile]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("FAILED");
    expect(result.stdout).toContain(
      name === MANIFEST_FILE || name === SIGNATURE_FILE
        ? `${SIGNATURE_FILE}: `
        : `${name}: SHA-256 does not match`,
    );
  });

  it("fails on a changed event: the chain check names its seq, the figures check the section it moved", async () => {
    const file = await tampered("audit-export.jsonl", (contents) => {
      const lines = contents.toString("utf8").split("\n");
      const index = lines.findIndex((line) => line.includes('"action":"job.finish"'));
      lines[index] = lines[index]!.replace('"exit_code":0', '"exit_code":1');
      return Buffer.from(lines.join("\n"));
    });
    const result = await runCli(["verify", file, "--public-key", keyFile]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/FAILED audit_chain[\s\S]*hash_mismatch/);
    expect(result.stdout).toMatch(/FAILED figures[\s\S]*sections\.change_management\.jobs/);
  });

  it("fails on a changed figure even when the manifest is re-signed by someone holding the key", async () => {
    const { sign } = await import("node:crypto");
    const signer = await cp.runtime.audit.keys.signer();
    const report = JSON.parse(entries.get("report.json")!.toString("utf8"));
    report.sections.access.sign_ins = 2;
    const forgedReport = Buffer.from(JSON.stringify(report));
    const { createHash } = await import("node:crypto");
    const manifest = JSON.parse(entries.get(MANIFEST_FILE)!.toString("utf8"));
    for (const entry of manifest.files)
      if (entry.path === "report.json")
        Object.assign(entry, {
          sha256: createHash("sha256").update(forgedReport).digest("hex"),
          bytes: forgedReport.length,
        });
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const signature = JSON.parse(entries.get(SIGNATURE_FILE)!.toString("utf8"));
    signature.signature = sign(null, manifestBytes, signer.privateKey).toString("base64url");
    const saved = new Map(entries);
    entries.set("report.json", forgedReport);
    entries.set(MANIFEST_FILE, manifestBytes);
    const file = await tampered(SIGNATURE_FILE, () => Buffer.from(JSON.stringify(signature)));
    for (const [key, value] of saved) entries.set(key, value);
    const result = await runCli(["verify", file, "--public-key", keyFile]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/ok +manifest/);
    expect(result.stdout).toMatch(/ok +signature/);
    expect(result.stdout).toContain("report.json sections.access.sign_ins does not match");
  });

  it("`hybrid-cicd report` writes the bundle through the API with a token", async () => {
    const out = join(scratch, "cli-bundle.zip");
    const result = await runCli([
      "report",
      "--url",
      cp.url,
      "--token",
      auditor,
      "--from",
      from,
      "--format",
      "bundle",
      "--out",
      out,
    ]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/bundle report rpt_/);
    expect((await runCli(["verify", out, "--public-key", keyFile])).code).toBe(0);
    const refused = await runCli([
      "report",
      "--url",
      cp.url,
      "--token",
      viewer,
      "--format",
      "json",
      "--out",
      join(scratch, "no.json"),
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("403");
  });
});

describe("Merkle proofs: one event without the whole log", { timeout: 180_000 }, () => {
  it("proves an event's inclusion in a signed digest; `verify-event` checks it and refuses an altered one", async () => {
    const proof = await cp.request("GET", "/audit/events/3/proof", { token: auditor });
    expect(proof.status).toBe(200);
    expect(proof.body).toMatchObject({
      format: "hybrid-cicd-inclusion-proof/1",
      leaf_index: 2,
      event: { seq: 3 },
    });
    expect(proof.body.audit_path.length).toBeLessThanOrEqual(Math.ceil(Math.log2(proof.body.tree_size)));
    const keyFile = join(scratch, "key-for-proofs.json");
    await writeFile(keyFile, JSON.stringify((await cp.request("GET", "/audit/public-key")).body));
    const file = join(scratch, "proof.json");
    await writeFile(file, JSON.stringify(proof.body));
    const good = await runCli(["verify-event", file, "--public-key", keyFile]);
    expect(good.stdout).toContain("VERIFIED: event seq 3");
    expect(good.code).toBe(0);

    const altered = structuredClone(proof.body);
    altered.event.action = "job.cancel";
    altered.event.hash = (await import("../../runtime/src/domain/audit/audit-event")).eventHash(
      altered.event,
    );
    altered.leaf_hash = leafHash(altered.event.hash).toString("hex");
    await writeFile(file, JSON.stringify(altered));
    const bad = await runCli(["verify-event", file, "--public-key", keyFile]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain("audit_path: does not lead from seq 3");

    const fetched = await runCli([
      "verify-event",
      "--seq",
      "4",
      "--url",
      cp.url,
      "--token",
      auditor,
      "--public-key",
      keyFile,
    ]);
    expect(fetched.code).toBe(0);
    expect((await cp.request("GET", "/audit/events/999999/proof", { token: auditor })).status).toBe(404);
  });

  it("proves that a later digest only appended to an earlier one", async () => {
    const older = await cp.runtime.audit.createDigest("on_demand");
    await cp.request("POST", "/jobs?git_ref=main", { token: admin });
    const newer = await cp.runtime.audit.createDigest("on_demand");
    const proof = await cp.request(
      "GET",
      `/audit/digests/consistency?from=${older.digest_seq}&to=${newer.digest_seq}`,
      { token: auditor },
    );
    expect(proof.status).toBe(200);
    const file = join(scratch, "consistency.json");
    await writeFile(file, JSON.stringify(proof.body));
    const good = await runCli(["verify-event", file]);
    expect(good.code).toBe(0);
    expect(good.stdout).toContain(`VERIFIED: digest ${older.digest_seq}`);
    const rewritten = structuredClone(proof.body);
    rewritten.proof[0] = "0".repeat(64);
    await writeFile(file, JSON.stringify(rewritten));
    const bad = await runCli(["verify-event", file]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain("history was rewritten");
  });
});
