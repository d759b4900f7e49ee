import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { Agent } from "../agent/agent";
import { ControlPlaneClient } from "../agent/client";
import {
  type AgentIdentityFile,
  defaultIdentityPath,
  IdentityFileError,
  readIdentity,
  signingIdentity,
  writeIdentity,
} from "../agent/identity";
import { AgentKeyRing } from "../agent/key-ring";
import { SystemFigures } from "../agent/system-figures";
import { loadEnv } from "../config/env";
import { createLogger } from "../logger";
import { version } from "../version";

/**
 * Ends the command with an exit code and a message already printed; `main` returns the code (it
 * treats errors carrying `exitCode` and `code` the way it treats commander's own exits).
 */
export class CliExit extends Error {
  readonly code = "hybrid-cicd.exit";
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

function fail(message: string, exitCode = 1): never {
  process.stderr.write(`hybrid-cicd agent: ${message}\n`);
  throw new CliExit(exitCode);
}

const controlPlaneUrl = (value: string) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError("not a URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new InvalidArgumentError("use http(s)://");
  return url.href.replace(/\/$/, "");
};

/**
 * Plain http:// only to this machine: the registration token, the signing key and job commands would
 * otherwise travel in clear. `--insecure` accepts it anyway (a trusted network, a TLS-terminating
 * sidecar), knowingly.
 */
export function cleartextRefusal(url: string, insecure: boolean | undefined): string | undefined {
  const parsed = new URL(url);
  if (parsed.protocol !== "http:" || insecure === true || isLoopbackHost(parsed.hostname)) return undefined;
  return (
    `refusing ${url}: plain http:// to another machine would send the registration token, the agent's key ` +
    "and job commands in clear; use https://, or pass --insecure if you accept that"
  );
}

function refuseCleartext(url: string, insecure: boolean | undefined): void {
  const refusal = cleartextRefusal(url, insecure);
  if (refusal !== undefined) fail(refusal, 2);
}

function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return (
    host === "localhost" || host.endsWith(".localhost") || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host)
  );
}

const tagList = (value: string) =>
  value
    .split(",")
    .map((tag) => tag.trim())
    .filter(Boolean);

interface RegisterOptions {
  url: string;
  token: string;
  name: string;
  region: string;
  tags: string[];
  identity: string;
  force?: boolean;
  insecure?: boolean;
}

interface RunOptions {
  url?: string;
  identity: string;
  workDir?: string;
  once?: boolean;
  insecure?: boolean;
}

/** Adds `hybrid-cicd agent register|run` (created from `program`, so they inherit its exit handling). */
export function registerAgentCommands(program: Command): Command {
  const agent = program
    .command("agent")
    .description("the reference agent: register this machine, then run jobs");

  agent
    .command("register")
    .description(
      "register this machine with a one-time registration token and store its identity (mode 0600)",
    )
    .requiredOption("--url <url>", "the control plane's URL", controlPlaneUrl)
    .requiredOption("--token <token>", "one-time registration token (hcr_…) from an admin")
    .requiredOption("--region <region>", "where this agent runs, e.g. eu-west-1 or on-prem-1")
    .option("--name <name>", "a name to recognise it by (default: the host name)", hostname())
    .option("--tags <tags>", "comma-separated capabilities jobs can require, e.g. linux,docker", tagList, [])
    .option("--identity <file>", "where to store the identity", defaultIdentityPath())
    .option("--force", "replace an existing identity file")
    .option("--insecure", "allow a plain http:// URL to another machine (secrets travel in clear)")
    .action(async (options: RegisterOptions) => {
      refuseCleartext(options.url, options.insecure);
      const identityPath = resolve(options.identity);
      const response = await fetch(`${options.url}/agents/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          registration_token: options.token,
          name: options.name,
          region: options.region,
          tags: options.tags,
          version,
        }),
      }).catch((error: unknown) => fail(`cannot reach ${options.url}: ${(error as Error).message}`));
      const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
      if (response.status !== 201) {
        fail(`registration refused (${response.status}): ${String(body.detail ?? response.statusText)}`);
      }
      const identity: AgentIdentityFile = {
        version: 1,
        url: options.url,
        agent_id: String(body.agent_id),
        workload_identity_secret: String(body.workload_identity_secret),
        name: options.name,
        region: options.region,
        tags: [...new Set(options.tags)].sort(),
        registered_at: new Date().toISOString(),
      };
      try {
        await writeIdentity(identityPath, identity, { force: options.force });
      } catch (error) {
        if (error instanceof IdentityFileError) fail(error.message);
        throw error;
      }
      process.stderr.write(
        `Registered agent "${options.name}"; identity stored in ${identityPath} (mode 0600).\n`,
      );
      process.stdout.write(`${identity.agent_id}\n`);
    });

  agent
    .command("run")
    .description("heartbeat, claim jobs and run them until SIGTERM (drain) — or one job with --once")
    .option("--url <url>", "the control plane's URL (default: the one registered with)", controlPlaneUrl)
    .option("--identity <file>", "the identity file written by `agent register`", defaultIdentityPath())
    .option("--work-dir <dir>", "where jobs run, one fresh directory each (default: a temp dir)")
    .option("--once", "run one job, then exit (ephemeral agents)")
    .option("--insecure", "allow a plain http:// URL to another machine (signed requests travel in clear)")
    .action(async (options: RunOptions) => {
      let identity: AgentIdentityFile;
      const identityPath = resolve(options.identity);
      try {
        identity = await readIdentity(identityPath);
      } catch (error) {
        if (error instanceof IdentityFileError) fail(error.message);
        throw error;
      }
      refuseCleartext(options.url ?? identity.url, options.insecure);
      const env = loadEnv();
      const logger = createLogger({ name: "hybrid-cicd-agent", level: env.LOG_LEVEL }).child({
        agent_id: identity.agent_id,
      });
      const workDir = resolve(options.workDir ?? join(tmpdir(), `hybrid-cicd-agent-${identity.agent_id}`));
      const shutdown = new AbortController();
      const stored = identity;
      // Root key rotation: the new key is used at once and kept in the identity file for restarts.
      const keyRing = new AgentKeyRing(identity.agent_id, signingIdentity(identity).key, (secret) =>
        writeIdentity(identityPath, { ...stored, workload_identity_secret: secret }, { force: true }),
      );
      const runner = new Agent({
        client: new ControlPlaneClient({
          baseUrl: options.url ?? identity.url,
          identity: keyRing,
          signal: shutdown.signal,
        }),
        keyRing,
        identity,
        workDir,
        once: options.once === true,
        logger,
        figures: new SystemFigures(workDir),
        jobEnvironment: jobEnvironment(),
        identityPath,
      });
      const onSignal = (signal: NodeJS.Signals) => {
        logger.info({ signal }, "signal received");
        runner.drain();
      };
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
      logger.info(
        { url: options.url ?? identity.url, work_dir: workDir, once: options.once === true },
        "agent started",
      );
      try {
        const code = await runner.run();
        if (code !== 0) throw new CliExit(code);
      } finally {
        process.off("SIGTERM", onSignal);
        process.off("SIGINT", onSignal);
        shutdown.abort();
      }
    });

  return agent;
}

/** The agent's environment without its own settings (HYBRID_CICD_*): jobs get their own variables. */
function jobEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("HYBRID_CICD_")));
}
