import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentIdentity } from "../../runtime/src/agent/signed-fetch";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";
import { appendLog, claim, complete, heartbeat, queueJob, recordAuditDrafts } from "../support/jobs";

let cp: TestControlPlane;
let operator: string;
let admin: string;
let counter = 0;

beforeAll(async () => {
  cp = await startTestControlPlane("jobs-lifecycle");
  operator = await cp.token("operator");
  admin = await cp.token("admin");
});
afterAll(() => cp.close());

/** A job claimed by a fresh agent (a tag of its own keeps other tests' jobs away). */
async function runningJob(
  plane: TestControlPlane = cp,
  body: Record<string, unknown> = {},
): Promise<{ agent: AgentIdentity; jobId: string; attempt: number; lease: string }> {
  const tag = `lifecycle-${counter++}`;
  const agent = await plane.registerAgent({ tags: [tag] });
  const jobId = await queueJob(plane, plane === cp ? operator : await plane.token("operator"), {
    tags: [tag],
    ...body,
  });
  const claimed = await claim(plane, agent);
  expect(claimed.status).toBe(200);
  return { agent, jobId, attempt: claimed.body.attempt, lease: claimed.body.lease_expires_at };
}

describe("log uploads", () => {
  it("append at the stored size, extend the lease, and are served to readers", async () => {
    const { agent, jobId, attempt, lease } = await runningJob();
    await new Promise((resolve) => setTimeout(resolve, 5));

    const first = await appendLog(cp, agent, jobId, { attempt, offset: 0, data: "hello " });
    const second = await appendLog(cp, agent, jobId, { attempt, offset: 6, data: "wörld\n" });

    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      size: 6,
      truncated: false,
      duplicate: false,
      cancel_requested: false,
    });
    expect(second.body.size).toBe(13);
    expect(Date.parse(second.body.lease_expires_at)).toBeGreaterThan(Date.parse(lease));
    const read = await cp.request("GET", `/jobs/${jobId}/logs`, { token: await cp.token("viewer") });
    expect(read.status).toBe(200);
    expect(read.body).toEqual({
      job_id: jobId,
      offset: 0,
      next_offset: 13,
      size: 13,
      complete: false,
      truncated: false,
      data: "hello wörld\n",
    });
    const tail = await cp.request("GET", `/jobs/${jobId}/logs?offset=6`, { token: operator });
    expect(tail.body).toMatchObject({ offset: 6, next_offset: 13, data: "wörld\n" });
  });

  it("acknowledge a repeated chunk again without storing it twice", async () => {
    const { agent, jobId, attempt } = await runningJob();
    await appendLog(cp, agent, jobId, { attempt, offset: 0, data: "line 1\n" });

    const repeat = await appendLog(cp, agent, jobId, { attempt, offset: 0, data: "line 1\n" });

    expect(repeat.status).toBe(200);
    expect(repeat.body).toMatchObject({ size: 7, duplicate: true });
    expect((await cp.runtime.jobs.logs(jobId, 0, 1024)).data).toBe("line 1\n");
  });

  it("answer a gap with 416 and the stored size, changing nothing", async () => {
    const { agent, jobId, attempt } = await runningJob();
    await appendLog(cp, agent, jobId, { attempt, offset: 0, data: "12345" });

    const gap = await appendLog(cp, agent, jobId, { attempt, offset: 9, data: "later" });

    expect(gap.status).toBe(416);
    expect(gap.body).toMatchObject({ type: "/problems/log-gap", current_size: 5 });
    expect(gap.headers.get("content-range")).toBe("bytes */5");
    expect((await cp.runtime.jobs.get(jobId)).log_size).toBe(5);
  });

  it("refuse an overlap that is not a repeat with 409 and the stored size", async () => {
    const { agent, jobId, attempt } = await runningJob();
    await appendLog(cp, agent, jobId, { attempt, offset: 0, data: "abcdef" });

    const overlap = await appendLog(cp, agent, jobId, { attempt, offset: 3, data: "XYZ and more" });

    expect(overlap.status).toBe(409);
    expect(overlap.body).toMatchObject({ type: "/problems/log-overlap", current_size: 6 });
    expect((await cp.runtime.jobs.logs(jobId, 0, 1024)).data).toBe("abcdef");
  });

  it("take a full 256 KiB chunk (above the default body cap) and refuse a bigger one with 413", async () => {
    const { agent, jobId, attempt } = await runningJob();
    const full = "x".repeat(256 * 1024);

    const accepted = await appendLog(cp, agent, jobId, { attempt, offset: 0, data: full });
    const tooBig = await appendLog(cp, agent, jobId, { attempt, offset: full.length, data: `${full}y` });

    expect(accepted.status).toBe(200);
    expect(accepted.body.size).toBe(256 * 1024);
    expect(tooBig.status).toBe(413);
    expect(tooBig.body).toMatchObject({ type: "/problems/log-chunk-too-large", max_chunk_bytes: 256 * 1024 });
    expect((await cp.runtime.jobs.get(jobId)).log_size).toBe(256 * 1024);
  });

  it("keep at most the per-job cap and record the truncation", async () => {
    const small = await startTestControlPlane("jobs-log-cap", {
      env: { HYBRID_CICD_JOB_LOG_MAX_BYTES: "2048" },
    });
    try {
      const { agent, jobId, attempt } = await runningJob(small);
      const audit = recordAuditDrafts(small);

      const first = await appendLog(small, agent, jobId, { attempt, offset: 0, data: "a".repeat(1500) });
      const second = await appendLog(small, agent, jobId, { attempt, offset: 1500, data: "b".repeat(1500) });
      const third = await appendLog(small, agent, jobId, { attempt, offset: 3000, data: "c".repeat(100) });

      expect(first.body).toMatchObject({ size: 1500, truncated: false });
      expect(second.body).toMatchObject({ size: 2048, truncated: true });
      expect(third.status).toBe(200);
      expect(third.body).toMatchObject({ size: 2048, truncated: true });
      expect(await small.runtime.jobs.get(jobId)).toMatchObject({ log_size: 2048, log_truncated: true });
      const read = await small.request("GET", `/jobs/${jobId}/logs`, { token: await small.token("viewer") });
      expect(read.body).toMatchObject({
        size: 2048,
        truncated: true,
        data: "a".repeat(1500) + "b".repeat(548),
      });
      const jobEvents = audit.drafts.filter((draft) => draft.target.id === jobId);
      expect(jobEvents.map((draft) => draft.action)).toEqual(["job.log_truncate"]);
    } finally {
      await small.close();
    }
  });

  it("refuse another agent's job (403) and an attempt the agent never had, changing nothing", async () => {
    const { agent, jobId, attempt } = await runningJob();
    const stranger = await cp.registerAgent();

    const foreign = await appendLog(cp, stranger, jobId, { attempt, offset: 0, data: "not mine" });
    const invented = await appendLog(cp, agent, jobId, { attempt: attempt + 1, offset: 0, data: "no" });

    expect(foreign.status).toBe(403);
    expect(foreign.body.type).toBe("/problems/job-not-leased");
    expect(invented.status).toBe(403);
    expect((await cp.runtime.jobs.get(jobId)).log_size).toBe(0);
  });

  it("refuse malformed bodies with 400 and unknown jobs with 404", async () => {
    const { agent, jobId, attempt } = await runningJob();
    const missing = await appendLog(cp, agent, `job_${"0".repeat(26)}`, { attempt: 1, offset: 0, data: "x" });
    expect(missing.status).toBe(404);
    for (const body of [
      { attempt, offset: -1, data: "x" },
      { attempt: 0, offset: 0, data: "x" },
      { attempt, offset: 0 },
      { attempt, offset: 0, data: "x", extra: true },
    ]) {
      const response = await cp.agentRequest(agent, "POST", `/jobs/${jobId}/logs`, body);
      expect(response.status, JSON.stringify(body)).toBe(400);
    }
    const user = await cp.request("POST", `/jobs/${jobId}/logs`, {
      token: admin,
      body: { attempt, offset: 0, data: "x" },
    });
    expect(user.status).toBe(401);
  });
});

