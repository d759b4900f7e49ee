import { decodeAgentSecret } from "../identity/agent-keys";
import type { AgentIdentity } from "./signed-fetch";

/** The `key_rotation` member of config and heartbeat replies (server: domain/agents/workload-keys.ts). */
export interface KeyRotationNotice {
  status: "pending" | "promoted";
  version_id: string;
  rotation_id?: string;
  previous_accepted_until?: string | null;
  workload_identity_secret?: string;
}

/** How long before the grace window ends the agent stops sending its retiring key. */
const RETIRE_MARGIN_MS = 5_000;

/**
 * The agent's keys through a root key rotation, switched in place (no restart). While a rotation offers
 * a pending key, every request carries two signatures: the pending key's first (the server counts it as
 * the acknowledgement once it knows the key) and the current key's second (accepted by a server that
 * has not seen the pending key yet). Once promoted, the new key signs first and the old one second,
 * until shortly before the grace window ends. A reply without a notice while a key is pending means the
 * rotation was aborted: the pending key is dropped.
 *
 * It is the `AgentIdentity` the client signs with, so a switch takes effect on the next request.
 */
export class AgentKeyRing implements AgentIdentity {
  private stable: Uint8Array;
  private pending?: { versionId: string; key: Uint8Array };
  private retiring?: { key: Uint8Array; until: number };

  constructor(
    readonly agentId: string,
    key: Uint8Array,
    /** Told the key to keep once a new one is current (e.g. to rewrite the identity file). */
    private readonly onPromoted: (secret: string) => void | Promise<void> = () => undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.stable = key;
  }

  get key(): Uint8Array {
    return this.pending?.key ?? this.stable;
  }

  get alsoSignWith(): Uint8Array | undefined {
    if (this.pending) return this.stable;
    if (this.retiring && this.now() < this.retiring.until - RETIRE_MARGIN_MS) return this.retiring.key;
    return undefined;
  }

  /** The version id of the pending key held, if any (for logs and tests). */
  get pendingVersion(): string | undefined {
    return this.pending?.versionId;
  }

  /** Applies a reply's notice; returns what changed. */
  async learn(
    notice: KeyRotationNotice | undefined | null,
  ): Promise<"pending" | "promoted" | "dropped" | undefined> {
    if (!notice) {
      if (!this.pending) return undefined;
      this.pending = undefined;
      return "dropped";
    }
    if (notice.status === "pending") {
      if (this.pending?.versionId === notice.version_id || !notice.workload_identity_secret) return undefined;
      this.pending = {
        versionId: notice.version_id,
        key: decodeAgentSecret(notice.workload_identity_secret),
      };
      return "pending";
    }
    let promoted: Uint8Array | undefined;
    if (this.pending?.versionId === notice.version_id) promoted = this.pending.key;
    else if (notice.workload_identity_secret) promoted = decodeAgentSecret(notice.workload_identity_secret);
    this.pending = undefined;
    if (!promoted || Buffer.from(promoted).equals(Buffer.from(this.stable))) return undefined;
    const until = notice.previous_accepted_until ? Date.parse(notice.previous_accepted_until) : this.now();
    this.retiring = { key: this.stable, until };
    this.stable = promoted;
    await this.onPromoted(Buffer.from(promoted).toString("base64url"));
    return "promoted";
  }
}
