import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import { backoffDelay, jittered, sleep } from "./backoff";
import { AgentUnauthorizedError, type ControlPlaneClient, problemOf, TransientFailureError } from "./client";
import type { AgentIdentityFile } from "./identity";
import type { AgentKeyRing, KeyRotationNotice } from "./key-ring";
import { LogStreamer, type UploadOutcome } from "./log-streamer";
import { ShellRun, type ShellRunResult, type StopReason } from "./shell-runner";
import type { SystemFigures } from "./system-figures";

/** A job as the claim reply carries it (the fields the agent uses). */
export interface ClaimedJob {
  job: {
    job_id: string;
    git_ref: string;
    repository?: string;
    command?: string;
    environment?: string;
    timeout_seconds: number;
    tags: string[];
  };
  attempt: number;
  lease_expires_at: string;
  log_offset: number;
}

interface ServerIntervals {
  heartbeat_interval_seconds: number;
  /** While a job runs: how quickly a cancel reaches the agent. */
  job_heartbeat_interval_seconds: number;
  claim_interval_seconds: number;
  cancel_grace_seconds: number;
  log_chunk_max_bytes: number;
}

interface HeartbeatReply extends Partial<ServerIntervals> {
  status: string;
  key_rotation?: KeyRotationNotice;
  jobs?: { job_id: string; attempt: number; action: "continue" | "cancel" | "stop"; reason?: string }[];
}

export interface AgentOptions {
  client: ControlPlaneClient;
  /** The keys the client signs with; replies' `key_rotation` notices switch them in place. */
  keyRing?: AgentKeyRing;
  identity: AgentIdentityFile;
  /** Each job runs in a fresh directory under this one. */
  workDir: string;
  /** Run one job, then exit (ephemeral agents). */
  once: boolean;
  logger: Logger;
  figures: SystemFigures;
  /** Environment handed to jobs (the agent's own, minus its HYBRID_CICD_* settings). */
  jobEnvironment: NodeJS.ProcessEnv;
  /** Where the identity file is: jobs get no variable that names it, and a HOME of their own if it lies there. */
  identityPath?: string;
  random?: () => number;
}

/** Exit codes of `hybrid-cicd agent run`. */
export const agentExitCodes = { ok: 0, failed: 1, refused: 3 } as const;

const SERVER_DEFAULTS: ServerIntervals = {
  heartbeat_interval_seconds: 30,
  job_heartbeat_interval_seconds: 5,
  claim_interval_seconds: 5,
  cancel_grace_seconds: 10,
  log_chunk_max_bytes: 256 * 1024,
};

/** How long a finished job's result is retried while the control plane is unreachable. */
const COMPLETE_RETRY_MS = 15 * 60_000;

interface CurrentJob {
  jobId: string;
  attempt: number;
  run?: ShellRun;
  cancelReason?: "cancelled" | "shutdown";
  abandoned?: string;
}

/**
 * The reference agent: heartbeats with the machine's real figures, claims a job when idle, runs it in
 * a fresh directory, streams its output, enforces its timeout, reports the result, and honours
 * cancellation. SIGTERM drains it (no new claims, heartbeats go on, the current job finishes, then it
 * exits); a second SIGTERM cancels the current job. Network trouble, 429 and 5xx are retried with
 * jittered backoff; a refused identity (401/403) stops it.
 */
export class Agent {
  private intervals: ServerIntervals = { ...SERVER_DEFAULTS };
  private draining = false;
  private shuttingDown = false;
  private current?: CurrentJob;
  /** The Idempotency-Key of a claim whose answer was not received; repeated until one is. */
  private claimKey?: string;
  private completed = 0;
  private readonly started = Date.now();
  private readonly stopHeartbeats = new AbortController();
  private wakeClaim = new AbortController();
  private wakeHeartbeat = new AbortController();
  private fatal?: AgentUnauthorizedError;
  private readonly random: () => number;

  constructor(private readonly options: AgentOptions) {
    this.random = options.random ?? Math.random;
  }

  private get log(): Logger {
    return this.options.logger;
  }

