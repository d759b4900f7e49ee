import {
  CreateSecretCommand,
  GetSecretValueCommand,
  type GetSecretValueCommandOutput,
  ListSecretVersionIdsCommand,
  type ListSecretVersionIdsCommandOutput,
  PutSecretValueCommand,
  RotateSecretCommand,
  type SecretsManagerClient,
  type SecretVersionsListEntry,
  UpdateSecretVersionStageCommand,
} from "@aws-sdk/client-secrets-manager";
import {
  InvalidSecretRequestError,
  SecretNotFoundError,
  SecretStoreBusyError,
  SecretVersionConflictError,
} from "./local-secret-store";
import { type SecretStore, type SecretVersion, type StagingLabel, stagingLabels } from "./secret-store";

/**
 * The secret store on AWS: Secrets Manager itself. Version ids are ClientRequestTokens, so every write
 * is idempotent, and label moves name the version they take the label from, so a concurrent move fails
 * loudly instead of being lost.
 */

/**
 * The token of the first version `ensureSecret` writes. Racing cold starts send the same token: one of
 * them creates the version, the others are told it exists (with another value) and read the winner's.
 */
export const initialVersionId = "00000000-0000-4000-8000-000000000001";

/** Label moves retried when another writer moved the label between our read and our update. */
const moveAttempts = 3;

export class AwsSecretStore implements SecretStore {
  constructor(private readonly client: SecretsManagerClient) {}

  async getSecretValue(
    secretId: string,
    stage: StagingLabel = "AWSCURRENT",
  ): Promise<SecretVersion | undefined> {
    return this.get(secretId, { VersionStage: stage });
  }

  async getSecretVersion(secretId: string, versionId: string): Promise<SecretVersion | undefined> {
    return this.get(secretId, { VersionId: versionId });
  }

  async listVersions(secretId: string): Promise<SecretVersion[]> {
    const entries = await this.listVersionEntries(secretId, true);
    const versions = await Promise.all(
      entries.map((entry) =>
        entry.VersionId ? this.getSecretVersion(secretId, entry.VersionId) : undefined,
      ),
    );
    return versions
      .filter((version): version is SecretVersion => version !== undefined)
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  async ensureSecret(secretId: string, generate: () => string, description?: string): Promise<SecretVersion> {
    const existing = await this.getSecretValue(secretId);
    if (existing) return existing;
    const value = generate();
    try {
      // The secret exists without an AWSCURRENT version (e.g. declared by the platform with no value).
      await this.send(
        new PutSecretValueCommand({
          SecretId: secretId,
          ClientRequestToken: initialVersionId,
          SecretString: value,
          VersionStages: ["AWSCURRENT"],
        }),
      );
    } catch (error) {
      if (isAws(error, "ResourceNotFoundException")) await this.createWithValue(secretId, value, description);
      else if (!isAws(error, "ResourceExistsException")) throw error;
    }
    const current = await this.getSecretValue(secretId);
    if (!current)
      throw new SecretNotFoundError(`${secretId} still has no AWSCURRENT version after creating one`);
    return current;
  }

  async putSecretValue(
    secretId: string,
    versionId: string,
    value: string,
    stages: readonly StagingLabel[],
  ): Promise<void> {
    try {
      await this.send(
        new PutSecretValueCommand({
          SecretId: secretId,
          ClientRequestToken: versionId,
          SecretString: value,
          // Omitted, Secrets Manager makes the new version AWSCURRENT; the local store does the same.
          ...(stages.length > 0 ? { VersionStages: [...stages] } : {}),
        }),
      );
    } catch (error) {
      if (isAws(error, "ResourceExistsException")) {
        throw new SecretVersionConflictError(
          `version ${versionId} of ${secretId} already holds another value`,
        );
      }
      if (isAws(error, "ResourceNotFoundException")) {
        throw new SecretNotFoundError(`secret ${secretId} does not exist`);
      }
      throw error;
    }
  }

  async updateSecretVersionStage(secretId: string, stage: StagingLabel, versionId: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const holder = await this.holderOf(secretId, stage);
      if (holder === versionId) return;
      try {
        // Secrets Manager refuses a move that doesn't name the version losing the label; moving
        // AWSCURRENT labels that version AWSPREVIOUS by itself.
        await this.send(
          new UpdateSecretVersionStageCommand({
            SecretId: secretId,
            VersionStage: stage,
            MoveToVersionId: versionId,
            ...(holder ? { RemoveFromVersionId: holder } : {}),
          }),
        );
        return;
      } catch (error) {
        if (isAws(error, "ResourceNotFoundException")) {
          throw new SecretNotFoundError(`${secretId} or its version ${versionId} does not exist`);
        }
        // RemoveFromVersionId no longer holds the label: someone moved it meanwhile; look again.
        if (!isAws(error, "InvalidParameterException") || attempt >= moveAttempts) throw error;
      }
    }
  }

