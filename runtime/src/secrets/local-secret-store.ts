import { createCipheriv, createDecipheriv, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { link, mkdir, open, readFile, rename, stat, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import type { SecretStore, SecretVersion, StagingLabel } from "./secret-store";

/**
 * The secret store of local mode: every secret in one file under the data dir, each value encrypted with
 * AES-256-GCM under a key kept next to it (mode 0600). It follows Secrets Manager's model of versions and
 * staging labels, so rotation code runs the same against it and against AWS.
 *
 * The CLI may change secrets while the server runs, so every change happens under an exclusive lock file
 * and starts from the file as it is on disk; readers never lock (the file is replaced atomically).
 */

export class SecretNotFoundError extends Error {
  override name = "SecretNotFoundError";
  readonly status = 404;
}

/** The same version id with another value (Secrets Manager: ResourceExistsException). */
export class SecretVersionConflictError extends Error {
  override name = "SecretVersionConflictError";
  readonly status = 409;
}

/** A call Secrets Manager would refuse, e.g. removing AWSCURRENT or a malformed version id. */
export class InvalidSecretRequestError extends Error {
  override name = "InvalidSecretRequestError";
  readonly status = 400;
}

/**
 * The store is busy: Secrets Manager throttled the call, or another process held the local store's lock
 * for too long. Nothing changed; the call can be retried.
 */
export class SecretStoreBusyError extends Error {
  override name = "SecretStoreBusyError";
  readonly status = 503;
}

/** The key file, the secrets file or a ciphertext is not what this store wrote. */
export class SecretStoreIntegrityError extends Error {
  override name = "SecretStoreIntegrityError";
  readonly status = 500;
}

export interface LocalSecretStoreOptions {
  /** A lock older than this is presumed left by a crashed process. @default 10_000 */
  staleLockMs?: number;
  /** How long a change waits for the lock. @default 15_000 */
  lockTimeoutMs?: number;
  /** Versions kept per secret; labelled versions are never dropped. @default 10 */
  maxVersions?: number;
}

const fileFormat = 1;
const keyBytes = 32;
const ivBytes = 12;
const aadContext = "hybrid-cicd-local-secret/v1";
/** Secrets Manager's ClientRequestToken limits, so ids that work here also work on AWS. */
const versionIdPattern = /^[A-Za-z0-9_-]{32,64}$/;
const maxValueBytes = 65_536;

interface StoredVersion {
  versionId: string;
  createdAt: string;
  stages: StagingLabel[];
  iv: string;
  ciphertext: string;
  tag: string;
}

interface StoredSecret {
  description?: string;
  createdAt: string;
  /** Oldest first. */
  versions: StoredVersion[];
}

interface SecretsFile {
  format: typeof fileFormat;
  secrets: Record<string, StoredSecret>;
}

export class LocalSecretStore implements SecretStore {
  readonly file: string;
  private readonly lockFile: string;
  private readonly staleLockMs: number;
  private readonly lockTimeoutMs: number;
  private readonly maxVersions: number;
  /** Serialises this instance's changes; other processes are kept out by the lock file. */
  private queue: Promise<unknown> = Promise.resolve();
  private cache: { stamp: string; document: SecretsFile } | undefined;

  private constructor(
    readonly dataDir: string,
    private readonly key: Buffer,
    options: LocalSecretStoreOptions,
  ) {
    this.file = join(dataDir, "secrets.enc.json");
    this.lockFile = `${this.file}.lock`;
    this.staleLockMs = options.staleLockMs ?? 10_000;
    this.lockTimeoutMs = options.lockTimeoutMs ?? 15_000;
    this.maxVersions = options.maxVersions ?? 10;
  }

  /** Opens the store in `dataDir`, creating the directory and the key on first use. */
  static async open(dataDir: string, options: LocalSecretStoreOptions = {}): Promise<LocalSecretStore> {
    const dir = resolve(dataDir);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const key = await loadOrCreateKey(join(dir, "secrets.key"));
    const store = new LocalSecretStore(dir, key, options);
    await store.read(); // a corrupt file should stop start-up, not the first request
    return store;
  }

  async getSecretValue(
    secretId: string,
    stage: StagingLabel = "AWSCURRENT",
  ): Promise<SecretVersion | undefined> {
    const secret = (await this.read()).secrets[secretId];
    const version = secret?.versions.find((candidate) => candidate.stages.includes(stage));
    return version && this.reveal(secretId, version);
  }

  async getSecretVersion(secretId: string, versionId: string): Promise<SecretVersion | undefined> {
    const secret = (await this.read()).secrets[secretId];
    const version = secret?.versions.find((candidate) => candidate.versionId === versionId);
    return version && this.reveal(secretId, version);
  }

  async listVersions(secretId: string): Promise<SecretVersion[]> {
    const secret = (await this.read()).secrets[secretId];
    return (secret?.versions ?? []).map((version) => this.reveal(secretId, version)).reverse();
  }

  async createSecret(secretId: string, description?: string): Promise<void> {
    await this.mutate((document) => {
      document.secrets[secretId] ??= {
        ...(description === undefined ? {} : { description }),
        createdAt: new Date().toISOString(),
        versions: [],
      };
    });
  }

  async ensureSecret(secretId: string, generate: () => string, description?: string): Promise<SecretVersion> {
    const existing = await this.getSecretValue(secretId);
    if (existing) return existing;
    return this.mutate((document) => {
      const secret: StoredSecret = document.secrets[secretId] ?? {
        ...(description === undefined ? {} : { description }),
        createdAt: new Date().toISOString(),
        versions: [],
      };
      document.secrets[secretId] = secret;
      const current = secret.versions.find((version) => version.stages.includes("AWSCURRENT"));
      if (current) return this.reveal(secretId, current);
      const value = generate();
      assertValue(value);
      const version = this.seal(secretId, randomUUID(), value);
      this.addVersion(secret, version, ["AWSCURRENT"]);
      return this.reveal(secretId, version);
    });
  }

  async putSecretValue(
    secretId: string,
    versionId: string,
    value: string,
    stages: readonly StagingLabel[],
  ): Promise<void> {
    assertVersionId(versionId);
    assertValue(value);
    await this.mutate((document) => {
      const secret = requireSecret(document, secretId);
      const existing = secret.versions.find((version) => version.versionId === versionId);
      if (existing) {
        if (sameText(this.reveal(secretId, existing).value, value)) return;
        throw new SecretVersionConflictError(
          `version ${versionId} of ${secretId} already holds another value`,
        );
      }
      // Like PutSecretValue without VersionStages: the new version becomes AWSCURRENT.
      this.addVersion(
        secret,
        this.seal(secretId, versionId, value),
        stages.length > 0 ? stages : ["AWSCURRENT"],
      );
    });
  }

  async updateSecretVersionStage(secretId: string, stage: StagingLabel, versionId: string): Promise<void> {
    await this.mutate((document) => {
      const secret = requireSecret(document, secretId);
      const target = secret.versions.find((version) => version.versionId === versionId);
      if (!target) throw new SecretNotFoundError(`${secretId} has no version ${versionId}`);
      moveLabel(secret, stage, target);
      this.prune(secret);
    });
  }

  async removeSecretVersionStage(secretId: string, stage: StagingLabel): Promise<void> {
    if (stage === "AWSCURRENT") {
      throw new InvalidSecretRequestError("AWSCURRENT can only be moved to another version, never removed");
    }
    await this.mutate((document) => {
      const secret = document.secrets[secretId];
      const holder = secret?.versions.find((version) => version.stages.includes(stage));
      if (!secret || !holder) return;
      holder.stages = holder.stages.filter((label) => label !== stage);
      this.prune(secret);
    });
  }

  private addVersion(secret: StoredSecret, version: StoredVersion, stages: readonly StagingLabel[]): void {
    secret.versions.push(version);
    for (const stage of new Set(stages)) moveLabel(secret, stage, version);
    this.prune(secret);
  }

  /** Drops the oldest unlabelled versions beyond the limit, as Secrets Manager drops deprecated ones. */
  private prune(secret: StoredSecret): void {
    let excess = secret.versions.length - this.maxVersions;
    secret.versions = secret.versions.filter((version) => {
      if (excess <= 0 || version.stages.length > 0) return true;
      excess--;
      return false;
    });
  }

  private seal(secretId: string, versionId: string, value: string): StoredVersion {
    const iv = randomBytes(ivBytes);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    cipher.setAAD(additionalData(secretId, versionId));
    const ciphertext = Buffer.concat([cipher.update(value, "utf8"), cipher.final()]);
    return {
      versionId,
      createdAt: new Date().toISOString(),
      stages: [],
      iv: iv.toString("base64"),
      ciphertext: ciphertext.toString("base64"),
      tag: cipher.getAuthTag().toString("base64"),
    };
  }

  private reveal(secretId: string, version: StoredVersion): SecretVersion {
    let value: string;
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.key, Buffer.from(version.iv, "base64"));
      decipher.setAAD(additionalData(secretId, version.versionId));
      decipher.setAuthTag(Buffer.from(version.tag, "base64"));
      value = Buffer.concat([
        decipher.update(Buffer.from(version.ciphertext, "base64")),
        decipher.final(),
      ]).toString("utf8");
    } catch {
      throw new SecretStoreIntegrityError(
        `version ${version.versionId} of ${secretId} in ${this.file} fails authentication: ` +
          "the file was altered or the key in secrets.key is not the one it was written with",
      );
    }
    return { versionId: version.versionId, value, stages: [...version.stages], createdAt: version.createdAt };
  }

  /** The file as it is on disk, parsed once per change of the file. */
  private async read(): Promise<SecretsFile> {
    let stamp: string;
    try {
      const info = await stat(this.file);
      stamp = `${info.ino}:${info.size}:${info.mtimeMs}`;
    } catch (error) {
      if (isErrno(error, "ENOENT")) return { format: fileFormat, secrets: {} };
      throw error;
    }
    if (this.cache?.stamp === stamp) return this.cache.document;
    const document = parseSecretsFile(await readFile(this.file, "utf8"), this.file);
    this.cache = { stamp, document };
    return document;
  }

  /** Runs `change` on a fresh copy of the file, under the lock, and writes the result atomically. */
  private mutate<T>(change: (document: SecretsFile) => T): Promise<T> {
    const run = async (): Promise<T> => {
      const release = await this.lock();
      try {
        this.cache = undefined;
        const document = structuredClone(await this.read());
        const result = change(document);
        await this.write(document);
        return result;
      } finally {
        await release();
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async write(document: SecretsFile): Promise<void> {
    const temporary = `${this.file}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
    const handle = await open(temporary, "wx", 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(document, null, 2)}\n`, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(temporary, this.file);
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw error;
    }
    this.cache = undefined;
  }

  /** An exclusive lock file (O_EXCL); one left by a crashed process is broken after `staleLockMs`. */
  private async lock(): Promise<() => Promise<void>> {
    const deadline = Date.now() + this.lockTimeoutMs;
    const owner = `${JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString() })}\n`;
    for (let delay = 5; ; delay = Math.min(delay * 2, 50)) {
      try {
        const handle = await open(this.lockFile, "wx", 0o600);
        await handle.writeFile(owner);
        await handle.close();
        return () => unlink(this.lockFile).catch(() => undefined);
      } catch (error) {
        if (!isErrno(error, "EEXIST")) throw error;
      }
      await this.breakStaleLock();
      if (Date.now() > deadline) {
        throw new SecretStoreBusyError(
          `could not lock ${this.lockFile} within ${this.lockTimeoutMs} ms: another hybrid-cicd process holds it ` +
            "(delete the file if no such process is running)",
        );
      }
      await new Promise((wait) => setTimeout(wait, delay + Math.random() * delay));
    }
  }

  private async breakStaleLock(): Promise<void> {
    let seen: Awaited<ReturnType<typeof stat>>;
    try {
      seen = await stat(this.lockFile);
    } catch {
      return;
    }
    if (Date.now() - seen.mtimeMs < this.staleLockMs) return;
    // Rename rather than unlink, then check it was the stale file: another process may have broken the
    // same stale lock and taken a fresh one in between, and that one must survive.
    const aside = `${this.lockFile}.${process.pid}.${randomBytes(6).toString("hex")}.stale`;
    try {
      await rename(this.lockFile, aside);
    } catch {
      return;
    }
    const taken = await stat(aside);
    if (taken.ino !== seen.ino) await link(aside, this.lockFile).catch(() => undefined);
    await unlink(aside).catch(() => undefined);
  }
}

/** Labels move: one version per label. Moving AWSCURRENT labels the version it left AWSPREVIOUS. */
function moveLabel(secret: StoredSecret, stage: StagingLabel, target: StoredVersion): void {
  if (target.stages.includes(stage)) return;
  const holder = secret.versions.find((version) => version.stages.includes(stage));
  if (holder) holder.stages = holder.stages.filter((label) => label !== stage);
  target.stages.push(stage);
  if (stage === "AWSCURRENT" && holder) moveLabel(secret, "AWSPREVIOUS", holder);
}

function requireSecret(document: SecretsFile, secretId: string): StoredSecret {
  const secret = document.secrets[secretId];
  if (!secret) throw new SecretNotFoundError(`secret ${secretId} does not exist`);
  return secret;
}

function additionalData(secretId: string, versionId: string): Buffer {
  return Buffer.from(JSON.stringify([aadContext, secretId, versionId]), "utf8");
}

function assertVersionId(versionId: string): void {
  if (!versionIdPattern.test(versionId)) {
    throw new InvalidSecretRequestError(
      "a version id has 32 to 64 letters, digits, '-' or '_' (e.g. a UUID)",
    );
  }
}

function assertValue(value: string): void {
  if (Buffer.byteLength(value, "utf8") > maxValueBytes) {
    throw new InvalidSecretRequestError(`a secret value holds at most ${maxValueBytes} bytes`);
  }
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a, "utf8");
  const right = Buffer.from(b, "utf8");
  return left.length === right.length && timingSafeEqual(left, right);
}

function parseSecretsFile(text: string, file: string): SecretsFile {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw new SecretStoreIntegrityError(`${file} is not valid JSON`);
  }
  const candidate = document as Partial<SecretsFile> | null;
  if (
    candidate?.format !== fileFormat ||
    typeof candidate.secrets !== "object" ||
    candidate.secrets === null
  ) {
    throw new SecretStoreIntegrityError(`${file} is not a format-${fileFormat} secrets file`);
  }
  return candidate as SecretsFile;
}