  /** First SIGTERM/SIGINT: finish the current job, claim nothing new, then exit. */
  drain(): void {
    if (this.draining) {
      this.shutdown();
      return;
    }
    this.draining = true;
    this.log.info({ job_id: this.current?.jobId }, "draining: no new jobs; the current one finishes first");
    this.wakeClaim.abort();
  }

  /** Second signal: cancel the current job (SIGTERM, then SIGKILL after the grace period). */
  shutdown(): void {
    this.draining = true;
    if (this.shuttingDown) {
      this.current?.run?.stop("shutdown", 0);
      return;
    }
    this.shuttingDown = true;
    this.log.warn({ job_id: this.current?.jobId }, "shutting down: cancelling the current job");
    this.wakeClaim.abort();
    if (this.current) {
      this.current.cancelReason ??= "shutdown";
      this.current.run?.stop("shutdown", this.intervals.cancel_grace_seconds);
    }
  }

  /** Runs until drained, refused, or (with --once) one job is done; resolves to the exit code. */
  async run(): Promise<number> {
    await mkdir(this.options.workDir, { recursive: true, mode: 0o700 });
    let heartbeats: Promise<void> | undefined;
    try {
      await this.firstHeartbeat();
      heartbeats = this.heartbeatLoop();
      let ranOne = false;
      for (let failures = 0; !this.draining && !(this.options.once && ranOne) && !this.fatal; ) {
        let claimed: ClaimedJob | undefined;
        try {
          claimed = await this.claim();
          failures = 0;
        } catch (error) {
          if (!(error instanceof TransientFailureError)) throw error;
          const wait = error.retryAfterMs ?? backoffDelay(failures++, {}, this.random);
          this.log.warn({ err: error.message, retry_in_ms: wait }, "claim failed; backing off");
          await this.pause(wait);
          continue;
        }
        if (!claimed) {
          await this.pause(jittered(this.intervals.claim_interval_seconds, this.random));
          continue;
        }
        await this.runJob(claimed);
        ranOne = true;
      }
      if (this.fatal) throw this.fatal;
      this.log.info({ jobs_completed: this.completed }, "agent stopped");
      return agentExitCodes.ok;
    } catch (error) {
      if (error instanceof AgentUnauthorizedError) {
        this.log.error({ err: error.message }, "the control plane refused this agent; stopping");
        this.current?.run?.stop("abandoned", 0);
        return agentExitCodes.refused;
      }
      throw error;
    } finally {
      this.stopHeartbeats.abort();
      this.wakeHeartbeat.abort();
      await heartbeats;
    }
  }

  /** Waits between claims; a drain ends the wait (and skips it when it came first). */
  private async pause(ms: number): Promise<void> {
    if (this.draining) return;
    if (this.wakeClaim.signal.aborted) this.wakeClaim = new AbortController();
    await sleep(ms, this.wakeClaim.signal);
  }

  // --- heartbeats ---------------------------------------------------------------------------------

  private async firstHeartbeat(): Promise<void> {
    for (let failures = 0; ; failures++) {
      try {
        await this.heartbeat();
        return;
      } catch (error) {
        if (!(error instanceof TransientFailureError)) throw error;
        if (this.draining) return;
        const wait = error.retryAfterMs ?? backoffDelay(failures, {}, this.random);
        this.log.warn({ err: error.message, retry_in_ms: wait }, "control plane unreachable; retrying");
        await this.pause(wait);
      }
    }
  }

  private async heartbeatLoop(): Promise<void> {
    const signal = this.stopHeartbeats.signal;
    while (!signal.aborted) {
      // Busy agents beat faster (a cancel must reach them quickly); starting a job cuts the wait short.
      this.wakeHeartbeat = new AbortController();
      const seconds = this.current
        ? this.intervals.job_heartbeat_interval_seconds
        : this.intervals.heartbeat_interval_seconds;
      await sleep(jittered(seconds, this.random), this.wakeHeartbeat.signal);
      if (signal.aborted) return;
      try {
        await this.heartbeat();
      } catch (error) {
        if (error instanceof AgentUnauthorizedError) {
          this.fatal = error;
          this.wakeClaim.abort();
          this.current?.run?.stop("abandoned", 0);
          return;
        }
        this.log.warn({ err: (error as Error).message }, "heartbeat failed");
      }
    }
  }

