import type { AgentRecord } from "../../store/agents-repository";
import type { Store } from "../../store/store";
import { agentHealth } from "../agents/agent-health";
import type { Clock } from "../principal";
import { defaultLifecycleSettings, type LifecycleSettings } from "../settings";
import { oldestWaitSeconds } from "./agent-jobs-service";

export interface QueueMetrics {
  generated_at: string;
  /** Every queued job, whatever its tags. */
  queued: { jobs: number; oldest_wait_seconds: number };
  /** One entry per tag set with queued jobs: what an autoscaler for agents with those tags needs. */
  queues: { tags: string[]; jobs: number; oldest_wait_seconds: number }[];
  awaiting_approval: number;
  /** Jobs an agent holds (running, or being cancelled). */
  running: number;
  cancelling: number;
  /** Registered agents by health; revoked ones are counted apart. */
  agents: { healthy: number; unhealthy: number; dead: number; revoked: number };
}

/**
 * Queue figures for autoscaling and dashboards, read from indexes only: the sparse queue index (keys,
 * about 100 bytes a queued job), Select COUNT on the status index for the few jobs in flight, and the
 * agent listing. No table scan; the cost grows with the queue and the fleet, never with history.
 */
export class QueueMetricsService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly lifecycle: LifecycleSettings = defaultLifecycleSettings,
  ) {}

  async read(): Promise<QueueMetrics> {
    const now = this.clock();
    const [queues, awaiting, running, cancelling, agents] = await Promise.all([
      this.queues(now),
      this.store.jobs.count("awaiting_approval"),
      this.store.jobs.count("running"),
      this.store.jobs.count("cancelling"),
      this.agents(now),
    ]);
    const active = queues.filter((queue) => queue.jobs > 0);
    return {
      generated_at: now.toISOString(),
      queued: {
        jobs: active.reduce((sum, queue) => sum + queue.jobs, 0),
        oldest_wait_seconds: Math.max(0, ...active.map((queue) => queue.oldest_wait_seconds)),
      },
      queues: active,
      awaiting_approval: awaiting,
      running: running + cancelling,
      cancelling,
      agents,
    };
  }

  private async queues(now: Date) {
    const registry = await this.store.jobQueues.list();
    return Promise.all(
      registry.map(async (queue) => {
        const keys = await this.store.jobs.queuedKeys(queue.queue_key);
        return {
          tags: queue.tags,
          jobs: keys.length,
          oldest_wait_seconds: Math.round(oldestWaitSeconds(keys, now) * 10) / 10,
        };
      }),
    );
  }

  private async agents(now: Date) {
    const counts = { healthy: 0, unhealthy: 0, dead: 0, revoked: 0 };
    let cursor: string | undefined;
    do {
      const page = await this.store.agents.list({ limit: 100, cursor });
      for (const agent of page.items as AgentRecord[]) {
        if (agent.revoked_at) counts.revoked++;
        else counts[agentHealth(agent, now, this.lifecycle)]++;
      }
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return counts;
  }
}
