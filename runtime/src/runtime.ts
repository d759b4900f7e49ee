import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { ConfigurationError, type Env } from "./config/env";
import { CredentialsService } from "./domain/access/credentials-service";
import { parseConfiguredBindings, RoleBindings } from "./domain/access/role-bindings";
import { createSecurityEvents } from "./domain/access/security-events";
import { AgentsService } from "./domain/agents/agents-service";
import { WorkloadKeys } from "./domain/agents/workload-keys";
import { auditSealing } from "./domain/audit/audit-event";
import { AuditService } from "./domain/audit/audit-service";
import { AuditSigningKeys } from "./domain/audit/audit-signing";
import { InvalidEnvironmentsError, type TargetEnvironments, targetEnvironments } from "./domain/environments";
import { AgentJobsService } from "./domain/jobs/agent-jobs-service";
import { JobsService } from "./domain/jobs/jobs-service";
import { QueueMetricsService } from "./domain/jobs/queue-metrics";
import { Sweeper } from "./domain/jobs/sweeper";
import type { Clock } from "./domain/principal";
import { ReportsService } from "./domain/reports/reports-service";
import { SecretRotation } from "./domain/secrets/key-rotation";
import { OAuthSignIn } from "./domain/sessions/oauth-sign-in";
import { SessionsService } from "./domain/sessions/sessions-service";
import { InvalidLifecycleSettingsError, type LifecycleSettings, lifecycleSettings } from "./domain/settings";
import { clientSecretsFrom, OAuthClients, providerSettings } from "./identity/oauth-providers";
import type { Logger } from "./logger";
import { CachedSecretStore } from "./secrets/cached-secret-store";
import { secretId } from "./secrets/catalog";
import type { SecretStore } from "./secrets/secret-store";
import { Store } from "./store/store";
import { version } from "./version";

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
  const { env, logger } = dependencies;
  // One short-TTL cache in front of the secret store (Secrets Manager is not called per request).
  const secretStore =
    dependencies.secretStore instanceof CachedSecretStore
      ? dependencies.secretStore
      : new CachedSecretStore(dependencies.secretStore);
  // Every transaction with audit drafts is chained by the store (decision 003).
  const store = new Store(dependencies.doc, env.HYBRID_CICD_TABLE_PREFIX, {
    sealing: auditSealing,
    environment: env.HYBRID_CICD_ENVIRONMENT,
    clock,
    logger,
  });
  // Key material is created on first use only in the local secret store; in AWS Secrets Manager the
  // rotation function creates it (docs/decisions/104-secret-material-and-rotation.md).
  const createMissingKeys = env.HYBRID_CICD_SECRET_STORE === "local";
  const auditKeys = new AuditSigningKeys(
    secretStore,
    env.HYBRID_CICD_SECRET_PREFIX,
    () => clock().getTime(),
    createMissingKeys,
  );
  const workloadKeys = new WorkloadKeys(
    secretStore,
    env.HYBRID_CICD_SECRET_PREFIX,
    () => clock().getTime(),
    () => store.secretRotations.state(secretId(env.HYBRID_CICD_SECRET_PREFIX, "workloadIdentityRootKey")),
  );
  const lifecycle = lifecycleFromEnv(env);
  const environments = environmentsFromEnv(env);
  // Identity: sessions, role bindings, OAuth sign-in (README.md, "Sign-in, roles, tokens and sessions"). Bad provider or binding
  // configuration throws a ConfigurationError here, at start-up.
  const securityEvents = createSecurityEvents(store, logger);
  const bindings = new RoleBindings(store, clock, parseConfiguredBindings(env.HYBRID_CICD_ROLE_BINDINGS));
  const sessions = new SessionsService(
    store,
    clock,
    { idleSeconds: env.HYBRID_CICD_SESSION_IDLE_TIMEOUT, absoluteSeconds: env.HYBRID_CICD_SESSION_MAX_AGE },
    bindings,
    securityEvents,
  );
  const oauthClients = new OAuthClients(
    providerSettings(env),
    clientSecretsFrom(() =>
      secretStore.getSecretValue(secretId(env.HYBRID_CICD_SECRET_PREFIX, "oauthClientSecrets")),
    ),
  );
  const audit = new AuditService(store, auditKeys, {
    environment: env.HYBRID_CICD_ENVIRONMENT,
    clock,
    logger,
  });
  return {
    env,
    logger,
    clock,
    store,
    secretStore,
    workloadKeys,
    auditKeys,
    audit,
    reports: new ReportsService(store, audit, secretStore, {
      environment: env.HYBRID_CICD_ENVIRONMENT,
      version,
      secretPrefix: env.HYBRID_CICD_SECRET_PREFIX,
      clock,
      health: lifecycle,
      deployments: (environment) => store.deployments.latest(environment),
      environments,
    }),
    securityEvents,
    bindings,
    sessions,
    signIn: new OAuthSignIn(store, clock, oauthClients, sessions),
    credentials: new CredentialsService(store, clock),
    lifecycle,
    environments,
    agents: new AgentsService(store, workloadKeys, clock, lifecycle, environments),
    jobs: new JobsService(store, clock, environments, lifecycle),
    agentJobs: new AgentJobsService(store, clock, lifecycle, environments),
    queueMetrics: new QueueMetricsService(store, clock, lifecycle),
    sweeper: new Sweeper(store, clock, lifecycle, environments),
    rotation: new SecretRotation(
      store,
      secretStore,
      env.HYBRID_CICD_SECRET_PREFIX,
      clock,
      {
        ackTimeoutSeconds: env.HYBRID_CICD_ROTATION_ACK_TIMEOUT_SECONDS,
        graceSeconds: env.HYBRID_CICD_ROTATION_GRACE_SECONDS,
      },
      lifecycle,
      () => {
        workloadKeys.forgetState();
        auditKeys.forget();
      },
    ),
  };
}

