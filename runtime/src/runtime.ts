import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { Env } from "./config/env";
import { CredentialsService } from "./domain/access/credentials-service";
import { AgentsService } from "./domain/agents/agents-service";
import { WorkloadKeys } from "./domain/agents/workload-keys";
import { JobsService } from "./domain/jobs/jobs-service";
import type { Clock } from "./domain/principal";
import { SessionsService } from "./domain/sessions/sessions-service";
import type { Logger } from "./logger";
import type { SecretStore } from "./secrets/secret-store";
import { Store } from "./store/store";

export interface RuntimeDependencies {
  env: Env;
  doc: DynamoDBDocumentClient;
  secretStore: SecretStore;
  logger: Logger;
  clock?: Clock;
}

/**
 * The composition root: every domain service wired to one store and one secret store. The HTTP app,
 * the Lambda handlers, the CLI and the console all start from here, so they share the same rules.
 */
export function createRuntime(dependencies: RuntimeDependencies) {
  const clock = dependencies.clock ?? (() => new Date());
  const { env, logger, secretStore } = dependencies;
  const store = new Store(dependencies.doc, env.HYBRID_CICD_TABLE_PREFIX);
  const workloadKeys = new WorkloadKeys(secretStore, env.HYBRID_CICD_SECRET_PREFIX, () => clock().getTime());
  return {
    env,
    logger,
    clock,
    store,
    secretStore,
    workloadKeys,
    sessions: new SessionsService(store, clock),
    credentials: new CredentialsService(store, clock),
    agents: new AgentsService(store, workloadKeys, clock),
    jobs: new JobsService(store, clock),
  };
}

export type Runtime = ReturnType<typeof createRuntime>;
