import { randomUUID } from "node:crypto";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  InvalidParameterException,
  InvalidRequestException,
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  RotateSecretCommand,
  SecretsManagerClient,
  SecretsManagerServiceException,
  UpdateSecretVersionStageCommand,
} from "@aws-sdk/client-secrets-manager";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, describe, expect, it } from "vitest";
import { AwsSecretStore } from "../../runtime/src/secrets/aws-secret-store";
import { CachedSecretStore } from "../../runtime/src/secrets/cached-secret-store";
import {
  InvalidSecretRequestError,
  LocalSecretStore,
  SecretNotFoundError,
  SecretStoreBusyError,
  SecretVersionConflictError,
} from "../../runtime/src/secrets/local-secret-store";
import type { SecretStore } from "../../runtime/src/secrets/secret-store";

/**
 * One contract, two stores: the local AES-256-GCM file store (the real implementation on a temp dir)
 * and the Secrets Manager store over the real SDK commands, answered by a model of the service that
 * follows its documented rules (ClientRequestToken idempotency, one version per staging label,
 * UpdateSecretVersionStage refusing a RemoveFromVersionId that does not hold the label, moving
 * AWSCURRENT leaves AWSPREVIOUS, ResourceNotFoundException, ThrottlingException).
 */

interface ModelVersion {
  id: string;
  value: string;
  stages: Set<string>;
  created: Date;
}

class SecretsManagerModel {
  private readonly secrets = new Map<string, ModelVersion[]>();
  private clock = Date.parse("2026-01-01T00:00:00Z");
  throttled = false;

  constructor(client: SecretsManagerClient) {
    const mock = mockClient(client);
    const guard =
      <I, O>(handler: (input: I) => O) =>
      async (input: I) => {
        if (this.throttled)
          throw new SecretsManagerServiceException({
            name: "ThrottlingException",
            $fault: "client",
            $metadata: {},
            message: "Rate exceeded",
          });
        return handler(input);
      };
    mock.on(CreateSecretCommand).callsFake(guard((input) => this.create(input)));
    mock.on(PutSecretValueCommand).callsFake(guard((input) => this.put(input)));
    mock.on(GetSecretValueCommand).callsFake(guard((input) => this.get(input)));
    mock.on(ListSecretVersionIdsCommand).callsFake(guard((input) => this.list(input)));
    mock.on(UpdateSecretVersionStageCommand).callsFake(guard((input) => this.update(input)));
  }

  private versions(id: string): ModelVersion[] {
    const versions = this.secrets.get(id);
    if (!versions)
      throw new ResourceNotFoundException({
        message: "Secrets Manager can't find the specified secret.",
        $metadata: {},
      });
    return versions;
  }

  private label(versions: ModelVersion[], stage: string, target: ModelVersion) {
    for (const version of versions) {
      if (version === target || !version.stages.has(stage)) continue;
      version.stages.delete(stage);
      if (stage === "AWSCURRENT") {
        for (const other of versions) other.stages.delete("AWSPREVIOUS");
        version.stages.add("AWSPREVIOUS");
      }
    }
    target.stages.add(stage);
  }

  private create(input: { Name?: string; ClientRequestToken?: string; SecretString?: string }) {
    if (this.secrets.has(input.Name!))
      throw new ResourceExistsException({ message: "exists", $metadata: {} });
    const versions: ModelVersion[] = [];
    this.secrets.set(input.Name!, versions);
    if (input.SecretString !== undefined) {
      const version = this.newVersion(input.ClientRequestToken ?? randomUUID(), input.SecretString);
      versions.push(version);
      version.stages.add("AWSCURRENT");
    }
    return { Name: input.Name };
  }

  private newVersion(id: string, value: string): ModelVersion {
    this.clock += 1000;
    return { id, value, stages: new Set(), created: new Date(this.clock) };
  }