describe("finishing a job", () => {
  it("records the result once, repeats it for a repeated report, and refuses a different one", async () => {
    const { agent, jobId, attempt } = await runningJob();
    const audit = recordAuditDrafts(cp);

    const done = await complete(cp, agent, jobId, { attempt, status: "completed", exit_code: 0 });
    const again = await complete(cp, agent, jobId, { attempt, status: "completed", exit_code: 0 });
    const conflicting = await complete(cp, agent, jobId, { attempt, status: "failed", exit_code: 1 });
    audit.stop();

    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({
      job_id: jobId,
      status: "completed",
      exit_code: 0,
      finished_at: expect.any(String),
    });
    expect(done.body).not.toHaveProperty("lease_expires_at");
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(conflicting.status).toBe(409);
    expect(conflicting.body).toMatchObject({ type: "/problems/job-not-running", job_status: "completed" });
    expect((await cp.runtime.jobs.get(jobId)).status).toBe("completed");
    expect(audit.drafts.filter((draft) => draft.target.id === jobId).map((draft) => draft.action)).toEqual([
      "job.finish",
    ]);
    const late = await appendLog(cp, agent, jobId, { attempt, offset: 0, data: "late" });
    expect(late.status).toBe(409);
  });

  it("records a failure with its exit code and message", async () => {
    const { agent, jobId, attempt } = await runningJob();
    const failed = await complete(cp, agent, jobId, {
      attempt,
      status: "failed",
      exit_code: 2,
      error_message: "exit code 2",
    });
    expect(failed.body).toMatchObject({ status: "failed", exit_code: 2, error_message: "exit code 2" });
    expect(failed.body.attempts).toEqual([
      expect.objectContaining({
        attempt: 1,
        agent_id: agent.agentId,
        outcome: "failed",
        ended_at: expect.any(String),
      }),
    ]);
  });

  it("refuses another agent's report, and invalid results, changing nothing", async () => {
    const { agent, jobId, attempt } = await runningJob();
    const stranger = await cp.registerAgent();
    const foreign = await complete(cp, stranger, jobId, { attempt, status: "completed", exit_code: 0 });
    expect(foreign.status).toBe(403);
    for (const body of [
      { attempt, status: "completed", exit_code: 1 },
      { attempt, status: "succeeded" },
      { attempt, status: "failed", exit_code: 300 },
    ]) {
      expect((await complete(cp, agent, jobId, body)).status, JSON.stringify(body)).toBe(400);
    }
    expect((await cp.runtime.jobs.get(jobId)).status).toBe("running");
  });
});

