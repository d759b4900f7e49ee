import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { AgentIdentity } from "../../runtime/src/agent/signed-fetch";
import { handler, runMaintenance, UnknownMaintenanceTaskError } from "../../runtime/src/lambda/scheduled";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";
import { appendLog, claim, complete, heartbeat, queueJob, recordAuditDrafts } from "../support/jobs";

// Server-set timings shortened through the environment, and a clock the tests move.
const timings = {
  HYBRID_CICD_HEARTBEAT_INTERVAL_SECONDS: "10",
  HYBRID_CICD_LEASE_SECONDS: "30",
  HYBRID_CICD_AGENT_UNHEALTHY_AFTER_SECONDS: "20",
  HYBRID_CICD_AGENT_DEAD_AFTER_SECONDS: "40",
};
let now = Date.now();
let cp: TestControlPlane;
let operator: string;
let counter = 0;

beforeAll(async () => {
  cp = await startTestControlPlane("jobs-sweeper", { clock: () => new Date(now), env: timings });
  operator = await cp.token("operator");
});
afterAll(() => cp.close());
beforeEach(() => {
  now = Date.now();
});

/** Moves the server's clock (agents sign with the real clock: stay within the 300 s signature window). */
function advance(seconds: number): void {
  now += seconds * 1000;
}

async function claimedBy(
  tag: string,
  body: Record<string, unknown> = {},
): Promise<{ agent: AgentIdentity; jobId: string; attempt: number }> {
  const agent = await cp.registerAgent({ tags: [tag] });
  const jobId = await queueJob(cp, operator, { tags: [tag], ...body });
  const claimed = await claim(cp, agent);
  expect(claimed.body.job.job_id).toBe(jobId);
  return { agent, jobId, attempt: claimed.body.attempt };
}

describe("the sweeper", () => {
  it("fails a job whose agent stopped renewing its lease as 'agent lost'", async () => {
    const { agent, jobId, attempt } = await claimedBy(`lost-${counter++}`);
    advance(31);
    const audit = recordAuditDrafts(cp);

    const report = await cp.runtime.sweeper.sweep();
    audit.stop();

    expect(report).toMatchObject({ expired: 1, failed: 1, requeued: 0, cancelled: 0 });
    const job = await cp.runtime.jobs.get(jobId);
    expect(job).toMatchObject({ status: "failed", error_message: "agent lost", lost_attempts: 1 });
    expect(job).not.toHaveProperty("lease_expires_at");
    expect(job.attempts).toEqual([expect.objectContaining({ attempt: 1, outcome: "agent_lost" })]);
    expect(audit.drafts).toEqual([
      expect.objectContaining({
        action: "job.fail_lost",
        actor: { type: "system", id: "sweeper" },
        target: { type: "job", id: jobId },
        details: expect.objectContaining({ attempt: 1, agent_id: agent.agentId, status: "failed" }),
      }),
    ]);
    // The agent comes back too late: its writes are refused and nothing changes.
    expect((await appendLog(cp, agent, jobId, { attempt, offset: 0, data: "late" })).status).toBe(409);
    expect((await complete(cp, agent, jobId, { attempt, status: "completed", exit_code: 0 })).status).toBe(
      409,
    );
    expect((await cp.runtime.jobs.get(jobId)).status).toBe("failed");
    expect((await cp.runtime.sweeper.sweep()).expired).toBe(0);
  });

  it("queues a job that asked for retry.agent_lost again, and fences off the lost attempt", async () => {
    const tag = `retry-${counter++}`;
    const first = await claimedBy(tag, { retry: { agent_lost: 1 } });
    await appendLog(cp, first.agent, first.jobId, { attempt: 1, offset: 0, data: "attempt 1\n" });
    advance(31);

    expect(await cp.runtime.sweeper.sweep()).toMatchObject({ expired: 1, requeued: 1 });
    expect(await cp.runtime.jobs.get(first.jobId)).toMatchObject({
      status: "queued",
      attempt: 1,
      lost_attempts: 1,
    });

    const other = await cp.registerAgent({ tags: [tag] });
    const second = await claim(cp, other);
    expect(second.body).toMatchObject({ job: { job_id: first.jobId }, attempt: 2, log_offset: 10 });

    // The zombie: every write for attempt 1 is refused with 409 and changes nothing.
    const zombieLog = await appendLog(cp, first.agent, first.jobId, {
      attempt: 1,
      offset: 10,
      data: "zombie\n",
    });
    expect(zombieLog.status).toBe(409);
    expect(zombieLog.body).toMatchObject({ type: "/problems/stale-attempt", attempt: 1, current_attempt: 2 });
    const zombieDone = await complete(cp, first.agent, first.jobId, {
      attempt: 1,
      status: "completed",
      exit_code: 0,
    });
    expect(zombieDone.status).toBe(409);
    const zombieBeat = await heartbeat(cp, first.agent, [{ job_id: first.jobId, attempt: 1 }]);
    expect(zombieBeat.body.jobs).toEqual([
      { job_id: first.jobId, attempt: 1, action: "stop", reason: expect.stringMatching(/superseded/) },
    ]);

    await appendLog(cp, other, first.jobId, { attempt: 2, offset: 10, data: "attempt 2\n" });
    const done = await complete(cp, other, first.jobId, { attempt: 2, status: "completed", exit_code: 0 });
    expect(done.body).toMatchObject({ status: "completed", agent_id: other.agentId });
    expect(done.body.attempts.map((entry: { outcome: string }) => entry.outcome)).toEqual([
      "agent_lost",
      "completed",
    ]);
    expect((await cp.runtime.jobs.logs(first.jobId, 0, 1024)).data).toBe("attempt 1\nattempt 2\n");
  });

  it("fails the job once it has been lost more often than it allows", async () => {
    const tag = `retry-twice-${counter++}`;
    const { jobId } = await claimedBy(tag, { retry: { agent_lost: 1 } });
    advance(31);
    await cp.runtime.sweeper.sweep();
    expect((await claim(cp, await cp.registerAgent({ tags: [tag] }))).body.attempt).toBe(2);
    advance(31);

    expect(await cp.runtime.sweeper.sweep()).toMatchObject({ failed: 1 });
    expect(await cp.runtime.jobs.get(jobId)).toMatchObject({
      status: "failed",
      lost_attempts: 2,
      attempt: 2,
    });
  });

  it("leaves a job alone while heartbeats renew its lease", async () => {
    const { agent, jobId, attempt } = await claimedBy(`renewed-${counter++}`);
    advance(25);
    await heartbeat(cp, agent, [{ job_id: jobId, attempt }]);
    advance(25);

    expect((await cp.runtime.sweeper.sweep()).expired).toBe(0);
    expect((await cp.runtime.jobs.get(jobId)).status).toBe("running");
  });

  it("cancels a job that was being cancelled when its agent was lost", async () => {
    const { jobId } = await claimedBy(`cancelling-${counter++}`, { retry: { agent_lost: 3 } });
    await cp.request("POST", `/jobs/${jobId}/cancel`, { token: operator });
    advance(31);

    expect(await cp.runtime.sweeper.sweep()).toMatchObject({ cancelled: 1 });
    expect(await cp.runtime.jobs.get(jobId)).toMatchObject({
      status: "cancelled",
      error_message: "agent lost while the job was being cancelled",
    });
  });
});

