/**
 * Console figures (issue 13): server render time (p50/p99) of the overview and jobs pages with 10,000
 * jobs and 100 agents in the store, and the JavaScript each page ships to the browser (KB gzipped),
 * beside a bare Remix page built with the same configuration and served by the same adapter in the
 * same run.
 *
 * Runs its own in-memory DynamoDB Local. `npx tsx bench/console.ts`, or `npm run bench -- console`.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type RequestListener } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { loadEnv } from "../runtime/src/config/env";
import { systemContext } from "../runtime/src/domain/principal";
import { startDynamoDbLocal } from "../runtime/src/local/dynamodb-local";
import { createLogger } from "../runtime/src/logger";
import { createRuntime, type Runtime } from "../runtime/src/runtime";
import { LocalSecretStore } from "../runtime/src/secrets/local-secret-store";
import { createDynamoClients } from "../runtime/src/store/client";
import { ensureTables } from "../runtime/src/store/tables";
import { ensureConsoleBuilt } from "../test/support/console-browser";
import { percentile } from "./support/measure";

const JOBS = 10_000;
const CANCELLED = 8_000;
const AGENTS = 100;
const RENDERS = 60;
const SEED_CONCURRENCY = 8;

const consoleDir = fileURLToPath(new URL("../console", import.meta.url));
/** Named through a constant: the console's types are checked by console/tsconfig.json. */
const CONSOLE_SERVER: string = pathToFileURL(join(consoleDir, "server", "console-app.ts")).href;

interface ConsoleServer {
  createConsoleApp(
    runtime: Runtime,
    options: { secureCookies: boolean; buildDirectory?: string },
  ): Promise<RequestListener>;
}

