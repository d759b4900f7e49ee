import { randomBytes } from "node:crypto";
import { deriveAgentKey, encodeAgentSecret } from "../../identity/agent-keys";
import { secretId } from "../../secrets/catalog";
import type { SecretStore } from "../../secrets/secret-store";
import type { SecretRotationState } from "../../store/secret-rotations-repository";
import { DomainError, ServiceUnavailableError } from "../errors";

/** A new workload-identity root key: 32 random bytes, base64url. */
export function generateRootKey(): string {
  return randomBytes(32).toString("base64url");
}

/** How long the rotation state (lock, grace deadline) is reused between requests. */
const STATE_CACHE_MILLISECONDS = 5_000;

/**
 * Which root key version a verified signature's key came from. `retired`: AWSPREVIOUS after its grace
 * window; kept in the key ring only so the refusal can say the key was rotated.
 */
export type AgentKeyRole = "current" | "pending" | "previous" | "retired";

export interface AgentKeyRing {
  keys: Buffer[];
  roles: AgentKeyRole[];
  /** The rotation whose pending key an agent acknowledges by signing with it. */
  rotationId?: string;
}

/** What an agent is told about its keys in its own `config` and heartbeat replies. */
export type KeyRotationNotice =
  | { status: "pending"; rotation_id: string; version_id: string; workload_identity_secret: string }
  | {
      status: "promoted";
      version_id: string;
      previous_accepted_until: string | null;
      /** Only to an agent still signing with its previous key: the key it must switch to. */
      workload_identity_secret?: string;
    };

/** 401 for a signature made with a key retired by a rotation: re-fetch or re-enrol, do not retry. */
export class KeyRotatedError extends DomainError {
  override name = "KeyRotatedError";
  readonly status = 401;
  readonly slug = "key-rotated";
  readonly title = "The key that signed this request was rotated";
  constructor() {
    super(
      "the signature was made with a key derived from a retired workload-identity root key (its grace window ended); re-enrol the agent with a registration token",
    );
    this.headers["WWW-Authenticate"] = 'Signature realm="hybrid-cicd", alg="hmac-sha256"';
  }
}

interface RootKeys {
  current: { versionId: string; key: Buffer };
  pending?: { versionId: string; key: Buffer };
  previous?: { versionId: string; key: Buffer };
  previousAcceptedUntil?: number;
  /** The rotation that is offering AWSPENDING to agents (after its setSecret). */
  offering?: string;
}

/**
 * The workload-identity root key versions, from the secret store, and the agent keys derived from them.
 * Signatures verify with keys derived from AWSCURRENT, AWSPENDING (while a rotation is under way) and
 * AWSPREVIOUS until the grace window the last rotation set; new agents receive keys derived from
 * AWSCURRENT. Reads go through the runtime's short-TTL secret cache.
 */
export class WorkloadKeys {
  private stateCache?: { at: number; state: Promise<SecretRotationState | undefined> };

  constructor(
    private readonly secretStore: SecretStore,
    private readonly secretPrefix: string,
    private readonly now: () => number = Date.now,
    private readonly rotationState: () => Promise<SecretRotationState | undefined> = async () => undefined,
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

  private state(): Promise<SecretRotationState | undefined> {
    if (!this.stateCache || this.now() - this.stateCache.at >= STATE_CACHE_MILLISECONDS) {
      const state = this.rotationState();
      this.stateCache = { at: this.now(), state };
      state.catch(() => {
        if (this.stateCache?.state === state) this.stateCache = undefined;
      });
    }
    return this.stateCache.state;
  }

  /** Forgets the cached rotation state (this process just changed it). */
  forgetState(): void {
    this.stateCache = undefined;
  }

  private async rootKeys(): Promise<RootKeys> {
    const [current, pending, previous, state] = await Promise.all([
      this.secretStore.getSecretValue(this.secretId, "AWSCURRENT"),
      this.secretStore.getSecretValue(this.secretId, "AWSPENDING"),
      this.secretStore.getSecretValue(this.secretId, "AWSPREVIOUS"),
      this.state(),
    ]);
    if (!current) throw new ServiceUnavailableError("the workload identity root key is not available");
    const version = (found: { versionId: string; value: string } | undefined) =>
      found ? { versionId: found.versionId, key: Buffer.from(found.value, "base64url") } : undefined;
    const offering =
      pending && state?.active_set_at && state.active_version === pending.versionId
        ? state.active_rotation
        : undefined;
    return {
      current: version(current)!,
      pending: pending && pending.versionId !== current.versionId ? version(pending) : undefined,
      previous: version(previous),
      // Without a recorded deadline (e.g. a crash between moving AWSCURRENT and recording the finish),
      // AWSPREVIOUS stays accepted: never lock an agent out on missing bookkeeping.
      previousAcceptedUntil:
        previous && state?.previous_version_id === previous.versionId && state.previous_accepted_until
          ? Date.parse(state.previous_accepted_until)
          : undefined,
      offering,
    };
  }

  /** The key an agent signs with today. */
  async currentAgentKey(agentId: string, keyEpoch: number): Promise<Buffer> {
    const { current } = await this.rootKeys();
    return deriveAgentKey(current.key, agentId, keyEpoch);
  }

  /** Every key a signature from this agent may verify with (current first). */
  async acceptedAgentKeys(agentId: string, keyEpoch: number): Promise<Buffer[]> {
    return (await this.keyRing(agentId, keyEpoch)).keys;
  }

  /** The agent's keys with the root key version each comes from, in the order they are tried. */
  async keyRing(agentId: string, keyEpoch: number): Promise<AgentKeyRing> {
    const root = await this.rootKeys();
    const ring: AgentKeyRing = { keys: [], roles: [], rotationId: root.offering };
    const add = (role: AgentKeyRole, key: Buffer) => {
      ring.keys.push(deriveAgentKey(key, agentId, keyEpoch));
      ring.roles.push(role);
    };
    add("current", root.current.key);
    if (root.pending) add("pending", root.pending.key);
    if (root.previous) {
      const retired = root.previousAcceptedUntil !== undefined && this.now() >= root.previousAcceptedUntil;
      add(retired ? "retired" : "previous", root.previous.key);
    }
    return ring;
  }

  /**
   * The `key_rotation` member of an agent's replies: its pending key while a rotation offers one; after
   * a rotation, until the grace window ends, word that the pending key is now current (with the key
   * itself only for an agent that still signed with its previous one). Undefined otherwise, which tells
   * an agent holding a pending key that the rotation was aborted.
   */
  async rotationNotice(
    agentId: string,
    keyEpoch: number,
    signedWith: AgentKeyRole | undefined,
  ): Promise<KeyRotationNotice | undefined> {
    const root = await this.rootKeys();
    if (root.pending && root.offering) {
      return {
        status: "pending",
        rotation_id: root.offering,
        version_id: root.pending.versionId,
        workload_identity_secret: encodeAgentSecret(deriveAgentKey(root.pending.key, agentId, keyEpoch)),
      };
    }
    const inGrace =
      root.previous !== undefined &&
      root.previousAcceptedUntil !== undefined &&
      this.now() < root.previousAcceptedUntil;
    if (!inGrace && signedWith !== "previous") return undefined;
    return {
      status: "promoted",
      version_id: root.current.versionId,
      previous_accepted_until:
        root.previousAcceptedUntil === undefined ? null : new Date(root.previousAcceptedUntil).toISOString(),
      ...(signedWith === "previous"
        ? { workload_identity_secret: encodeAgentSecret(deriveAgentKey(root.current.key, agentId, keyEpoch)) }
        : {}),
    };
  }
}
