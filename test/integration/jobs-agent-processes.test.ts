import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readIdentity, signingIdentity } from "../../runtime/src/agent/identity";
import type { AgentView } from "../../runtime/src/domain/agents/agents-service";
import { type MaintenanceTimers, startMaintenanceTimers } from "../../runtime/src/local/maintenance-timers";
import { type AgentProcess, identityFile, killJobGroup, startAgent } from "../support/agent-process";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";
import { appendLog, complete, eventually, queueJob } from "../support/jobs";

// Seconds, not minutes: the server tells the agents these intervals.
const timings = {
  HYBRID_CICD_HEARTBEAT_INTERVAL_SECONDS: "1",
  HYBRID_CICD_CLAIM_INTERVAL_SECONDS: "1",
  HYBRID_CICD_LEASE_SECONDS: "3",
  HYBRID_CICD_SWEEP_INTERVAL_SECONDS: "1",
  HYBRID_CICD_AGENT_UNHEALTHY_AFTER_SECONDS: "4",
  HYBRID_CICD_AGENT_DEAD_AFTER_SECONDS: "8",
  HYBRID_CICD_CANCEL_GRACE_SECONDS: "2",
};

let cp: TestControlPlane;
let maintenance: MaintenanceTimers;
let dir: string;
let operator: string;
const agents: AgentProcess[] = [];

beforeAll(async () => {
  cp = await startTestControlPlane("jobs-agent-processes", { env: timings });
  // The local control plane's sweeper timer, as `npm start` runs it.
  maintenance = startMaintenanceTimers(cp.runtime);
  dir = await mkdtemp(join(tmpdir(), "hcp-agents-"));
  operator = await cp.token("operator");
});

afterAll(async () => {
  for (const agent of agents) if (agent.child.exitCode === null) agent.child.kill("SIGKILL");
  await maintenance.stop();
  await cp.close();
  await rm(dir, { recursive: true, force: true });
});

async function launch(name: string, tags: string[], args: string[] = []): Promise<AgentProcess> {
  const identity = await cp.registerAgent({ name, tags });
  const path = await identityFile(dir, cp.url, identity, name, tags);
  const agent = startAgent(path, join(dir, `${name}-work`), args);
  agents.push(agent);
  return agent;
}

const job = (jobId: string) => cp.runtime.jobs.get(jobId);
const log = async (jobId: string) => (await cp.runtime.jobs.logs(jobId, 0, 1024 * 1024)).data;

describe("agents that die", () => {
  it("lose their job after the lease: failed as 'agent lost', or rerun by another agent when the job allows it", async () => {
    const once = await queueJob(cp, operator, {
      tags: ["lost-once"],
      command: "echo started pid=$$; sleep 30",
    });
    const retried = await queueJob(cp, operator, {
      tags: ["lost-retry"],
      retry: { agent_lost: 1 },
      command:
        'echo "attempt $HYBRID_CICD_ATTEMPT pid=$$"; if [ "$HYBRID_CICD_ATTEMPT" = 1 ]; then sleep 30; fi',
    });
    const doomed = [await launch("doomed-1", ["lost-once"]), await launch("doomed-2", ["lost-retry"])];
    await eventually(
      async () => ((await log(once)).includes("pid=") ? true : undefined),
      "the first job to start",
    );
    await eventually(
      async () => ((await log(retried)).includes("pid=") ? true : undefined),
      "the second job to start",
    );

    for (const agent of doomed) agent.child.kill("SIGKILL");
    await Promise.all(doomed.map((agent) => agent.exited));
    killJobGroup(await log(once));
    killJobGroup(await log(retried));
    const rescuer = await launch("rescuer", ["lost-retry"]);

    const failed = await eventually(
      async () => ((await job(once)).status === "failed" ? job(once) : undefined),
      "the first job to fail",
    );
    expect(failed).toMatchObject({ error_message: "agent lost", attempt: 1 });
    const rerun = await eventually(
      async () => ((await job(retried)).status === "completed" ? job(retried) : undefined),
      "the second job to be rerun",
    );
    expect(rerun.attempts?.map((attempt) => attempt.outcome)).toEqual(["agent_lost", "completed"]);
    expect(rerun.attempts?.[1]?.agent_id).not.toBe(rerun.attempts?.[0]?.agent_id);
    expect(await log(retried)).toMatch(/attempt 1 pid=\d+\n[\s\S]*attempt 2 pid=\d+\n/);

    // The killed agent's late writes for its old attempt are refused, and change nothing.
    const zombie = signingIdentity(await readIdentity(doomed[1]!.identityPath));
    const size = (await job(retried)).log_size!;
    const late = await appendLog(cp, zombie, retried, { attempt: 1, offset: size, data: "zombie\n" });
    expect(late.status).toBe(409);
    expect(late.body.type).toBe("/problems/stale-attempt");
    expect((await complete(cp, zombie, retried, { attempt: 1, status: "failed", exit_code: 1 })).status).toBe(
      409,
    );
    expect(await job(retried)).toMatchObject({ status: "completed", log_size: size });

    rescuer.child.kill("SIGTERM");
    expect(await rescuer.exited).toBe(0);
  }, 60_000);
});

