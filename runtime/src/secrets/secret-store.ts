/**
 * The secret store: AWS Secrets Manager's model of versions and staging labels, shared by the local
 * AES-256-GCM file store and the Secrets Manager implementation. Rotation (createSecret → setSecret →
 * testSecret → finishSecret) is expressed with these calls only, so it runs the same in both places.
 */
export const stagingLabels = ["AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"] as const;
export type StagingLabel = (typeof stagingLabels)[number];

export interface SecretVersion {
  readonly versionId: string;
  /** The secret material; binary keys are base64url text. Never log it. */
  readonly value: string;
  readonly stages: readonly StagingLabel[];
  readonly createdAt: string;
}

export interface SecretStore {
  /** The version holding `stage` (default AWSCURRENT); undefined when the secret or the label does not exist. */
  getSecretValue(secretId: string, stage?: StagingLabel): Promise<SecretVersion | undefined>;
  /** One version by id; undefined when absent. */
  getSecretVersion(secretId: string, versionId: string): Promise<SecretVersion | undefined>;
  /** Every version still kept (labelled or recently unlabelled), newest first. */
  listVersions(secretId: string): Promise<SecretVersion[]>;
  /** Creates the secret without any version (Secrets Manager CreateSecret with no value); no-op if it exists. */
  createSecret(secretId: string, description?: string): Promise<void>;
  /**
   * The AWSCURRENT version, creating the secret (or its first version) with `generate()` when there is
   * none. Safe under concurrency: racing callers all end up with the same current version.
   */
  ensureSecret(secretId: string, generate: () => string, description?: string): Promise<SecretVersion>;
  /**
   * Adds a version (Secrets Manager PutSecretValue, `versionId` as ClientRequestToken). Repeating the
   * call with the same id and value is a no-op; the same id with another value is an error.
   */
  putSecretValue(
    secretId: string,
    versionId: string,
    value: string,
    stages: readonly StagingLabel[],
  ): Promise<void>;
  /**
   * Moves `stage` to `versionId` (Secrets Manager UpdateSecretVersionStage). Moving AWSCURRENT labels the
   * version that held it AWSPREVIOUS, as Secrets Manager does. Idempotent.
   */
  updateSecretVersionStage(secretId: string, stage: StagingLabel, versionId: string): Promise<void>;
  /** Removes `stage` from whichever version holds it (e.g. AWSPENDING after a finished rotation). */
  removeSecretVersionStage(secretId: string, stage: StagingLabel): Promise<void>;
  /**
   * Only where a rotation function does the steps (Secrets Manager RotateSecret): asks it to rotate now
   * with this ClientRequestToken. Absent: the caller runs the steps itself (the local store).
   */
  startRotation?(secretId: string, token: string): Promise<void>;
}
