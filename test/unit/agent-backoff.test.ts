import { describe, expect, it } from "vitest";
import { backoffDelay, jittered, retryAfterMs, sleep } from "../../runtime/src/agent/backoff";

describe("backoff with full jitter", () => {
  it("draws below a ceiling that doubles from the base up to the cap", () => {
    const top = () => 0.999_999;
    expect(backoffDelay(0, { baseMs: 500, capMs: 30_000 }, top)).toBe(499);
    expect(backoffDelay(3, { baseMs: 500, capMs: 30_000 }, top)).toBe(3_999);
    expect(backoffDelay(20, { baseMs: 500, capMs: 30_000 }, top)).toBe(29_999);
    expect(backoffDelay(5, {}, () => 0)).toBe(0);
  });

  it("spreads a fleet's retries instead of sending them together", () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(6)));
    expect(delays.size).toBeGreaterThan(40);
    for (const delay of delays) expect(delay).toBeLessThan(30_000);
  });
});

describe("Retry-After", () => {
  it("reads delay-seconds and HTTP dates, and ignores anything else", () => {
    const now = Date.parse("2030-01-01T00:00:00Z");
    expect(retryAfterMs("7", now)).toBe(7_000);
    expect(retryAfterMs("Tue, 01 Jan 2030 00:00:30 GMT", now)).toBe(30_000);
    expect(retryAfterMs("Mon, 31 Dec 2029 23:00:00 GMT", now)).toBe(0);
    expect(retryAfterMs("soon", now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });
});

describe("jittered intervals", () => {
  it("stay within ±10 % of the server's interval", () => {
    expect(jittered(30, () => 0)).toBe(27_000);
    expect(jittered(30, () => 1)).toBe(33_000);
    expect(jittered(5, () => 0.5)).toBe(5_000);
  });
});

describe("sleep", () => {
  it("ends early when its signal aborts", async () => {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 20);
    await sleep(10_000, controller.signal);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
