import { type ChildProcess, spawn } from "node:child_process";

export interface ShellRunOptions {
  script: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Stopped (SIGTERM, then SIGKILL) after this long. */
  timeoutSeconds: number;
  /** SIGTERM → SIGKILL grace. */
  graceSeconds: number;
  /** Every piece of output as it arrives; must not block. */
  onOutput: (chunk: Buffer, stream: "stdout" | "stderr") => void;
  /** @default "/bin/sh" */
  shell?: string;
}

export type StopReason = "timeout" | "cancelled" | "shutdown" | "abandoned";

export interface ShellRunResult {
  /** The shell's exit code; null when a signal ended it or it never started. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the runner stopped it (and why). */
  stopReason?: StopReason;
  /** The shell could not be started at all. */
  spawnError?: string;
  durationMs: number;
}

/** How long output pipes may stay open after the shell exited and its group was killed. */
const PIPE_DRAIN_MS = 2_000;

/**
 * Runs a job's script in `sh -c`, in a process group of its own (so everything it starts can be
 * signalled together), with its output handed over as it comes. Stopping sends SIGTERM to the whole
 * group, then SIGKILL after the grace period; once the shell exits, whatever it left running in the
 * group is killed too, so a job never outlives its report.
 */
export class ShellRun {
  readonly done: Promise<ShellRunResult>;
  private readonly child: ChildProcess;
  private stopReason?: StopReason;
  private escalation?: NodeJS.Timeout;
  private exited = false;

  constructor(private readonly options: ShellRunOptions) {
    const started = Date.now();
    this.child = spawn(options.shell ?? "/bin/sh", ["-c", options.script], {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout?.on("data", (chunk: Buffer) => options.onOutput(chunk, "stdout"));
    this.child.stderr?.on("data", (chunk: Buffer) => options.onOutput(chunk, "stderr"));
    const timeout = setTimeout(() => this.stop("timeout"), options.timeoutSeconds * 1000);

    this.done = new Promise<ShellRunResult>((resolve) => {
      let settled = false;
      const finish = (result: Omit<ShellRunResult, "durationMs" | "stopReason">) => {
        if (settled) return;
        settled = true;
        clearTimeout(timeout);
        clearTimeout(this.escalation);
        resolve({ ...result, stopReason: this.stopReason, durationMs: Date.now() - started });
      };
      this.child.once("error", (error) => {
        this.exited = true;
        finish({ exitCode: null, signal: null, spawnError: error.message });
      });
      this.child.once("exit", (code, signal) => {
        this.exited = true;
        // Leftovers (background processes) go with the job.
        this.signalGroup("SIGKILL");
        const drained = setTimeout(() => {
          this.child.stdout?.destroy();
          this.child.stderr?.destroy();
          finish({ exitCode: code, signal });
        }, PIPE_DRAIN_MS);
        this.child.once("close", () => {
          clearTimeout(drained);
          finish({ exitCode: code, signal });
        });
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** SIGTERM to the group now, SIGKILL after `graceSeconds`. The first reason given is the one kept. */
  stop(reason: StopReason, graceSeconds = this.options.graceSeconds): void {
    if (this.exited) return;
    if (this.stopReason !== undefined) {
      // Asked again (e.g. a second SIGTERM to the agent): never wait longer than already planned.
      if (graceSeconds <= 0) this.signalGroup("SIGKILL");
      return;
    }
    this.stopReason = reason;
    this.signalGroup("SIGTERM");
    if (graceSeconds <= 0) {
      this.signalGroup("SIGKILL");
      return;
    }
    this.escalation = setTimeout(() => this.signalGroup("SIGKILL"), graceSeconds * 1000);
  }

  private signalGroup(signal: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // ESRCH: the group is already gone.
    }
  }
}
