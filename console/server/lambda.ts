/**
 * Entry of the console Lambda (API Gateway HTTP API routes `ANY /console` and `/console/{proxy+}`,
 * payload format 2.0): the same console app as the local control plane (server/console-app.ts), over the
 * same composition root as the API Lambda, through serverless-http.
 *
 * The Remix build (`build/server/index.js` and `build/client/`) is read from `HYBRID_CICD_CONSOLE_BUILD`
 * (default: `build/` next to this file). Without it the function answers 503 problem+json saying so,
 * rather than failing every request.
 */
import { loadEnv } from "@hybrid-cicd/runtime/config/env";
import { createLogger } from "@hybrid-cicd/runtime/logger";
import { createRuntime, type Runtime } from "@hybrid-cicd/runtime/runtime";
import { createSecretStore } from "@hybrid-cicd/runtime/secrets/index";
import { createDynamoClients } from "@hybrid-cicd/runtime/store/client";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import express from "express";
import serverless from "serverless-http";
import { ConsoleNotBuiltError, type ConsoleOptions, createConsoleApp } from "./console-app";

export type ConsoleHandler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyStructuredResultV2>;

/** The console Lambda around a given runtime (tests pass theirs). */
export async function createConsoleHandler(
  runtime: Runtime,
  options: Partial<ConsoleOptions> = {},
): Promise<ConsoleHandler> {
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", 1);
  // `/console.data` is the overview's data URL (Remix single fetch: `<basename>.data` for the index).
  app.use(
    ["/console", "/console.data"],
    await createConsoleApp(runtime, {
      secureCookies: true,
      trustProxy: 1,
      ...options,
      buildDirectory: options.buildDirectory ?? process.env.HYBRID_CICD_CONSOLE_BUILD,
    }),
  );
  // Binary assets (fonts, images) go back base64-encoded.
  return serverless(app, { provider: "aws", binary: ["image/*", "font/*"] }) as unknown as ConsoleHandler;
}

function notBuilt(event: APIGatewayProxyEventV2, reason: string): APIGatewayProxyStructuredResultV2 {
  const requestId = event?.requestContext?.requestId;
  return {
    statusCode: 503,
    headers: {
      "content-type": "application/problem+json",
      "cache-control": "no-store",
      "retry-after": "3600",
      ...(requestId ? { "x-request-id": requestId } : {}),
    },
    body: JSON.stringify({
      type: "about:blank",
      title: "Service Unavailable",
      status: 503,
      detail: `console not deployed yet: ${reason}`,
      instance: event?.rawPath ?? "/console",
    }),
  };
}

let initialising: Promise<ConsoleHandler | { notBuilt: string }> | undefined;

async function initialise(): Promise<ConsoleHandler | { notBuilt: string }> {
  const env = loadEnv();
  const logger = createLogger({ level: env.LOG_LEVEL });
  const { doc } = createDynamoClients({ endpoint: env.DYNAMODB_ENDPOINT, region: env.AWS_REGION });
  const secretStore = await createSecretStore(env);
  const runtime = createRuntime({ env, doc, secretStore, logger });
  try {
    return await createConsoleHandler(runtime);
  } catch (error) {
    if (error instanceof ConsoleNotBuiltError) return { notBuilt: error.message };
    throw error;
  }
}

/** Entry point deployed by the platform. */
export async function handler(
  event: APIGatewayProxyEventV2,
  context: Context,
): Promise<APIGatewayProxyStructuredResultV2> {
  initialising ??= initialise().catch((error: unknown) => {
    // Retry the initialisation on the next invocation instead of caching the failure.
    initialising = undefined;
    throw error;
  });
  const ready = await initialising;
  return "notBuilt" in ready ? notBuilt(event, ready.notBuilt) : ready(event, context);
}