describe("draining an agent", () => {
  it("finishes the current job on SIGTERM, stays healthy while it does, claims nothing new, then exits", async () => {
    const agent = await launch("drained", ["drain"]);
    const current = await queueJob(cp, operator, {
      tags: ["drain"],
      command: "echo working; sleep 3; echo finished",
    });
    await eventually(
      async () => ((await log(current)).includes("working") ? true : undefined),
      "the job to start",
    );
    const agentId = (await readIdentity(agent.identityPath)).agent_id;

    agent.child.kill("SIGTERM");
    const next = await queueJob(cp, operator, { tags: ["drain"], command: "echo must not run" });
    const samples: AgentView[] = [];
    while (agent.child.exitCode === null) {
      samples.push(await cp.runtime.agents.get(agentId));
      await new Promise((resolve) => setTimeout(resolve, 250));
    }

    expect(await agent.exited).toBe(0);
    expect(samples.length).toBeGreaterThan(4);
    for (const sample of samples) {
      // Healthy throughout: heartbeats kept coming (a busy test machine may still show high CPU).
      const busy = Object.values(sample.last_figures ?? {}).some((value) => value >= 95);
      expect(sample.status === "healthy" || (busy && sample.status === "unhealthy"), sample.status).toBe(
        true,
      );
    }
    const beats = new Set(samples.map((sample) => sample.last_heartbeat_at));
    expect(beats.size).toBeGreaterThan(2);
    expect(await job(current)).toMatchObject({ status: "completed", exit_code: 0 });
    expect(await log(current)).toContain("finished");
    expect((await job(next)).status).toBe("queued");
    expect(agent.output()).toMatch(/draining/);
    await cp.request("POST", `/jobs/${next}/cancel`, { token: operator });
  }, 60_000);

  it("cancels the current job on a second SIGTERM and reports it as cancelled", async () => {
    const agent = await launch("stopped", ["shutdown"]);
    const current = await queueJob(cp, operator, { tags: ["shutdown"], command: "echo ready; sleep 30" });
    await eventually(
      async () => ((await log(current)).includes("ready") ? true : undefined),
      "the job to start",
    );

    agent.child.kill("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 200));
    agent.child.kill("SIGTERM");

    expect(await agent.exited).toBe(0);
    expect(await job(current)).toMatchObject({ status: "cancelled", error_message: "agent shut down" });
  }, 60_000);

  it("runs a job without the path of its identity file in the job's environment", async () => {
    const jobId = await queueJob(cp, operator, { tags: ["private"], command: "env" });
    const identity = await cp.registerAgent({ name: "private", tags: ["private"] });
    const path = await identityFile(dir, cp.url, identity, "private", ["private"]);
    // The identity lies under the agent's HOME, and a variable names it.
    const agent = startAgent(path, join(dir, "private-work"), ["--once"], {
      HOME: dir,
      AGENT_IDENTITY: path,
    });
    agents.push(agent);

    expect(await agent.exited).toBe(0);
    expect((await job(jobId)).status).toBe("completed");
    const printed = await log(jobId);
    expect(printed).toMatch(/^HYBRID_CICD_JOB_ID=/m);
    expect(printed).not.toContain(path);
    expect(printed).not.toMatch(/^AGENT_IDENTITY=/m);
    expect(printed).toMatch(new RegExp(`^HOME=${join(dir, "private-work")}/`, "m"));
  }, 60_000);

  it("runs exactly one job with --once, then exits", async () => {
    const first = await queueJob(cp, operator, { tags: ["ephemeral"], command: "echo one" });
    const second = await queueJob(cp, operator, { tags: ["ephemeral"], command: "echo two" });
    const agent = await launch("ephemeral", ["ephemeral"], ["--once"]);

    expect(await agent.exited).toBe(0);
    expect((await job(first)).status).toBe("completed");
    expect((await job(second)).status).toBe("queued");
    await cp.request("POST", `/jobs/${second}/cancel`, { token: operator });
  }, 60_000);

  it("stops with exit code 3 when the control plane refuses its identity", async () => {
    const agent = await launch("revoked", ["revoked"]);
    const agentId = (await readIdentity(agent.identityPath)).agent_id;
    await eventually(
      async () => ((await cp.runtime.agents.get(agentId)).last_heartbeat_at ? true : undefined),
      "the first heartbeat",
    );
    const revoked = await cp.request("POST", `/agents/${agentId}/revoke`, { token: await cp.token("admin") });
    expect(revoked.status).toBe(200);

    expect(await agent.exited).toBe(3);
    expect(agent.output()).toMatch(/refused this agent/);
  }, 60_000);
});