export async function runConsoleBench(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  ensureConsoleBuilt();
  const bareBuild = join(consoleDir, "bench", "bare", "build");
  // The remix binary itself, run in the bare app's directory (which has its own package.json, as Remix
  // requires): `npx` from inside the console workspace runs in the workspace root and built the console.
  const remixBin = fileURLToPath(new URL("../node_modules/.bin/remix", import.meta.url));
  const built = spawnSync(remixBin, ["vite:build"], {
    cwd: join(consoleDir, "bench", "bare"),
    encoding: "utf8",
  });
  if (built.status !== 0) throw new Error(`bare Remix build failed:\n${built.stderr}`);

  // A loaded machine can take a while to start the JVM.
  const database = await startDynamoDbLocal({ startTimeoutMs: 120_000 });
  const dataDir = await mkdtemp(join(tmpdir(), "hcp-bench-console-"));
  const { dynamodb, doc } = createDynamoClients({ endpoint: database.endpoint, region: "us-east-1" });
  const prefix = "bench-console-";
  try {
    await ensureTables(dynamodb, prefix);
    const env = loadEnv({
      HYBRID_CICD_ENVIRONMENT: "bench",
      HYBRID_CICD_TABLE_PREFIX: prefix,
      HYBRID_CICD_DATA_DIR: dataDir,
      DYNAMODB_ENDPOINT: database.endpoint,
      LOG_LEVEL: "silent",
    });
    const secretStore = await LocalSecretStore.open(dataDir);
    const runtime = createRuntime({ env, doc, secretStore, logger: createLogger({ level: "silent" }) });
    await runtime.workloadKeys.ensureRootKey();
    await runtime.auditKeys.ensureKey();
    const seeded = performance.now();
    await seed(runtime);
    console.log(
      `seeded ${JOBS} jobs (${JOBS - CANCELLED} queued, ${CANCELLED} cancelled) and ${AGENTS} agents in ${((performance.now() - seeded) / 1000).toFixed(0)} s`,
    );

    const { createConsoleApp } = (await import(CONSOLE_SERVER)) as ConsoleServer;
    const consoleUrl = await listen(await createConsoleApp(runtime, { secureCookies: false }));
    const bareUrl = await listen(
      await createConsoleApp(runtime, { secureCookies: false, buildDirectory: bareBuild }),
    );
    const link = await runtime.sessions.createSigninLink(
      { userId: "bench", role: "admin" },
      systemContext("b"),
    );
    const { sessionId } = await runtime.sessions.signInWithLink(link.token, systemContext("b"));
    const cookie = `hcp_session=${sessionId}`;

    const rows = [
      await renders("bare Remix page (baseline)", `${bareUrl}/console/`, cookie),
      await renders("overview /console/", `${consoleUrl}/console/`, cookie),
      await renders("jobs /console/jobs", `${consoleUrl}/console/jobs`, cookie),
      await renders("agents /console/agents", `${consoleUrl}/console/agents`, cookie),
    ];
    console.log(`\nServer render (document request, signed in, ${RENDERS} sequential requests each)`);
    printRows(
      ["page", "p50 ms", "p99 ms", "HTML KB"],
      rows.map((row) => [row.label, row.p50.toFixed(1), row.p99.toFixed(1), (row.bytes / 1024).toFixed(1)]),
    );

    const clientDir = (build: string) => join(build, "client");
    const consoleClient = clientDir(join(consoleDir, "build"));
    const pages = [
      ["bare Remix page (baseline)", `${bareUrl}/console/`, clientDir(bareBuild)],
      ["sign-in", `${consoleUrl}/console/sign-in`, consoleClient],
      ["overview", `${consoleUrl}/console/`, consoleClient],
      ["jobs", `${consoleUrl}/console/jobs`, consoleClient],
      ["queue a job (Conform form)", `${consoleUrl}/console/jobs/new`, consoleClient],
      ["agents", `${consoleUrl}/console/agents`, consoleClient],
      ["audit", `${consoleUrl}/console/audit`, consoleClient],
      ["access", `${consoleUrl}/console/access`, consoleClient],
    ] as const;
    const shipped: string[][] = [];
    for (const [label, url, client] of pages) {
      const html = await (
        await fetch(url, { headers: { cookie: label === "sign-in" ? "" : cookie } })
      ).text();
      const { files, gzipped, raw } = javascriptOf(html, client);
      shipped.push([label, String(files), (raw / 1024).toFixed(1), (gzipped / 1024).toFixed(1)]);
    }
    console.log(
      "\nJavaScript shipped per page (every module the document loads: entry, shared chunks, root, route)",
    );
    printRows(["page", "files", "KB", "KB gzipped"], shipped);
  } finally {
    dynamodb.destroy();
    await database.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
  // The listening servers end with the process (`npm run bench` exits after the last bench).
}

async function seed(runtime: Runtime): Promise<void> {
  const context = systemContext("bench-seed");
  const jobIds: string[] = [];
  await inParallel(JOBS, async (index) => {
    const { job } = await runtime.jobs.create(
      { git_ref: `bench-${index}`, tags: [`team-${index % 7}`], priority: 50, command: "true" },
      context,
    );
    jobIds[index] = job.job_id;
  });
  await inParallel(CANCELLED, (index) => runtime.jobs.cancel(jobIds[index]!, context).then(() => undefined));
  await inParallel(AGENTS, async (index) => {
    const { token } = await runtime.agents.createRegistrationToken(context);
    const registered = await runtime.agents.register(
      { registration_token: token, name: `bench-agent-${index}`, region: `region-${index % 4}`, tags: [] },
      context,
    );
    await runtime.agents.heartbeat(registered.agent_id, {
      cpu_percent: index % 100,
      memory_percent: (index * 7) % 100,
      disk_percent: 40,
      jobs_queued: 0,
      jobs_completed: index,
      uptime_seconds: 3600,
    });
  });
}

async function inParallel(count: number, task: (index: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: SEED_CONCURRENCY }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

async function listen(app: RequestListener): Promise<string> {
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  server.unref();
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function renders(label: string, url: string, cookie: string) {
  const times: number[] = [];
  let bytes = 0;
  for (let index = 0; index < RENDERS + 5; index++) {
    const started = performance.now();
    const response = await fetch(url, { headers: { cookie } });
    const body = await response.text();
    if (response.status !== 200) throw new Error(`${url} answered ${response.status}`);
    // The first few warm the JIT and connection; not counted.
    if (index >= 5) times.push(performance.now() - started);
    bytes = body.length;
  }
  times.sort((a, b) => a - b);
  return { label, p50: percentile(times, 50), p99: percentile(times, 99), bytes };
}

/** Every script module a document loads: `modulepreload` links and the inline entry's imports. */
function javascriptOf(html: string, clientDir: string) {
  const urls = new Set<string>();
  for (const match of html.matchAll(/<link rel="modulepreload" href="([^"]+)"/g)) urls.add(match[1]!);
  for (const match of html.matchAll(/import\(?\s*"(\/console\/assets\/[^"]+\.js)"/g)) urls.add(match[1]!);
  let raw = 0;
  let gzipped = 0;
  for (const url of urls) {
    const content = readFileSync(join(clientDir, url.replace(/^\/console\//, "")));
    raw += content.length;
    gzipped += gzipSync(content, { level: 9 }).length;
  }
  return { files: urls.size, raw, gzipped };
}

function printRows(header: string[], rows: string[][]): void {
  const widths = header.map((cell, column) =>
    Math.max(cell.length, ...rows.map((row) => row[column]!.length)),
  );
  const line = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join("  ");
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await runConsoleBench();
  process.exit(0);
}
