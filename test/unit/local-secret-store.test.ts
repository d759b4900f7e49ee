import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chmod, mkdtemp, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import {
  InvalidSecretRequestError,
  LocalSecretStore,
  SecretNotFoundError,
  SecretStoreIntegrityError,
  SecretVersionConflictError,
} from "../../runtime/src/secrets/local-secret-store";
import { type StagingLabel, stagingLabels } from "../../runtime/src/secrets/secret-store";

const repositoryRoot = join(import.meta.dirname, "../..");
const storeModule = join(repositoryRoot, "runtime/src/secrets/local-secret-store.ts");

const dirs: string[] = [];
async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "local-secrets-"));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A store holding secret "app/key" with one current version "v1…" = "first". */
async function storeWithCurrent(): Promise<{ store: LocalSecretStore; dir: string; v1: string }> {
  const dir = await dataDir();
  const store = await LocalSecretStore.open(dir);
  const v1 = (await store.ensureSecret("app/key", () => "first")).versionId;
  return { store, dir, v1 };
}

async function labelsByVersion(store: LocalSecretStore, secretId: string): Promise<Record<string, string[]>> {
  const versions = await store.listVersions(secretId);
  return Object.fromEntries(versions.map((version) => [version.versionId, [...version.stages].sort()]));
}

