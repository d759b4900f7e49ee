import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as pulumi from "@pulumi/pulumi";
import yaml from "js-yaml";
import {
  bundleLambda,
  deterministicZip,
  type LambdaArtifactOptions,
  resolveLambdaEntry,
} from "../platform/src/lambda-artifact";
import { report } from "./support/summary";

/**
 * Figures of the platform: the API function's bundle (minified size, zipped size) and its cold load time
 * in Node (median of 11 imports, each in a fresh process) beside a one-line hello-world bundled the same
 * way in the same run, for each bundle variant; and the number of resources each stack file creates.
 * Prints figures only; never passes or fails on them.
 *
 *   npx tsx bench/platform-bundle.ts
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/**
 * Under the repository's node_modules (out of the linter's and git's way), so a bundle that leaves
 * `@aws-sdk/*` out finds it in node_modules, as it would in the Lambda runtime's.
 */
const workDirectory = path.join(root, "node_modules", ".cache", "platform-bundle-bench");
const loads = 11;

interface Variant {
  readonly label: string;
  readonly options: LambdaArtifactOptions;
}

const variants: Variant[] = [
  { label: "ESM, SDK bundled (deployed)", options: { format: "esm" } },
  { label: "ESM, @aws-sdk external", options: { format: "esm", externalAwsSdk: true } },
  { label: "CJS, SDK bundled", options: { format: "cjs" } },
  { label: "CJS, @aws-sdk external", options: { format: "cjs", externalAwsSdk: true } },
];

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

/** Imports a module in a fresh Node process; returns the import's own time and the whole process's. */
function coldLoad(modulePath: string): { importMs: number; processMs: number } {
  const script = `const t=performance.now();await import(${JSON.stringify(pathToFileURL(modulePath).href)});process.stdout.write(String(performance.now()-t));`;
  const started = performance.now();
  const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    env: {
      PATH: process.env["PATH"] ?? "",
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      LOG_LEVEL: "silent",
    },
    encoding: "utf8",
  });
  const processMs = performance.now() - started;
  if (result.status !== 0) throw new Error(`loading ${modulePath} failed: ${result.stderr}`);
  return { importMs: Number(result.stdout), processMs };
}

interface Measured {
  readonly label: string;
  readonly bundleKb: number;
  readonly zipKb: number;
  readonly importMs: number;
  readonly processMs: number;
}

async function measure(label: string, entry: string, options: LambdaArtifactOptions): Promise<Measured> {
  const bundle = await bundleLambda(entry, options);
  const zip = await deterministicZip(bundle.files);
  const directory = path.join(workDirectory, label.replace(/[^a-z0-9]+/gi, "-").toLowerCase());
  await mkdir(directory, { recursive: true });
  for (const file of bundle.files) await writeFile(path.join(directory, file.name), file.contents);
  const main = bundle.files.find((file) => /^index\.(mjs|cjs|js)$/.test(file.name)) ?? bundle.files[0];
  if (!main) throw new Error(`${label}: empty bundle`);
  const samples = Array.from({ length: loads }, () => coldLoad(path.join(directory, main.name)));
  return {
    label,
    bundleKb: main.contents.length / 1024,
    zipKb: zip.length / 1024,
    importMs: median(samples.map((sample) => sample.importMs)),
    processMs: median(samples.map((sample) => sample.processMs)),
  };
}

/** Counts the resources each stack file's program registers, under Pulumi's mocks (no cloud). */
async function resourcesPerStack(stackFile: string): Promise<Record<string, number>> {
  const document = yaml.load(readFileSync(path.join(root, stackFile), "utf8")) as {
    config: Record<string, unknown>;
  };
  const config = Object.fromEntries(
    Object.entries(document.config).map(([key, value]) => [
      key,
      typeof value === "string" ? value : JSON.stringify(value),
    ]),
  );
  const counts: Record<string, number> = {};
  pulumi.runtime.setAllConfig(config);
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        if (args.type.startsWith("aws:")) counts[args.type] = (counts[args.type] ?? 0) + 1;
        return {
          id: `${args.name}-id`,
          state: { ...args.inputs, arn: `arn:aws:mock:eu-west-1:123456789012:${args.name}`, version: "1" },
        };
      },
      call: (args) =>
        args.token.endsWith("getCallerIdentity")
          ? { accountId: "123456789012" }
          : args.token.endsWith("getRegion")
            ? { region: "eu-west-1" }
            : { partition: "aws" },
    },
    "hybrid-cicd",
    /^Pulumi\.(.+)\.yaml$/.exec(stackFile)?.[1] ?? "stack",
    false,
  );
  const { controlPlaneStack: program } = await import("../platform/src/control-plane-stack");
  // Pulumi reports a failure inside the program's outputs as an unhandled rejection.
  let onFailure: (error: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    onFailure = reject;
  });
  process.on("unhandledRejection", onFailure);
  try {
    const outputs = await program();
    await Promise.race([
      new Promise<void>((resolve) => pulumi.output(outputs).apply(() => resolve())),
      failed,
    ]);
  } finally {
    process.off("unhandledRejection", onFailure);
  }
  // Registrations finish asynchronously: wait until the count stops changing.
  let last = -1;
  for (let stable = 0; stable < 3; ) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const total = Object.values(counts).reduce((sum, count) => sum + count, 0);
    stable = total === last ? stable + 1 : 0;
    last = total;
  }
  return counts;
}

const pad = (value: string, width: number) => value.padEnd(width);
const number = (value: number, width: number, digits = 0) => value.toFixed(digits).padStart(width);

/**
 * The minimal bundle of the same stack the API's cold start is held to: express 5 + serverless-http +
 * lib-dynamodb answering one GetItem.
 */
