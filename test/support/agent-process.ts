import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { writeIdentity } from "../../runtime/src/agent/identity";
import type { AgentIdentity } from "../../runtime/src/agent/signed-fetch";
import { encodeAgentSecret } from "../../runtime/src/identity/agent-keys";
import { cliPath } from "./cli";

export interface AgentProcess {
  child: ChildProcess;
  identityPath: string;
  output(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

/** Writes an identity file (mode 0600) for an agent registered through the API, as `agent register` would. */
export async function identityFile(
  dir: string,
  url: string,
  agent: AgentIdentity,
  name: string,
  tags: string[] = [],
): Promise<string> {
  const path = join(dir, `${name}.json`);
  await writeIdentity(path, {
    version: 1,
    url,
    agent_id: agent.agentId,
    workload_identity_secret: encodeAgentSecret(agent.key),
    name,
    region: "test",
    tags,
    registered_at: new Date().toISOString(),
  });
  return path;
}

/** `hybrid-cicd agent run` in a child process, as an operator would start it. */
export function startAgent(
  identityPath: string,
  workDir: string,
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
): AgentProcess {
  const child = spawn(
    process.execPath,
    [cliPath, "agent", "run", "--identity", identityPath, "--work-dir", workDir, ...args],
    { env: { ...process.env, LOG_LEVEL: "info", ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, identityPath, output: () => output, exited };
}

/** Kills what a job left running after its agent was SIGKILLed (the job's shell leads its own group). */
export function killJobGroup(log: string): void {
  for (const match of log.matchAll(/pid=(\d+)/g)) {
    try {
      process.kill(-Number(match[1]), "SIGKILL");
    } catch {
      // already gone
    }
  }
}
