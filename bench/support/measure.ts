/** Latency/throughput bookkeeping shared by the benches. */
export interface Figures {
  label: string;
  /** Requests answered 2xx: the only ones that count. */
  requests: number;
  /** Requests answered otherwise, or failed: counted here, never in req/s or the percentiles. */
  errors: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p99: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

/**
 * The smallest sample for which percentile `p` is more than the maximum: p99 needs at least 100
 * samples, p90 at least 10. Reports below it print "n/a" rather than a figure that is really the max.
 */
export function enoughFor(p: number, samples: number): boolean {
  return samples >= Math.ceil(100 / (100 - p));
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/**
 * Runs `operation` from `concurrency` loops until `seconds` pass or `maxRequests` are sent.
 * `operation` resolves true on a 2xx; only those count towards req/s and the latency percentiles.
 */
export async function closedLoop(
  label: string,
  options: { concurrency: number; seconds: number; maxRequests: number },
  operation: (index: number) => Promise<boolean>,
): Promise<Figures> {
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  const loop = async () => {
    while (performance.now() < deadline) {
      const index = next++;
      if (index >= options.maxRequests) return;
      const before = performance.now();
      const ok = await operation(index).catch(() => false);
      if (ok) latencies.push(performance.now() - before);
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, loop));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    label,
    requests: latencies.length,
    errors,
    seconds,
    perSecond: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: enoughFor(99, latencies.length) ? percentile(latencies, 99) : Number.NaN,
  };
}

/** Adds up runs of one scenario made in several alternating rounds. */
export function combine(runs: Figures[], latencies?: number[]): Figures {
  const requests = runs.reduce((sum, run) => sum + run.requests, 0);
  const seconds = runs.reduce((sum, run) => sum + run.seconds, 0);
  return {
    label: runs[0]!.label,
    requests,
    errors: runs.reduce((sum, run) => sum + run.errors, 0),
    seconds,
    perSecond: requests / seconds,
    p50: latencies ? percentile(latencies, 50) : median(runs.map((run) => run.p50)),
    p99: latencies
      ? enoughFor(99, latencies.length)
        ? percentile(latencies, 99)
        : Number.NaN
      : median(runs.map((run) => run.p99)),
  };
}

const fixed = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : "n/a");

export function printTable(title: string, rows: Figures[], baseline?: Figures): void {
  console.log(`\n${title}`);
  const header = ["scenario", "2xx", "non-2xx", "2xx/s", "p50 ms", "p99 ms", baseline ? "vs baseline" : ""];
  const body = rows.map((row) => [
    row.label,
    String(row.requests),
    String(row.errors),
    row.perSecond.toFixed(0),
    fixed(row.p50, 2),
    fixed(row.p99, 2),
    baseline ? `${(row.perSecond / baseline.perSecond).toFixed(2)}x` : "",
  ]);
  const widths = header.map((cell, column) =>
    Math.max(cell.length, ...body.map((line) => line[column]!.length)),
  );
  const format = (line: string[]) =>
    line
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join("  ")
      .trimEnd();
  console.log(format(header));
  console.log(widths.map((width) => "-".repeat(width)).join("  "));
  for (const line of body) console.log(format(line));
}
