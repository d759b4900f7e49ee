import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import serverless from "serverless-http";
import { loadEnv } from "../config/env";
import { createApp } from "../http/app";
import { createLogger } from "../logger";
import { createRuntime, type Runtime } from "../runtime";
import { createSecretStore } from "../secrets";
import { createDynamoClients } from "../store/client";

export type ApiHandler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyStructuredResultV2>;

/**
 * Responses API Gateway must receive base64-encoded (`isBase64Encoded`): the compliance report's PDF and
 * zips. Without this serverless-http passes their bytes as a UTF-8 string and corrupts them.
 */
export const binaryContentTypes = ["application/pdf", "application/zip", "application/octet-stream"];

/** The API Lambda around a given runtime: the same express app as the local server. */
export function createApiHandler(runtime: Runtime): ApiHandler {
  const app = createApp(runtime, { secureCookies: true, trustProxy: 1 });
  return serverless(app, { provider: "aws", binary: binaryContentTypes }) as unknown as ApiHandler;
}

let initialising: Promise<ApiHandler> | undefined;

async function initialise(): Promise<ApiHandler> {
  const env = loadEnv();
  const logger = createLogger({ level: env.LOG_LEVEL });
  const { doc } = createDynamoClients({ endpoint: env.DYNAMODB_ENDPOINT, region: env.AWS_REGION });
  const secretStore = await createSecretStore(env);
  const runtime = createRuntime({ env, doc, secretStore, logger });
  if (env.HYBRID_CICD_SECRET_STORE === "local") {
    // In Secrets Manager the rotation function creates key material; the API only reads it.
    await runtime.workloadKeys.ensureRootKey();
    await runtime.auditKeys.ensureKey();
  }
  return createApiHandler(runtime);
}

/** Entry point deployed by the platform (API Gateway HTTP API, payload format 2.0). */
export const handler: ApiHandler = async (event, context) => {
  initialising ??= initialise().catch((error: unknown) => {
    // Retry the initialisation on the next invocation instead of caching the failure.
    initialising = undefined;
    throw error;
  });
  return (await initialising)(event, context);
};
