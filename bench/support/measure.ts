/** Latency/throughput bookkeeping shared by the benches. */
export interface Figures {
  label: string;
  requests: number;
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
 * Runs `operation` from `concurrency` loops until `seconds` pass or `maxRequests` are sent.
 * `operation` resolves true on success.
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
      latencies.push(performance.now() - before);
      if (!ok) errors++;
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
    p99: percentile(latencies, 99),
  };
}

export function printTable(title: string, rows: Figures[], baseline?: Figures): void {
  console.log(`\n${title}`);
  const header = [
    "scenario",
    "requests",
    "errors",
    "req/s",
    "p50 ms",
    "p99 ms",
    baseline ? "vs baseline" : "",
  ];
  const body = rows.map((row) => [
    row.label,
    String(row.requests),
    String(row.errors),
    row.perSecond.toFixed(0),
    row.p50.toFixed(2),
    row.p99.toFixed(2),
    baseline ? `${((row.perSecond / baseline.perSecond) * 100).toFixed(0)}%` : "",
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

/** A text bar chart, for figures people would rather see than read. */
export function printBars(title: string, entries: { label: string; value: number; unit: string }[]): void {
  console.log(`\n${title}`);
  const max = Math.max(...entries.map((entry) => entry.value));
  const labelWidth = Math.max(...entries.map((entry) => entry.label.length));
  for (const entry of entries) {
    const bar = "█".repeat(Math.max(1, Math.round((entry.value / max) * 40)));
    console.log(`${entry.label.padEnd(labelWidth)}  ${bar} ${entry.value.toFixed(0)} ${entry.unit}`);
  }
}
