import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { Env } from "../config/env";
import { AwsSecretStore } from "./aws-secret-store";
import { LocalSecretStore, type LocalSecretStoreOptions } from "./local-secret-store";
import type { SecretStore } from "./secret-store";

export { AwsSecretStore, initialVersionId } from "./aws-secret-store";
export { CachedSecretStore } from "./cached-secret-store";
export {
  InvalidSecretRequestError,
  LocalSecretStore,
  SecretNotFoundError,
  SecretStoreBusyError,
  SecretStoreIntegrityError,
  SecretVersionConflictError,
} from "./local-secret-store";
export type { SecretStore, SecretVersion, StagingLabel } from "./secret-store";

export interface SecretStoreOptions {
  /** Directory of the local store's files. @default env.HYBRID_CICD_DATA_DIR */
  dataDir?: string;
  /** Lock and retention settings of the local store. */
  local?: LocalSecretStoreOptions;
  /** The Secrets Manager client of the `aws` store. @default a client for env.AWS_REGION */
  secretsManager?: SecretsManagerClient;
}

/** The store `HYBRID_CICD_SECRET_STORE` names: the encrypted file (`local`) or Secrets Manager (`aws`). */
export async function createSecretStore(env: Env, options: SecretStoreOptions = {}): Promise<SecretStore> {
  switch (env.HYBRID_CICD_SECRET_STORE) {
    case "local":
      return LocalSecretStore.open(options.dataDir ?? env.HYBRID_CICD_DATA_DIR, options.local);
    case "aws":
      return new AwsSecretStore(
        options.secretsManager ?? new SecretsManagerClient({ region: env.AWS_REGION }),
      );
  }
}
