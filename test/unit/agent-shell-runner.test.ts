import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ShellRun, type ShellRunOptions } from "../../runtime/src/agent/shell-runner";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "agent-shell-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

function run(script: string, options: Partial<ShellRunOptions> = {}) {
  let output = "";
  const shell = new ShellRun({
    script,
    cwd: dir,
    env: { PATH: process.env.PATH, LANG: "C" },
    timeoutSeconds: 30,
    graceSeconds: 5,
    onOutput: (chunk) => {
      output += chunk.toString();
    },
    ...options,
  });
  return { shell, output: () => output };
}

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("the shell runner", () => {
  it("runs the script in its directory and hands over stdout and stderr as they come", async () => {
    const { shell, output } = run('pwd; echo out; echo err >&2; echo "job=$JOB"; exit 3', {
      env: { PATH: process.env.PATH, JOB: "job_1" },
    });
    const result = await shell.done;
    expect(result).toMatchObject({ exitCode: 3, signal: null });
    expect(result.stopReason).toBeUndefined();
    expect(output()).toContain(dir);
    expect(output()).toMatch(/out\n/);
    expect(output()).toMatch(/err\n/);
    expect(output()).toContain("job=job_1");
  });

  it("stops the whole process group with SIGTERM, background processes included", async () => {
    const { shell, output } = run("sleep 60 & echo bg=$!; echo ready; sleep 60; echo never");
    await until(() => output().includes("ready"));
    const background = Number(/bg=(\d+)/.exec(output())![1]);
    expect(alive(background)).toBe(true);

    shell.stop("cancelled");
    const result = await shell.done;

    expect(result).toMatchObject({ exitCode: null, signal: "SIGTERM", stopReason: "cancelled" });
    expect(result.durationMs).toBeLessThan(5_000);
    await until(() => !alive(background));
    expect(output()).not.toContain("never");
  });

  it("escalates to SIGKILL after the grace period when the job ignores SIGTERM", async () => {
    const { shell, output } = run('trap "" TERM; echo ready; sleep 60', { graceSeconds: 0.5 });
    await until(() => output().includes("ready"));
    const stopped = Date.now();

    shell.stop("cancelled");
    const result = await shell.done;

    expect(result.signal).toBe("SIGKILL");
    expect(Date.now() - stopped).toBeGreaterThanOrEqual(450);
  });

  it("lets a job clean up on SIGTERM within the grace period", async () => {
    const { shell, output } = run('trap "echo cleaning up; exit 143" TERM; echo ready; sleep 60 & wait');
    await until(() => output().includes("ready"));
    shell.stop("cancelled");
    const result = await shell.done;
    expect(result.exitCode).toBe(143);
    expect(output()).toContain("cleaning up");
  });

  it("enforces the job's timeout", async () => {
    const { shell } = run("sleep 60", { timeoutSeconds: 0.3 });
    const result = await shell.done;
    expect(result).toMatchObject({ stopReason: "timeout", signal: "SIGTERM" });
  });

  it("kills what the job left running once the job's shell exits", async () => {
    const { shell, output } = run("sleep 60 & echo bg=$!; exit 0");
    const result = await shell.done;
    expect(result.exitCode).toBe(0);
    const background = Number(/bg=(\d+)/.exec(output())![1]);
    await until(() => !alive(background));
  });

  it("reports a shell that cannot be started", async () => {
    const { shell } = run("true", { shell: join(dir, "no-such-shell") });
    const result = await shell.done;
    expect(result.exitCode).toBeNull();
    expect(result.spawnError).toMatch(/ENOENT/);
  });
});