const minimalSameStack = `import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand } from "@aws-sdk/lib-dynamodb";
import express from "express";
import serverless from "serverless-http";
const doc = DynamoDBDocumentClient.from(new DynamoDBClient({}));
const app = express();
app.use(express.json());
app.get("/items/:id", async (req, res) => {
  const { Item } = await doc.send(new GetCommand({ TableName: process.env.TABLE ?? "items", Key: { id: req.params.id } }));
  res.json(Item ?? null);
});
export const handler = serverless(app);
`;

/**
 * The cold-start figure: the deployed API bundle and the minimal same-stack bundle, both ESM, minified,
 * built by the same function in this run; 11 fresh-process imports of each, alternating; medians.
 */
async function coldStartFigure(apiEntry: string): Promise<void> {
  const minimalEntry = path.join(workDirectory, "minimal-same-stack.ts");
  await writeFile(minimalEntry, minimalSameStack);
  try {
    const built: string[] = [];
    for (const [label, entry] of [
      ["cold-api", apiEntry],
      ["cold-minimal", minimalEntry],
    ] as const) {
      const bundle = await bundleLambda(entry, { format: "esm" });
      const directory = path.join(workDirectory, label);
      await mkdir(directory, { recursive: true });
      for (const file of bundle.files) await writeFile(path.join(directory, file.name), file.contents);
      built.push(path.join(directory, "index.mjs"));
    }
    const api: number[] = [];
    const minimal: number[] = [];
    coldLoad(built[0]!);
    coldLoad(built[1]!);
    for (let index = 0; index < loads; index++) {
      api.push(coldLoad(built[0]!).importMs);
      minimal.push(coldLoad(built[1]!).importMs);
    }
    const apiMs = median(api);
    const minimalMs = median(minimal);
    console.log(
      `\nCold import, ESM minified, median of ${loads} alternating fresh processes: API ${apiMs.toFixed(1)} ms, minimal same-stack bundle ${minimalMs.toFixed(1)} ms (${(apiMs / minimalMs).toFixed(2)}x)`,
    );
    report({
      figure: "API bundle cold import (ESM, minified)",
      value: apiMs,
      unit: "ms",
      baseline: { label: "express 5 + serverless-http + lib-dynamodb GetItem", value: minimalMs },
      ratio: minimalMs / apiMs,
      goal: "API <= 1.2x the minimal (ratio >= 0.83)",
      detail: `API/minimal = ${(apiMs / minimalMs).toFixed(2)}x; median of ${loads}`,
    });
  } finally {
    await rm(minimalEntry, { force: true });
  }
}

export async function runPlatformBundleBench(): Promise<void> {
  await rm(workDirectory, { recursive: true, force: true });
  await mkdir(workDirectory, { recursive: true });
  await coldStartFigure(resolveLambdaEntry("api"));
  if (process.env.BENCH_PLATFORM_VARIANTS !== "1") return;
  const helloEntry = path.join(workDirectory, "hello-world.ts");
  await writeFile(helloEntry, 'export const handler = async () => ({ statusCode: 200, body: "hello" });\n');

  const rows: Measured[] = [];
  const failures: string[] = [];
  const apiEntry = resolveLambdaEntry("api");
  for (const variant of variants) {
    for (const [label, entry] of [
      [`API: ${variant.label}`, apiEntry],
      [`hello-world: ${variant.label}`, helloEntry],
    ] as const) {
      try {
        rows.push(await measure(label, entry, variant.options));
      } catch (error) {
        const message = (error as Error).message;
        failures.push(`${label}: ${/^\w*Error(?: \[\w+\])?: .*$/m.exec(message)?.[0] ?? message}`);
      }
    }
  }

  console.log(
    `\nPlatform: API Lambda bundle (esbuild, minified, node22) — cold load = median of ${loads} fresh processes`,
  );
  console.log(
    `${pad("bundle", 44)}${"bundle KB".padStart(11)}${"zip KB".padStart(9)}${"import ms".padStart(11)}${"process ms".padStart(12)}`,
  );
  for (const row of rows) {
    console.log(
      `${pad(row.label, 44)}${number(row.bundleKb, 11, 1)}${number(row.zipKb, 9, 1)}${number(row.importMs, 11, 1)}${number(row.processMs, 12, 1)}`,
    );
  }
  for (const failure of failures) console.log(`  n/a  ${failure}`);
  for (const variant of variants) {
    const api = rows.find((row) => row.label === `API: ${variant.label}`);
    const hello = rows.find((row) => row.label === `hello-world: ${variant.label}`);
    if (api && hello) {
      console.log(
        `${pad(`  API load over hello-world, ${variant.label}`, 66)}${number(api.importMs - hello.importMs, 9, 1)} ms`,
      );
    }
  }

  console.log("\nPlatform: resources per stack (Pulumi mocks)");
  let failure: Error | undefined;
  for (const stackFile of ["Pulumi.staging.yaml", "Pulumi.production.yaml"]) {
    if (failure) {
      console.log(`${pad(stackFile, 26)}  n/a: ${failure.message}`);
      continue;
    }
    try {
      const counts = await resourcesPerStack(stackFile);
      const total = Object.values(counts).reduce((sum, count) => sum + count, 0);
      const detail = Object.entries(counts)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([type, count]) => `${type.replace(/^aws:([^/]+)\/[^:]+:/, "$1.")} ${count}`)
        .join(", ");
      console.log(`${pad(stackFile, 26)}${number(total, 5)}  (${detail})`);
    } catch (error) {
      failure = error as Error;
      // The failed program's other outputs keep rejecting; they are the same failure.
      process.on("unhandledRejection", () => {});
      console.log(`${pad(stackFile, 26)}  n/a: ${failure.message}`);
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  await runPlatformBundleBench();
}
