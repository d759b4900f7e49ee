import {
  CreateSecretCommand,
  GetSecretValueCommand,
  InvalidParameterException,
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from "@aws-sdk/client-secrets-manager";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { AwsSecretStore, initialVersionId } from "../../runtime/src/secrets/aws-secret-store";
import {
  InvalidSecretRequestError,
  SecretNotFoundError,
  SecretVersionConflictError,
} from "../../runtime/src/secrets/local-secret-store";

/**
 * The recorded contract with Secrets Manager: which commands, with which parameters, each method sends,
 * and how the service's answers (including its errors) become the store's results.
 */

const client = new SecretsManagerClient({
  region: "us-east-1",
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
});
const secretsManager = mockClient(client);
const store = new AwsSecretStore(client);

const secretId = "hybrid-cicd/test/workload-identity-root-key";
const v1 = "11111111-1111-4111-8111-111111111111";
const v2 = "22222222-2222-4222-8222-222222222222";
const created = new Date("2026-01-02T03:04:05.000Z");

const notFound = (message = "Secrets Manager can't find the specified secret.") =>
  new ResourceNotFoundException({ message, $metadata: {} });
const exists = () => new ResourceExistsException({ message: "already exists", $metadata: {} });

function inputsOf<T extends abstract new (...args: never) => unknown>(command: T) {
  // biome-ignore lint/suspicious/noExplicitAny: the mock's call records are loosely typed
  return secretsManager.commandCalls(command as any).map((call) => call.args[0].input);
}

beforeEach(() => {
  secretsManager.reset();
});

describe("AwsSecretStore reads", () => {
  it("asks for the AWSCURRENT stage by default and maps the version", async () => {
    secretsManager.on(GetSecretValueCommand).resolves({
      VersionId: v1,
      SecretString: "secret",
      VersionStages: ["AWSCURRENT", "SOMETHING-ELSE"],
      CreatedDate: created,
    });

    const version = await store.getSecretValue(secretId);

    expect(inputsOf(GetSecretValueCommand)).toEqual([{ SecretId: secretId, VersionStage: "AWSCURRENT" }]);
    expect(version).toEqual({
      versionId: v1,
      value: "secret",
      stages: ["AWSCURRENT"],
      createdAt: "2026-01-02T03:04:05.000Z",
    });
  });

  it("asks for a named stage or a version id", async () => {
    secretsManager
      .on(GetSecretValueCommand)
      .resolves({ VersionId: v2, SecretString: "pending", CreatedDate: created });

    await store.getSecretValue(secretId, "AWSPENDING");
    await store.getSecretVersion(secretId, v2);

    expect(inputsOf(GetSecretValueCommand)).toEqual([
      { SecretId: secretId, VersionStage: "AWSPENDING" },
      { SecretId: secretId, VersionId: v2 },
    ]);
  });

  it("answers undefined when the secret, stage or version is not found", async () => {
    secretsManager.on(GetSecretValueCommand).rejects(notFound());

    expect(await store.getSecretValue(secretId, "AWSPREVIOUS")).toBeUndefined();
    expect(await store.getSecretVersion(secretId, v1)).toBeUndefined();
  });

  it("returns binary secrets as base64url text", async () => {
    secretsManager.on(GetSecretValueCommand).resolves({
      VersionId: v1,
      SecretBinary: new Uint8Array([0xfb, 0xff, 0x00]),
      VersionStages: ["AWSCURRENT"],
      CreatedDate: created,
    });

    expect((await store.getSecretValue(secretId))?.value).toBe("-_8A");
  });

  it("lists every version, deprecated ones and every page included, newest first, skipping ones deleted meanwhile", async () => {
    secretsManager
      .on(ListSecretVersionIdsCommand, { NextToken: undefined })
      .resolves({ Versions: [{ VersionId: v1, VersionStages: ["AWSPREVIOUS"] }], NextToken: "page-2" })
      .on(ListSecretVersionIdsCommand, { NextToken: "page-2" })
      .resolves({ Versions: [{ VersionId: v2, VersionStages: ["AWSCURRENT"] }, { VersionId: "gone" }] });
    secretsManager
      .on(GetSecretValueCommand, { VersionId: v1 })
      .resolves({ VersionId: v1, SecretString: "old", VersionStages: ["AWSPREVIOUS"], CreatedDate: created })
      .on(GetSecretValueCommand, { VersionId: v2 })
      .resolves({
        VersionId: v2,
        SecretString: "new",
        VersionStages: ["AWSCURRENT"],
        CreatedDate: new Date("2026-02-01T00:00:00Z"),
      })
      .on(GetSecretValueCommand, { VersionId: "gone" })
      .rejects(notFound());

    const versions = await store.listVersions(secretId);

    expect(inputsOf(ListSecretVersionIdsCommand)).toEqual([
      { SecretId: secretId, IncludeDeprecated: true, MaxResults: 100, NextToken: undefined },
      { SecretId: secretId, IncludeDeprecated: true, MaxResults: 100, NextToken: "page-2" },
    ]);
    expect(versions.map((version) => [version.versionId, version.value])).toEqual([
      [v2, "new"],
      [v1, "old"],
    ]);
  });

  it("lists no versions of a secret that does not exist", async () => {
    secretsManager.on(ListSecretVersionIdsCommand).rejects(notFound());

    expect(await store.listVersions(secretId)).toEqual([]);
  });
});

describe("AwsSecretStore.putSecretValue", () => {
  it("sends the version id as ClientRequestToken with the staging labels", async () => {
    secretsManager.on(PutSecretValueCommand).resolves({ VersionId: v2 });

    await store.putSecretValue(secretId, v2, "pending", ["AWSPENDING"]);

    expect(inputsOf(PutSecretValueCommand)).toEqual([
      { SecretId: secretId, ClientRequestToken: v2, SecretString: "pending", VersionStages: ["AWSPENDING"] },
    ]);
  });

  it("leaves VersionStages out when no label is given, so the version becomes AWSCURRENT", async () => {
    secretsManager.on(PutSecretValueCommand).resolves({ VersionId: v2 });

    await store.putSecretValue(secretId, v2, "value", []);

    expect(inputsOf(PutSecretValueCommand)).toEqual([
      { SecretId: secretId, ClientRequestToken: v2, SecretString: "value" },
    ]);
  });

  it("reports the same version id with another value as a conflict, and a missing secret as not found", async () => {
    secretsManager.on(PutSecretValueCommand, { SecretId: secretId }).rejects(exists());
    secretsManager.on(PutSecretValueCommand, { SecretId: "absent" }).rejects(notFound());

    await expect(store.putSecretValue(secretId, v2, "other", ["AWSPENDING"])).rejects.toThrow(
      SecretVersionConflictError,
    );
    await expect(store.putSecretValue("absent", v2, "value", ["AWSPENDING"])).rejects.toThrow(
      SecretNotFoundError,
    );
  });
});

describe("AwsSecretStore label moves", () => {
  it("moves AWSCURRENT naming the version that holds it, as Secrets Manager requires", async () => {
    secretsManager.on(ListSecretVersionIdsCommand).resolves({
      Versions: [
        { VersionId: v1, VersionStages: ["AWSCURRENT"] },
        { VersionId: v2, VersionStages: ["AWSPENDING"] },
      ],
    });
    secretsManager.on(UpdateSecretVersionStageCommand).resolves({});

    await store.updateSecretVersionStage(secretId, "AWSCURRENT", v2);

    expect(inputsOf(ListSecretVersionIdsCommand)).toEqual([
      { SecretId: secretId, IncludeDeprecated: false, MaxResults: 100, NextToken: undefined },
    ]);
    expect(inputsOf(UpdateSecretVersionStageCommand)).toEqual([
      { SecretId: secretId, VersionStage: "AWSCURRENT", MoveToVersionId: v2, RemoveFromVersionId: v1 },
    ]);
  });

  it("sends nothing when the version already holds the label", async () => {
    secretsManager.on(ListSecretVersionIdsCommand).resolves({
      Versions: [{ VersionId: v2, VersionStages: ["AWSCURRENT"] }],
    });

    await store.updateSecretVersionStage(secretId, "AWSCURRENT", v2);

    expect(inputsOf(UpdateSecretVersionStageCommand)).toEqual([]);
  });

  it("attaches a label nobody holds without RemoveFromVersionId", async () => {
    secretsManager.on(ListSecretVersionIdsCommand).resolves({
      Versions: [{ VersionId: v1, VersionStages: ["AWSCURRENT"] }],
    });
    secretsManager.on(UpdateSecretVersionStageCommand).resolves({});

    await store.updateSecretVersionStage(secretId, "AWSPENDING", v1);

    expect(inputsOf(UpdateSecretVersionStageCommand)).toEqual([
      { SecretId: secretId, VersionStage: "AWSPENDING", MoveToVersionId: v1 },
    ]);
  });

  it("looks again and retries when another writer moved the label in between", async () => {
    const v3 = "33333333-3333-4333-8333-333333333333";
    secretsManager
      .on(ListSecretVersionIdsCommand)
      .resolvesOnce({ Versions: [{ VersionId: v1, VersionStages: ["AWSCURRENT"] }] })
      .resolves({ Versions: [{ VersionId: v3, VersionStages: ["AWSCURRENT"] }] });
    secretsManager
      .on(UpdateSecretVersionStageCommand)
      .rejectsOnce(new InvalidParameterException({ message: "RemoveFromVersionId mismatch", $metadata: {} }))
      .resolves({});

    await store.updateSecretVersionStage(secretId, "AWSCURRENT", v2);

    expect(inputsOf(UpdateSecretVersionStageCommand).map((input) => input.RemoveFromVersionId)).toEqual([
      v1,
      v3,
    ]);
  });

  it("reports an unknown version as not found", async () => {
    secretsManager.on(ListSecretVersionIdsCommand).resolves({ Versions: [] });
    secretsManager.on(UpdateSecretVersionStageCommand).rejects(notFound());

    await expect(store.updateSecretVersionStage(secretId, "AWSPENDING", v2)).rejects.toThrow(
      SecretNotFoundError,
    );
  });

  it("removes a label from the version holding it, and sends nothing when no version holds it", async () => {
    secretsManager
      .on(ListSecretVersionIdsCommand)
      .resolvesOnce({ Versions: [{ VersionId: v2, VersionStages: ["AWSPENDING", "AWSCURRENT"] }] })
      .resolves({ Versions: [{ VersionId: v2, VersionStages: ["AWSCURRENT"] }] });
    secretsManager.on(UpdateSecretVersionStageCommand).resolves({});

    await store.removeSecretVersionStage(secretId, "AWSPENDING");
    await store.removeSecretVersionStage(secretId, "AWSPENDING");

    expect(inputsOf(UpdateSecretVersionStageCommand)).toEqual([
      { SecretId: secretId, VersionStage: "AWSPENDING", RemoveFromVersionId: v2 },
    ]);
  });

  it("refuses to remove AWSCURRENT without asking Secrets Manager", async () => {
    await expect(store.removeSecretVersionStage(secretId, "AWSCURRENT")).rejects.toThrow(
      InvalidSecretRequestError,
    );

    expect(secretsManager.calls()).toHaveLength(0);
  });
});

describe("AwsSecretStore.ensureSecret", () => {
  const current = {
    VersionId: v1,
    SecretString: "current",
    VersionStages: ["AWSCURRENT"],
    CreatedDate: created,
  };

  it("returns the current version without generating a value", async () => {
    secretsManager.on(GetSecretValueCommand).resolves(current);
    let generated = 0;

    const version = await store.ensureSecret(secretId, () => `value-${++generated}`);

    expect(version.value).toBe("current");
    expect(generated).toBe(0);
    expect(secretsManager.calls()).toHaveLength(1);
  });

  it("puts the first version under the fixed token when the secret exists without one", async () => {
    secretsManager
      .on(GetSecretValueCommand)
      .rejectsOnce(
        notFound("Secrets Manager can't find the specified secret value for staging label: AWSCURRENT"),
      )
      .resolves({ ...current, VersionId: initialVersionId, SecretString: "generated" });
    secretsManager.on(PutSecretValueCommand).resolves({ VersionId: initialVersionId });

    const version = await store.ensureSecret(secretId, () => "generated");

    expect(inputsOf(PutSecretValueCommand)).toEqual([
      {
        SecretId: secretId,
        ClientRequestToken: "00000000-0000-4000-8000-000000000001",
        SecretString: "generated",
        VersionStages: ["AWSCURRENT"],
      },
    ]);
    expect(inputsOf(CreateSecretCommand)).toEqual([]);
    expect(version).toMatchObject({ versionId: initialVersionId, value: "generated" });
  });

  it("reads the winner's value when a concurrent cold start put the first version", async () => {
    secretsManager
      .on(GetSecretValueCommand)
      .rejectsOnce(notFound())
      .resolves({ ...current, VersionId: initialVersionId, SecretString: "theirs" });
    secretsManager.on(PutSecretValueCommand).rejects(exists());

    const version = await store.ensureSecret(secretId, () => "mine");

    expect(version.value).toBe("theirs");
    expect(inputsOf(GetSecretValueCommand)).toEqual([
      { SecretId: secretId, VersionStage: "AWSCURRENT" },
      { SecretId: secretId, VersionStage: "AWSCURRENT" },
    ]);
  });

  it("creates the secret with the fixed token and its description when it does not exist", async () => {
    secretsManager
      .on(GetSecretValueCommand)
      .rejectsOnce(notFound())
      .resolves({ ...current, VersionId: initialVersionId, SecretString: "generated" });
    secretsManager.on(PutSecretValueCommand).rejects(notFound());
    secretsManager.on(CreateSecretCommand).resolves({ VersionId: initialVersionId });
    let generated = 0;

    const version = await store.ensureSecret(
      secretId,
      () => {
        generated++;
        return "generated";
      },
      "Root key",
    );

    expect(inputsOf(CreateSecretCommand)).toEqual([
      {
        Name: secretId,
        ClientRequestToken: initialVersionId,
        SecretString: "generated",
        Description: "Root key",
      },
    ]);
    expect(generated).toBe(1);
    expect(version.value).toBe("generated");
  });

  it("reads the winner's value when a concurrent cold start created the secret", async () => {
    secretsManager
      .on(GetSecretValueCommand)
      .rejectsOnce(notFound())
      .resolves({ ...current, VersionId: initialVersionId, SecretString: "theirs" });
    secretsManager.on(PutSecretValueCommand).rejects(notFound());
    secretsManager.on(CreateSecretCommand).rejects(exists());

    expect((await store.ensureSecret(secretId, () => "mine")).value).toBe("theirs");
  });

  it("passes on errors other than not found, such as a secret scheduled for deletion", async () => {
    secretsManager.on(GetSecretValueCommand).rejects(notFound());
    secretsManager.on(PutSecretValueCommand).rejects(
      Object.assign(
        new Error("You can't perform this operation on the secret because it was marked for deletion."),
        {
          name: "InvalidRequestException",
        },
      ),
    );

    await expect(store.ensureSecret(secretId, () => "value")).rejects.toThrow(/marked for deletion/);
    expect(inputsOf(CreateSecretCommand)).toEqual([]);
  });
});

describe("AwsSecretStore.createSecret", () => {
  it("creates the secret without a value, and an existing one is not an error", async () => {
    secretsManager.reset();
    secretsManager.on(CreateSecretCommand).resolvesOnce({}).rejectsOnce(exists());
    await store.createSecret(secretId, "root key");
    await store.createSecret(secretId, "root key");
    const calls = secretsManager.commandCalls(CreateSecretCommand);
    expect(calls).toHaveLength(2);
    expect(calls[0]!.args[0].input).toEqual({ Name: secretId, Description: "root key" });
  });
});
