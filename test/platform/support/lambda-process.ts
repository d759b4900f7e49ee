import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";

/**
 * A handler module loaded in a fresh Node process by `lambda-host.mjs`, with only the environment given
 * (as on Lambda), invoked one event at a time.
 */
export interface LambdaProcess {
  invoke(event: unknown): Promise<unknown>;
  close(): Promise<void>;
}

export class HandlerError extends Error {}

export async function startLambdaProcess(
  modulePath: string,
  env: Record<string, string>,
): Promise<LambdaProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    [path.join(import.meta.dirname, "lambda-host.mjs"), modulePath],
    {
      env: { PATH: process.env["PATH"] ?? "", ...env },
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk;
  });
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let ready: (() => void) | undefined;
  let failed: ((error: Error) => void) | undefined;
  const started = new Promise<void>((resolve, reject) => {
    ready = resolve;
    failed = reject;
  });
  child.on("exit", (code) => {
    const error = new Error(`the handler process exited (${code}): ${stderr}`);
    failed?.(error);
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  });
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
    const message = JSON.parse(line) as {
      ready?: boolean;
      id?: number;
      result?: unknown;
      error?: { name: string; message: string };
    };
    if (message.ready) return ready?.();
    const waiter = pending.get(message.id ?? -1);
    if (!waiter) return;
    pending.delete(message.id ?? -1);
    if (message.error) {
      const error = new HandlerError(message.error.message);
      error.name = message.error.name;
      waiter.reject(error);
    } else {
      waiter.resolve(message.result);
    }
  });
  await started;
  let nextId = 0;
  return {
    invoke(event) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        child.stdin?.write(`${JSON.stringify({ id, event })}\n`);
      });
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.stdin?.end();
      child.kill();
      await exited;
    },
  };
}