describe("cancelling a job", () => {
  it("cancels a queued job at once; it is never claimed", async () => {
    const tag = `cancel-queued-${counter++}`;
    const jobId = await queueJob(cp, operator, { tags: [tag] });
    const audit = recordAuditDrafts(cp);

    const cancelled = await cp.request("POST", `/jobs/${jobId}/cancel`, { token: operator });
    audit.stop();

    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ status: "cancelled", cancel_requested_by: "token:test-operator" });
    expect((await claim(cp, await cp.registerAgent({ tags: [tag] }))).status).toBe(204);
    expect(audit.drafts.map((draft) => [draft.action, draft.details?.from])).toEqual([
      ["job.cancel", "queued"],
    ]);
  });

  it("asks the agent of a running job to stop, through its heartbeat and log replies", async () => {
    const { agent, jobId, attempt } = await runningJob();

    const requested = await cp.request("POST", `/jobs/${jobId}/cancel`, { token: operator });
    const repeated = await cp.request("POST", `/jobs/${jobId}/cancel`, { token: admin });
    const beat = await heartbeat(cp, agent, [{ job_id: jobId, attempt }]);
    const log = await appendLog(cp, agent, jobId, { attempt, offset: 0, data: "Terminated\n" });
    const finished = await complete(cp, agent, jobId, {
      attempt,
      status: "cancelled",
      exit_code: null,
      error_message: "cancelled on request",
    });

    expect(requested.status).toBe(202);
    expect(requested.body.status).toBe("cancelling");
    expect(repeated.status).toBe(202);
    expect(beat.body.jobs).toEqual([
      { job_id: jobId, attempt, action: "cancel", lease_expires_at: expect.any(String) },
    ]);
    expect(log.body.cancel_requested).toBe(true);
    expect(finished.status).toBe(200);
    expect(finished.body).toMatchObject({ status: "cancelled", cancel_requested_by: "token:test-operator" });
    const refinish = await complete(cp, agent, jobId, { attempt, status: "completed", exit_code: 0 });
    expect(refinish.status).toBe(409);
    expect((await cp.request("POST", `/jobs/${jobId}/cancel`, { token: operator })).status).toBe(409);
    expect((await cp.runtime.jobs.get(jobId)).status).toBe("cancelled");
  });

  it("is for operators and admins only", async () => {
    const jobId = await queueJob(cp, operator, { tags: [`cancel-roles-${counter++}`] });
    for (const role of ["viewer", "auditor"] as const) {
      const response = await cp.request("POST", `/jobs/${jobId}/cancel`, { token: await cp.token(role) });
      expect(response.status, role).toBe(403);
    }
    expect((await cp.request("POST", `/jobs/${jobId}/cancel`)).status).toBe(401);
    expect((await cp.runtime.jobs.get(jobId)).status).toBe("queued");
  });
});