describe("LocalSecretStore versions and staging labels", () => {
  it("creates the first version as AWSCURRENT and returns it on later calls without generating again", async () => {
    const store = await LocalSecretStore.open(await dataDir());
    let generated = 0;
    const generate = () => `value-${++generated}`;

    const created = await store.ensureSecret("app/key", generate, "a test key");
    const again = await store.ensureSecret("app/key", generate);

    expect(created).toMatchObject({ value: "value-1", stages: ["AWSCURRENT"] });
    expect(again).toEqual(created);
    expect(generated).toBe(1);
    expect(await store.getSecretValue("app/key")).toEqual(created);
  });

  it("gives racing ensureSecret callers on one data dir the same current version", async () => {
    const dir = await dataDir();
    const stores = await Promise.all([LocalSecretStore.open(dir), LocalSecretStore.open(dir)]);

    const results = await Promise.all(
      stores.flatMap((store, i) =>
        [0, 1, 2].map((j) => store.ensureSecret("app/key", () => `value-${i}-${j}`)),
      ),
    );

    expect(new Set(results.map((result) => result.versionId)).size).toBe(1);
    expect(await stores[0]!.listVersions("app/key")).toHaveLength(1);
  });

  it("adds an AWSPENDING version without moving AWSCURRENT", async () => {
    const { store, v1 } = await storeWithCurrent();
    const v2 = randomUUID();

    await store.putSecretValue("app/key", v2, "second", ["AWSPENDING"]);

    expect((await store.getSecretValue("app/key"))?.value).toBe("first");
    expect((await store.getSecretValue("app/key", "AWSPENDING"))?.value).toBe("second");
    expect(await labelsByVersion(store, "app/key")).toEqual({ [v1]: ["AWSCURRENT"], [v2]: ["AWSPENDING"] });
  });

  it("labels the version AWSCURRENT leaves AWSPREVIOUS, taking AWSPREVIOUS from the one before", async () => {
    const { store, v1 } = await storeWithCurrent();
    const v2 = randomUUID();
    const v3 = randomUUID();
    await store.putSecretValue("app/key", v2, "second", ["AWSPENDING"]);
    await store.updateSecretVersionStage("app/key", "AWSCURRENT", v2);
    await store.removeSecretVersionStage("app/key", "AWSPENDING");
    await store.putSecretValue("app/key", v3, "third", ["AWSPENDING"]);

    await store.updateSecretVersionStage("app/key", "AWSCURRENT", v3);

    expect(await labelsByVersion(store, "app/key")).toEqual({
      [v1]: [],
      [v2]: ["AWSPREVIOUS"],
      [v3]: ["AWSCURRENT", "AWSPENDING"],
    });
  });

  it("makes a version put without labels AWSCURRENT, as PutSecretValue without VersionStages does", async () => {
    const { store, v1 } = await storeWithCurrent();
    const v2 = randomUUID();

    await store.putSecretValue("app/key", v2, "second", []);

    expect(await labelsByVersion(store, "app/key")).toEqual({ [v1]: ["AWSPREVIOUS"], [v2]: ["AWSCURRENT"] });
  });

  it("ignores a repeated put of the same version and value, and refuses the same version with another value", async () => {
    const { store } = await storeWithCurrent();
    const v2 = randomUUID();
    await store.putSecretValue("app/key", v2, "second", ["AWSPENDING"]);
    const before = await store.listVersions("app/key");

    await store.putSecretValue("app/key", v2, "second", ["AWSCURRENT"]);
    const conflicting = store.putSecretValue("app/key", v2, "other", ["AWSPENDING"]);

    await expect(conflicting).rejects.toThrow(SecretVersionConflictError);
    expect(await store.listVersions("app/key")).toEqual(before);
  });

  it("treats moving a label to the version that holds it as done", async () => {
    const { store, v1 } = await storeWithCurrent();
    const before = await store.listVersions("app/key");

    await store.updateSecretVersionStage("app/key", "AWSCURRENT", v1);

    expect(await store.listVersions("app/key")).toEqual(before);
  });

  it("removes AWSPENDING, but refuses to remove AWSCURRENT", async () => {
    const { store, v1 } = await storeWithCurrent();
    await store.putSecretValue("app/key", randomUUID(), "second", ["AWSPENDING"]);

    await store.removeSecretVersionStage("app/key", "AWSPENDING");
    await store.removeSecretVersionStage("app/key", "AWSPENDING");
    const removingCurrent = store.removeSecretVersionStage("app/key", "AWSCURRENT");

    await expect(removingCurrent).rejects.toThrow(InvalidSecretRequestError);
    expect(await store.getSecretValue("app/key", "AWSPENDING")).toBeUndefined();
    expect((await store.getSecretValue("app/key"))?.versionId).toBe(v1);
  });

  it("reports a missing secret or version, and answers reads of them with undefined", async () => {
    const { store } = await storeWithCurrent();

    await expect(store.putSecretValue("app/absent", randomUUID(), "x", ["AWSCURRENT"])).rejects.toThrow(
      SecretNotFoundError,
    );
    await expect(store.updateSecretVersionStage("app/key", "AWSCURRENT", randomUUID())).rejects.toThrow(
      SecretNotFoundError,
    );
    expect(await store.getSecretValue("app/absent")).toBeUndefined();
    expect(await store.getSecretValue("app/key", "AWSPREVIOUS")).toBeUndefined();
    expect(await store.getSecretVersion("app/key", randomUUID())).toBeUndefined();
    expect(await store.listVersions("app/absent")).toEqual([]);
  });

  it("refuses version ids that Secrets Manager would refuse as a ClientRequestToken", async () => {
    const { store } = await storeWithCurrent();

    await expect(store.putSecretValue("app/key", "too-short", "x", ["AWSPENDING"])).rejects.toThrow(
      InvalidSecretRequestError,
    );
  });

  it("keeps at most maxVersions versions, dropping the oldest unlabelled ones and never a labelled one", async () => {
    const dir = await dataDir();
    const store = await LocalSecretStore.open(dir, { maxVersions: 3 });
    const first = await store.ensureSecret("app/key", () => "v0");
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) {
      const id = randomUUID();
      ids.push(id);
      await store.putSecretValue("app/key", id, `v${i}`, ["AWSPENDING"]);
    }

    const kept = await store.listVersions("app/key");

    expect(kept.map((version) => version.value)).toEqual(["v5", "v4", "v0"]);
    expect(kept.find((version) => version.versionId === first.versionId)?.stages).toEqual(["AWSCURRENT"]);
  });

  it("reads one version by id and lists versions newest first", async () => {
    const { store, v1 } = await storeWithCurrent();
    const v2 = randomUUID();
    await store.putSecretValue("app/key", v2, "second", ["AWSPENDING"]);

    const listed = await store.listVersions("app/key");

    expect(listed.map((version) => version.versionId)).toEqual([v2, v1]);
    expect(await store.getSecretVersion("app/key", v2)).toEqual(listed[0]);
  });
});

