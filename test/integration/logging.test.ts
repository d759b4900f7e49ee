import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { signedFetch } from "../../runtime/src/agent/signed-fetch";
import { loadEnv } from "../../runtime/src/config/env";
import { systemContext } from "../../runtime/src/domain/principal";
import { createApp } from "../../runtime/src/http/app";
import { decodeAgentSecret } from "../../runtime/src/identity/agent-keys";
import { createLogger } from "../../runtime/src/logger";
import { createRuntime } from "../../runtime/src/runtime";
import { LocalSecretStore } from "../../runtime/src/secrets/local-secret-store";
import { freshTables } from "../support/dynamodb";

describe("logs", () => {
  it("are JSON lines with the request id, and never carry tokens, secrets or session ids", async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, callback) {
        lines.push(...chunk.toString().split("\n").filter(Boolean));
        callback();
      },
    });
    const tables = await freshTables("logging");
    const dataDir = await mkdtemp(join(tmpdir(), "hcp-logging-"));
    const env = loadEnv({ HYBRID_CICD_TABLE_PREFIX: tables.prefix, DYNAMODB_ENDPOINT: tables.endpoint });
    const runtime = createRuntime({
      env,
      doc: tables.doc,
      secretStore: await LocalSecretStore.open(dataDir),
      logger: createLogger({ level: "debug", destination }),
    });
    await runtime.workloadKeys.ensureRootKey();
    const server = createServer(createApp(runtime, { secureCookies: false }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const secrets: string[] = [];
      const { token: admin } = await runtime.credentials.createApiToken(
        { role: "admin", name: "log" },
        systemContext("test"),
      );
      secrets.push(admin);
      const bearer = { authorization: `Bearer ${admin}`, "content-type": "application/json" };
      const registration = await (
        await fetch(`${url}/agents/registration-tokens`, { method: "POST", headers: bearer, body: "{}" })
      ).json();
      secrets.push(registration.token);
      const registered = await (
        await fetch(`${url}/agents/register`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ registration_token: registration.token, name: "a", region: "eu-west-1" }),
        })
      ).json();
      secrets.push(registered.workload_identity_secret);
      const identity = {
        agentId: registered.agent_id,
        key: decodeAgentSecret(registered.workload_identity_secret),
      };
      await signedFetch(url, identity, "GET", `/agents/${identity.agentId}/config`);
      const link = await runtime.sessions.createSigninLink(
        { userId: "local-admin", role: "admin" },
        systemContext("test"),
      );
      secrets.push(link.token);
      const signin = await fetch(`${url}/auth/signin-link?token=${link.token}`, { redirect: "manual" });
      const sessionId = /hcp_session=([^;]+)/.exec(signin.headers.get("set-cookie") ?? "")![1]!;
      secrets.push(sessionId);
      await fetch(`${url}/auth/logout?session_id=${sessionId}`, {
        method: "POST",
        headers: { "x-request-id": "logout-1" },
      });
      await fetch(`${url}/jobs`, { headers: { authorization: "Bearer hcp_wrong" } });

      const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      const requests = parsed.filter((line) => line.msg === "request");
      expect(requests.length).toBeGreaterThanOrEqual(6);
      expect(requests.every((line) => typeof line.request_id === "string")).toBe(true);
      expect(requests.find((line) => line.request_id === "logout-1")).toMatchObject({
        path: "/auth/logout",
        status: 200,
      });
      const text = lines.join("\n");
      for (const secret of secrets) expect(text).not.toContain(secret);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await tables.cleanup();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
