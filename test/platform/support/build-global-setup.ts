import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";

/**
 * Builds the platform package (platform/dist: compiled entry, declarations, prebuilt Lambda zips; and
 * the policy pack's bundle) before the platform tests, which load it the way its consumers do. Skipped
 * when nothing it is built from changed since the last build (a stamp of the sources' newest mtime).
 */
const repositoryRoot = path.resolve(import.meta.dirname, "../../..");
const sources = [
  "platform/src",
  "platform/scripts",
  "platform/package.json",
  "runtime/src",
  "runtime/package.json",
  "console",
];
const stampFile = path.join(repositoryRoot, "platform/dist/.build-stamp");

function newestModification(entry: string): number {
  if (!existsSync(entry)) return 0;
  const stat = statSync(entry);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const child of readdirSync(entry)) {
    if (child === "node_modules" || child === "build" || child === ".cache") continue;
    newest = Math.max(newest, newestModification(path.join(entry, child)));
  }
  return newest;
}

export default function buildPlatformPackage(): void {
  const stamp = String(
    Math.max(...sources.map((source) => newestModification(path.join(repositoryRoot, source)))),
  );
  const policyBundle = path.join(repositoryRoot, "platform/policy/dist/pack.cjs");
  if (existsSync(stampFile) && existsSync(policyBundle) && readFileSync(stampFile, "utf8") === stamp) return;
  execFileSync(process.execPath, ["--import", "tsx", "scripts/build.ts"], {
    cwd: path.join(repositoryRoot, "platform"),
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  writeFileSync(stampFile, stamp);
}