describe("production approval", () => {
  it("holds a production job until someone other than the requester approves it", async () => {
    const tag = `production-${counter++}`;
    const agent = await cp.registerAgent({ tags: [tag], environment: "production" });
    const jobId = await queueJob(cp, operator, { tags: [tag], environment: "production", command: "deploy" });
    expect((await cp.runtime.jobs.get(jobId)).status).toBe("awaiting_approval");
    expect((await claim(cp, agent)).status).toBe(204);
    const audit = recordAuditDrafts(cp);

    const self = await cp.request("POST", `/jobs/${jobId}/approve`, { token: operator });
    expect(self.status).toBe(403);
    expect(self.body.type).toBe("/problems/self-approval");
    expect((await cp.runtime.jobs.get(jobId)).status).toBe("awaiting_approval");

    const approved = await cp.request("POST", `/jobs/${jobId}/approve`, { token: admin });
    audit.stop();
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({
      status: "queued",
      created_by: "token:test-operator",
      approved_by: "token:test-admin",
      approved_at: expect.any(String),
    });
    expect(audit.drafts.map((draft) => [draft.action, draft.outcome])).toEqual([
      ["job.approve", "denied"],
      ["job.approve", "success"],
    ]);
    expect((await cp.request("POST", `/jobs/${jobId}/approve`, { token: admin })).status).toBe(409);
    const claimed = await claim(cp, agent);
    expect(claimed.body.job.job_id).toBe(jobId);
  });

  it("cancels a rejected production job, recording who rejected it", async () => {
    const jobId = await queueJob(cp, operator, { environment: "production", tags: [`reject-${counter++}`] });
    const rejected = await cp.request("POST", `/jobs/${jobId}/reject`, { token: admin });
    expect(rejected.status).toBe(200);
    expect(rejected.body).toMatchObject({ status: "cancelled", rejected_by: "token:test-admin" });
    expect((await cp.request("POST", `/jobs/${jobId}/approve`, { token: admin })).status).toBe(409);
  });

  it("lets only operators and admins approve", async () => {
    const jobId = await queueJob(cp, operator, {
      environment: "production",
      tags: [`approve-roles-${counter++}`],
    });
    const viewer = await cp.request("POST", `/jobs/${jobId}/approve`, { token: await cp.token("viewer") });
    expect(viewer.status).toBe(403);
    expect((await cp.runtime.jobs.get(jobId)).status).toBe("awaiting_approval");
  });
});

describe("heartbeats", () => {
  it("carry the server's intervals and extend the leases of the agent's jobs", async () => {
    const { agent, jobId, attempt, lease } = await runningJob();
    const stranger = await runningJob();
    await new Promise((resolve) => setTimeout(resolve, 5));

    const reply = await heartbeat(cp, agent, [
      { job_id: jobId, attempt },
      { job_id: stranger.jobId, attempt: stranger.attempt },
      { job_id: `job_${"1".repeat(26)}`, attempt: 1 },
    ]);

    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      status: "healthy",
      next_check_interval: 30,
      heartbeat_interval_seconds: 30,
      job_heartbeat_interval_seconds: 5,
      claim_interval_seconds: 5,
      lease_seconds: 120,
      cancel_grace_seconds: 10,
      log_chunk_max_bytes: 256 * 1024,
    });
    const [mine, theirs, unknown] = reply.body.jobs;
    expect(mine).toEqual({
      job_id: jobId,
      attempt,
      action: "continue",
      lease_expires_at: expect.any(String),
    });
    expect(Date.parse(mine.lease_expires_at)).toBeGreaterThan(Date.parse(lease));
    expect((await cp.runtime.jobs.get(jobId)).lease_expires_at).toBe(mine.lease_expires_at);
    expect(theirs).toMatchObject({ action: "stop", reason: expect.stringMatching(/not leased to agent/) });
    expect(unknown).toMatchObject({ action: "stop", reason: "unknown job" });
    expect((await cp.runtime.jobs.get(stranger.jobId)).lease_expires_at).toBe(stranger.lease);
  });
});

describe("GET /metrics/queue", () => {
  it("reports queue depth and oldest wait per tag set, jobs in flight, and agents by health", async () => {
    let now = Date.now();
    const local = await startTestControlPlane("jobs-metrics", { clock: () => new Date(now) });
    try {
      const token = await local.token("operator");
      const agent = await local.registerAgent({ tags: ["linux"] });
      await local.registerAgent({ tags: ["linux"] });
      await queueJob(local, token, { tags: ["linux"] });
      now += 10_000;
      await queueJob(local, token, { tags: ["linux"] });
      await queueJob(local, token, {});
      await queueJob(local, token, { environment: "production" });
      now += 32_000;
      const beat = await heartbeat(local, agent);
      expect(beat.status).toBe(200);
      expect((await claim(local, agent)).status).toBe(200);

      const response = await local.request("GET", "/metrics/queue", { token: await local.token("viewer") });

      expect(response.status).toBe(200);
      expect(response.body).toEqual({
        generated_at: new Date(now).toISOString(),
        queued: { jobs: 2, oldest_wait_seconds: 32 },
        queues: expect.arrayContaining([
          { environment: "staging", tags: [], jobs: 1, oldest_wait_seconds: 32, estimated: false },
          { environment: "staging", tags: ["linux"], jobs: 1, oldest_wait_seconds: 32, estimated: false },
        ]),
        awaiting_approval: 1,
        running: 1,
        cancelling: 0,
        agents: { healthy: 1, unhealthy: 0, dead: 1, revoked: 0 },
      });
      expect(response.body.queues).toHaveLength(2);
      expect((await local.request("GET", "/metrics/queue")).status).toBe(401);
    } finally {
      await local.close();
    }
  });
});
