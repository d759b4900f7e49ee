import { randomBytes } from "node:crypto";
import { deriveAgentKey } from "../../identity/agent-keys";
import { secretId } from "../../secrets/catalog";
import type { SecretStore } from "../../secrets/secret-store";
import { ServiceUnavailableError } from "../errors";

/** A new workload-identity root key: 32 random bytes, base64url. */
export function generateRootKey(): string {
  return randomBytes(32).toString("base64url");
}

const CACHE_MILLISECONDS = 30_000;

/**
 * The workload-identity root key, from the secret store, and the agent keys derived from it. Versions
 * labelled AWSCURRENT and AWSPREVIOUS are both accepted for verification, so a rotation never locks an
 * agent out; new agents receive keys derived from AWSCURRENT.
 */
export class WorkloadKeys {
  private cache?: { at: number; current: Buffer; previous?: Buffer };

  constructor(
    private readonly secretStore: SecretStore,
    private readonly secretPrefix: string,
    private readonly now: () => number = Date.now,
  ) {}

  get secretId(): string {
    return secretId(this.secretPrefix, "workloadIdentityRootKey");
  }

  /** Creates the root key on first start (idempotent, safe under concurrency). */
  async ensureRootKey(): Promise<void> {
    await this.secretStore.ensureSecret(
      this.secretId,
      generateRootKey,
      "Root key from which every agent's HMAC key is derived",
    );
  }

  private async rootKeys(): Promise<{ current: Buffer; previous?: Buffer }> {
    if (this.cache && this.now() - this.cache.at < CACHE_MILLISECONDS) return this.cache;
    const [current, previous] = await Promise.all([
      this.secretStore.getSecretValue(this.secretId, "AWSCURRENT"),
      this.secretStore.getSecretValue(this.secretId, "AWSPREVIOUS"),
    ]);
    if (!current) throw new ServiceUnavailableError("the workload identity root key is not available");
    this.cache = {
      at: this.now(),
      current: Buffer.from(current.value, "base64url"),
      previous: previous ? Buffer.from(previous.value, "base64url") : undefined,
    };
    return this.cache;
  }

  /** The key an agent signs with today. */
  async currentAgentKey(agentId: string, keyEpoch: number): Promise<Buffer> {
    const { current } = await this.rootKeys();
    return deriveAgentKey(current, agentId, keyEpoch);
  }

  /** Every key a signature from this agent may verify with (current first). */
  async acceptedAgentKeys(agentId: string, keyEpoch: number): Promise<Buffer[]> {
    const { current, previous } = await this.rootKeys();
    const keys = [deriveAgentKey(current, agentId, keyEpoch)];
    if (previous) keys.push(deriveAgentKey(previous, agentId, keyEpoch));
    return keys;
  }
}
