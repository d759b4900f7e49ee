import { describe, expect, it } from "vitest";
import { defaultLifecycleSettings, lifecycleSettings } from "../../runtime/src/domain/settings";

describe("the timings the server gives its agents", () => {
  it("default to production values: 30 s heartbeats, 5 s while busy, a 120 s lease", () => {
    expect(lifecycleSettings({})).toEqual(defaultLifecycleSettings);
    expect(defaultLifecycleSettings).toMatchObject({
      heartbeatIntervalSeconds: 30,
      jobHeartbeatIntervalSeconds: 5,
      claimIntervalSeconds: 5,
      leaseSeconds: 120,
      logChunkMaxBytes: 256 * 1024,
      logMaxBytes: 64 * 1024 * 1024,
    });
  });

  it("take overrides, ignoring unset ones", () => {
    const settings = lifecycleSettings({
      leaseSeconds: 3,
      heartbeatIntervalSeconds: 1,
      claimIntervalSeconds: undefined,
    });
    expect(settings).toMatchObject({ leaseSeconds: 3, heartbeatIntervalSeconds: 1, claimIntervalSeconds: 5 });
  });

  it("never let a busy agent beat slower than an idle one", () => {
    expect(
      lifecycleSettings({ heartbeatIntervalSeconds: 2, leaseSeconds: 10 }).jobHeartbeatIntervalSeconds,
    ).toBe(2);
  });

  it("refuse a lease that would expire between two healthy heartbeats, and 'dead' before 'unhealthy'", () => {
    expect(() => lifecycleSettings({ leaseSeconds: 30 })).toThrow(/lease \(30 s\) must be longer/);
    expect(() => lifecycleSettings({ unhealthyAfterSeconds: 60, deadAfterSeconds: 60 })).toThrow(/dead/);
  });
});
