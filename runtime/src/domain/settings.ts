/**
 * Server-set durations and thresholds, in one place. Agents are told the intervals in their replies;
 * they never decide them.
 */
export const settings = {
  session: { absoluteSeconds: 7 * 24 * 3600, idleSeconds: 12 * 3600 },
  signinLink: { ttlSeconds: 10 * 60 },
  registrationToken: { defaultTtlSeconds: 3600, maxTtlSeconds: 7 * 24 * 3600 },
  apiToken: { defaultTtlSeconds: 30 * 24 * 3600, maxTtlSeconds: 365 * 24 * 3600 },
  agent: {
    heartbeatIntervalSeconds: 30,
    claimIntervalSeconds: 5,
    /** No heartbeat for this long: unhealthy. */
    unhealthyAfterSeconds: 90,
    /** No heartbeat for this long: dead. */
    deadAfterSeconds: 300,
    /** A resource figure at or above this: unhealthy. */
    resourceLimitPercent: 95,
  },
  signature: { maxAgeSeconds: 300 },
  idempotency: { ttlSeconds: 24 * 3600 },
  job: { defaultTimeoutSeconds: 3600, maxTimeoutSeconds: 24 * 3600 },
} as const;
