import { systemContext } from "../domain/principal";
import { type MaintenanceTask, maintenanceTasks } from "../lambda/scheduled";
import type { Runtime } from "../runtime";

/**
 * Local only (on AWS, Secrets Manager's schedule invokes the rotation function): starts the rotations
 * due by policy and carries every rotation under way on (testSecret waits for agents between ticks).
 */
export const rotationTask: MaintenanceTask = {
  name: "rotation",
  // Between 5 and 10 s: soon after the agents' acknowledgements, without polling the store constantly.
  everySeconds: (runtime) => Math.max(5, Math.min(10, runtime.lifecycle.heartbeatIntervalSeconds)),
  run: async (runtime) => runtime.rotation.runDue(systemContext("rotation", `rotation-${Date.now()}`)),
};

/** The maintenance tasks of the local control plane: the scheduled Lambda's, plus rotation. */
export const localMaintenanceTasks: readonly MaintenanceTask[] = [...maintenanceTasks, rotationTask];

export interface MaintenanceTimers {
  /** Stops the timers and waits for a run in progress. */
  stop(): Promise<void>;
}

/**
 * The local control plane's stand-in for EventBridge: each maintenance task on its own timer, runs never
 * overlapping, failures logged and retried at the next tick (a sweep that failed changed nothing).
 */
export function startMaintenanceTimers(
  runtime: Runtime,
  tasks: readonly MaintenanceTask[] = localMaintenanceTasks,
): MaintenanceTimers {
  let stopped = false;
  const timers = new Set<NodeJS.Timeout>();
  const running = new Set<Promise<void>>();

  const schedule = (task: MaintenanceTask) => {
    if (stopped) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      const started = Date.now();
      const run = task
        .run(runtime)
        .then(
          (result) => {
            const acted = Object.values(result).some((value) => typeof value === "number" && value > 0);
            runtime.logger[acted ? "info" : "debug"](
              { task: task.name, duration_ms: Date.now() - started, result },
              "maintenance task done",
            );
          },
          (error: unknown) => runtime.logger.warn({ task: task.name, err: error }, "maintenance task failed"),
        )
        .finally(() => {
          running.delete(run);
          schedule(task);
        });
      running.add(run);
    }, task.everySeconds(runtime) * 1000);
    timers.add(timer);
  };

  for (const task of tasks) schedule(task);
  return {
    stop: async () => {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.all(running);
    },
  };
}
