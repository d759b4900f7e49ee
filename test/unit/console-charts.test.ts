import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { durationPercentiles, jobsPerDay, percentile } from "../../console/app/utils/charts";

const now = new Date("2026-11-30T12:00:00Z");

describe("the console's chart figures", () => {
  it("counts finished jobs per UTC day by outcome, keeping empty days and ignoring unfinished ones", () => {
    const days = jobsPerDay(
      [
        { status: "completed", created_at: "x", finished_at: "2026-11-30T01:00:00Z" },
        { status: "failed", created_at: "x", finished_at: "2026-11-30T23:59:59Z" },
        { status: "cancelled", created_at: "x", finished_at: "2026-11-28T10:00:00Z" },
        { status: "running", created_at: "x" },
        { status: "completed", created_at: "x", finished_at: "2026-11-20T10:00:00Z" },
      ],
      3,
      now,
    );
    expect(days).toEqual([
      { day: "2026-11-28", completed: 0, failed: 0, cancelled: 1 },
      { day: "2026-11-29", completed: 0, failed: 0, cancelled: 0 },
      { day: "2026-11-30", completed: 1, failed: 1, cancelled: 0 },
    ]);
  });

  it("takes nearest-rank percentiles that are always one of the values and grow with p", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { minLength: 1 }), (values) => {
        const sorted = [...values].sort((a, b) => a - b);
        const p50 = percentile(sorted, 50)!;
        const p90 = percentile(sorted, 90)!;
        expect(sorted).toContain(p50);
        expect(p90).toBeGreaterThanOrEqual(p50);
        expect(percentile(sorted, 100)).toBe(sorted.at(-1));
      }),
    );
    expect(percentile([], 50)).toBeUndefined();
  });

  it("measures run time from start to finish and skips jobs that never started", () => {
    const figures = durationPercentiles([
      {
        status: "completed",
        created_at: "x",
        started_at: "2026-11-30T00:00:00Z",
        finished_at: "2026-11-30T00:00:10Z",
      },
      {
        status: "failed",
        created_at: "x",
        started_at: "2026-11-30T00:00:00Z",
        finished_at: "2026-11-30T00:01:00Z",
      },
      { status: "cancelled", created_at: "x", finished_at: "2026-11-30T00:01:00Z" },
    ]);
    expect(figures).toEqual({ count: 2, p50: 10, p90: 60, p99: 60, max: 60 });
  });
});