/** The job lifecycle's timings: defaults, overridden by HYBRID_CICD_* variables, checked together. */
function lifecycleFromEnv(env: Env): LifecycleSettings {
  try {
    return lifecycleSettings({
      heartbeatIntervalSeconds: env.HYBRID_CICD_HEARTBEAT_INTERVAL_SECONDS,
      jobHeartbeatIntervalSeconds: env.HYBRID_CICD_JOB_HEARTBEAT_INTERVAL_SECONDS,
      claimIntervalSeconds: env.HYBRID_CICD_CLAIM_INTERVAL_SECONDS,
      leaseSeconds: env.HYBRID_CICD_LEASE_SECONDS,
      sweepIntervalSeconds: env.HYBRID_CICD_SWEEP_INTERVAL_SECONDS,
      unhealthyAfterSeconds: env.HYBRID_CICD_AGENT_UNHEALTHY_AFTER_SECONDS,
      deadAfterSeconds: env.HYBRID_CICD_AGENT_DEAD_AFTER_SECONDS,
      cancelGraceSeconds: env.HYBRID_CICD_CANCEL_GRACE_SECONDS,
      cancelDeadlineSeconds: env.HYBRID_CICD_CANCEL_DEADLINE_SECONDS,
      logMaxBytes: env.HYBRID_CICD_JOB_LOG_MAX_BYTES,
    });
  } catch (error) {
    if (error instanceof InvalidLifecycleSettingsError) {
      throw new ConfigurationError(`invalid configuration: ${error.message}`);
    }
    throw error;
  }
}

/** The target environments from HYBRID_CICD_TARGET_ENVIRONMENTS and HYBRID_CICD_APPROVAL_ENVIRONMENTS. */
function environmentsFromEnv(env: Env): TargetEnvironments {
  try {
    return targetEnvironments(env.HYBRID_CICD_TARGET_ENVIRONMENTS, env.HYBRID_CICD_APPROVAL_ENVIRONMENTS);
  } catch (error) {
    if (error instanceof InvalidEnvironmentsError) {
      throw new ConfigurationError(`invalid configuration: ${error.message}`);
    }
    throw error;
  }
}

export type Runtime = ReturnType<typeof createRuntime>;
