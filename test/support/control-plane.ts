import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AgentIdentity, signedFetch } from "../../runtime/src/agent/signed-fetch";
import { loadEnv } from "../../runtime/src/config/env";
import { type Clock, systemContext } from "../../runtime/src/domain/principal";
import { createApp } from "../../runtime/src/http/app";
import { decodeAgentSecret } from "../../runtime/src/identity/agent-keys";
import type { Role } from "../../runtime/src/identity/permissions";
import { createLogger } from "../../runtime/src/logger";
import { createRuntime, type Runtime } from "../../runtime/src/runtime";
import { LocalSecretStore } from "../../runtime/src/secrets/local-secret-store";
import { freshTables } from "./dynamodb";

export interface TestControlPlane {
  url: string;
  runtime: Runtime;
  dataDir: string;
  /** A bearer token for a user with this role. */
  token(role: Role): Promise<string>;
  /** JSON request as a user (`token` undefined = anonymous). */
  request(method: string, path: string, options?: RequestOptions): Promise<JsonResponse>;
  /** Registers an agent through the API and returns its identity. */
  registerAgent(input?: { name?: string; region?: string; tags?: string[] }): Promise<AgentIdentity>;
  /** A signed request as an agent. */
  agentRequest(identity: AgentIdentity, method: string, path: string, body?: unknown): Promise<JsonResponse>;
  close(): Promise<void>;
}

export interface RequestOptions {
  token?: string;
  body?: unknown;
  rawBody?: string | Buffer;
  headers?: Record<string, string>;
}

export interface JsonResponse {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON
  body: any;
}

/**
 * A control plane over real DynamoDB Local tables (fresh prefix per call) and a local secret store in
 * a temporary directory, served on a loopback port.
 */
export async function startTestControlPlane(
  label: string,
  options: {
    clock?: Clock;
    /** Extra environment (e.g. OAuth providers, session lifetimes, lower rate limits). */
    env?: Record<string, string>;
  } = {},
): Promise<TestControlPlane> {
  const tables = await freshTables(label);
  const dataDir = await mkdtemp(join(tmpdir(), `hcp-${label}-`));
  const env = loadEnv({
    HYBRID_CICD_ENVIRONMENT: "test",
    HYBRID_CICD_TABLE_PREFIX: tables.prefix,
    HYBRID_CICD_DATA_DIR: dataDir,
    DYNAMODB_ENDPOINT: tables.endpoint,
    // Every test's requests come from 127.0.0.1: the per-address limits are tested on their own.
    HYBRID_CICD_RATE_LIMIT_SIGNIN: "100000/1m",
    HYBRID_CICD_RATE_LIMIT_TOKENS: "100000/1m",
    HYBRID_CICD_RATE_LIMIT_DIGESTS: "100000/1m",
    ...options.env,
  });
  const secretStore = await LocalSecretStore.open(dataDir);
  const runtime = createRuntime({
    env,
    doc: tables.doc,
    secretStore,
    logger: createLogger({ level: "silent" }),
    clock: options.clock,
  });
  await runtime.workloadKeys.ensureRootKey();
  const server: Server = createServer(createApp(runtime, { secureCookies: false }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const tokens = new Map<Role, string>();

  const request = async (
    method: string,
    path: string,
    requestOptions: RequestOptions = {},
  ): Promise<JsonResponse> => {
    const headers: Record<string, string> = { ...requestOptions.headers };
    if (requestOptions.token) headers.authorization = `Bearer ${requestOptions.token}`;
    let body: string | Buffer | undefined = requestOptions.rawBody;
    if (requestOptions.body !== undefined) {
      body = JSON.stringify(requestOptions.body);
      headers["content-type"] ??= "application/json";
    }
    const response = await fetch(url + path, {
      method,
      headers,
      body: body as BodyInit | undefined,
      redirect: "manual",
    });
    const text = await response.text();
    const type = response.headers.get("content-type") ?? "";
    return {
      status: response.status,
      headers: response.headers,
      // JSON and +json types; not JSON Lines (`application/jsonl`), which is read as text.
      body: /[/+]json\s*(;|$)/.test(type) && text ? JSON.parse(text) : text,
    };
  };

  const token = async (role: Role) => {
    let value = tokens.get(role);
    if (!value) {
      value = (
        await runtime.credentials.createApiToken({ role, name: `test-${role}` }, systemContext("test"))
      ).token;
      tokens.set(role, value);
    }
    return value;
  };

  return {
    url,
    runtime,
    dataDir,
    token,
    request,
    async registerAgent(input = {}) {
      const registration = await request("POST", "/agents/registration-tokens", {
        token: await token("admin"),
        body: {},
      });
      const registered = await request("POST", "/agents/register", {
        body: {
          registration_token: registration.body.token,
          name: input.name ?? "test-agent",
          region: input.region ?? "eu-west-1",
          tags: input.tags ?? [],
        },
      });
      if (registered.status !== 201)
        throw new Error(`registration failed: ${JSON.stringify(registered.body)}`);
      return {
        agentId: registered.body.agent_id,
        key: decodeAgentSecret(registered.body.workload_identity_secret),
      };
    },
    agentRequest: (identity, method, path, body) => signedFetch(url, identity, method, path, body),
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await tables.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