  private async heartbeat(): Promise<void> {
    const current = this.current;
    const figures = await this.options.figures.sample();
    const response = await this.options.client.request<HeartbeatReply>(
      "POST",
      `/agents/${this.options.client.agentId}/heartbeat`,
      {
        ...figures,
        jobs_queued: 0,
        jobs_completed: this.completed,
        uptime_seconds: Math.round((Date.now() - this.started) / 1000),
        jobs: current ? [{ job_id: current.jobId, attempt: current.attempt }] : [],
      },
      jittered(this.intervals.heartbeat_interval_seconds, this.random) / 2,
    );
    if (response.status !== 200) {
      this.log.warn({ status: response.status, problem: problemOf(response).detail }, "heartbeat refused");
      return;
    }
    this.learn(response.body);
    await this.learnKeys(response.body.key_rotation);
    for (const verdict of response.body.jobs ?? []) {
      if (!current || verdict.job_id !== current.jobId || verdict.attempt !== current.attempt) continue;
      if (verdict.action === "cancel") this.cancelCurrent("cancelled");
      if (verdict.action === "stop") this.abandonCurrent(verdict.reason ?? "the control plane said stop");
    }
  }

  private async learnKeys(notice: KeyRotationNotice | undefined): Promise<void> {
    if (!this.options.keyRing) return;
    try {
      const change = await this.options.keyRing.learn(notice);
      if (change) this.log.info({ change, version_id: notice?.version_id }, "workload key rotation");
    } catch (error) {
      // E.g. the identity file could not be rewritten: the key in memory is switched regardless.
      this.log.warn({ err: (error as Error).message }, "workload key rotation not fully applied");
    }
  }

  private learn(reply: Partial<ServerIntervals>): void {
    for (const key of Object.keys(SERVER_DEFAULTS) as (keyof ServerIntervals)[]) {
      const value = reply[key];
      if (typeof value === "number" && value > 0) this.intervals[key] = value;
    }
  }

  // --- jobs ---------------------------------------------------------------------------------------

  /**
   * A claim carries an Idempotency-Key, kept until the server gives a definite answer: if a reply is lost
   * (timeout, 5xx), the next claim repeats the key and gets the job the lost one won, not another.
   */
  private async claim(): Promise<ClaimedJob | undefined> {
    this.claimKey ??= randomUUID();
    const response = await this.options.client.request<ClaimedJob>(
      "POST",
      `/agents/${this.options.client.agentId}/jobs/claim`,
      {},
      0,
      { "idempotency-key": this.claimKey },
    );
    if (response.status === 204 || response.status === 200) this.claimKey = undefined;
    if (response.status === 204) return undefined;
    if (response.status === 200) return response.body;
    throw new TransientFailureError(`claim answered ${response.status}: ${problemOf(response).detail ?? ""}`);
  }

  private cancelCurrent(reason: "cancelled" | "shutdown"): void {
    const current = this.current;
    if (!current || current.cancelReason) return;
    current.cancelReason = reason;
    this.log.info({ job_id: current.jobId, reason }, "cancelling the job");
    current.run?.stop(reason === "cancelled" ? "cancelled" : "shutdown", this.intervals.cancel_grace_seconds);
  }

  private abandonCurrent(reason: string): void {
    const current = this.current;
    if (!current || current.abandoned) return;
    current.abandoned = reason;
    this.log.warn(
      { job_id: current.jobId, attempt: current.attempt, reason },
      "the job is no longer ours; stopping it",
    );
    current.run?.stop("abandoned", 0);
  }

