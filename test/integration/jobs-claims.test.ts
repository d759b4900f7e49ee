import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signedFetch } from "../../runtime/src/agent/signed-fetch";
import { systemContext } from "../../runtime/src/domain/principal";
import { createApp } from "../../runtime/src/http/app";
import { createLogger } from "../../runtime/src/logger";
import { createRuntime, type Runtime } from "../../runtime/src/runtime";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";
import { claim, queueJob, recordAuditDrafts } from "../support/jobs";

describe("claiming jobs", () => {
  let cp: TestControlPlane;
  let operator: string;
  beforeAll(async () => {
    cp = await startTestControlPlane("jobs-claims");
    operator = await cp.token("operator");
  });
  afterAll(() => cp.close());

  it("hands out the highest-priority, then oldest, job whose tags the agent has", async () => {
    const plain = await queueJob(cp, operator, { command: "echo plain", priority: 50 });
    const urgentLinux = await queueJob(cp, operator, { command: "make", tags: ["linux"], priority: 80 });
    const urgentGpu = await queueJob(cp, operator, { command: "train", tags: ["gpu"], priority: 90 });
    const laterLinux = await queueJob(cp, operator, { command: "make", tags: ["linux"], priority: 50 });
    const agent = await cp.registerAgent({ tags: ["linux", "x86_64"] });

    const claimed: string[] = [];
    for (;;) {
      const response = await claim(cp, agent);
      if (response.status === 204) break;
      expect(response.status).toBe(200);
      claimed.push(response.body.job.job_id);
    }

    expect(claimed).toEqual([urgentLinux, plain, laterLinux]);
    expect((await cp.runtime.jobs.get(urgentGpu)).status).toBe("queued");
  });

  it("answers 200 with the job, its attempt, the lease and the log offset", async () => {
    const local = await startTestControlPlane("jobs-claim-reply");
    try {
      const jobId = await queueJob(local, await local.token("operator"), {
        command: "npm test",
        tags: ["node"],
        timeout_seconds: 600,
      });
      const agent = await local.registerAgent({ tags: ["node"] });
      const before = Date.now();

      const response = await claim(local, agent);

      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({
        job: {
          job_id: jobId,
          status: "running",
          command: "npm test",
          agent_id: agent.agentId,
          timeout_seconds: 600,
        },
        attempt: 1,
        log_offset: 0,
      });
      expect(Date.parse(response.body.lease_expires_at)).toBeGreaterThan(before + 100_000);
      const stored = await local.runtime.jobs.get(jobId);
      expect(stored).toMatchObject({ status: "running", attempt: 1, agent_id: agent.agentId });
      expect(stored.attempts).toEqual([
        { attempt: 1, agent_id: agent.agentId, claimed_at: expect.any(String) },
      ]);
      expect(stored).not.toHaveProperty("queue_key");
      expect((await claim(local, agent)).status).toBe(204);
    } finally {
      await local.close();
    }
  });

  it("answers 204 when nothing queued matches the agent's tags", async () => {
    const local = await startTestControlPlane("jobs-claim-empty");
    try {
      const agent = await local.registerAgent({ tags: ["linux"] });
      expect((await claim(local, agent)).status).toBe(204);
      await queueJob(local, await local.token("operator"), { tags: ["windows"] });
      const response = await claim(local, agent);
      expect(response.status).toBe(204);
      expect(response.body).toBe("");
    } finally {
      await local.close();
    }
  });

  it("records each claim with its audit event", async () => {
    const local = await startTestControlPlane("jobs-claim-audit");
    try {
      const jobId = await queueJob(local, await local.token("operator"), {});
      const agent = await local.registerAgent();
      const audit = recordAuditDrafts(local);
      await claim(local, agent);
      audit.stop();
      expect(audit.drafts).toEqual([
        expect.objectContaining({
          action: "job.claim",
          actor: expect.objectContaining({ type: "agent", id: agent.agentId }),
          target: { type: "job", id: jobId },
          outcome: "success",
          details: expect.objectContaining({ attempt: 1 }),
        }),
      ]);
    } finally {
      await local.close();
    }
  });

  it("refuses a claim signed by another agent than the one in the path", async () => {
    const agent = await cp.registerAgent();
    const other = await cp.registerAgent();
    const response = await cp.agentRequest(other, "POST", `/agents/${agent.agentId}/jobs/claim`, {});
    expect(response.status).toBe(403);
    const unsigned = await cp.request("POST", `/agents/${agent.agentId}/jobs/claim`, { token: operator });
    expect(unsigned.status).toBe(401);
  });

  it("lets exactly one of two concurrent claims of the same attempt win (the write's condition)", async () => {
    const local = await startTestControlPlane("jobs-claim-condition");
    try {
      const jobId = await queueJob(local, await local.token("operator"), {});
      const seen = await local.runtime.store.jobs.get(jobId);
      // Two processes (two stores, two audit chains) that both read the job as queued at attempt 0.
      const stores = [local.runtime.store, secondInstance(local).store];
      const results = await Promise.allSettled(
        stores.map(async (store, index) => {
          const tx = store.transaction();
          store.jobs.claim(
            tx,
            seen!,
            {
              agentId: `agt_${String(index).repeat(26)}`,
              now: new Date().toISOString(),
              leaseExpiresAt: "2100-01-01T00:00:00.000Z",
              deadlineAt: "2100-01-01T00:00:00.000Z",
            },
            () => new Error("lost"),
          );
          tx.audit({
            action: "job.claim",
            actor: { type: "agent", id: `agent-${index}` },
            target: { type: "job", id: jobId },
            outcome: "success",
          });
          await store.commit(tx);
        }),
      );
      expect(results.filter((result) => result.status === "fulfilled")).toHaveLength(1);
      expect(
        results.filter((result) => result.status === "rejected").map((result) => String(result.reason)),
      ).toEqual(["Error: lost"]);
      const stored = await local.runtime.store.jobs.get(jobId);
      expect(stored).toMatchObject({ status: "running", attempt: 1 });
      expect(stored?.attempts).toHaveLength(1);
    } finally {
      await local.close();
    }
  });

  it("claims each of 500 jobs exactly once with 50 agents claiming at once through 2 API instances", async () => {
    const local = await startTestControlPlane("jobs-claim-race");
    // Two API instances (two processes' worth of in-memory state), as Lambda would run them.
    const instances = [local.url];
    const servers: Server[] = [];
    try {
      for (let index = 1; index < 2; index++) {
        const server = createServer(createApp(secondInstance(local), { secureCookies: false }));
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        servers.push(server);
        instances.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      }
      const queued = new Set<string>();
      const context = systemContext("test");
      for (let batch = 0; batch < 50; batch++) {
        const created = await Promise.all(
          Array.from({ length: 10 }, (_, index) =>
            local.runtime.jobs.create(
              { git_ref: "main", command: `echo ${batch * 10 + index}`, tags: [], priority: 50 },
              context,
            ),
          ),
        );
        for (const { job } of created) queued.add(job.job_id);
      }
      const agents = await Promise.all(Array.from({ length: 50 }, () => local.registerAgent()));
      const claims: { jobId: string; attempt: number; agentId: string }[] = [];
      const unexpected: number[] = [];

      await Promise.all(
        agents.map(async (agent, index) => {
          const url = instances[index % instances.length]!;
          for (;;) {
            const response = await signedFetch<{ job: { job_id: string }; attempt: number }>(
              url,
              agent,
              "POST",
              `/agents/${agent.agentId}/jobs/claim`,
              {},
            );
            if (response.status === 204) return;
            if (response.status !== 200) {
              unexpected.push(response.status);
              continue;
            }
            claims.push({
              jobId: response.body.job.job_id,
              attempt: response.body.attempt,
              agentId: agent.agentId,
            });
          }
        }),
      );

      expect(unexpected).toEqual([]);
      expect(claims).toHaveLength(500);
      expect(new Set(claims.map((entry) => entry.jobId))).toEqual(queued);
      expect(claims.every((entry) => entry.attempt === 1)).toBe(true);
      const stored = await Promise.all([...queued].map((jobId) => local.runtime.store.jobs.get(jobId)));
      for (const job of stored) {
        expect(job?.status).toBe("running");
        expect(job?.attempts).toHaveLength(1);
        expect(job?.agent_id).toBe(claims.find((entry) => entry.jobId === job?.job_id)?.agentId);
      }
    } finally {
      for (const server of servers) {
        server.closeAllConnections();
        server.close();
      }
      await local.close();
    }
  }, 120_000);
});

/** Another API instance over the same tables and secrets (as a second Lambda instance would be). */
function secondInstance(cp: TestControlPlane): Runtime {
  return createRuntime({
    env: cp.runtime.env,
    doc: cp.runtime.store.doc,
    secretStore: cp.runtime.secretStore,
    logger: createLogger({ level: "silent" }),
  });
}
