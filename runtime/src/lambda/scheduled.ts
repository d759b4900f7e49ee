import type { Context } from "aws-lambda";
import { loadEnv } from "../config/env";
import { runAuditDigest } from "../domain/audit/audit-service";
import { settings } from "../domain/settings";
import { createLogger, type Logger } from "../logger";
import { createRuntime, type Runtime } from "../runtime";
import { createSecretStore } from "../secrets";
import { createDynamoClients } from "../store/client";

/**
 * The control plane's maintenance, as a list of tasks. One function, two triggers: on AWS, EventBridge
 * invokes this module's `handler` with `{"task": "<name>"}` on each task's schedule
 * (platform/src/control-plane-schedules.ts); locally, the control plane runs the same tasks on timers
 * (local/maintenance-timers.ts). Each task is safe to run concurrently with itself.
 */
export interface MaintenanceTask {
  /** The `task` of the scheduled event. */
  readonly name: string;
  /** How often the local control plane runs it. */
  everySeconds(runtime: Runtime): number;
  /** Resolves to a summary that is logged (numbers only, never secrets). */
  run(runtime: Runtime): Promise<Record<string, unknown>>;
}

/** Lost agents: expired leases are requeued or failed; queue figures go out as CloudWatch metrics. */
export const sweepTask: MaintenanceTask = {
  name: "sweep",
  everySeconds: (runtime) => runtime.lifecycle.sweepIntervalSeconds,
  run: async (runtime) => {
    const report = await runtime.sweeper.sweep();
    const metrics = await runtime.queueMetrics.read();
    runtime.logger.info(
      {
        // CloudWatch Embedded Metric Format: the log line is also a set of metrics to alarm and scale on.
        _aws: {
          Timestamp: Date.parse(metrics.generated_at),
          CloudWatchMetrics: [
            {
              Namespace: "HybridCicd",
              Dimensions: [["Environment"]],
              Metrics: [
                { Name: "QueuedJobs", Unit: "Count" },
                { Name: "OldestQueuedJobWaitSeconds", Unit: "Seconds" },
                { Name: "RunningJobs", Unit: "Count" },
                { Name: "HealthyAgents", Unit: "Count" },
                { Name: "JobsLostWithTheirAgent", Unit: "Count" },
              ],
            },
          ],
        },
        Environment: runtime.env.HYBRID_CICD_ENVIRONMENT,
        QueuedJobs: metrics.queued.jobs,
        OldestQueuedJobWaitSeconds: metrics.queued.oldest_wait_seconds,
        RunningJobs: metrics.running,
        HealthyAgents: metrics.agents.healthy,
        JobsLostWithTheirAgent: report.requeued + report.failed + report.cancelled,
      },
      "queue metrics",
    );
    return { ...report };
  },
};

/** The audit chain's signed digest (decision 003): every interval, quiet ones too. */
export const digestTask: MaintenanceTask = {
  name: "digest",
  everySeconds: () => settings.audit.digestIntervalSeconds,
  run: async (runtime) => {
    const digest = await runAuditDigest(runtime);
    return { digest_seq: digest.digest_seq, head_seq: digest.head_seq };
  },
};

/** Every maintenance task, in the order a full run does them. */
export const maintenanceTasks: MaintenanceTask[] = [sweepTask, digestTask];

export class UnknownMaintenanceTaskError extends Error {
  override name = "UnknownMaintenanceTaskError";
}

/** Runs the named task (or every task when none is named) and logs each summary. */
export async function runMaintenance(
  runtime: Runtime,
  taskName?: string,
  logger: Logger = runtime.logger,
): Promise<Record<string, Record<string, unknown>>> {
  const tasks =
    taskName === undefined ? maintenanceTasks : maintenanceTasks.filter((task) => task.name === taskName);
  if (tasks.length === 0) {
    throw new UnknownMaintenanceTaskError(
      `unknown maintenance task "${taskName}"; known: ${maintenanceTasks.map((task) => task.name).join(", ")}`,
    );
  }
  const results: Record<string, Record<string, unknown>> = {};
  for (const task of tasks) {
    const started = Date.now();
    results[task.name] = await task.run(runtime);
    logger.info(
      { task: task.name, duration_ms: Date.now() - started, result: results[task.name] },
      "maintenance task done",
    );
  }
  return results;
}

/** The event EventBridge sends (`input` of the schedule's target). */
export interface ScheduledEvent {
  task?: string;
}

let initialising: Promise<Runtime> | undefined;

async function initialise(): Promise<Runtime> {
  const env = loadEnv();
  const logger = createLogger({ level: env.LOG_LEVEL });
  const { doc } = createDynamoClients({ endpoint: env.DYNAMODB_ENDPOINT, region: env.AWS_REGION });
  const secretStore = await createSecretStore(env);
  return createRuntime({ env, doc, secretStore, logger });
}

/**
 * Entry point of the scheduled Lambda. A failure is thrown, so the invocation counts as an error
 * (alarm; EventBridge's retry, then the dead-letter queue).
 */
export async function handler(event: ScheduledEvent, context?: Context) {
  initialising ??= initialise().catch((error: unknown) => {
    initialising = undefined;
    throw error;
  });
  const runtime = await initialising;
  const logger = context ? runtime.logger.child({ aws_request_id: context.awsRequestId }) : runtime.logger;
  return runMaintenance(runtime, event?.task, logger);
}