describe("LocalSecretStore at rest", () => {
  it("never writes a secret value in plaintext", async () => {
    const { store, dir } = await storeWithCurrent();
    const value = `plain-${randomUUID()}`;

    await store.putSecretValue("app/key", randomUUID(), value, ["AWSPENDING"]);

    const file = await readFile(join(dir, "secrets.enc.json"));
    expect(file.includes(value)).toBe(false);
    expect(file.includes(Buffer.from(value).toString("base64"))).toBe(false);
    expect(file.includes("first")).toBe(false);
    expect(file.includes(await readFile(join(dir, "secrets.key")))).toBe(false);
  });

  it("creates the key file with mode 0600 and the secrets file private too", async () => {
    const { dir } = await storeWithCurrent();

    const key = await stat(join(dir, "secrets.key"));
    const secrets = await stat(join(dir, "secrets.enc.json"));

    expect(key.mode & 0o777).toBe(0o600);
    expect(key.size).toBe(32);
    expect(secrets.mode & 0o077).toBe(0);
  });

  it("refuses to open when the key file is readable by group or others", async () => {
    const { dir } = await storeWithCurrent();
    await chmod(join(dir, "secrets.key"), 0o644);

    const opening = LocalSecretStore.open(dir);

    await expect(opening).rejects.toThrow(SecretStoreIntegrityError);
    await expect(opening).rejects.toThrow(/mode 0644.*chmod 600/);
  });

  it("detects a tampered ciphertext", async () => {
    const { dir, v1 } = await storeWithCurrent();
    const file = join(dir, "secrets.enc.json");
    const document = JSON.parse(await readFile(file, "utf8"));
    const version = document.secrets["app/key"].versions[0];
    const bytes = Buffer.from(version.ciphertext, "base64");
    bytes[0] = (bytes[0] ?? 0) ^ 0x01;
    version.ciphertext = bytes.toString("base64");
    await writeFile(file, JSON.stringify(document));

    const reopened = await LocalSecretStore.open(dir);

    await expect(reopened.getSecretValue("app/key")).rejects.toThrow(SecretStoreIntegrityError);
    await expect(reopened.getSecretVersion("app/key", v1)).rejects.toThrow(/fails authentication/);
  });

  it("detects a ciphertext moved to another version or secret", async () => {
    const { store, dir } = await storeWithCurrent();
    await store.ensureSecret("app/other", () => "other");
    const file = join(dir, "secrets.enc.json");
    const document = JSON.parse(await readFile(file, "utf8"));
    const [stolen] = document.secrets["app/key"].versions;
    const [target] = document.secrets["app/other"].versions;
    Object.assign(target, { iv: stolen.iv, ciphertext: stolen.ciphertext, tag: stolen.tag });
    await writeFile(file, JSON.stringify(document));

    const reopened = await LocalSecretStore.open(dir);

    await expect(reopened.getSecretValue("app/other")).rejects.toThrow(SecretStoreIntegrityError);
  });

  it("keeps every version, value and label when reopened", async () => {
    const { store, dir } = await storeWithCurrent();
    await store.putSecretValue("app/key", randomUUID(), "second", ["AWSPENDING"]);
    await store.ensureSecret("app/other", () => "other");
    const before = { key: await store.listVersions("app/key"), other: await store.listVersions("app/other") };

    const reopened = await LocalSecretStore.open(dir);

    expect({
      key: await reopened.listVersions("app/key"),
      other: await reopened.listVersions("app/other"),
    }).toEqual(before);
  });
});

describe("LocalSecretStore under concurrency", () => {
  it("loses no version when two stores on one data dir add versions in parallel", async () => {
    const dir = await dataDir();
    const [a, b] = await Promise.all([
      LocalSecretStore.open(dir, { maxVersions: 100 }),
      LocalSecretStore.open(dir, { maxVersions: 100 }),
    ]);
    await a.ensureSecret("app/key", () => "first");
    const ids = Array.from({ length: 40 }, () => randomUUID());

    await Promise.all(
      ids.map((id, i) => (i % 2 === 0 ? a : b).putSecretValue("app/key", id, `value-${i}`, ["AWSPENDING"])),
    );

    const versions = await a.listVersions("app/key");
    expect(versions).toHaveLength(41);
    expect(new Set(versions.map((version) => version.versionId))).toEqual(
      new Set([...ids, (await a.getSecretValue("app/key"))!.versionId]),
    );
    expect(versions.filter((version) => version.stages.includes("AWSPENDING"))).toHaveLength(1);
  });

  it("loses no version when another process writes at the same time", async () => {
    const dir = await dataDir();
    const store = await LocalSecretStore.open(dir, { maxVersions: 10_000 });
    await store.ensureSecret("app/key", () => "first");
    const childIds = Array.from({ length: 30 }, () => randomUUID());
    const ownIds: string[] = [];

    const child = runInChildProcess(
      `const { LocalSecretStore } = await import(${JSON.stringify(storeModule)});
       const store = await LocalSecretStore.open(${JSON.stringify(dir)}, { maxVersions: 10000 });
       console.log("ready");
       for (const id of ${JSON.stringify(childIds)}) await store.putSecretValue("app/key", id, "child-" + id, ["AWSPENDING"]);`,
    );
    await child.ready;
    // Keep writing for as long as the child does, so the two really overlap; the pause lets the child's
    // polling lock attempts find the lock free.
    while (!child.exited || ownIds.length < 30) {
      const id = randomUUID();
      await store.putSecretValue("app/key", id, `own-${id}`, ["AWSPENDING"]);
      ownIds.push(id);
      await new Promise((pause) => setTimeout(pause, 2));
    }
    await child.done;

    const versions = new Set((await store.listVersions("app/key")).map((version) => version.versionId));
    expect(versions.size).toBe(1 + childIds.length + ownIds.length);
    expect([...childIds, ...ownIds].filter((id) => !versions.has(id))).toEqual([]);
  }, 60_000); // starts another Node process: slow on a loaded machine

  it("breaks a lock left behind by a crashed process", async () => {
    const { store, dir } = await storeWithCurrent();
    const lockFile = join(dir, "secrets.enc.json.lock");
    await writeFile(lockFile, '{"pid":999999}\n');
    const longAgo = new Date(Date.now() - 60_000);
    await utimes(lockFile, longAgo, longAgo);

    await store.putSecretValue("app/key", randomUUID(), "second", ["AWSPENDING"]);

    expect((await store.getSecretValue("app/key", "AWSPENDING"))?.value).toBe("second");
  });

  it("waits for a held lock and then says which file is locked", async () => {
    const dir = await dataDir();
    const store = await LocalSecretStore.open(dir, { lockTimeoutMs: 200 });
    await writeFile(join(dir, "secrets.enc.json.lock"), '{"pid":1}\n');

    const ensuring = store.ensureSecret("app/key", () => "first");

    await expect(ensuring).rejects.toThrow(/could not lock .*secrets\.enc\.json\.lock within 200 ms/);
  });
});

