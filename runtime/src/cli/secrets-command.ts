import { resolve } from "node:path";
import { type Command, Option } from "commander";
import { type Env, loadEnv } from "../config/env";
import { systemContext } from "../domain/principal";
import { type RotationView, secretKeyByName } from "../domain/secrets/key-rotation";
import { openLocalRuntime } from "../local/control-plane";
import { createLogger } from "../logger";

async function readStandardInput(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString("utf8").trim();
}

async function withRuntime<T>(
  env: Env,
  action: (runtime: Awaited<ReturnType<typeof openLocalRuntime>>["runtime"]) => Promise<T>,
): Promise<T> {
  const local = await openLocalRuntime(env, createLogger({ level: "warn", name: "hybrid-cicd-cli" }), {
    reuseRunning: true,
  });
  try {
    return await action(local.runtime);
  } finally {
    await local.close();
  }
}

function environment(options: { dataDir?: string }): Env {
  return loadEnv({
    ...process.env,
    ...(options.dataDir !== undefined && { HYBRID_CICD_DATA_DIR: resolve(options.dataDir) }),
  });
}

function summary(rotation: RotationView): string {
  return `rotation ${rotation.rotation_id}: ${rotation.status}, last step ${rotation.step}\n`;
}

/**
 * `hybrid-cicd secrets list|rotate|abort`: the rotation engine on the local data dir (whether or not
 * the control plane runs on it; a running one carries a root-key rotation on as agents acknowledge).
 */
export function registerSecretsCommands(program: Command): void {
  const dataDir = () =>
    new Option("--data-dir <dir>", "data directory (env HYBRID_CICD_DATA_DIR, default .data)");
  const command = program.command("secrets").description("secrets: policy, age, rotation");

  command
    .command("list")
    .description("each secret's policy, age and the rotation under way (never a value), as JSON")
    .addOption(dataDir())
    .action(async (options: { dataDir?: string }) => {
      const secrets = await withRuntime(environment(options), (runtime) => runtime.rotation.list());
      process.stdout.write(`${JSON.stringify({ secrets }, null, 2)}\n`);
    });

  command
    .command("rotate")
    .description("start a rotation (OAuth client secrets: --provider, the secret on standard input)")
    .argument("<name>", "workload-identity-root-key, audit-signing-key or oauth-client-secrets")
    .option("--provider <provider>", "for oauth-client-secrets: whose client secret is on standard input")
    .option("--wait", "carry the rotation on here until it finishes (agents must acknowledge)")
    .addOption(dataDir())
    .action(async (name: string, options: { provider?: string; wait?: boolean; dataDir?: string }) => {
      const key = secretKeyByName(name);
      let clientSecrets: Record<string, string> | undefined;
      if (key === "oauthClientSecrets") {
        if (!options.provider) throw new Error("--provider is required for oauth-client-secrets");
        const secret = await readStandardInput();
        if (!secret) throw new Error("pipe the client secret on standard input");
        clientSecrets = { [options.provider]: secret };
      }
      const context = systemContext("cli");
      const rotation = await withRuntime(environment(options), async (runtime) => {
        await runtime.rotation.start(key, { trigger: "cli", clientSecrets }, context);
        for (;;) {
          const advanced = await runtime.rotation.advance(key, context);
          if (advanced?.status !== "in_progress" || !options.wait) return advanced;
          await new Promise((wait) => setTimeout(wait, 2_000));
        }
      });
      if (rotation) process.stdout.write(summary(rotation));
    });

  command
    .command("abort")
    .description("abandon the rotation under way (before finishSecret); agents drop the pending key")
    .argument("<name>", "the secret")
    .addOption(dataDir())
    .action(async (name: string, options: { dataDir?: string }) => {
      const key = secretKeyByName(name);
      const rotation = await withRuntime(environment(options), (runtime) =>
        runtime.rotation.abort(key, systemContext("cli")),
      );
      process.stdout.write(summary(rotation));
    });
}