  private put(input: {
    SecretId?: string;
    ClientRequestToken?: string;
    SecretString?: string;
    VersionStages?: string[];
  }) {
    const versions = this.versions(input.SecretId!);
    const existing = versions.find((version) => version.id === input.ClientRequestToken);
    if (existing) {
      if (existing.value !== input.SecretString)
        throw new ResourceExistsException({ message: "version exists with another value", $metadata: {} });
      return { VersionId: existing.id };
    }
    const version = this.newVersion(input.ClientRequestToken!, input.SecretString!);
    versions.push(version);
    for (const stage of input.VersionStages ?? ["AWSCURRENT"]) this.label(versions, stage, version);
    return { VersionId: version.id };
  }

  private get(input: { SecretId?: string; VersionId?: string; VersionStage?: string }) {
    const versions = this.versions(input.SecretId!);
    const found = input.VersionId
      ? versions.find((version) => version.id === input.VersionId)
      : versions.find((version) => version.stages.has(input.VersionStage ?? "AWSCURRENT"));
    if (!found) throw new ResourceNotFoundException({ message: "no such version", $metadata: {} });
    return {
      VersionId: found.id,
      SecretString: found.value,
      VersionStages: [...found.stages],
      CreatedDate: found.created,
    };
  }

  private list(input: { SecretId?: string; IncludeDeprecated?: boolean }) {
    const versions = this.versions(input.SecretId!);
    return {
      Versions: versions
        .filter((version) => input.IncludeDeprecated || version.stages.size > 0)
        .map((version) => ({
          VersionId: version.id,
          VersionStages: [...version.stages],
          CreatedDate: version.created,
        })),
    };
  }

  private update(input: {
    SecretId?: string;
    VersionStage?: string;
    MoveToVersionId?: string;
    RemoveFromVersionId?: string;
  }) {
    const versions = this.versions(input.SecretId!);
    const stage = input.VersionStage!;
    const holder = versions.find((version) => version.stages.has(stage));
    const invalid = (message: string) => new InvalidParameterException({ message, $metadata: {} });
    if (input.RemoveFromVersionId !== undefined && holder?.id !== input.RemoveFromVersionId)
      throw invalid(`${stage} is not attached to version ${input.RemoveFromVersionId}`);
    if (input.MoveToVersionId === undefined) {
      if (stage === "AWSCURRENT") throw invalid("AWSCURRENT cannot be removed, only moved");
      holder?.stages.delete(stage);
      return {};
    }
    const target = versions.find((version) => version.id === input.MoveToVersionId);
    if (!target) throw new ResourceNotFoundException({ message: "no such version", $metadata: {} });
    if (holder && holder !== target && input.RemoveFromVersionId === undefined)
      throw invalid(`${stage} is attached to version ${holder.id}; name it in RemoveFromVersionId`);
    this.label(versions, stage, target);
    return {};
  }
}

interface Subject {
  store: SecretStore;
  /** Makes the store busy (throttled, or its lock held elsewhere); returns the release. */
  busy(): Promise<() => Promise<void>>;
}