/**
 * The 32-byte key, created on first use. It is written to a private temporary file and then linked into
 * place, so a concurrent first start never sees a half-written key, and exactly one key wins.
 */
async function loadOrCreateKey(keyFile: string): Promise<Buffer> {
  try {
    return await readKey(keyFile);
  } catch (error) {
    if (!isErrno(error, "ENOENT")) throw error;
  }
  const temporary = `${keyFile}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  const handle = await open(temporary, "wx", 0o600);
  try {
    await handle.writeFile(randomBytes(keyBytes));
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(temporary, keyFile);
  } catch (error) {
    if (!isErrno(error, "EEXIST")) throw error;
  } finally {
    await unlink(temporary);
  }
  return readKey(keyFile);
}

async function readKey(keyFile: string): Promise<Buffer> {
  const info = await stat(keyFile);
  if (process.platform !== "win32" && (info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, "0");
    throw new SecretStoreIntegrityError(
      `refusing to use ${keyFile}: it is readable or writable by group/others (mode ${mode}); run chmod 600 ${keyFile}`,
    );
  }
  const key = await readFile(keyFile);
  if (key.length !== keyBytes) {
    throw new SecretStoreIntegrityError(`${keyFile} holds ${key.length} bytes, not a ${keyBytes}-byte key`);
  }
  return key;
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
