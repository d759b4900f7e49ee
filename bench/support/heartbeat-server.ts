/**
 * Child process for the heartbeat bench: serves the full control plane and, beside it, a bare express
 * routes doing the baselines' DynamoDB work, so the load generator does not share their event loop.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type express from "express";
import { loadEnv } from "../../runtime/src/config/env";
import { systemContext } from "../../runtime/src/domain/principal";
import { createApp } from "../../runtime/src/http/app";
import { createLogger } from "../../runtime/src/logger";
import { createRuntime } from "../../runtime/src/runtime";
import { LocalSecretStore } from "../../runtime/src/secrets/local-secret-store";
import { createDynamoClients } from "../../runtime/src/store/client";
import { bareHeartbeatApp } from "./bare-heartbeat";

const [endpoint, prefix, dataDir] = process.argv.slice(2) as [string, string, string];
const env = loadEnv({
  HYBRID_CICD_TABLE_PREFIX: prefix,
  HYBRID_CICD_DATA_DIR: dataDir,
  DYNAMODB_ENDPOINT: endpoint,
});
const { doc } = createDynamoClients({ endpoint, region: env.AWS_REGION });
const runtime = createRuntime({
  env,
  doc,
  secretStore: await LocalSecretStore.open(dataDir),
  logger: createLogger({ level: "silent" }),
});
await runtime.workloadKeys.ensureRootKey();

const listen = (app: express.Express) =>
  new Promise<string>((resolve) => {
    const server = createServer(app);
    server.keepAliveTimeout = 60_000;
    server.listen(0, "127.0.0.1", () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    );
  });

const full = await listen(createApp(runtime, { secureCookies: false }));

const bare = bareHeartbeatApp(doc, runtime.store.tables);
const bareUrl = await listen(bare);

const { token } = await runtime.agents.createRegistrationToken(systemContext("bench"));
const registered = await runtime.agents.register(
  { registration_token: token, name: "bench", region: "bench", tags: [] },
  systemContext("bench"),
);
process.stdout.write(`${JSON.stringify({ full, bare: bareUrl, agent: registered })}\n`);
