import type { ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentProcess, startAgent } from "../support/agent-process";
import { runCli, startCli, waitForExit } from "../support/cli";
import { type FreshTables, freshTables } from "../support/dynamodb";
import { eventually } from "../support/jobs";

/**
 * The whole product as a user runs it: `hybrid-cicd start` (over this run's DynamoDB Local, tables of
 * its own), tokens from the CLI, two agents registered and run with `hybrid-cicd agent ...`, twenty jobs
 * of every kind. Server-set intervals are shortened through the environment so it takes seconds.
 */
const timings = {
  HYBRID_CICD_HEARTBEAT_INTERVAL_SECONDS: "1",
  HYBRID_CICD_CLAIM_INTERVAL_SECONDS: "1",
  // Long enough that a loaded machine delaying a few heartbeats does not lose a job (nothing here is lost).
  HYBRID_CICD_LEASE_SECONDS: "15",
  HYBRID_CICD_SWEEP_INTERVAL_SECONDS: "1",
  HYBRID_CICD_CANCEL_GRACE_SECONDS: "2",
};

interface Job {
  job_id: string;
  status: string;
  exit_code?: number;
  error_message?: string;
  agent_id?: string;
  attempts?: { agent_id: string }[];
  approved_by?: string;
}

let tables: FreshTables;
let dir: string;
let controlPlane: { child: ChildProcess; url: string };
let env: NodeJS.ProcessEnv;
const agents: AgentProcess[] = [];

beforeAll(async () => {
  tables = await freshTables("agents-e2e");
  dir = await mkdtemp(join(tmpdir(), "hcp-e2e-agents-"));
  env = { DYNAMODB_ENDPOINT: tables.endpoint, HYBRID_CICD_TABLE_PREFIX: tables.prefix, ...timings };
  controlPlane = await startCli(["--port", "0", "--data-dir", join(dir, "data")], env);
});

afterAll(async () => {
  for (const agent of agents) if (agent.child.exitCode === null) agent.child.kill("SIGKILL");
  if (controlPlane && controlPlane.child.exitCode === null) {
    controlPlane.child.kill("SIGTERM");
    await waitForExit(controlPlane.child);
  }
  await tables.cleanup();
  await rm(dir, { recursive: true, force: true });
});

