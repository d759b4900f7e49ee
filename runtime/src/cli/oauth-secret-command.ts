import { resolve } from "node:path";
import { type Command, Option } from "commander";
import { loadEnv } from "../config/env";
import { providerIds, storeClientSecret } from "../identity/oauth-providers";
import { createSecretStore } from "../secrets";

async function readStandardInput(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString("utf8").trim();
}

/**
 * `hybrid-cicd oauth-secret set <provider>`: stores a sign-in provider's client secret in the secret
 * store the environment names (the local encrypted file, or Secrets Manager with
 * HYBRID_CICD_SECRET_STORE=aws). The secret is read from standard input, never from the command line
 * (shell history, process lists).
 */
export function registerOAuthSecretCommand(program: Command): void {
  program
    .command("oauth-secret")
    .description("sign-in provider client secrets")
    .command("set")
    .description("store a provider's OAuth client secret (read from standard input)")
    .addArgument(
      program
        .createArgument("<provider>", "the provider it belongs to")
        .choices(providerIds as unknown as string[]),
    )
    .addOption(new Option("--data-dir <dir>", "data directory (env HYBRID_CICD_DATA_DIR, default .data)"))
    .action(async (provider: (typeof providerIds)[number], options: { dataDir?: string }) => {
      const env = loadEnv({
        ...process.env,
        ...(options.dataDir !== undefined && { HYBRID_CICD_DATA_DIR: resolve(options.dataDir) }),
      });
      const secret = await readStandardInput();
      if (!secret)
        throw new Error("pipe the client secret on standard input, e.g. `pbpaste | hybrid-cicd ...`");
      const store = await createSecretStore(env);
      await storeClientSecret(store, env.HYBRID_CICD_SECRET_PREFIX, provider, secret);
      process.stderr.write(`Stored the ${provider} client secret (oauth-client-secrets, AWSCURRENT).\n`);
    });
}
