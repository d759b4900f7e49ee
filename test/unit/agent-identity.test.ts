import { chmod, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type AgentIdentityFile,
  IdentityFileError,
  readIdentity,
  signingIdentity,
  writeIdentity,
} from "../../runtime/src/agent/identity";

const identity: AgentIdentityFile = {
  version: 1,
  url: "http://127.0.0.1:8000",
  agent_id: `agt_${"a".repeat(26)}`,
  workload_identity_secret: Buffer.alloc(32, 7).toString("base64url"),
  name: "builder",
  region: "eu-west-1",
  tags: ["linux"],
  registered_at: "2030-01-01T00:00:00.000Z",
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "agent-identity-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe("the agent identity file", () => {
  it("is written with mode 0600 in a 0700 directory and read back", async () => {
    const path = join(dir, "nested", "agent.json");
    await writeIdentity(path, identity);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, "nested"))).mode & 0o777).toBe(0o700);
    expect(await readIdentity(path)).toEqual(identity);
    expect(signingIdentity(identity)).toEqual({ agentId: identity.agent_id, key: Buffer.alloc(32, 7) });
  });

  it("is not replaced unless asked to", async () => {
    const path = join(dir, "agent.json");
    await writeIdentity(path, identity);
    await expect(writeIdentity(path, { ...identity, name: "other" })).rejects.toThrow(/already holds/);
    await writeIdentity(path, { ...identity, name: "other" }, { force: true });
    expect((await readIdentity(path)).name).toBe("other");
  });

  it("is refused when other users can read it, as ssh refuses a private key", async () => {
    const path = join(dir, "agent.json");
    await writeIdentity(path, identity);
    await chmod(path, 0o644);
    await expect(readIdentity(path)).rejects.toThrow(/chmod 600/);
  });

  it("says what to do when it is missing or not an identity", async () => {
    await expect(readIdentity(join(dir, "absent.json"))).rejects.toThrow(/register first/);
    const junk = join(dir, "junk.json");
    await writeFile(junk, "{}", { mode: 0o600 });
    await expect(readIdentity(junk)).rejects.toBeInstanceOf(IdentityFileError);
  });
});