const directories: string[] = [];
afterAll(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

const subjects: Record<string, () => Promise<Subject>> = {
  "local AES-256-GCM file store": async () => {
    const directory = await mkdtemp(join(tmpdir(), "hcp-contract-"));
    directories.push(directory);
    const store = await LocalSecretStore.open(directory, { lockTimeoutMs: 200, staleLockMs: 60_000 });
    return {
      store,
      busy: async () => {
        // Another process holds the lock.
        const handle = await open(`${store.file}.lock`, "wx", 0o600);
        await handle.close();
        return () => rm(`${store.file}.lock`, { force: true });
      },
    };
  },
  "Secrets Manager store (SDK contract)": async () => {
    const client = new SecretsManagerClient({
      region: "us-east-1",
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    });
    const model = new SecretsManagerModel(client);
    return {
      store: new AwsSecretStore(client),
      busy: async () => {
        model.throttled = true;
        return async () => {
          model.throttled = false;
        };
      },
    };
  },
};

const stagesOf = async (store: SecretStore, id: string) =>
  Object.fromEntries(
    (await store.listVersions(id)).map((version) => [version.versionId, [...version.stages].sort()]),
  );

describe.each(Object.keys(subjects))("the secret store contract: %s", (name) => {
  const subject = () => subjects[name]!();
  const id = () => `hybrid-cicd/contract/${randomUUID()}`;

  it("versions: the first is AWSCURRENT, a pending one is added beside it, each readable by id and listed newest first", async () => {
    const { store } = await subject();
    const secret = id();
    const first = await store.ensureSecret(secret, () => "one");
    expect(first.stages).toEqual(["AWSCURRENT"]);
    expect((await store.ensureSecret(secret, () => "not used")).versionId).toBe(first.versionId);
    const pending = randomUUID();
    await store.putSecretValue(secret, pending, "two", ["AWSPENDING"]);
    expect((await store.getSecretValue(secret, "AWSPENDING"))?.value).toBe("two");
    expect((await store.getSecretValue(secret))?.value).toBe("one");
    expect((await store.getSecretVersion(secret, pending))?.value).toBe("two");
    expect((await store.listVersions(secret)).map((version) => version.versionId)).toEqual([
      pending,
      first.versionId,
    ]);
  });

  it("stages: moving AWSCURRENT leaves the old version AWSPREVIOUS; each label is on one version; AWSPENDING can be removed", async () => {
    const { store } = await subject();
    const secret = id();
    const first = await store.ensureSecret(secret, () => "one");
    const second = randomUUID();
    await store.putSecretValue(secret, second, "two", ["AWSPENDING"]);
    await store.updateSecretVersionStage(secret, "AWSCURRENT", second);
    await store.updateSecretVersionStage(secret, "AWSCURRENT", second);
    expect(await stagesOf(store, secret)).toMatchObject({
      [second]: ["AWSCURRENT", "AWSPENDING"],
      [first.versionId]: ["AWSPREVIOUS"],
    });
    await store.removeSecretVersionStage(secret, "AWSPENDING");
    await store.removeSecretVersionStage(secret, "AWSPENDING");
    expect(await stagesOf(store, secret)).toMatchObject({ [second]: ["AWSCURRENT"] });
    const third = randomUUID();
    await store.putSecretValue(secret, third, "three", ["AWSPENDING"]);
    await store.updateSecretVersionStage(secret, "AWSCURRENT", third);
    const stages = await stagesOf(store, secret);
    expect(stages[third]).toContain("AWSCURRENT");
    expect(stages[second]).toEqual(["AWSPREVIOUS"]);
    expect(stages[first.versionId] ?? []).toEqual([]);
  });

  it("client request tokens: the same token and value again is a no-op; the same token with another value is refused", async () => {
    const { store } = await subject();
    const secret = id();
    await store.ensureSecret(secret, () => "one");
    const token = randomUUID();
    await store.putSecretValue(secret, token, "two", ["AWSPENDING"]);
    await store.putSecretValue(secret, token, "two", ["AWSPENDING"]);
    expect((await store.listVersions(secret)).filter((version) => version.versionId === token)).toHaveLength(
      1,
    );
    await expect(store.putSecretValue(secret, token, "other", ["AWSPENDING"])).rejects.toBeInstanceOf(
      SecretVersionConflictError,
    );
    expect((await store.getSecretVersion(secret, token))?.value).toBe("two");
  });

  it("ResourceNotFoundException: reads of a missing secret, label or version answer undefined; writes to it are refused", async () => {
    const { store } = await subject();
    const secret = id();
    expect(await store.getSecretValue(secret)).toBeUndefined();
    expect(await store.getSecretVersion(secret, randomUUID())).toBeUndefined();
    expect(await store.listVersions(secret)).toEqual([]);
    await expect(store.putSecretValue(secret, randomUUID(), "x", ["AWSPENDING"])).rejects.toBeInstanceOf(
      SecretNotFoundError,
    );
    await store.ensureSecret(secret, () => "one");
    expect(await store.getSecretValue(secret, "AWSPENDING")).toBeUndefined();
    await expect(store.updateSecretVersionStage(secret, "AWSCURRENT", randomUUID())).rejects.toBeInstanceOf(
      SecretNotFoundError,
    );
  });

  it("a stage conflict: AWSCURRENT is never removed, and two racing moves of it leave exactly one AWSCURRENT", async () => {
    const { store } = await subject();
    const secret = id();
    const first = await store.ensureSecret(secret, () => "one");
    await expect(store.removeSecretVersionStage(secret, "AWSCURRENT")).rejects.toBeInstanceOf(
      InvalidSecretRequestError,
    );
    const [a, b] = [randomUUID(), randomUUID()];
    await store.putSecretValue(secret, a, "a", ["AWSPENDING"]);
    await store.putSecretValue(secret, b, "b", []);
    // `b` was put without labels: like PutSecretValue, it became AWSCURRENT. Now race two moves.
    await Promise.all([
      store.updateSecretVersionStage(secret, "AWSCURRENT", a),
      store.updateSecretVersionStage(secret, "AWSCURRENT", first.versionId),
    ]);
    const versions = await store.listVersions(secret);
    expect(versions.filter((version) => version.stages.includes("AWSCURRENT"))).toHaveLength(1);
    expect(versions.filter((version) => version.stages.includes("AWSPREVIOUS"))).toHaveLength(1);
  });

  it("throttling: a busy store refuses with SecretStoreBusyError, changes nothing, and works once free", async () => {
    const { store, busy } = await subject();
    const secret = id();
    await store.ensureSecret(secret, () => "one");
    const release = await busy();
    const token = randomUUID();
    try {
      await expect(store.putSecretValue(secret, token, "two", ["AWSPENDING"])).rejects.toBeInstanceOf(
        SecretStoreBusyError,
      );
    } finally {
      await release();
    }
    expect(await store.getSecretVersion(secret, token)).toBeUndefined();
    await store.putSecretValue(secret, token, "two", ["AWSPENDING"]);
    expect((await store.getSecretValue(secret, "AWSPENDING"))?.versionId).toBe(token);
  });

  it("behind the in-process cache: reads are reused within the TTL, and a write through it is seen at once", async () => {
    const { store } = await subject();
    let now = 0;
    const cached = new CachedSecretStore(store, { ttlMs: 5_000, now: () => now });
    const secret = id();
    await cached.ensureSecret(secret, () => "one");
    expect((await cached.getSecretValue(secret))?.value).toBe("one");
    // Changed behind the cache's back (another process): not seen until the TTL passes.
    const other = randomUUID();
    await store.putSecretValue(secret, other, "two", ["AWSCURRENT"]);
    expect((await cached.getSecretValue(secret))?.value).toBe("one");
    now += 5_000;
    expect((await cached.getSecretValue(secret))?.value).toBe("two");
    // Changed through it: seen at once.
    await cached.putSecretValue(secret, randomUUID(), "three", ["AWSCURRENT"]);
    expect((await cached.getSecretValue(secret))?.value).toBe("three");
  });
});

describe("Secrets Manager: one-click rotation", () => {
  it("asks RotateSecret to rotate now with the token, and says why Secrets Manager refused", async () => {
    const client = new SecretsManagerClient({
      region: "us-east-1",
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    });
    const mock = mockClient(client);
    const store = new AwsSecretStore(client);
    const token = randomUUID();
    mock
      .on(RotateSecretCommand)
      .resolvesOnce({})
      .rejectsOnce(
        new InvalidRequestException({ message: "A previous rotation isn't complete.", $metadata: {} }),
      );
    await store.startRotation("hybrid-cicd/x/workload-identity-root-key", token);
    expect(mock.commandCalls(RotateSecretCommand)[0]?.args[0].input).toEqual({
      SecretId: "hybrid-cicd/x/workload-identity-root-key",
      ClientRequestToken: token,
      RotateImmediately: true,
    });
    await expect(
      store.startRotation("hybrid-cicd/x/workload-identity-root-key", randomUUID()),
    ).rejects.toThrow(/previous rotation/);
  });
});
