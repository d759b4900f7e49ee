import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemContext } from "../../runtime/src/domain/principal";
import { signRequest } from "../../runtime/src/identity/http-signatures";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";

let cp: TestControlPlane;
let admin: string;
const figures = {
  cpu_percent: 12.5,
  memory_percent: 40,
  disk_percent: 55,
  jobs_queued: 0,
  jobs_completed: 3,
  uptime_seconds: 3600,
};

beforeAll(async () => {
  cp = await startTestControlPlane("agents");
  admin = await cp.token("admin");
});
afterAll(() => cp.close());

async function registrationToken(): Promise<string> {
  return (
    await cp.request("POST", "/agents/registration-tokens", { token: admin, body: { ttl_seconds: 600 } })
  ).body.token;
}

describe("registration", () => {
  it("issues one-time registration tokens to admins only", async () => {
    const ok = await cp.request("POST", "/agents/registration-tokens", { token: admin });
    expect(ok.status).toBe(201);
    expect(ok.body).toEqual({
      token: expect.stringMatching(/^hcr_/),
      environment: "staging",
      expires_at: expect.any(String),
    });
    const operator = await cp.request("POST", "/agents/registration-tokens", {
      token: await cp.token("operator"),
    });
    expect(operator.status).toBe(403);
    expect((await cp.request("POST", "/agents/registration-tokens")).status).toBe(401);
  });

  it("registers an agent once and shows its 32-byte secret once", async () => {
    const token = await registrationToken();
    const body = {
      registration_token: token,
      name: "builder 1",
      region: "eu-west-1",
      tags: ["linux"],
      version: "1.0.0",
    };
    const first = await cp.request("POST", "/agents/register", { body });
    expect(first.status).toBe(201);
    expect(first.body.agent_id).toMatch(/^agt_[0-9a-z]{26}$/);
    expect(Buffer.from(first.body.workload_identity_secret, "base64url")).toHaveLength(32);
    expect(first.body.workload_identity_secret).not.toMatch(/=/);

    const replay = await cp.request("POST", "/agents/register", { body: { ...body, name: "builder 2" } });
    expect(replay.status).toBe(401);
    const stored = JSON.stringify(await cp.runtime.store.agents.get(first.body.agent_id));
    expect(stored).not.toContain(first.body.workload_identity_secret);
  });

  it("refuses invalid registrations without consuming the token", async () => {
    const token = await registrationToken();
    const invalid = await cp.request("POST", "/agents/register", {
      body: { registration_token: token, name: "", region: "EU WEST" },
    });
    expect(invalid.status).toBe(400);
    expect(new Set(invalid.body.errors.map((error: { field: string }) => error.field))).toEqual(
      new Set(["body.name", "body.region"]),
    );
    const valid = await cp.request("POST", "/agents/register", {
      body: { registration_token: token, name: "ok", region: "eu-west-1" },
    });
    expect(valid.status).toBe(201);
  });

  it("refuses an expired registration token", async () => {
    let now = Date.now();
    const local = await startTestControlPlane("agents-expired", { clock: () => new Date(now) });
    try {
      const { token } = await local.runtime.agents.createRegistrationToken(systemContext("test"), 60);
      now += 61_000;
      const late = await local.request("POST", "/agents/register", {
        body: { registration_token: token, name: "late", region: "eu-west-1" },
      });
      expect(late.status).toBe(401);
    } finally {
      await local.close();
    }
  });
});

