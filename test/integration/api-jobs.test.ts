import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";

let cp: TestControlPlane;
let operator: string;
beforeAll(async () => {
  cp = await startTestControlPlane("jobs");
  operator = await cp.token("operator");
});
afterAll(() => cp.close());

describe("POST /jobs", () => {
  it("queues a job from the seed's query string", async () => {
    const response = await cp.request("POST", "/jobs?git_ref=main", { token: operator });
    expect(response.status).toBe(201);
    expect(response.body).toMatchObject({
      job_id: expect.stringMatching(/^job_[0-9a-z]{26}$/),
      status: "queued",
      git_ref: "main",
    });
    expect(response.headers.get("location")).toBe(`/jobs/${response.body.job_id}`);
  });

  it("queues a job from a JSON body with its optional fields", async () => {
    const body = {
      git_ref: "refs/tags/v1.2.3",
      repository: "https://git.example.com/acme/app.git",
      command: "npm test",
      tags: ["linux", "arm64"],
      environment: "staging",
    };
    const response = await cp.request("POST", "/jobs", { token: operator, body });
    expect(response.status).toBe(201);
    const job = (await cp.request("GET", `/jobs/${response.body.job_id}`, { token: operator })).body;
    expect(job).toMatchObject({
      ...body,
      tags: ["arm64", "linux"],
      status: "queued",
      created_by: "token:test-operator",
    });
  });

  it("refuses a job without a git ref", async () => {
    const response = await cp.request("POST", "/jobs", { token: operator, body: { command: "make" } });
    expect(response.status).toBe(400);
    expect(response.body.errors).toContainEqual({ field: "body.git_ref", message: expect.any(String) });
  });

  it("returns the same job for a repeated Idempotency-Key", async () => {
    const headers = { "idempotency-key": `key-${Date.now()}` };
    const first = await cp.request("POST", "/jobs", { token: operator, body: { git_ref: "main" }, headers });
    const second = await cp.request("POST", "/jobs", { token: operator, body: { git_ref: "main" }, headers });
    expect(second.status).toBe(201);
    expect(second.body.job_id).toBe(first.body.job_id);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
  });

  it("creates exactly one job for concurrent requests with one Idempotency-Key", async () => {
    const headers = { "idempotency-key": `race-${Date.now()}` };
    const responses = await Promise.all(
      Array.from({ length: 8 }, () =>
        cp.request("POST", "/jobs", { token: operator, body: { git_ref: "race" }, headers }),
      ),
    );
    const ids = new Set(
      responses.filter((response) => response.status === 201).map((response) => response.body.job_id),
    );
    expect(ids.size).toBe(1);
    for (const response of responses) expect([201, 409]).toContain(response.status);
  });

  it("refuses an Idempotency-Key reused for a different request, creating nothing", async () => {
    const headers = { "idempotency-key": `mismatch-${Date.now()}` };
    await cp.request("POST", "/jobs", { token: operator, body: { git_ref: "main" }, headers });
    const before = (await cp.request("GET", "/jobs", { token: operator })).body.total;
    const response = await cp.request("POST", "/jobs", {
      token: operator,
      body: { git_ref: "develop" },
      headers,
    });
    expect(response.status).toBe(422);
    expect((await cp.request("GET", "/jobs", { token: operator })).body.total).toBe(before);
  });

  it("scopes Idempotency-Keys to the caller", async () => {
    const headers = { "idempotency-key": `shared-${Date.now()}` };
    const mine = await cp.request("POST", "/jobs", { token: operator, body: { git_ref: "main" }, headers });
    const theirs = await cp.request("POST", "/jobs", {
      token: await cp.token("admin"),
      body: { git_ref: "main" },
      headers,
    });
    expect(theirs.body.job_id).not.toBe(mine.body.job_id);
  });
});

describe("GET /jobs", () => {
  it("pages newest first with a cursor and a total", async () => {
    const local = await startTestControlPlane("jobs-paging");
    try {
      const token = await local.token("operator");
      const created: string[] = [];
      for (let index = 0; index < 5; index++) {
        created.push((await local.request("POST", `/jobs?git_ref=b${index}`, { token })).body.job_id);
      }
      const first = await local.request("GET", "/jobs?limit=2", { token });
      expect(first.body.total).toBe(5);
      expect(first.body.jobs.map((job: { job_id: string }) => job.job_id)).toEqual([created[4], created[3]]);
      const seen = [...first.body.jobs];
      let cursor = first.body.next_cursor;
      while (cursor) {
        const page = await local.request("GET", `/jobs?limit=2&cursor=${cursor}`, { token });
        seen.push(...page.body.jobs);
        cursor = page.body.next_cursor;
      }
      expect(seen.map((job) => job.job_id)).toEqual([...created].reverse());
    } finally {
      await local.close();
    }
  });

  it("filters by status", async () => {
    const response = await cp.request("GET", "/jobs?status=queued&limit=100", { token: operator });
    expect(response.status).toBe(200);
    expect(response.body.jobs.length).toBeGreaterThan(0);
    expect(response.body.jobs.every((job: { status: string }) => job.status === "queued")).toBe(true);
    const none = await cp.request("GET", "/jobs?status=completed", { token: operator });
    expect(none.body).toEqual({ jobs: [], total: 0, next_cursor: null });
  });

  it("refuses an unknown status, a bad limit and a forged cursor with 400", async () => {
    for (const query of [
      "status=done",
      "limit=0",
      "limit=1000",
      "cursor=not-a-cursor!",
      `cursor=${Buffer.from('{"x":1}').toString("base64url")}`,
    ]) {
      const response = await cp.request("GET", `/jobs?${query}`, { token: operator });
      expect(response.status, query).toBe(400);
    }
  });

  it("lets a viewer read jobs", async () => {
    expect((await cp.request("GET", "/jobs", { token: await cp.token("viewer") })).status).toBe(200);
  });
});

describe("GET /jobs/{job_id}", () => {
  it("answers 404 for a job that does not exist and 400 for a malformed id", async () => {
    expect((await cp.request("GET", `/jobs/job_${"0".repeat(26)}`, { token: operator })).status).toBe(404);
    expect((await cp.request("GET", "/jobs/whatever", { token: operator })).status).toBe(400);
  });
});
