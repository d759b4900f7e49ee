/**
 * Server-set durations and limits, in one place. Session lifetimes are configuration (config/env.ts);
 * the agent and job timings are the lifecycle settings below.
 */
export const settings = {
  signinLink: { ttlSeconds: 10 * 60 },
  registrationToken: { defaultTtlSeconds: 3600, maxTtlSeconds: 7 * 24 * 3600 },
  apiToken: { defaultTtlSeconds: 30 * 24 * 3600, maxTtlSeconds: 365 * 24 * 3600 },
  signature: { maxAgeSeconds: 300 },
  idempotency: { ttlSeconds: 24 * 3600 },
  job: { defaultTimeoutSeconds: 3600, maxTimeoutSeconds: 24 * 3600 },
  audit: {
    /** A signed digest of the chain head this often, quiet intervals too (the AWS schedule matches). */
    digestIntervalSeconds: 3600,
    /**
     * GET /audit/verify reports a newest digest older than the interval plus this margin (a late
     * schedule, a retried Lambda) as stale: digests stopped, or a tail was deleted with its digests.
     */
    digestMarginSeconds: 600,
    /** `GET /audit/public-key` keeps the keys this long in memory (anonymous callers, Secrets Manager). */
    publicKeyCacheSeconds: 60,
    /** Denied requests are counted per key and written once per window (decision 004). */
    deniedWindowSeconds: 30,
    /** Distinct keys counted per window; the rest are folded into one overflow record. */
    deniedMaxKeys: 200,
  },
} as const;

/**
 * The job lifecycle's timings and limits, one object per runtime. The defaults suit production; a
 * deployment (or a test) shortens them through the environment (HYBRID_CICD_LEASE_SECONDS and friends,
 * config/env.ts). Agents are told the intervals in registration and heartbeat replies.
 */
export interface LifecycleSettings {
  readonly heartbeatIntervalSeconds: number;
  /** Heartbeat period while an agent runs a job: how fast a cancel reaches it (at most the above). */
  readonly jobHeartbeatIntervalSeconds: number;
  /** How long an idle agent waits between claims (plus jitter). */
  readonly claimIntervalSeconds: number;
  /** A running job's lease: claims start it, heartbeats and log uploads extend it. */
  readonly leaseSeconds: number;
  /** The local control plane's sweeper period (on AWS, the EventBridge schedule). */
  readonly sweepIntervalSeconds: number;
  /** No heartbeat for this long: unhealthy. */
  readonly unhealthyAfterSeconds: number;
  /** No heartbeat for this long: dead. */
  readonly deadAfterSeconds: number;
  /** A resource figure at or above this: unhealthy. */
  readonly resourceLimitPercent: number;
  /** SIGTERM → SIGKILL grace an agent gives a cancelled or timed-out job. */
  readonly cancelGraceSeconds: number;
  /** Largest log chunk one upload may carry (bytes of UTF-8). */
  readonly logChunkMaxBytes: number;
  /** Log bytes kept per job; later output is dropped and `log_truncated` set on the job. */
  readonly logMaxBytes: number;
  /** Log chunks expire (DynamoDB TTL) this long after they were written. */
  readonly logRetentionSeconds: number;
  /** Upper bound of `retry.agent_lost` a job may ask for. */
  readonly maxAgentLostRetries: number;
  /** Queue registry entries idle this long, with no queued job left, are pruned by the sweeper. */
  readonly queueIdleSeconds: number;
}

export const defaultLifecycleSettings: LifecycleSettings = {
  heartbeatIntervalSeconds: 30,
  jobHeartbeatIntervalSeconds: 5,
  claimIntervalSeconds: 5,
  leaseSeconds: 120,
  sweepIntervalSeconds: 15,
  unhealthyAfterSeconds: 90,
  deadAfterSeconds: 300,
  resourceLimitPercent: 95,
  cancelGraceSeconds: 10,
  logChunkMaxBytes: 256 * 1024,
  logMaxBytes: 64 * 1024 * 1024,
  logRetentionSeconds: 90 * 24 * 3600,
  maxAgentLostRetries: 5,
  queueIdleSeconds: 7 * 24 * 3600,
};

export class InvalidLifecycleSettingsError extends Error {
  override name = "InvalidLifecycleSettingsError";
}

/**
 * The defaults with the given overrides, checked together: a lease no longer than the heartbeat interval
 * would expire between two healthy heartbeats, and "dead" must come after "unhealthy".
 */
export function lifecycleSettings(overrides: Partial<Record<keyof LifecycleSettings, number | undefined>>) {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined));
  const merged: LifecycleSettings = { ...defaultLifecycleSettings, ...defined };
  const result: LifecycleSettings = {
    ...merged,
    jobHeartbeatIntervalSeconds: Math.min(
      merged.jobHeartbeatIntervalSeconds,
      merged.heartbeatIntervalSeconds,
    ),
  };
  if (result.leaseSeconds <= result.heartbeatIntervalSeconds) {
    throw new InvalidLifecycleSettingsError(
      `the lease (${result.leaseSeconds} s) must be longer than the heartbeat interval (${result.heartbeatIntervalSeconds} s)`,
    );
  }
  if (result.deadAfterSeconds <= result.unhealthyAfterSeconds) {
    throw new InvalidLifecycleSettingsError(
      `"dead" (${result.deadAfterSeconds} s) must come after "unhealthy" (${result.unhealthyAfterSeconds} s)`,
    );
  }
  return result;
}
