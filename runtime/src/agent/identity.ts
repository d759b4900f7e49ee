import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { z } from "zod";
import { idPatterns } from "../domain/ids";
import { decodeAgentSecret } from "../identity/agent-keys";
import type { AgentIdentity } from "./signed-fetch";

/**
 * The agent's identity on disk: who it is and the derived key it signs with. Like an SSH private key
 * it is written with mode 0600 (in a 0700 directory) and refused when others can read it.
 */
const identitySchema = z.object({
  version: z.literal(1),
  url: z.url(),
  agent_id: z.string().regex(idPatterns.agent),
  workload_identity_secret: z.string().min(1),
  name: z.string(),
  region: z.string(),
  tags: z.array(z.string()),
  registered_at: z.string(),
});

export type AgentIdentityFile = z.infer<typeof identitySchema>;

export class IdentityFileError extends Error {
  override name = "IdentityFileError";
}

export function defaultIdentityPath(): string {
  return join(homedir(), ".config", "hybrid-cicd", "agent.json");
}

/** Writes the identity atomically with mode 0600; refuses to replace an existing one unless `force`. */
export async function writeIdentity(
  path: string,
  identity: AgentIdentityFile,
  options: { force?: boolean } = {},
): Promise<void> {
  if (!options.force && (await exists(path))) {
    throw new IdentityFileError(
      `${path} already holds an agent identity; use another --identity file, or --force to replace it`,
    );
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  const file = await open(temporary, "wx", 0o600);
  try {
    await file.writeFile(`${JSON.stringify(identitySchema.parse(identity), null, 2)}\n`);
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    // The umask cannot widen it, but an odd one could have narrowed it: say exactly 0600.
    await chmod(temporary, 0o600);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

export async function readIdentity(path: string): Promise<AgentIdentityFile> {
  let mode: number;
  try {
    mode = (await stat(path)).mode & 0o777;
  } catch {
    throw new IdentityFileError(
      `no agent identity at ${path}: register first (hybrid-cicd agent register ...) or pass --identity`,
    );
  }
  if ((mode & 0o077) !== 0) {
    throw new IdentityFileError(
      `${path} is accessible by other users (mode ${mode.toString(8).padStart(4, "0")}): run chmod 600 ${path}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, "utf8"));
  } catch {
    throw new IdentityFileError(`${path} is not an agent identity file (not JSON)`);
  }
  const result = identitySchema.safeParse(parsed);
  if (!result.success) throw new IdentityFileError(`${path} is not a valid agent identity file`);
  return result.data;
}

/** The id and decoded key the signer needs. */
export function signingIdentity(identity: AgentIdentityFile): AgentIdentity {
  return { agentId: identity.agent_id, key: decodeAgentSecret(identity.workload_identity_secret) };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
