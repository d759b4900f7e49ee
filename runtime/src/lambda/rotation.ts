import { DescribeSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { z } from "zod";
import { loadEnv } from "../config/env";
import { RotationWaitingError, rotationSteps } from "../domain/secrets/key-rotation";
import { createLogger } from "../logger";
import { createRuntime, type Runtime } from "../runtime";
import { AwsSecretStore } from "../secrets/aws-secret-store";
import { type SecretKey, secretId, secrets } from "../secrets/catalog";
import { createDynamoClients } from "../store/client";

/**
 * Entry of the Secrets Manager rotation function. The platform deploys it and attaches it to every
 * secret with a rotation period (runtime/src/secrets/catalog.ts); Secrets Manager invokes it once per
 * step with the same ClientRequestToken. Each step is one step of the rotation engine
 * (domain/secrets/key-rotation.ts), the same one `POST /secrets/{name}/rotate` and the local scheduler
 * use. testSecret waits here, within the invocation's time, for agents to acknowledge their new keys.
 */
const rotationEvent = z.object({
  Step: z.enum(rotationSteps),
  SecretId: z.string().min(1).max(2048),
  ClientRequestToken: z.string().min(32).max(64),
  RotationToken: z.string().optional(),
});

export type RotationEvent = z.infer<typeof rotationEvent>;

export interface RotationContext {
  awsRequestId?: string;
  getRemainingTimeInMillis?: () => number;
}

let initialising: Promise<{ runtime: Runtime; client: SecretsManagerClient }> | undefined;

async function initialise() {
  const env = loadEnv();
  const client = new SecretsManagerClient({ region: env.AWS_REGION });
  const { doc } = createDynamoClients({ endpoint: env.DYNAMODB_ENDPOINT, region: env.AWS_REGION });
  const secretStore = new AwsSecretStore(client);
  const runtime = createRuntime({ env, doc, secretStore, logger: createLogger({ level: env.LOG_LEVEL }) });
  return { runtime, client };
}

/** Which catalog entry a Secrets Manager secret is, by its name. */
export function catalogKeyOf(name: string, prefix: string): SecretKey | undefined {
  return (Object.keys(secrets) as SecretKey[]).find((key) => secretId(prefix, key) === name);
}

/** Leave this much of the invocation for the last attempt's own calls. */
const RESERVE_MS = 15_000;
const POLL_MS = 5_000;

export async function handler(input: unknown, context?: RotationContext) {
  const event = rotationEvent.parse(input);
  initialising ??= initialise().catch((error: unknown) => {
    initialising = undefined;
    throw error;
  });
  const { runtime, client } = await initialising;
  const described = await client.send(new DescribeSecretCommand({ SecretId: event.SecretId }));
  const key = described.Name
    ? catalogKeyOf(described.Name, runtime.env.HYBRID_CICD_SECRET_PREFIX)
    : undefined;
  if (!key)
    throw new Error(`secret ${described.Name ?? event.SecretId} is not one the control plane rotates`);
  if (described.RotationEnabled === false) throw new Error(`rotation is not enabled for ${described.Name}`);
  return runStep(runtime, key, event, context);
}

/**
 * One step; testSecret is retried while agents are still acknowledging and the invocation has time.
 * Running out of time fails the step: Secrets Manager retries the rotation with the same token, and
 * the engine resumes where it stopped.
 */
export async function runStep(
  runtime: Runtime,
  key: SecretKey,
  event: Pick<RotationEvent, "Step" | "ClientRequestToken">,
  context?: RotationContext,
  pollMs = POLL_MS,
) {
  const requestContext = {
    requestId: context?.awsRequestId ?? `rotation-${Date.now()}`,
    principal: { type: "system" as const, id: "rotation" },
  };
  for (;;) {
    try {
      const result = await runtime.rotation.step(
        { key, token: event.ClientRequestToken, step: event.Step },
        requestContext,
      );
      runtime.logger.info({ secret: key, ...result }, "rotation step");
      return result;
    } catch (error) {
      const remaining = context?.getRemainingTimeInMillis?.() ?? 0;
      if (!(error instanceof RotationWaitingError) || remaining < RESERVE_MS + pollMs) throw error;
      runtime.logger.info({ secret: key, step: event.Step, detail: error.message }, "rotation waiting");
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }
}
