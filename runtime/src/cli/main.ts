import { resolve } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { ConfigurationError, loadEnv } from "../config/env";
import { roles } from "../identity/permissions";
import { JavaMissingError } from "../local/dynamodb-local";
import { createLogger } from "../logger";
import { version } from "../version";
import { registerAgentCommands } from "./agent";
import { createSigninLink, createToken, start } from "./commands";
import { parseDuration } from "./duration";
import { registerOAuthSecretCommand } from "./oauth-secret-command";
import { registerReportCommands } from "./report";
import { registerSecretsCommands } from "./secrets-command";
import { registerVerifyCommand } from "./verify";

/** Runs the `hybrid-cicd` command line; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command("hybrid-cicd")
    .description("Hybrid CI/CD control plane: local server, tokens, sign-in links")
    .version(version)
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });

  const dataDirOption = () =>
    new Option("--data-dir <dir>", "data directory (env HYBRID_CICD_DATA_DIR, default .data)");
  const duration = (value: string) => {
    try {
      return parseDuration(value);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };

  program
    .command("start")
    .description("run the control plane locally (API at /, console at /console)")
    .option("--port <port>", "port (env PORT, default 8000)")
    .option("--host <host>", "address to listen on (env HOST, default 127.0.0.1)")
    .addOption(dataDirOption())
    .action(async (options: { port?: string; host?: string; dataDir?: string }) => {
      await start(environment(options));
    });

  program
    .command("token")
    .description("API tokens")
    .command("create")
    .description("create an API token (printed once; use it as `Authorization: Bearer <token>`)")
    .addOption(new Option("--role <role>", "role of the token").choices(roles).makeOptionMandatory())
    .option("--name <name>", "a name to recognise it by", "cli")
    .option("--ttl <duration>", "lifetime, e.g. 30d, 12h", duration, 30 * 86400)
    .addOption(dataDirOption())
    .action(
      async (options: { role: (typeof roles)[number]; name: string; ttl: number; dataDir?: string }) => {
        await createToken(environment(options), options);
      },
    );

  program
    .command("signin-link")
    .description("print a one-time, short-lived URL that signs the browser in as admin (this machine only)")
    .addOption(dataDirOption())
    .action(async (options: { dataDir?: string }) => {
      await createSigninLink(environment(options));
    });

  registerAgentCommands(program);
  registerOAuthSecretCommand(program);
  registerSecretsCommands(program);
  registerVerifyCommand(program);
  registerReportCommands(program);

  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof Error && "exitCode" in error && "code" in error) {
      // commander already printed usage or help
      return (error as { exitCode: number }).exitCode;
    }
    if (error instanceof JavaMissingError || error instanceof ConfigurationError) {
      process.stderr.write(`hybrid-cicd: ${error.message}\n`);
      return 1;
    }
    createLogger({ name: "hybrid-cicd-cli" }).error({ err: error }, "command failed");
    process.stderr.write(`hybrid-cicd: ${(error as Error).message}\n`);
    return 1;
  }
}

/** Flags override the environment; the environment is validated once, here. */
function environment(options: { port?: string; host?: string; dataDir?: string }) {
  return loadEnv({
    ...process.env,
    ...(options.port !== undefined && { PORT: options.port }),
    ...(options.host !== undefined && { HOST: options.host }),
    ...(options.dataDir !== undefined && { HYBRID_CICD_DATA_DIR: resolve(options.dataDir) }),
  });
}
