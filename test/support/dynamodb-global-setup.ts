import type { TestProject } from "vitest/node";
import { startDynamoDbLocal } from "../../runtime/src/local/dynamodb-local";

/**
 * One in-memory DynamoDB Local for the whole vitest run, shared by every project that lists this file.
 *
 * Vitest loads a project's globalSetup through that project's own module runner, so module-level state
 * is per project: three projects would start three JVMs. The shared instance therefore lives on
 * `globalThis` (one vitest process) with a count of the projects using it; the last teardown stops it.
 */

declare module "vitest" {
  export interface ProvidedContext {
    /** Loopback endpoint of the run's DynamoDB Local (or of the loopback DYNAMODB_ENDPOINT given). */
    dynamodbEndpoint: string;
  }
}

interface SharedDatabase {
  users: number;
  started: Promise<{ endpoint: string; stop(): Promise<void> }>;
}

const sharedKey = Symbol.for("hybrid-cicd.test.dynamodb-local");
const registry = globalThis as { [sharedKey]?: SharedDatabase };

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let shared = registry[sharedKey];
  if (!shared) {
    shared = { users: 0, started: startDatabase() };
    registry[sharedKey] = shared;
  }
  shared.users++;
  const database = await shared.started;
  project.provide("dynamodbEndpoint", database.endpoint);
  return async () => {
    const current = registry[sharedKey];
    if (!current || --current.users > 0) return;
    delete registry[sharedKey];
    await database.stop();
  };
}

async function startDatabase(): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const external = process.env.DYNAMODB_ENDPOINT;
  if (external) {
    assertLoopback(external);
    return { endpoint: external, stop: async () => {} };
  }
  // The readiness check runs the SDK in vitest's own process, which the config's `env` does not reach.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  return startDynamoDbLocal({});
}

/** Tests create and delete tables: they must never reach a DynamoDB outside this machine. */
export function assertLoopback(endpoint: string): void {
  if (!isLoopback(endpoint)) {
    throw new Error(
      `refusing to run tests against ${endpoint}: only a loopback DynamoDB endpoint is allowed`,
    );
  }
}

function isLoopback(endpoint: string): boolean {
  let host: string;
  try {
    host = new URL(endpoint).hostname;
  } catch {
    return false;
  }
  return host === "localhost" || host === "[::1]" || /^127(\.\d{1,3}){3}$/.test(host);
}