describe("jobs on remote agents, end to end", () => {
  it("runs twenty jobs of every kind on three CLI agents, each exactly once, each ending in the right state", async () => {
    const url = controlPlane.url;
    const cli = (args: string[]) => runCli([...args, "--data-dir", join(dir, "data")], env);
    const [adminToken, operatorToken] = await Promise.all([
      cli(["token", "create", "--role", "admin", "--name", "e2e-admin"]),
      cli(["token", "create", "--role", "operator", "--name", "e2e-operator"]),
    ]);
    expect(adminToken.code, adminToken.stderr).toBe(0);
    const admin = adminToken.stdout.trim();
    const operator = operatorToken.stdout.trim();
    const api = async (method: string, path: string, token: string, body?: unknown) => {
      const response = await fetch(url + path, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body ? { "content-type": "application/json" } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : undefined };
    };

    // Three machines join with one-time registration tokens: two builders in staging (the default) and
    // a deployer that the admin puts in production.
    const identities: string[] = [];
    await Promise.all(
      [
        ["builder-1", "linux,e2e", "staging"],
        ["builder-2", "linux,e2e,gpu", "staging"],
        ["deployer", "linux,e2e", "production"],
      ].map(async ([name, tags, environment], index) => {
        const registration = await api("POST", "/agents/registration-tokens", admin, { environment });
        expect(registration.body.environment).toBe(environment);
        const path = join(dir, `${name}.json`);
        const registered = await runCli([
          "agent",
          "register",
          "--url",
          url,
          "--token",
          registration.body.token,
          "--name",
          name!,
          "--region",
          "local",
          "--tags",
          tags!,
          "--identity",
          path,
        ]);
        expect(registered.code, registered.stderr).toBe(0);
        identities[index] = registered.stdout.trim();
        agents.push(startAgent(path, join(dir, `${name}-work`), [], { MARKS: join(dir, "marks") }));
      }),
    );

    // Every job first notes that it ran, so running twice would show.
    const mark = 'echo "$HYBRID_CICD_JOB_ID $HYBRID_CICD_ATTEMPT $HYBRID_CICD_AGENT_ID" >> "$MARKS"; ';
    const queue = async (body: Record<string, unknown>, token = operator) => {
      const response = await api("POST", "/jobs", token, {
        git_ref: "main",
        ...body,
        tags: ["e2e", ...((body.tags as string[]) ?? [])],
        command: mark + body.command,
      });
      expect(response.status).toBe(201);
      return response.body as Job;
    };
    const echoes = await Promise.all(
      Array.from({ length: 12 }, (_, index) =>
        queue({ command: `echo "hello ${index} from $HYBRID_CICD_AGENT_NAME"` }),
      ),
    );
    const failing = await queue({ command: "echo about to fail; exit 3" });
    const stderr = await queue({ command: "echo to-stderr >&2" });
    const large = await queue({ command: "seq 1 30000" });
    const gpu = await queue({ command: "echo on a gpu", tags: ["gpu"] });
    const sleepy = await queue({ command: "sleep 1; echo done-late" });
    const slow = await queue({ command: "echo slow-started; sleep 60" });
    const timeout = await queue({ command: "echo timeout-started; sleep 60", timeout_seconds: 2 });
    const production = await queue({ command: "echo deploying", environment: "production" });
    expect(production.status).toBe("awaiting_approval");
    const all = [...echoes, failing, stderr, large, gpu, sleepy, slow, timeout, production];
    expect(all).toHaveLength(20);

    const logOf = async (jobId: string) =>
      (await api("GET", `/jobs/${jobId}/logs?limit=4194304`, operator)).body as {
        data: string;
        size: number;
        complete: boolean;
      };
    const read = async (jobId: string) => (await api("GET", `/jobs/${jobId}`, operator)).body as Job;

    // The slow job is cancelled once it runs; the production job needs a second person.
    await eventually(
      async () => ((await logOf(slow.job_id)).data.includes("slow-started") ? true : undefined),
      "the slow job",
      // Seventeen jobs run before it on two builders: generous on a loaded machine (never fail on timing).
      90_000,
    );
    expect((await api("POST", `/jobs/${slow.job_id}/cancel`, operator)).status).toBe(202);
    const self = await api("POST", `/jobs/${production.job_id}/approve`, operator);
    expect(self.status).toBe(403);
    const approved = await api("POST", `/jobs/${production.job_id}/approve`, admin);
    expect(approved.body).toMatchObject({ status: "queued", approved_by: "token:e2e-admin" });

    const terminal = new Set(["completed", "failed", "cancelled"]);
    const finished = await eventually(
      async () => {
        const jobs = await Promise.all(all.map((job) => read(job.job_id)));
        return jobs.every((job) => terminal.has(job.status)) ? jobs : undefined;
      },
      "every job to finish",
      90_000,
      250,
    );
    const byId = new Map(finished.map((job) => [job.job_id, job]));
    const state = (job: Job) => byId.get(job.job_id)!;

    for (const job of [...echoes, stderr, large, gpu, sleepy, production]) {
      expect(state(job), job.job_id).toMatchObject({ status: "completed", exit_code: 0 });
    }
    expect(state(failing)).toMatchObject({ status: "failed", exit_code: 3, error_message: "exit code 3" });
    expect(state(slow)).toMatchObject({ status: "cancelled", error_message: "cancelled on request" });
    expect(state(timeout)).toMatchObject({ status: "failed", error_message: "timed out after 2 s" });
    expect(state(gpu).agent_id).toBe(identities[1]);
    expect(state(production).approved_by).toBe("token:e2e-admin");
    // Only the production agent ran the production job, and it ran nothing else.
    expect(state(production).agent_id).toBe(identities[2]);
    for (const job of all) if (job !== production) expect(state(job).agent_id).not.toBe(identities[2]);

    // Each ran exactly once: one attempt, one mark, one header in its log.
    const marks = (await readFile(join(dir, "marks"), "utf8")).trim().split("\n");
    for (const job of all) {
      expect(state(job).attempts, job.job_id).toHaveLength(1);
      const lines = marks.filter((line) => line.startsWith(`${job.job_id} `));
      expect(lines, job.job_id).toEqual([`${job.job_id} 1 ${state(job).agent_id}`]);
      const log = await logOf(job.job_id);
      expect(log.complete).toBe(true);
      expect(log.data.match(/\[hybrid-cicd agent .* attempt 1, main\]/g), job.job_id).toHaveLength(1);
    }
    for (const [index, job] of echoes.entries())
      expect((await logOf(job.job_id)).data).toContain(`hello ${index} from builder-`);
    expect((await logOf(stderr.job_id)).data).toContain("to-stderr\n");
    expect((await logOf(failing.job_id)).data).toContain("about to fail\n[hybrid-cicd agent: exit code 3]\n");
    const big = await logOf(large.job_id);
    expect(big.size).toBeGreaterThan(168_000);
    expect(big.data).toContain("\n29999\n30000\n");
    expect(big.data.split("\n").filter((line) => /^\d+$/.test(line))).toHaveLength(30000);
    expect((await logOf(timeout.job_id)).data).toContain("timed out after 2 s");

    const metrics = await api("GET", "/metrics/queue", operator);
    expect(metrics.body).toMatchObject({ queued: { jobs: 0 }, running: 0, awaiting_approval: 0 });
    // All heartbeating (a busy test machine may report them unhealthy for their CPU figure).
    expect(metrics.body.agents.healthy + metrics.body.agents.unhealthy).toBe(3);

    // Scale-in: every agent drains and exits cleanly.
    for (const agent of agents) agent.child.kill("SIGTERM");
    expect(await Promise.all(agents.map((agent) => agent.exited))).toEqual([0, 0, 0]);
  }, 240_000);
});
