import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, startCli, waitForExit } from "../support/cli";

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "hcp-local-"));
});
afterAll(() => rm(dataDir, { recursive: true, force: true }));

/** The embedded database's JVM, found while its parent still runs (so there is exactly one to find). */
function jvmOf(pid: number): number {
  const found = execFileSync("pgrep", ["-P", String(pid), "-f", "DynamoDBLocal"], { encoding: "utf8" })
    .trim()
    .split("\n")
    .filter(Boolean)
    .map(Number);
  expect(found, `DynamoDB Local JVMs under ${pid}`).toHaveLength(1);
  return found[0]!;
}

/** Whether a process still runs (a zombie awaiting its reaper has stopped). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

describe("the local control plane (npm start)", () => {
  it("keeps every record across a restart, and the CLI works with it stopped or running", async () => {
    // A token made while nothing runs (the CLI starts the embedded database itself).
    const offline = await runCli([
      "token",
      "create",
      "--role",
      "operator",
      "--name",
      "ci",
      "--data-dir",
      dataDir,
    ]);
    expect(offline.code, offline.stderr).toBe(0);
    const operator = offline.stdout.trim();
    expect(operator).toMatch(/^hcp_[A-Za-z0-9_-]{43}$/);
    expect(offline.stdout).not.toMatch(/expires/);
    expect((await stat(join(dataDir, "secrets.key"))).mode & 0o777).toBe(0o600);

    const first = await startCli(["--port", "0", "--data-dir", dataDir]);
    expect(first.output()).toMatch(/Console:\s+http:\/\/127\.0\.0\.1:\d+\/console/);
    expect(first.output()).toMatch(/\/auth\/signin-link\?token=hcs_/);
    const created = await fetch(`${first.url}/jobs?git_ref=main`, {
      method: "POST",
      headers: { authorization: `Bearer ${operator}` },
    });
    expect(created.status).toBe(201);
    const job = (await created.json()) as { job_id: string };
    // The console is served once built (the e2e suite builds it); before that, a 503 says how to build it.
    const consolePage = await fetch(`${first.url}/console/`, { redirect: "manual" });
    if (existsSync(join("console", "build", "server", "index.js"))) {
      expect(consolePage.status).toBeLessThan(400);
    } else {
      expect(consolePage.status).toBe(503);
      expect(consolePage.headers.get("content-type")).toMatch(/problem\+json/);
    }

    // The CLI reuses the running control plane's database.
    const link = await runCli(["signin-link", "--data-dir", dataDir]);
    expect(link.code, link.stderr).toBe(0);
    expect(link.stdout.trim()).toBe(
      `${first.url}/auth/signin-link?token=${link.stdout.trim().split("token=")[1]}`,
    );
    const signin = await fetch(link.stdout.trim(), { redirect: "manual" });
    expect(signin.status).toBe(303);

    const firstJvm = jvmOf(first.child.pid!);
    expect(isRunning(firstJvm)).toBe(true);
    first.child.kill("SIGTERM");
    expect(await waitForExit(first.child)).toBe(0);
    // The JVM itself, not its parent's children: once the parent is gone, pgrep -P finds nothing anyway.
    expect(isRunning(firstJvm)).toBe(false);

    const second = await startCli(["--port", "0", "--data-dir", dataDir]);
    const secondJvm = jvmOf(second.child.pid!);
    try {
      const read = await fetch(`${second.url}/jobs/${job.job_id}`, {
        headers: { authorization: `Bearer ${operator}` },
      });
      expect(read.status).toBe(200);
      expect(((await read.json()) as { git_ref: string }).git_ref).toBe("main");
    } finally {
      second.child.kill("SIGINT");
      expect(await waitForExit(second.child)).toBe(0);
      expect(isRunning(secondJvm)).toBe(false);
    }
  }, 180_000); // two JVM starts and stops: slow on a loaded machine, and never a timing assertion

  it("says in one line what to install when Java is missing", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hcp-nojava-"));
    try {
      const result = await runCli(["start", "--port", "0", "--data-dir", dir], { PATH: "/nonexistent" });
      expect(result.code).toBe(1);
      const lines = result.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/Java 17\+ .*openjdk-17-jre-headless/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses an invalid flag value with a clear message", async () => {
    const result = await runCli(["token", "create", "--role", "superuser"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/superuser/);
    const ttl = await runCli(["token", "create", "--role", "admin", "--ttl", "forever"]);
    expect(ttl.stderr).toMatch(/not a duration/);
  }, 120_000);
});
