import { DescribeSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { z } from "zod";
import { loadEnv } from "../config/env";
import { KeyRotation } from "../domain/secrets/key-rotation";
import { createLogger } from "../logger";
import { createRuntime, type Runtime } from "../runtime";
import { AwsSecretStore } from "../secrets/aws-secret-store";
import { type SecretKey, secretId, secrets } from "../secrets/catalog";
import { createDynamoClients } from "../store/client";

/**
 * Entry of the Secrets Manager rotation function. The platform deploys it and attaches it to every
 * secret with a rotation period (runtime/src/secrets/catalog.ts). It performs each key's first rotation
 * (started by `pulumi up`), which creates the key; rotating an existing key is refused without change
 * until the secret-rotation work lands (see domain/secrets/key-rotation.ts).
 */
const rotationEvent = z.object({
  Step: z.enum(["createSecret", "setSecret", "testSecret", "finishSecret"]),
  SecretId: z.string().min(1).max(2048),
  ClientRequestToken: z.string().min(32).max(64),
  RotationToken: z.string().optional(),
});

export type RotationEvent = z.infer<typeof rotationEvent>;

let initialising:
  | Promise<{ runtime: Runtime; client: SecretsManagerClient; rotation: KeyRotation }>
  | undefined;

async function initialise() {
  const env = loadEnv();
  const client = new SecretsManagerClient({ region: env.AWS_REGION });
  const { doc } = createDynamoClients({ endpoint: env.DYNAMODB_ENDPOINT, region: env.AWS_REGION });
  const secretStore = new AwsSecretStore(client);
  const runtime = createRuntime({ env, doc, secretStore, logger: createLogger({ level: env.LOG_LEVEL }) });
  const rotation = new KeyRotation(
    secretStore,
    (tx) => runtime.store.commit(tx),
    () => runtime.store.transaction(),
  );
  return { runtime, client, rotation };
}

/** Which catalog entry a Secrets Manager secret is, by its name. */
export function catalogKeyOf(name: string, prefix: string): SecretKey | undefined {
  return (Object.keys(secrets) as SecretKey[]).find((key) => secretId(prefix, key) === name);
}

export async function handler(input: unknown, context?: { awsRequestId?: string }) {
  const event = rotationEvent.parse(input);
  initialising ??= initialise().catch((error: unknown) => {
    initialising = undefined;
    throw error;
  });
  const { runtime, client, rotation } = await initialising;
  const described = await client.send(new DescribeSecretCommand({ SecretId: event.SecretId }));
  const key = described.Name
    ? catalogKeyOf(described.Name, runtime.env.HYBRID_CICD_SECRET_PREFIX)
    : undefined;
  if (!key)
    throw new Error(`secret ${described.Name ?? event.SecretId} is not one the control plane rotates`);
  if (described.RotationEnabled === false) throw new Error(`rotation is not enabled for ${described.Name}`);
  const result = await rotation.step(
    { secretId: event.SecretId, key, token: event.ClientRequestToken, step: event.Step },
    {
      requestId: context?.awsRequestId ?? `rotation-${Date.now()}`,
      principal: { type: "system", id: "rotation" },
    },
  );
  runtime.logger.info({ secret: key, ...result }, "rotation step");
  return result;
}
