import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import express, { type RequestHandler } from "express";
import type { Env } from "../config/env";
import { createApp } from "../http/app";
import type { Logger } from "../logger";
import { createRuntime, type Runtime } from "../runtime";
import { LocalSecretStore } from "../secrets/local-secret-store";
import { createDynamoClients } from "../store/client";
import { ensureTables } from "../store/tables";
import { startDynamoDbLocal } from "./dynamodb-local";
import { startMaintenanceTimers } from "./maintenance-timers";

/** Written while a control plane runs on a data dir, so the CLI can reuse its database. */
export interface RunningState {
  pid: number;
  url: string;
  dynamodb_endpoint: string;
  started_at: string;
}

export const stateFile = (dataDir: string) => join(dataDir, "control-plane.json");

export async function readRunningState(dataDir: string): Promise<RunningState | undefined> {
  try {
    const state = JSON.parse(await readFile(stateFile(dataDir), "utf8")) as RunningState;
    process.kill(state.pid, 0);
    return state;
  } catch {
    return undefined;
  }
}

export interface LocalRuntime {
  runtime: Runtime;
  dynamodbEndpoint: string;
  close(): Promise<void>;
}

/**
 * The runtime on a data dir: the DynamoDB Local of a control plane already running there, or an
 * embedded one started for the occasion (or DYNAMODB_ENDPOINT), tables ensured, the local secret
 * store opened and the root key created on first use.
 */
export async function openLocalRuntime(
  env: Env,
  logger: Logger,
  options: { reuseRunning?: boolean } = {},
): Promise<LocalRuntime> {
  const dataDir = resolve(env.HYBRID_CICD_DATA_DIR);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const running = options.reuseRunning ? await readRunningState(dataDir) : undefined;
  const database = env.DYNAMODB_ENDPOINT
    ? { endpoint: env.DYNAMODB_ENDPOINT, stop: async () => {} }
    : running
      ? { endpoint: running.dynamodb_endpoint, stop: async () => {} }
      : await startDynamoDbLocal({ dataDir: join(dataDir, "dynamodb"), logger });
  try {
    const { dynamodb, doc } = createDynamoClients({ endpoint: database.endpoint, region: env.AWS_REGION });
    await ensureTables(dynamodb, env.HYBRID_CICD_TABLE_PREFIX);
    const secretStore = await LocalSecretStore.open(dataDir);
    const runtime = createRuntime({ env, doc, secretStore, logger });
    await runtime.workloadKeys.ensureRootKey();
    await runtime.auditKeys.ensureKey();
    return {
      runtime,
      dynamodbEndpoint: database.endpoint,
      close: async () => {
        dynamodb.destroy();
        await database.stop();
      },
    };
  } catch (error) {
    await database.stop();
    throw error;
  }
}

export interface LocalControlPlane {
  url: string;
  runtime: Runtime;
  server: Server;
  stop(): Promise<void>;
}

/**
 * The console's server module (console/server/console-app.ts). Named through a constant so that the
 * runtime's type-check does not pull in the console's React and Remix types; the console's own
 * tsconfig checks that module.
 */
const CONSOLE_SERVER: string = "@hybrid-cicd/console/server";
interface ConsoleServer {
  createConsoleApp(runtime: Runtime, options: { secureCookies: boolean }): Promise<RequestHandler>;
  ConsoleNotBuiltError: new (message: string) => Error;
}

/**
 * The console app, or (when `console/build` is missing) a 503 problem saying how to build it, so the API
 * still starts.
 */
async function consoleOrPlaceholder(runtime: Runtime, secureCookies: boolean): Promise<RequestHandler> {
  const { ConsoleNotBuiltError, createConsoleApp } = (await import(CONSOLE_SERVER)) as ConsoleServer;
  try {
    return await createConsoleApp(runtime, { secureCookies });
  } catch (error) {
    if (!(error instanceof ConsoleNotBuiltError)) throw error;
    runtime.logger.warn({ reason: error.message }, "console not served");
    return (req, res) => {
      res
        .status(503)
        .type("application/problem+json")
        .send(
          JSON.stringify({
            type: "about:blank",
            title: "Service Unavailable",
            status: 503,
            detail: error.message,
            instance: req.originalUrl.split("?")[0],
          }),
        );
    };
  }
}

/** `npm start`: the API and the console on one local HTTP server. */
export async function startLocalControlPlane(env: Env, logger: Logger): Promise<LocalControlPlane> {
  const dataDir = resolve(env.HYBRID_CICD_DATA_DIR);
  const already = await readRunningState(dataDir);
  if (already) {
    throw new Error(`a control plane is already running on ${dataDir} (pid ${already.pid}, ${already.url})`);
  }
  const local = await openLocalRuntime(env, logger);
  const secureCookies =
    env.HYBRID_CICD_SECURE_COOKIES ?? env.HYBRID_CICD_PUBLIC_URL?.startsWith("https:") ?? false;
  const api = createApp(local.runtime, { secureCookies });
  // One process serves both faces: the console at /console (decision 200), the API everywhere else.
  const app = express();
  app.disable("x-powered-by");
  // `/console.data` is the overview's data URL (Remix single fetch: `<basename>.data` for the index route).
  app.use(["/console", "/console.data"], await consoleOrPlaceholder(local.runtime, secureCookies));
  app.use(api);
  const server = createServer(app);
  await new Promise<void>((resolveListen, rejectListen) => {
    server.once("error", rejectListen);
    server.listen(env.PORT, env.HOST, () => resolveListen());
  }).catch(async (error) => {
    await local.close();
    throw error;
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = env.HYBRID_CICD_PUBLIC_URL ?? `http://${host}:${address.port}`;
  const state: RunningState = {
    pid: process.pid,
    url,
    dynamodb_endpoint: local.dynamodbEndpoint,
    started_at: new Date().toISOString(),
  };
  await writeFile(stateFile(dataDir), JSON.stringify(state, null, 2), { mode: 0o600 });
  // EventBridge's job on AWS: the sweeper (lost agents) and the other maintenance tasks.
  const maintenance = startMaintenanceTimers(local.runtime);
  let stopping: Promise<void> | undefined;
  return {
    url,
    runtime: local.runtime,
    server,
    stop: () => {
      stopping ??= (async () => {
        await maintenance.stop();
        await new Promise<void>((resolveClose) => {
          server.close(() => resolveClose());
          server.closeAllConnections();
        });
        // Refusals counted but not yet written (decision 004) go into the chain before the database stops.
        await local.runtime.audit
          .flush()
          .catch((error: unknown) => logger.warn({ err: error }, "audit flush failed"));
        await local.close();
        if (existsSync(stateFile(dataDir))) await rm(stateFile(dataDir), { force: true });
      })();
      return stopping;
    },
  };
}
