/** Figures the charts draw, computed from job views (pure, unit-tested in test/unit/console-charts.test.ts). */

export interface JobLike {
  status: string;
  created_at: string;
  started_at?: string;
  finished_at?: string;
}

export const outcomes = ["completed", "failed", "cancelled"] as const;
export type Outcome = (typeof outcomes)[number];

export interface DayBucket {
  /** YYYY-MM-DD (UTC). */
  day: string;
  completed: number;
  failed: number;
  cancelled: number;
}

/** Finished jobs per UTC day by outcome, for the `days` days ending today (oldest first, empty days kept). */
export function jobsPerDay(jobs: readonly JobLike[], days: number, now: Date): DayBucket[] {
  const buckets = new Map<string, DayBucket>();
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  for (let index = days - 1; index >= 0; index--) {
    const day = new Date(today - index * 86_400_000).toISOString().slice(0, 10);
    buckets.set(day, { day, completed: 0, failed: 0, cancelled: 0 });
  }
  for (const job of jobs) {
    if (!(outcomes as readonly string[]).includes(job.status) || !job.finished_at) continue;
    const bucket = buckets.get(job.finished_at.slice(0, 10));
    if (bucket) bucket[job.status as Outcome]++;
  }
  return [...buckets.values()];
}

/** Nearest-rank percentile of sorted values (undefined for none). */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Run time (started → finished) percentiles of finished jobs, in seconds. */
export function durationPercentiles(jobs: readonly JobLike[]) {
  const durations = jobs
    .filter((job) => job.started_at && job.finished_at)
    .map((job) => (Date.parse(job.finished_at!) - Date.parse(job.started_at!)) / 1000)
    .filter((seconds) => Number.isFinite(seconds) && seconds >= 0)
    .sort((a, b) => a - b);
  return {
    count: durations.length,
    p50: percentile(durations, 50),
    p90: percentile(durations, 90),
    p99: percentile(durations, 99),
    max: durations.at(-1),
  };
}