describe("signed agent endpoints", () => {
  it("serves config and accepts heartbeats signed by the agent", async () => {
    const agent = await cp.registerAgent({ tags: ["linux"], environment: "staging" });
    const config = await cp.agentRequest(agent, "GET", `/agents/${agent.agentId}/config`);
    expect(config.status).toBe(200);
    expect(config.body).toMatchObject({
      agent_id: agent.agentId,
      deployment_targets: ["staging"],
      schedule_interval_seconds: expect.any(Number),
    });
    const heartbeat = await cp.agentRequest(agent, "POST", `/agents/${agent.agentId}/heartbeat`, figures);
    expect(heartbeat.status).toBe(200);
    expect(heartbeat.body).toEqual({
      status: "healthy",
      next_check_interval: 30,
      // The server-set timings the agent follows (job lifecycle, decision 005), and its jobs' verdicts.
      heartbeat_interval_seconds: 30,
      job_heartbeat_interval_seconds: 5,
      claim_interval_seconds: 5,
      lease_seconds: 120,
      cancel_grace_seconds: 10,
      log_chunk_max_bytes: 256 * 1024,
      jobs: [],
    });
    const view = await cp.request("GET", `/agents/${agent.agentId}`, { token: await cp.token("viewer") });
    expect(view.body).toMatchObject({ status: "healthy", last_figures: figures });
  });

  it("refuses an unsigned request, a user token, and another agent's signature", async () => {
    const agent = await cp.registerAgent();
    const other = await cp.registerAgent();
    const unsigned = await cp.request("GET", `/agents/${agent.agentId}/config`);
    expect(unsigned.status).toBe(401);
    expect(unsigned.headers.get("www-authenticate")).toMatch(/^Signature/);
    expect((await cp.request("GET", `/agents/${agent.agentId}/config`, { token: admin })).status).toBe(401);
    const crossed = await cp.agentRequest(other, "GET", `/agents/${agent.agentId}/config`);
    expect(crossed.status).toBe(403);
  });

  it("refuses a heartbeat with invalid figures, changing nothing", async () => {
    const agent = await cp.registerAgent();
    const response = await cp.agentRequest(agent, "POST", `/agents/${agent.agentId}/heartbeat`, {
      ...figures,
      cpu_percent: 140,
    });
    expect(response.status).toBe(400);
    expect(response.body.errors[0].field).toBe("body.cpu_percent");
    expect((await cp.runtime.store.agents.get(agent.agentId))?.last_heartbeat_at).toBeUndefined();
  });

  async function signedRaw(
    agent: { agentId: string; key: Uint8Array },
    path: string,
    body: string,
    tweak: (headers: Record<string, string>) => void = () => {},
    options: { created?: number; nonce?: string; key?: Uint8Array } = {},
  ) {
    const headers = await signRequest(
      { method: "POST", url: path, headers: { "content-type": "application/json" }, body },
      { keyId: agent.agentId, key: options.key ?? agent.key, created: options.created, nonce: options.nonce },
    );
    tweak(headers);
    return cp.request("POST", path, { rawBody: body, headers });
  }

  it("refuses tampered bodies, wrong keys, stale or future signatures and replayed nonces", async () => {
    const agent = await cp.registerAgent();
    const path = `/agents/${agent.agentId}/heartbeat`;
    const body = JSON.stringify(figures);

    const tampered = await signedRaw(agent, path, body);
    expect(tampered.status).toBe(200);
    const headers = await signRequest(
      { method: "POST", url: path, headers: { "content-type": "application/json" }, body },
      { keyId: agent.agentId, key: agent.key },
    );
    const changed = await cp.request("POST", path, { rawBody: body.replace("12.5", "13.5"), headers });
    expect(changed.status).toBe(401);
    expect(changed.body.detail).toMatch(/digest/i);

    const wrongKey = await signedRaw(agent, path, body, undefined, { key: new Uint8Array(32).fill(7) });
    expect(wrongKey.status).toBe(401);

    const stale = await signedRaw(agent, path, body, undefined, {
      created: Math.floor(Date.now() / 1000) - 330,
    });
    expect(stale.status).toBe(401);
    expect(stale.body.detail).toMatch(/more than 300 s ago/);

    const future = await signedRaw(agent, path, body, undefined, {
      created: Math.floor(Date.now() / 1000) + 330,
    });
    expect(future.status).toBe(401);
    expect(future.body.detail).toMatch(/future/i);

    const nonce = `nonce-${Date.now()}`;
    expect((await signedRaw(agent, path, body, undefined, { nonce })).status).toBe(200);
    const replay = await signedRaw(agent, path, body, undefined, { nonce });
    expect(replay.status).toBe(401);
    expect(replay.body.detail).toMatch(/nonce/i);
  });

  it("refuses a signature that does not cover a required component, and an unknown agent", async () => {
    const agent = await cp.registerAgent();
    const path = `/agents/${agent.agentId}/heartbeat`;
    const body = JSON.stringify(figures);
    const noDigest = await signedRaw(agent, path, body, (headers) => {
      headers["signature-input"] = headers["signature-input"]!.replace(' "content-digest"', "");
    });
    expect(noDigest.status).toBe(401);
    const stranger = { agentId: `agt_${"0".repeat(26)}`, key: agent.key };
    const unknown = await cp.agentRequest(stranger, "GET", `/agents/${stranger.agentId}/config`);
    expect(unknown.status).toBe(401);
  });

  it("refuses a revoked agent, and revocation is admin-only and happens once", async () => {
    const agent = await cp.registerAgent();
    const operator = await cp.request("POST", `/agents/${agent.agentId}/revoke`, {
      token: await cp.token("operator"),
    });
    expect(operator.status).toBe(403);
    const revoked = await cp.request("POST", `/agents/${agent.agentId}/revoke`, { token: admin });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ status: "dead", key_epoch: 1, revoked_at: expect.any(String) });
    const again = await cp.request("POST", `/agents/${agent.agentId}/revoke`, { token: admin });
    expect(again.status).toBe(409);
    const response = await cp.agentRequest(agent, "POST", `/agents/${agent.agentId}/heartbeat`, figures);
    expect(response.status).toBe(401);
    expect(response.body.detail).toMatch(/revoked/);
    expect((await cp.request("POST", `/agents/agt_${"1".repeat(26)}/revoke`, { token: admin })).status).toBe(
      404,
    );
  });
});

describe("listing agents", () => {
  it("filters by region and status and pages with a cursor", async () => {
    const local = await startTestControlPlane("agents-list");
    try {
      const ids: string[] = [];
      for (let index = 0; index < 3; index++)
        ids.push((await local.registerAgent({ region: "ap-south-1" })).agentId);
      const elsewhere = await local.registerAgent({ region: "us-east-1" });
      await local.agentRequest(elsewhere, "POST", `/agents/${elsewhere.agentId}/heartbeat`, figures);
      const viewer = await local.token("viewer");

      const region = await local.request("GET", "/agents?region=ap-south-1&limit=2", { token: viewer });
      expect(region.body.agents).toHaveLength(2);
      const rest = await local.request(
        "GET",
        `/agents?region=ap-south-1&limit=2&cursor=${region.body.next_cursor}`,
        { token: viewer },
      );
      expect(
        [...region.body.agents, ...rest.body.agents]
          .map((agent: { agent_id: string }) => agent.agent_id)
          .sort(),
      ).toEqual(ids.sort());

      const healthy = await local.request("GET", "/agents?status=healthy", { token: viewer });
      expect(healthy.body.agents.map((agent: { agent_id: string }) => agent.agent_id)).toEqual([
        elsewhere.agentId,
      ]);
      const dead = await local.request("GET", "/agents?status=dead", { token: viewer });
      expect(dead.body.agents).toHaveLength(3);
      expect((await local.request("GET", "/agents?status=sleepy", { token: viewer })).status).toBe(400);
    } finally {
      await local.close();
    }
  });
});
