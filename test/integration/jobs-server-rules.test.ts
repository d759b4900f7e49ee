import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type AgentIdentity, signedFetch } from "../../runtime/src/agent/signed-fetch";
import { ServiceUnavailableError } from "../../runtime/src/domain/errors";
import { JobChangedError } from "../../runtime/src/domain/jobs/job-view";
import type { WriteTransaction } from "../../runtime/src/store/transaction";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";
import { appendLog, claim, complete, heartbeat, queueJob, recordAuditDrafts } from "../support/jobs";

// The server's own rules for jobs (issue 10, decision 011): timeouts and cancel deadlines enforced by the
// sweeper, a cancelled job never ends `completed`, claims safe to repeat, revocation ends jobs at once.
let now = Date.now();
let cp: TestControlPlane;
let operator: string;
let admin: string;
let counter = 0;

beforeAll(async () => {
  cp = await startTestControlPlane("jobs-server-rules", {
    clock: () => new Date(now),
    env: { HYBRID_CICD_CANCEL_DEADLINE_SECONDS: "40" },
  });
  operator = await cp.token("operator");
  admin = await cp.token("admin");
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

/** A claim with an Idempotency-Key, as the reference agent sends it. */
function signedClaim(agent: AgentIdentity, key: string) {
  return signedFetch<Record<string, never>>(
    cp.url,
    agent,
    "POST",
    `/agents/${agent.agentId}/jobs/claim`,
    {},
    {
      headers: { "idempotency-key": key },
    },
  );
}

describe("timeouts enforced by the server", () => {
  it("fails a job past its timeout even while its agent keeps heartbeating", async () => {
    const { agent, jobId, attempt } = await claimedBy(`timeout-${counter++}`, { timeout_seconds: 60 });
    // Heartbeats keep the lease fresh all along (lease 120 s), so only the deadline can end the job.
    for (let elapsed = 0; elapsed < 80; elapsed += 20) {
      advance(20);
      const beat = await heartbeat(cp, agent, [{ job_id: jobId, attempt }]);
      expect(beat.body.jobs[0].action).toBe("continue");
      await cp.runtime.sweeper.sweep();
    }
    // 60 s of timeout + the agent's own stop (10 s grace, 2 × 5 s heartbeats) have passed.
    expect((await cp.runtime.jobs.get(jobId)).status).toBe("running");
    advance(1);
    const audit = recordAuditDrafts(cp);
    const report = await cp.runtime.sweeper.sweep();
    audit.stop();

    expect(report.past_deadline).toBeGreaterThanOrEqual(1);
    const job = await cp.runtime.jobs.get(jobId);
    expect(job).toMatchObject({ status: "failed", error_message: "timed out after 60 s" });
    expect(job.attempts).toEqual([expect.objectContaining({ attempt: 1, outcome: "timed_out" })]);
    expect(job).not.toHaveProperty("deadline_at");
    expect(job).not.toHaveProperty("held_by");
    expect(audit.drafts).toContainEqual(
      expect.objectContaining({
        action: "job.deadline",
        actor: { type: "system", id: "sweeper" },
        target: { type: "job", id: jobId },
        details: expect.objectContaining({ status: "failed", cause: "deadline", timeout_seconds: 60 }),
      }),
    );
    // The agent's late result is refused, and its heartbeat tells it to stop.
    const late = await complete(cp, agent, jobId, { attempt, status: "completed", exit_code: 0 });
    expect(late.status).toBe(409);
    const beat = await heartbeat(cp, agent, [{ job_id: jobId, attempt }]);
    expect(beat.body.jobs[0].action).toBe("stop");
  });

  it("marks a job cancelled when its agent does not stop it within the cancel deadline", async () => {
    const { agent, jobId, attempt } = await claimedBy(`cancel-deadline-${counter++}`);
    expect((await cp.request("POST", `/jobs/${jobId}/cancel`, { token: operator })).status).toBe(202);
    advance(30);
    await heartbeat(cp, agent, [{ job_id: jobId, attempt }]);
    await cp.runtime.sweeper.sweep();
    expect((await cp.runtime.jobs.get(jobId)).status).toBe("cancelling");
    advance(11);
    await heartbeat(cp, agent, [{ job_id: jobId, attempt }]);
    await cp.runtime.sweeper.sweep();

    expect(await cp.runtime.jobs.get(jobId)).toMatchObject({
      status: "cancelled",
      error_message: "cancelled: the agent did not stop the job within 40 s",
    });
    expect((await complete(cp, agent, jobId, { attempt, status: "cancelled" })).status).toBe(409);
  });
});

describe("a job being cancelled", () => {
  it("ends cancelled when its agent reports it completed, and the report replays", async () => {
    const { agent, jobId, attempt } = await claimedBy(`cancel-complete-${counter++}`);
    expect((await cp.request("POST", `/jobs/${jobId}/cancel`, { token: operator })).status).toBe(202);

    const done = await complete(cp, agent, jobId, { attempt, status: "completed", exit_code: 0 });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({
      status: "cancelled",
      error_message: "cancelled by token:test-operator; the agent reported completed",
    });
    expect(done.body.attempts[0]).toMatchObject({ outcome: "cancelled", reported_status: "completed" });
    const again = await complete(cp, agent, jobId, { attempt, status: "completed", exit_code: 0 });
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect((await cp.runtime.jobs.get(jobId)).status).toBe("cancelled");
  });

  it("cannot be finished on the state read before the cancel landed (the write's condition)", async () => {
    const { agent, jobId, attempt } = await claimedBy(`cancel-race-${counter++}`);
    const store = cp.runtime.store;
    expect((await cp.request("POST", `/jobs/${jobId}/cancel`, { token: operator })).status).toBe(202);
    // The agent's finish as decided on the job read while it was still running.
    const tx = store.transaction();
    store.jobs.finish(
      tx,
      jobId,
      { agentId: agent.agentId, attempt },
      { status: "completed", seenStatus: "running", exitCode: 0, now: new Date(now).toISOString() },
      () => new JobChangedError(),
    );
    tx.audit({
      action: "job.finish",
      actor: { type: "agent", id: agent.agentId },
      target: { type: "job", id: jobId },
      outcome: "success",
    });
    await expect(store.commit(tx)).rejects.toBeInstanceOf(JobChangedError);
    expect((await cp.runtime.jobs.get(jobId)).status).toBe("cancelling");
  });
});

describe("claims are safe to repeat", () => {
  it("answers a repeated Idempotency-Key with the same job and attempt, not the next job", async () => {
    const tag = `claim-key-${counter++}`;
    const agent = await cp.registerAgent({ tags: [tag] });
    const first = await queueJob(cp, operator, { tags: [tag] });
    const second = await queueJob(cp, operator, { tags: [tag] });

    const won = await signedClaim(agent, "claim-1");
    expect(won.status).toBe(200);
    const repeat = await signedClaim(agent, "claim-1");
    expect(repeat.status).toBe(200);
    expect(repeat.body).toEqual(won.body);
    expect(repeat.body).toMatchObject({ job: { job_id: first }, attempt: 1 });
    expect((await cp.runtime.jobs.get(second)).status).toBe("queued");

    const next = await signedClaim(agent, "claim-2");
    expect(next.body).toMatchObject({ job: { job_id: second }, attempt: 1 });
    // Keys are the agent's own: another agent's same key is a new claim.
    const other = await cp.registerAgent({ tags: [tag] });
    expect((await signedClaim(other, "claim-1")).status).toBe(204);
  });

  it("returns the job a claim won when the write landed but its confirmation was lost", async () => {
    const tag = `claim-uncertain-${counter++}`;
    const agent = await cp.registerAgent({ tags: [tag] });
    const jobId = await queueJob(cp, operator, { tags: [tag] });
    const spare = await queueJob(cp, operator, { tags: [tag] });
    const store = cp.runtime.store;
    const original = store.commit.bind(store);
    store.commit = async (tx: WriteTransaction) => {
      store.commit = original;
      await original(tx);
      throw new ServiceUnavailableError("the audit record could not be written; nothing was changed");
    };
    try {
      const claimed = await claim(cp, agent);
      expect(claimed.status).toBe(200);
      expect(claimed.body).toMatchObject({ job: { job_id: jobId }, attempt: 1 });
    } finally {
      store.commit = original;
    }
    expect((await cp.runtime.jobs.get(spare)).status).toBe("queued");
  });

  it("answers 503, not 'nothing to do', when a claim's write did not land and it cannot tell why", async () => {
    const tag = `claim-failed-${counter++}`;
    const agent = await cp.registerAgent({ tags: [tag] });
    const jobId = await queueJob(cp, operator, { tags: [tag] });
    const store = cp.runtime.store;
    const original = store.commit.bind(store);
    store.commit = async () => {
      store.commit = original;
      throw new ServiceUnavailableError("the audit record could not be written; nothing was changed");
    };
    try {
      const refused = await claim(cp, agent);
      expect(refused.status).toBe(503);
      expect(refused.headers.get("retry-after")).toBeTruthy();
    } finally {
      store.commit = original;
    }
    expect((await cp.runtime.jobs.get(jobId)).status).toBe("queued");
    expect((await claim(cp, agent)).body.job.job_id).toBe(jobId);
  });
});

describe("revoking an agent", () => {
  it("ends its running jobs at once: failed 'agent revoked', or queued again under retry.agent_lost", async () => {
    const tag = `revoke-${counter++}`;
    const agent = await cp.registerAgent({ tags: [tag] });
    const plain = await queueJob(cp, operator, { tags: [tag] });
    const retried = await queueJob(cp, operator, { tags: [tag], retry: { agent_lost: 1 } });
    expect((await claim(cp, agent)).body.job.job_id).toBe(plain);
    expect((await claim(cp, agent)).body.job.job_id).toBe(retried);
    await appendLog(cp, agent, retried, { attempt: 1, offset: 0, data: "before\n" });
    const audit = recordAuditDrafts(cp);

    const revoked = await cp.request("POST", `/agents/${agent.agentId}/revoke`, { token: admin });
    audit.stop();

    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ jobs_ended: 2, revoked_at: expect.any(String) });
    expect(await cp.runtime.jobs.get(plain)).toMatchObject({
      status: "failed",
      error_message: "agent revoked",
    });
    expect(await cp.runtime.jobs.get(retried)).toMatchObject({ status: "queued", lost_attempts: 1 });
    expect(audit.drafts.map((draft) => draft.action).sort()).toEqual([
      "agent.revoke",
      "job.fail_revoked",
      "job.requeue",
    ]);
    const other = await cp.registerAgent({ tags: [tag] });
    expect((await claim(cp, other)).body).toMatchObject({
      job: { job_id: retried },
      attempt: 2,
      log_offset: 7,
    });
  });

  it("refuses a claim whose agent was revoked after the claim read it (the write's condition)", async () => {
    const tag = `revoke-claim-${counter++}`;
    const agent = await cp.registerAgent({ tags: [tag] });
    const jobId = await queueJob(cp, operator, { tags: [tag] });
    const stale = await cp.runtime.store.agents.get(agent.agentId);
    expect((await cp.request("POST", `/agents/${agent.agentId}/revoke`, { token: admin })).status).toBe(200);
    // The claim reads the agent before the revocation committed.
    const agents = cp.runtime.store.agents;
    const get = agents.get.bind(agents);
    agents.get = async (id: string) => (id === agent.agentId ? stale : get(id));
    try {
      await expect(cp.runtime.agentJobs.claim(agent.agentId, { requestId: "race" })).rejects.toMatchObject({
        status: 401,
      });
    } finally {
      agents.get = get;
    }
    expect((await cp.runtime.jobs.get(jobId)).status).toBe("queued");
  });
});

