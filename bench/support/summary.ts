/**
 * The one table `npm run bench` ends with, and the same rows as JSON: each headline figure beside the
 * baseline measured in the same run, the ratio between them and the goal the figure is held to.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import path from "node:path";

export interface SummaryRow {
  /** What is measured, e.g. "heartbeat 2xx/s (HTTP, 10 clients)". */
  figure: string;
  value: number;
  unit: string;
  /** The baseline's own description and value, measured in the same run; absent for absolute figures. */
  baseline?: { label: string; value: number };
  /** value / baseline (for rates) or baseline / value (for times), so higher is always better. */
  ratio?: number;
  goal: string;
  /** Further figures of the row (samples, errors, double claims …). */
  detail?: string;
}

const rows: SummaryRow[] = [];

export function report(row: SummaryRow): void {
  rows.push(row);
}

export function machine(): string {
  const cpu = cpus();
  return `${cpu.length} × ${cpu[0]?.model.trim() ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, ${process.platform}`;
}

const show = (value: number, unit: string) =>
  `${Number.isFinite(value) ? (Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(2)) : "n/a"} ${unit}`;

export async function printSummary(file: string): Promise<void> {
  const header = ["figure", "value", "baseline (same run)", "ratio", "goal", "detail"];
  const body = rows.map((row) => [
    row.figure,
    show(row.value, row.unit),
    row.baseline ? `${row.baseline.label}: ${show(row.baseline.value, row.unit)}` : "-",
    row.ratio === undefined ? "-" : `${row.ratio.toFixed(2)}x`,
    row.goal,
    row.detail ?? "",
  ]);
  const widths = header.map((cell, column) =>
    Math.max(cell.length, ...body.map((line) => line[column]!.length)),
  );
  const format = (line: string[]) =>
    line
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join(" | ")
      .trimEnd();
  const when = new Date().toISOString();
  console.log(`\n=== summary (${when}; ${machine()}) ===`);
  console.log(format(header));
  console.log(widths.map((width) => "-".repeat(width)).join("-|-"));
  for (const line of body) console.log(format(line));
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify({ date: when, machine: machine(), figures: rows }, null, 2)}\n`);
  console.log(`\nfigures written to ${file}`);
}
