import { execFile } from "node:child_process";
import { copyFile, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAgentBundle } from "../../runtime/scripts/build-agent";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";
import { queueJob } from "../support/jobs";

const run = promisify(execFile);

/**
 * The installable agent (decision 113) the way an operator uses it: the single-file download copied
 * alone into an empty directory outside this checkout, run with plain `node` (no tsx, no node_modules,
 * no NODE_PATH), registered against a real control plane, running one job with `--once`.
 */
describe("single-file agent download", () => {
  let cp: TestControlPlane;
  let machine: string;
  let agentFile: string;

  beforeAll(async () => {
    cp = await startTestControlPlane("agentdl");
    const out = await mkdtemp(join(tmpdir(), "hcp-agent-build-"));
    const started = performance.now();
    const bundle = await buildAgentBundle(out);
    const built = performance.now() - started;
    machine = await mkdtemp(join(tmpdir(), "hcp-agent-machine-"));
    agentFile = join(machine, "hybrid-cicd-agent.mjs");
    await copyFile(bundle.path, agentFile);
    console.info(
      `agent bundle: ${bundle.bytes} bytes, built in ${built.toFixed(0)} ms, sha256 ${bundle.sha256}`,
    );
    expect(await readFile(`${bundle.path}.sha256`, "utf8")).toBe(`${bundle.sha256}  hybrid-cicd-agent.mjs\n`);
    await rm(out, { recursive: true, force: true });
  });

  afterAll(async () => {
    await cp?.close();
    if (machine) await rm(machine, { recursive: true, force: true });
  });

  /** Plain node in the empty directory, with an environment that points at nothing in this checkout. */
  const agent = (args: string[]) =>
    run(process.execPath, [agentFile, ...args], {
      cwd: machine,
      env: { PATH: process.env.PATH, HOME: machine, LOG_LEVEL: "info" },
      timeout: 60_000,
    });

  it("is deterministic: the same sources give the same bytes", async () => {
    const other = await mkdtemp(join(tmpdir(), "hcp-agent-build-"));
    const again = await buildAgentBundle(other);
    expect(await readFile(again.path)).toEqual(await readFile(agentFile));
    await rm(other, { recursive: true, force: true });
  });

  it("registers with a one-time token and runs one job with --once", async () => {
    expect(await readdir(machine)).toEqual(["hybrid-cicd-agent.mjs"]);
    const admin = await cp.token("admin");
    const operator = await cp.token("operator");
    const registration = await cp.request("POST", "/agents/registration-tokens", { token: admin, body: {} });
    expect(registration.status).toBe(201);
    const jobId = await queueJob(cp, operator, {
      tags: ["download"],
      command: "echo hello from the download",
    });

    const identity = join(machine, "identity.json");
    const registered = await agent([
      "agent",
      "register",
      "--url",
      cp.url,
      "--token",
      registration.body.token,
      "--name",
      "downloaded",
      "--region",
      "local",
      "--tags",
      "download",
      "--identity",
      identity,
    ]);
    const agentId = registered.stdout.trim();
    expect((await cp.runtime.agents.get(agentId)).name).toBe("downloaded");

    await agent(["agent", "run", "--once", "--identity", identity, "--work-dir", join(machine, "work")]);

    const job = await cp.request("GET", `/jobs/${jobId}`, { token: operator });
    expect(job.body).toMatchObject({ status: "completed", exit_code: 0 });
    const log = await cp.request("GET", `/jobs/${jobId}/logs`, { token: operator });
    expect(JSON.stringify(log.body)).toContain("hello from the download");
  });
});