describe("job totals", () => {
  it("come from maintained counters: right after every transition, one read per request", async () => {
    const local = await startTestControlPlane("jobs-server-rules-counts");
    try {
      const token = await local.token("operator");
      const approver = await local.token("admin");
      const agent = await local.registerAgent({ tags: ["count"] });
      const ids = [];
      for (let index = 0; index < 5; index++) ids.push(await queueJob(local, token, { tags: ["count"] }));
      const waiting = await queueJob(local, token, { environment: "production" });
      await local.request("POST", `/jobs/${ids[0]}/cancel`, { token });
      const running = await claim(local, agent);
      await complete(local, agent, running.body.job.job_id, {
        attempt: 1,
        status: "completed",
        exit_code: 0,
      });
      const failing = await claim(local, agent);
      await complete(local, agent, failing.body.job.job_id, { attempt: 1, status: "failed", exit_code: 2 });
      await claim(local, agent);
      await local.request("POST", `/jobs/${waiting}/reject`, { token: approver });

      const sent: string[] = [];
      const doc = local.runtime.store.doc;
      const send = doc.send.bind(doc);
      doc.send = ((command: { constructor: { name: string } }, ...rest: unknown[]) => {
        sent.push(command.constructor.name);
        return (send as (...args: unknown[]) => unknown)(command, ...rest);
      }) as typeof doc.send;
      const totals: Record<string, number> = {};
      try {
        for (const status of ["queued", "running", "completed", "failed", "cancelled", "awaiting_approval"]) {
          sent.length = 0;
          totals[status] = (await local.request("GET", `/jobs?status=${status}`, { token })).body.total;
          expect(sent.filter((name) => name !== "GetCommand" && name !== "UpdateCommand").sort()).toEqual([
            "BatchGetCommand",
            "QueryCommand",
          ]);
        }
        totals.all = (await local.request("GET", "/jobs", { token })).body.total;
      } finally {
        doc.send = send;
      }
      expect(totals).toEqual({
        queued: 1,
        running: 1,
        completed: 1,
        failed: 1,
        cancelled: 2,
        awaiting_approval: 0,
        all: 6,
      });
      const metrics = await local.request("GET", "/metrics/queue", { token });
      expect(metrics.body).toMatchObject({ queued: { jobs: 1 }, running: 1, awaiting_approval: 0 });
    } finally {
      await local.close();
    }
  });
});
