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
  /**
   * One entry per environment and tag set with queued jobs: what an autoscaler for agents with those
   * tags needs. At most QUEUE_READ_LIMIT keys are read per queue: past that `estimated` is true, `jobs`
   * is a lower bound and the wait is the oldest among the jobs read.
   */
  queues: {
    environment: string | null;
    tags: string[];
    jobs: number;
    oldest_wait_seconds: number;
    estimated: boolean;
  }[];
  awaiting_approval: number;
  /** Jobs an agent holds (running, or being cancelled). */
  running: number;
  cancelling: number;
  /** Registered agents by health; revoked ones are counted apart. */
  agents: { healthy: number; unhealthy: number; dead: number; revoked: number };
}

/** Queued job keys read per queue (about 100 bytes each): the bound on one metrics request's cost. */
export const QUEUE_READ_LIMIT = 1000;

/**
 * Queue figures for autoscaling and dashboards: totals by status from the maintained counters (one
 * BatchGet, decision 012), per queue at most QUEUE_READ_LIMIT keys of the sparse queue index, and the
 * agent listing. No table scan; the cost never grows with history or with a runaway queue.
 */
export class QueueMetricsService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly lifecycle: LifecycleSettings = defaultLifecycleSettings,
  ) {}

  async read(): Promise<QueueMetrics> {
    const now = this.clock();
    const [queues, counts, agents] = await Promise.all([
      this.queues(now),
      this.store.jobCounts.read(),
      this.agents(now),
    ]);
    const active = queues.filter((queue) => queue.jobs > 0);
    const awaiting = Math.max(0, counts.awaiting_approval);
    const running = Math.max(0, counts.running);
    const cancelling = Math.max(0, counts.cancelling);
    return {
      generated_at: now.toISOString(),
      queued: {
        jobs: Math.max(0, counts.queued),
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
        const keys = await this.store.jobs.queueHead(queue.queue_key, QUEUE_READ_LIMIT + 1);
        const read = keys.slice(0, QUEUE_READ_LIMIT);
        return {
          environment: queue.environment ?? null,
          tags: queue.tags,
          jobs: read.length,
          oldest_wait_seconds: Math.round(oldestWaitSeconds(read, now) * 10) / 10,
          estimated: keys.length > QUEUE_READ_LIMIT,
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