  async removeSecretVersionStage(secretId: string, stage: StagingLabel): Promise<void> {
    if (stage === "AWSCURRENT") {
      throw new InvalidSecretRequestError("AWSCURRENT can only be moved to another version, never removed");
    }
    const holder = await this.holderOf(secretId, stage);
    if (!holder) return;
    try {
      await this.send(
        new UpdateSecretVersionStageCommand({
          SecretId: secretId,
          VersionStage: stage,
          RemoveFromVersionId: holder,
        }),
      );
    } catch (error) {
      // Removed by someone else in between: the outcome asked for.
      if (isAws(error, "InvalidParameterException") && (await this.holderOf(secretId, stage)) === undefined)
        return;
      throw error;
    }
  }

  /** The rotation function performs the four steps; Secrets Manager refuses while one is in progress. */
  async startRotation(secretId: string, token: string): Promise<void> {
    try {
      await this.send(
        new RotateSecretCommand({ SecretId: secretId, ClientRequestToken: token, RotateImmediately: true }),
      );
    } catch (error) {
      if (isAws(error, "ResourceNotFoundException"))
        throw new SecretNotFoundError(`secret ${secretId} does not exist`);
      if (isAws(error, "InvalidRequestException"))
        throw new InvalidSecretRequestError(
          `Secrets Manager refused to rotate ${secretId} now: ${(error as Error).message}`,
        );
      throw error;
    }
  }

  async createSecret(secretId: string, description?: string): Promise<void> {
    try {
      await this.send(
        new CreateSecretCommand({
          Name: secretId,
          ...(description === undefined ? {} : { Description: description }),
        }),
      );
    } catch (error) {
      if (!isAws(error, "ResourceExistsException")) throw error;
    }
  }

  /**
   * Every call goes through here: throttling (after the SDK's own retries) becomes SecretStoreBusyError,
   * the store's "nothing changed, retry" answer, the same one the local store gives when its lock is held.
   */
  // biome-ignore lint/suspicious/noExplicitAny: each command's own output type flows through send
  private async send<T>(command: any): Promise<T> {
    try {
      return (await this.client.send(command)) as T;
    } catch (error) {
      if (isAws(error, "ThrottlingException") || isAws(error, "TooManyRequestsException")) {
        throw new SecretStoreBusyError("Secrets Manager throttled the request; retry later");
      }
      throw error;
    }
  }

  private async createWithValue(
    secretId: string,
    value: string,
    description: string | undefined,
  ): Promise<void> {
    try {
      await this.send(
        new CreateSecretCommand({
          Name: secretId,
          ClientRequestToken: initialVersionId,
          SecretString: value,
          ...(description === undefined ? {} : { Description: description }),
        }),
      );
    } catch (error) {
      // A concurrent cold start created it first; its value is the one everybody reads.
      if (!isAws(error, "ResourceExistsException")) throw error;
    }
  }

  private async get(
    secretId: string,
    selector: { VersionStage: StagingLabel } | { VersionId: string },
  ): Promise<SecretVersion | undefined> {
    let output: GetSecretValueCommandOutput;
    try {
      output = await this.send(new GetSecretValueCommand({ SecretId: secretId, ...selector }));
    } catch (error) {
      // The secret, the label or the version is absent (or a deprecated version was deleted).
      if (isAws(error, "ResourceNotFoundException")) return undefined;
      throw error;
    }
    return toSecretVersion(output);
  }

  private async holderOf(secretId: string, stage: StagingLabel): Promise<string | undefined> {
    const entries = await this.listVersionEntries(secretId, false);
    return entries.find((entry) => entry.VersionStages?.includes(stage))?.VersionId;
  }

  private async listVersionEntries(
    secretId: string,
    includeDeprecated: boolean,
  ): Promise<SecretVersionsListEntry[]> {
    const entries: SecretVersionsListEntry[] = [];
    let nextToken: string | undefined;
    try {
      do {
        const page: ListSecretVersionIdsCommandOutput = await this.send(
          new ListSecretVersionIdsCommand({
            SecretId: secretId,
            IncludeDeprecated: includeDeprecated,
            MaxResults: 100,
            NextToken: nextToken,
          }),
        );
        entries.push(...(page.Versions ?? []));
        nextToken = page.NextToken;
      } while (nextToken);
    } catch (error) {
      if (isAws(error, "ResourceNotFoundException")) return [];
      throw error;
    }
    return entries;
  }
}

function toSecretVersion(output: GetSecretValueCommandOutput): SecretVersion {
  const value =
    output.SecretString ??
    (output.SecretBinary ? Buffer.from(output.SecretBinary).toString("base64url") : "");
  return {
    versionId: output.VersionId ?? "",
    value,
    stages: (output.VersionStages ?? []).filter((stage): stage is StagingLabel =>
      (stagingLabels as readonly string[]).includes(stage),
    ),
    createdAt: (output.CreatedDate ?? new Date(0)).toISOString(),
  };
}

function isAws(error: unknown, name: string): boolean {
  return error instanceof Error && error.name === name;
}
