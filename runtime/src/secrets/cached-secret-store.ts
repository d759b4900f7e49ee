import type { SecretStore, SecretVersion, StagingLabel } from "./secret-store";

export interface CachedSecretStoreOptions {
  /** How long a read is reused. @default 5_000 */
  ttlMs?: number;
  now?: () => number;
}

/**
 * An in-process cache in front of a secret store, so a Lambda does not call Secrets Manager on every
 * request. Reads are reused for a short TTL; every write through this instance drops the secret's
 * entries, so a process sees its own changes at once and other processes' changes within the TTL.
 * Rotation is built for that delay: a new key is accepted before anyone is asked to use it, and an old
 * one stays accepted for a grace window far longer than the TTL.
 */
export class CachedSecretStore implements SecretStore {
  private readonly entries = new Map<string, { at: number; value: Promise<unknown> }>();
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(
    readonly inner: SecretStore,
    options: CachedSecretStoreOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 5_000;
    this.now = options.now ?? Date.now;
  }

  getSecretValue(secretId: string, stage: StagingLabel = "AWSCURRENT"): Promise<SecretVersion | undefined> {
    return this.cached(secretId, `stage:${stage}`, () => this.inner.getSecretValue(secretId, stage));
  }

  getSecretVersion(secretId: string, versionId: string): Promise<SecretVersion | undefined> {
    return this.cached(secretId, `version:${versionId}`, () =>
      this.inner.getSecretVersion(secretId, versionId),
    );
  }

  listVersions(secretId: string): Promise<SecretVersion[]> {
    return this.cached(secretId, "list", () => this.inner.listVersions(secretId));
  }

  async createSecret(secretId: string, description?: string): Promise<void> {
    await this.writing(secretId, () => this.inner.createSecret(secretId, description));
  }

  ensureSecret(secretId: string, generate: () => string, description?: string): Promise<SecretVersion> {
    return this.writing(secretId, () => this.inner.ensureSecret(secretId, generate, description));
  }

  putSecretValue(
    secretId: string,
    versionId: string,
    value: string,
    stages: readonly StagingLabel[],
  ): Promise<void> {
    return this.writing(secretId, () => this.inner.putSecretValue(secretId, versionId, value, stages));
  }

  updateSecretVersionStage(secretId: string, stage: StagingLabel, versionId: string): Promise<void> {
    return this.writing(secretId, () => this.inner.updateSecretVersionStage(secretId, stage, versionId));
  }

  removeSecretVersionStage(secretId: string, stage: StagingLabel): Promise<void> {
    return this.writing(secretId, () => this.inner.removeSecretVersionStage(secretId, stage));
  }

  get startRotation(): SecretStore["startRotation"] {
    const start = this.inner.startRotation?.bind(this.inner);
    return (
      start && ((secretId: string, token: string) => this.writing(secretId, () => start(secretId, token)))
    );
  }

  /** Forgets one secret (or everything): the next read goes to the store. */
  invalidate(secretId?: string): void {
    if (secretId === undefined) {
      this.entries.clear();
      return;
    }
    for (const key of this.entries.keys()) if (key.startsWith(`${secretId}\u0000`)) this.entries.delete(key);
  }

  private cached<T>(secretId: string, what: string, read: () => Promise<T>): Promise<T> {
    const key = `${secretId}\u0000${what}`;
    const hit = this.entries.get(key);
    if (hit && this.now() - hit.at < this.ttlMs) return hit.value as Promise<T>;
    const value = read();
    this.entries.set(key, { at: this.now(), value });
    // A failed read is not remembered: the next caller tries again.
    value.catch(() => {
      if (this.entries.get(key)?.value === value) this.entries.delete(key);
    });
    return value;
  }

  private async writing<T>(secretId: string, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } finally {
      this.invalidate(secretId);
    }
  }
}