  private async runJob(claimed: ClaimedJob): Promise<void> {
    const { job, attempt } = claimed;
    const current: CurrentJob = { jobId: job.job_id, attempt };
    this.current = current;
    this.wakeHeartbeat.abort();
    if (this.shuttingDown) current.cancelReason = "shutdown";
    this.log.info({ job_id: job.job_id, attempt, git_ref: job.git_ref }, "running job");
    const dir = await mkdtemp(join(this.options.workDir, `${job.job_id}-${attempt}-`));
    const logs = new LogStreamer({
      upload: (offset, data) => this.uploadLog(job.job_id, attempt, offset, data),
      startOffset: claimed.log_offset,
      maxChunkBytes: Math.min(this.intervals.log_chunk_max_bytes, 256 * 1024),
      onCancelRequested: () => this.cancelCurrent("cancelled"),
      onStop: (reason) => this.abandonCurrent(reason),
      onWarning: (message) => this.log.warn({ job_id: job.job_id }, message),
      random: this.random,
    });
    logs.write(
      `[hybrid-cicd agent ${this.options.identity.name} (${this.options.identity.agent_id}) on ${hostname()}: ` +
        `attempt ${attempt}, ${job.git_ref}${job.repository ? ` of ${job.repository}` : ""}]\n`,
    );
    let result: ShellRunResult;
    try {
      const run = new ShellRun({
        script: jobScript(job),
        cwd: dir,
        env: this.jobEnvironment(claimed, dir),
        timeoutSeconds: job.timeout_seconds,
        graceSeconds: this.intervals.cancel_grace_seconds,
        onOutput: (chunk) => logs.write(chunk),
      });
      current.run = run;
      // A cancel or shutdown that arrived before the process existed.
      if (current.cancelReason) run.stop(current.cancelReason, this.intervals.cancel_grace_seconds);
      result = await run.done;
    } catch (error) {
      result = { exitCode: null, signal: null, spawnError: (error as Error).message, durationMs: 0 };
    }
    try {
      if (current.abandoned) {
        logs.discard();
        return;
      }
      const outcome = this.outcome(current, result, job.timeout_seconds);
      logs.write(`[hybrid-cicd agent: ${outcome.summary}]\n`);
      const summary = await logs.close();
      if (summary.unsentBytes > 0) {
        this.log.warn(
          { job_id: job.job_id, unsent_bytes: summary.unsentBytes },
          "some output could not be uploaded",
        );
      }
      if (current.abandoned) return;
      await this.complete(job.job_id, {
        attempt,
        status: outcome.status,
        exit_code: outcome.exitCode,
        ...(outcome.errorMessage ? { error_message: outcome.errorMessage } : {}),
      });
    } finally {
      this.current = undefined;
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  private outcome(current: CurrentJob, result: ShellRunResult, timeoutSeconds: number) {
    const stop: StopReason | undefined = result.stopReason;
    const ended =
      result.spawnError !== undefined
        ? `could not start the shell: ${result.spawnError}`
        : result.signal
          ? `killed by ${result.signal}`
          : `exit code ${result.exitCode}`;
    if (stop === "cancelled" || stop === "shutdown" || current.cancelReason) {
      const why =
        current.cancelReason === "shutdown" || stop === "shutdown"
          ? "agent shut down"
          : "cancelled on request";
      return {
        status: "cancelled" as const,
        exitCode: result.exitCode,
        errorMessage: why,
        summary: `${why}, ${ended}`,
      };
    }
    if (stop === "timeout") {
      const why = `timed out after ${timeoutSeconds} s`;
      return {
        status: "failed" as const,
        exitCode: result.exitCode,
        errorMessage: why,
        summary: `${why}, ${ended}`,
      };
    }
    if (result.exitCode === 0) return { status: "completed" as const, exitCode: 0, summary: ended };
    return { status: "failed" as const, exitCode: result.exitCode, errorMessage: ended, summary: ended };
  }

  private async uploadLog(
    jobId: string,
    attempt: number,
    offset: number,
    data: string,
  ): Promise<UploadOutcome> {
    const response = await this.options.client.request<{
      size: number;
      truncated: boolean;
      cancel_requested: boolean;
    }>("POST", `/jobs/${jobId}/logs`, { attempt, offset, data }, 30_000);
    const problem = problemOf(response);
    if (response.status === 200) {
      return {
        kind: "stored",
        size: response.body.size,
        truncated: response.body.truncated,
        cancelRequested: response.body.cancel_requested,
      };
    }
    if (
      (response.status === 416 || problem.type === "/problems/log-overlap") &&
      problem.current_size !== undefined
    ) {
      return { kind: "resync", size: problem.current_size };
    }
    if (response.status === 413) return { kind: "too-large", maxBytes: problem.max_chunk_bytes };
    if ([403, 404, 409].includes(response.status))
      return { kind: "stop", reason: problem.detail ?? `${response.status}` };
    throw new TransientFailureError(`log upload answered ${response.status}: ${problem.detail ?? ""}`);
  }

  private async complete(
    jobId: string,
    body: { attempt: number; status: string; exit_code: number | null; error_message?: string },
  ): Promise<void> {
    try {
      const response = await this.options.client.request(
        "POST",
        `/jobs/${jobId}/complete`,
        body,
        COMPLETE_RETRY_MS,
      );
      if (response.status === 200) {
        this.completed++;
        this.log.info({ job_id: jobId, attempt: body.attempt, status: body.status }, "job finished");
        return;
      }
      this.log.warn(
        { job_id: jobId, status: response.status, problem: problemOf(response).detail },
        "the control plane did not accept the job's result",
      );
    } catch (error) {
      if (error instanceof AgentUnauthorizedError) throw error;
      this.log.error({ job_id: jobId, err: (error as Error).message }, "could not report the job's result");
    }
  }

  private jobEnvironment(claimed: ClaimedJob, dir: string): NodeJS.ProcessEnv {
    const { job, attempt } = claimed;
    const env = withoutIdentityPath(this.options.jobEnvironment, this.options.identityPath, dir);
    const set = (name: string, value: string | undefined) => {
      if (value !== undefined) env[name] = value;
    };
    set("CI", "true");
    set("HYBRID_CICD_JOB_ID", job.job_id);
    set("HYBRID_CICD_ATTEMPT", String(attempt));
    set("HYBRID_CICD_GIT_REF", job.git_ref);
    set("HYBRID_CICD_REPOSITORY", job.repository);
    set("HYBRID_CICD_ENVIRONMENT", job.environment);
    set("HYBRID_CICD_AGENT_ID", this.options.identity.agent_id);
    set("HYBRID_CICD_AGENT_NAME", this.options.identity.name);
    return env;
  }
}

/**
 * A job's environment without any trace of where the agent's identity (its signing key) is: variables
 * naming the file are dropped, and when it lies under HOME (the default,
 * ~/.config/hybrid-cicd/agent.json) HOME and XDG_CONFIG_HOME point at the job's own directory. This
 * hides the path, it is not isolation: run jobs as another user to keep them from the file.
 */
export function withoutIdentityPath(
  base: NodeJS.ProcessEnv,
  identityPath: string | undefined,
  jobDir: string,
): NodeJS.ProcessEnv {
  if (identityPath === undefined) return { ...base };
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(base)) {
    if (value?.includes(identityPath)) continue;
    env[name] = value;
  }
  const home = base.HOME;
  const configHome = base.XDG_CONFIG_HOME;
  const under = (root: string | undefined) =>
    root !== undefined && root.length > 1 && identityPath.startsWith(`${root.replace(/\/$/, "")}/`);
  if (under(home) || under(configHome)) {
    env.HOME = jobDir;
    env.XDG_CONFIG_HOME = join(jobDir, ".config");
  }
  return env;
}

/**
 * The shell script of a job: with a repository, a shallow checkout of the ref first (values passed as
 * environment variables, never pasted into the script); then the job's command.
 */
export function jobScript(job: ClaimedJob["job"]): string {
  const steps: string[] = [];
  if (job.repository) {
    steps.push(
      '{ git init -q . && git remote add origin "$HYBRID_CICD_REPOSITORY" && ' +
        'git fetch -q --depth 1 origin "$HYBRID_CICD_GIT_REF" && git checkout -q FETCH_HEAD; } || exit $?',
    );
  }
  steps.push(job.command ?? 'echo "hybrid-cicd: this job has no command"');
  return steps.join("\n");
}
