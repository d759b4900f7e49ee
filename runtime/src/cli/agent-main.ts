import { Command } from "commander";
import { ConfigurationError } from "../config/env";
import { version } from "../version";
import { registerAgentCommands } from "./agent";

/**
 * The reference agent on its own: `hybrid-cicd-agent agent register|run`, the same commands as the full
 * CLI's `hybrid-cicd agent ...`. This is the entry of the single-file download
 * (docs/decisions/113-installable-agent.md): it pulls in no local server, database or reports.
 */
export async function agentMain(argv: string[]): Promise<number> {
  const program = new Command("hybrid-cicd-agent")
    .description("Hybrid CI/CD reference agent: register this machine, then run jobs")
    .version(version)
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });
  registerAgentCommands(program);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof Error && "exitCode" in error && "code" in error) {
      // commander already printed usage or help
      return (error as { exitCode: number }).exitCode;
    }
    const message = error instanceof ConfigurationError ? error.message : (error as Error).message;
    process.stderr.write(`hybrid-cicd-agent: ${message}\n`);
    return 1;
  }
}