describe("LocalSecretStore labels (property)", () => {
  const versionPool = Array.from({ length: 5 }, (_, i) => `00000000-0000-4000-8000-00000000000${i}`);
  const valueFor = (versionId: string) => `value-of-${versionId}`;
  const stage = fc.constantFrom(...stagingLabels);
  const operation = fc.oneof(
    fc.record({
      kind: fc.constant("put" as const),
      versionId: fc.constantFrom(...versionPool),
      stages: fc.uniqueArray(stage, { maxLength: 2 }),
    }),
    fc.record({ kind: fc.constant("move" as const), stage, versionId: fc.constantFrom(...versionPool) }),
    fc.record({
      kind: fc.constant("remove" as const),
      stage: fc.constantFrom<StagingLabel>("AWSPENDING", "AWSPREVIOUS"),
    }),
  );

  it("keeps each assigned label on exactly one version, as a model of Secrets Manager predicts, and never loses AWSCURRENT", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { minLength: 1, maxLength: 12 }), async (operations) => {
        const store = await LocalSecretStore.open(await dataDir(), { maxVersions: 100 });
        await store.ensureSecret("app/key", () => "initial");
        const initial = (await store.getSecretValue("app/key"))!.versionId;
        const model = new Map<StagingLabel, string>([["AWSCURRENT", initial]]);
        const existing = new Set([initial]);
        const moveInModel = (label: StagingLabel, versionId: string) => {
          const holder = model.get(label);
          if (holder === versionId) return;
          model.set(label, versionId);
          if (label === "AWSCURRENT" && holder) moveInModel("AWSPREVIOUS", holder);
        };

        for (const op of operations) {
          if (op.kind === "put") {
            await store.putSecretValue("app/key", op.versionId, valueFor(op.versionId), op.stages);
            if (!existing.has(op.versionId)) {
              existing.add(op.versionId);
              for (const label of op.stages.length > 0 ? op.stages : (["AWSCURRENT"] as const)) {
                moveInModel(label, op.versionId);
              }
            }
          } else if (op.kind === "move") {
            const moving = store.updateSecretVersionStage("app/key", op.stage, op.versionId);
            if (existing.has(op.versionId)) {
              await moving;
              moveInModel(op.stage, op.versionId);
            } else {
              await expect(moving).rejects.toThrow(SecretNotFoundError);
            }
          } else {
            await store.removeSecretVersionStage("app/key", op.stage);
            model.delete(op.stage);
          }

          const versions = await store.listVersions("app/key");
          for (const label of stagingLabels) {
            const holders = versions.filter((version) => version.stages.includes(label));
            expect(holders.map((version) => version.versionId)).toEqual(
              model.has(label) ? [model.get(label)] : [],
            );
          }
          expect((await store.getSecretValue("app/key"))?.versionId).toBeDefined();
        }
      }),
      { numRuns: 60 },
    );
  }, 60_000); // 60 runs of real file I/O: slow on a loaded machine, never a timing assertion
});

/** Runs ES module code (TypeScript imports allowed) in another Node process. */
function runInChildProcess(code: string): {
  ready: Promise<void>;
  done: Promise<void>;
  readonly exited: boolean;
} {
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
    cwd: repositoryRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let exited = false;
  const done = new Promise<void>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (exitCode) => {
      exited = true;
      if (exitCode === 0) resolve();
      else reject(new Error(`child exited ${exitCode}: ${output}`));
    });
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("ready")) resolve();
    });
    done.then(() => reject(new Error("child exited before it was ready")), reject);
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  return {
    ready,
    done,
    get exited() {
      return exited;
    },
  };
}
