/**
 * `npm run bench`: every benchmark, each printing its figures beside a baseline measured in the same
 * run, then one summary table on stdout and the same figures as JSON (BENCH_OUTPUT, default
 * bench/results/latest.json). Benchmarks never pass or fail on time. Pick some with
 * `npm run bench -- heartbeat claims`. See bench/README.md for how to read each figure.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runAuditBench } from "./audit";
import { runClaimsBench } from "./claims";
import { runConsoleBench } from "./console";
import { runHeartbeatBench } from "./heartbeat";
import { runPlatformBundleBench } from "./platform-bundle";
import { runReportsBench } from "./reports";
import { runRotationBench } from "./rotation";
import { printSummary } from "./support/summary";

const benches: Record<string, () => Promise<unknown>> = {
  heartbeat: runHeartbeatBench,
  claims: runClaimsBench,
  audit: runAuditBench,
  platform: runPlatformBundleBench,
  reports: runReportsBench,
  rotation: runRotationBench,
  console: runConsoleBench,
};

const wanted = process.argv.slice(2);
for (const [name, run] of Object.entries(benches)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  console.log(`\n=== ${name} ===`);
  await run();
}
await printSummary(
  process.env.BENCH_OUTPUT ??
    path.join(path.dirname(fileURLToPath(import.meta.url)), "results", "latest.json"),
);