describe("agent health", () => {
  it("turns unhealthy, then dead, when heartbeats stop, on the server's thresholds", async () => {
    const agent = await cp.registerAgent();
    await heartbeat(cp, agent);
    const status = async () =>
      (await cp.request("GET", `/agents/${agent.agentId}`, { token: operator })).body.status as string;
    expect(await status()).toBe("healthy");
    advance(21);
    expect(await status()).toBe("unhealthy");
    advance(20);
    expect(await status()).toBe("dead");
    expect((await heartbeat(cp, agent)).body).toMatchObject({
      status: "healthy",
      heartbeat_interval_seconds: 10,
    });
  });
});

describe("the scheduled maintenance", () => {
  it("runs the sweep task by name and refuses an unknown one", async () => {
    const { jobId } = await claimedBy(`scheduled-${counter++}`);
    advance(31);

    const result = await runMaintenance(cp.runtime, "sweep");

    expect(result.sweep).toMatchObject({ failed: 1 });
    expect((await cp.runtime.jobs.get(jobId)).status).toBe("failed");
    await expect(runMaintenance(cp.runtime, "polish")).rejects.toThrow(UnknownMaintenanceTaskError);
  });

  it("is the Lambda handler EventBridge invokes with {task}", async () => {
    const saved = { ...process.env };
    Object.assign(process.env, {
      HYBRID_CICD_ENVIRONMENT: "test",
      HYBRID_CICD_TABLE_PREFIX: cp.runtime.env.HYBRID_CICD_TABLE_PREFIX,
      HYBRID_CICD_DATA_DIR: cp.dataDir,
      DYNAMODB_ENDPOINT: cp.runtime.env.DYNAMODB_ENDPOINT,
      LOG_LEVEL: "silent",
    });
    try {
      const result = await handler({ task: "sweep" });
      expect(result.sweep).toEqual(
        expect.objectContaining({ expired: expect.any(Number), failed: expect.any(Number) }),
      );
    } finally {
      process.env = saved;
    }
  });

  it("forgets tag sets that have been idle for a week and have nothing queued", async () => {
    const tag = `idle-${counter++}`;
    const jobId = await queueJob(cp, operator, { tags: [tag] });
    await cp.request("POST", `/jobs/${jobId}/cancel`, { token: operator });
    const known = async () =>
      (await cp.runtime.store.jobQueues.list()).some((queue) => queue.tags.includes(tag));
    expect(await known()).toBe(true);
    advance(8 * 24 * 3600);

    const report = await cp.runtime.sweeper.sweep();

    expect(report.queues_forgotten).toBeGreaterThanOrEqual(1);
    expect(await known()).toBe(false);
  });
});
