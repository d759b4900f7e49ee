import type { AgentRecord } from "../../store/agents-repository";

export const agentHealthStates = ["healthy", "unhealthy", "dead"] as const;
export type AgentHealth = (typeof agentHealthStates)[number];

/** The server-set thresholds health is judged by (the runtime's lifecycle settings). */
export interface HealthThresholds {
  readonly unhealthyAfterSeconds: number;
  readonly deadAfterSeconds: number;
  readonly resourceLimitPercent: number;
}

/**
 * Health from heartbeat age and resource figures: dead when silent past the dead threshold (or never
 * seen), unhealthy when late or when a resource is nearly exhausted, healthy otherwise.
 */
export function agentHealth(agent: AgentRecord, now: Date, limits: HealthThresholds): AgentHealth {
  if (agent.revoked_at || !agent.last_heartbeat_at) return "dead";
  const ageSeconds = (now.getTime() - Date.parse(agent.last_heartbeat_at)) / 1000;
  if (ageSeconds >= limits.deadAfterSeconds) return "dead";
  if (ageSeconds >= limits.unhealthyAfterSeconds) return "unhealthy";
  const figures = agent.last_figures;
  if (
    figures &&
    (figures.cpu_percent >= limits.resourceLimitPercent ||
      figures.memory_percent >= limits.resourceLimitPercent ||
      figures.disk_percent >= limits.resourceLimitPercent)
  ) {
    return "unhealthy";
  }
  return "healthy";
}
