import { randomUUID } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Agent } from "../../runtime/src/agent/agent";
import { ControlPlaneClient } from "../../runtime/src/agent/client";
import { AgentKeyRing } from "../../runtime/src/agent/key-ring";
import { type AgentIdentity, signedFetch } from "../../runtime/src/agent/signed-fetch";
import { SystemFigures } from "../../runtime/src/agent/system-figures";
import { systemContext } from "../../runtime/src/domain/principal";
import { RotationInProgressError, SecretRotation } from "../../runtime/src/domain/secrets/key-rotation";
import { deriveAgentKey, encodeAgentSecret } from "../../runtime/src/identity/agent-keys";
import { runStep } from "../../runtime/src/lambda/rotation";
import { createLogger } from "../../runtime/src/logger";
import { secretId } from "../../runtime/src/secrets/catalog";
import type { SecretStore } from "../../runtime/src/secrets/secret-store";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";

/**
 * Secret rotation end to end over DynamoDB Local and the local secret store: live agents through a
 * whole root-key rotation, faults at every step, an agent that was offline, abort, the audit signing
 * key and OAuth client secrets.
 */

// Live agents and real waits: generous limits, the assertions never depend on timing.
vi.setConfig({ testTimeout: 120_000 });

const GRACE_SECONDS = 3;
let cp: TestControlPlane;
const context = systemContext("rotation-test");
const steps = ["createSecret", "setSecret", "testSecret", "finishSecret"] as const;

beforeAll(async () => {
  cp = await startTestControlPlane("key-rotation", {
    env: {
      HYBRID_CICD_HEARTBEAT_INTERVAL_SECONDS: "1",
      HYBRID_CICD_CLAIM_INTERVAL_SECONDS: "1",
      HYBRID_CICD_ROTATION_GRACE_SECONDS: String(GRACE_SECONDS),
      HYBRID_CICD_ROTATION_ACK_TIMEOUT_SECONDS: "600",
    },
  });
});
afterAll(() => cp.close());

const rootId = () => secretId(cp.runtime.env.HYBRID_CICD_SECRET_PREFIX, "workloadIdentityRootKey");

async function eventually<T>(probe: () => Promise<T | undefined>, what: string, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** At most one AWSCURRENT, exactly one if any version exists. */
async function expectOneCurrent(store: SecretStore, id: string) {
  const versions = await store.listVersions(id);
  expect(versions.filter((version) => version.stages.includes("AWSCURRENT"))).toHaveLength(1);
}

async function heartbeat(identity: AgentIdentity, plane = cp) {
  return plane.agentRequest(identity, "POST", `/agents/${identity.agentId}/heartbeat`, {
    cpu_percent: 1,
    memory_percent: 1,
    disk_percent: 1,
    jobs_queued: 0,
    jobs_completed: 0,
    uptime_seconds: 1,
  });
}

const heartbeatTo = (plane: TestControlPlane, identity: AgentIdentity) => heartbeat(identity, plane);

/** Runs the remaining steps until the rotation is no longer under way. */
async function finishRotation(engine = cp.runtime.rotation) {
  return eventually(async () => {
    const view = await engine.advance("workloadIdentityRootKey", context);
    return view === undefined || view.status !== "in_progress" ? (view ?? null) : undefined;
  }, "the rotation to finish");
}

describe("a root key rotation with three live agents heartbeating throughout", () => {
  it("fails none of their requests, switches their keys without a restart, then refuses the old key after the grace window", async () => {
    const failures: string[] = [];
    const realFetch = globalThis.fetch;
    // Every request the agents send, answered by the control plane: none may fail.
    const agentIds = new Set<string>();
    globalThis.fetch = async (input, init) => {
      const response = await realFetch(input, init);
      const url = String(input instanceof Request ? input.url : input);
      const probe = new Headers(init?.headers).has("x-test-probe");
      if (!probe && [...agentIds].some((id) => url.includes(id)) && response.status >= 400)
        failures.push(`${init?.method ?? "GET"} ${url} → ${response.status}`);
      return response;
    };
    const agents: { agent: Agent; ring: AgentKeyRing; oldKey: Uint8Array; run: Promise<number> }[] = [];
    try {
      for (let index = 0; index < 3; index++) {
        const identity = await cp.registerAgent({ name: `live-${index}` });
        agentIds.add(identity.agentId);
        const ring = new AgentKeyRing(identity.agentId, identity.key);
        const workDir = await mkdtemp(join(tmpdir(), "hcp-rotation-agent-"));
        const agent = new Agent({
          client: new ControlPlaneClient({ baseUrl: cp.url, identity: ring }),
          keyRing: ring,
          identity: {
            agent_id: identity.agentId,
            url: cp.url,
            workload_identity_secret: encodeAgentSecret(identity.key),
          } as never,
          workDir,
          once: false,
          logger: createLogger({ level: "silent" }),
          figures: new SystemFigures(workDir),
          jobEnvironment: {},
        });
        agents.push({ agent, ring, oldKey: identity.key, run: agent.run() });
      }
      const admin = await cp.token("admin");
      const before = (await cp.runtime.secretStore.getSecretValue(rootId()))!.versionId;

      const started = await cp.request("POST", "/secrets/workload-identity-root-key/rotate", {
        token: admin,
      });
      expect(started.status).toBe(202);
      expect(started.body.status).toBe("in_progress");

      // A second rotate while this one is under way: 409 naming it.
      const second = await cp.request("POST", "/secrets/workload-identity-root-key/rotate", { token: admin });
      expect(second.status).toBe(409);
      expect(second.body.type).toBe("/problems/rotation-in-progress");
      expect(second.body.rotation_id).toBe(started.body.rotation_id);

      // Every agent learns its pending key from its heartbeat replies and acknowledges by signing with it.
      await eventually(
        async () =>
          agents.every(({ ring }) => ring.pendingVersion === started.body.rotation_id) ? true : undefined,
        "every agent to hold its pending key",
      );
      const listed = await eventually(async () => {
        const response = await cp.request("GET", "/secrets", { token: await cp.token("auditor") });
        const root = response.body.secrets.find(
          (secret: { name: string }) => secret.name === "workload-identity-root-key",
        );
        return root.rotation?.acknowledged === 3 ? response : undefined;
      }, "three acknowledgements");
      expect(JSON.stringify(listed.body)).not.toContain(
        (await cp.runtime.secretStore.getSecretValue(rootId()))!.value,
      );

      const finished = await finishRotation();
      expect(finished?.status).toBe("finished");
      const current = await cp.runtime.secretStore.getSecretValue(rootId());
      expect(current?.versionId).toBe(started.body.rotation_id);
      expect((await cp.runtime.secretStore.getSecretValue(rootId(), "AWSPREVIOUS"))?.versionId).toBe(before);
      await expectOneCurrent(cp.runtime.secretStore, rootId());

      // The agents promote their pending key in place (no restart).
      await eventually(
        async () =>
          agents.every(
            ({ ring, agent: _ }) =>
              ring.pendingVersion === undefined &&
              Buffer.from(ring.key).equals(
                deriveAgentKey(Buffer.from(current!.value, "base64url"), ring.agentId, 0),
              ),
          )
            ? true
            : undefined,
        "every agent to switch to its new key",
      );

      // After the grace window, the old key alone is refused with a problem type saying it was rotated.
      const stale = { agentId: agents[0]!.ring.agentId, key: agents[0]!.oldKey };
      const refused = await eventually(
        async () => {
          const response = await signedFetch<{ type: string }>(
            cp.url,
            stale,
            "POST",
            `/agents/${stale.agentId}/heartbeat`,
            {
              cpu_percent: 1,
              memory_percent: 1,
              disk_percent: 1,
              jobs_queued: 0,
              jobs_completed: 0,
              uptime_seconds: 1,
            },
            { headers: { "x-test-probe": "1" } },
          );
          return response.status === 401 ? response : undefined;
        },
        "the old key to be refused",
        20_000,
      );
      expect(refused.body.type).toBe("/problems/key-rotated");

      // The agents keep heartbeating with their new keys past the grace window.
      const beats = await cp.runtime.agents.get(agents[1]!.ring.agentId);
      await eventually(async () => {
        const now = await cp.runtime.agents.get(agents[1]!.ring.agentId);
        return now.last_heartbeat_at !== beats.last_heartbeat_at ? true : undefined;
      }, "a heartbeat after the grace window");

      const history = await cp.request("GET", "/secrets/workload-identity-root-key/rotations", {
        token: await cp.token("auditor"),
      });
      const record = history.body.rotations.find(
        (rotation: { rotation_id: string }) => rotation.rotation_id === started.body.rotation_id,
      );
      expect(record.steps.map((step: { step: string }) => step.step)).toEqual([
        "started",
        "createSecret",
        "setSecret",
        "testSecret",
        "finishSecret",
      ]);
      const audited = await cp.runtime.audit.list({
        actionPrefix: "secret.rotate.",
        limit: 200,
        order: "desc",
      });
      const actions = audited.events
        .filter((event) => event.details?.rotation_id === started.body.rotation_id)
        .map((event) => event.action);
      for (const action of ["start", "create", "set", "test", "finish", "acknowledge"])
        expect(actions).toContain(`secret.rotate.${action}`);
    } finally {
      for (const { agent } of agents) agent.shutdown();
      await Promise.all(agents.map(({ run }) => run.catch(() => 1)));
      globalThis.fetch = realFetch;
    }
    expect(failures).toEqual([]);
  }, 120_000);
});

describe("faults at every step", () => {
  /** A secret store whose next call of `method` fails once. */
  function failingOnce(store: SecretStore, method: keyof SecretStore): SecretStore {
    let armed = true;
    return new Proxy(store, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (property !== method || typeof value !== "function") return value.bind?.(target) ?? value;
        return (...args: unknown[]) => {
          if (armed) {
            armed = false;
            return Promise.reject(new Error(`injected ${String(method)} failure`));
          }
          return value.apply(target, args);
        };
      },
    });
  }

  const engineWith = (store: SecretStore) =>
    new SecretRotation(cp.runtime.store, store, cp.runtime.env.HYBRID_CICD_SECRET_PREFIX, cp.runtime.clock, {
      ackTimeoutSeconds: 0,
      graceSeconds: 600,
    });

  it("resumes after a failed store call, a process death between steps and repeated steps, never leaving two AWSCURRENT or a locked-out agent", async () => {
    const agent = await cp.registerAgent({ name: "fault-agent" });
    const store = cp.runtime.secretStore;
    const token = randomUUID();
    const failures: Record<(typeof steps)[number], keyof SecretStore> = {
      createSecret: "putSecretValue",
      setSecret: "listVersions",
      testSecret: "listVersions",
      finishSecret: "updateSecretVersionStage",
    };
    for (const step of steps) {
      // The store call fails: nothing is half done, the agent still authenticates.
      await expect(
        engineWith(failingOnce(store, failures[step])).step(
          { key: "workloadIdentityRootKey", token, step },
          context,
        ),
      ).rejects.toThrow(/injected/);
      expect((await heartbeat(agent)).status).toBe(200);
      await expectOneCurrent(store, rootId());
      // The process dies: a fresh engine (no memory) retries the step with the same token, twice.
      const first = await engineWith(store).step({ key: "workloadIdentityRootKey", token, step }, context);
      const again = await engineWith(store).step({ key: "workloadIdentityRootKey", token, step }, context);
      expect(first.step).toBe(step);
      expect(again.step).toBe(step);
      expect((await heartbeat(agent)).status).toBe(200);
      await expectOneCurrent(store, rootId());
    }
    expect((await store.getSecretValue(rootId()))?.versionId).toBe(token);
    expect(await store.getSecretValue(rootId(), "AWSPENDING")).toBeUndefined();
    const versions = (await store.listVersions(rootId())).filter((version) => version.versionId === token);
    expect(versions).toHaveLength(1);
    // Every step of a finished rotation answers as such.
    for (const step of steps) {
      expect(
        (await engineWith(store).step({ key: "workloadIdentityRootKey", token, step }, context)).outcome,
      ).toBe("already finished");
    }
  });

  it("a crash after AWSCURRENT moved but before the finish was recorded: both keys work, abort is refused, finishSecret completes", async () => {
    const agent = await cp.registerAgent({ name: "crash-agent" });
    const store = cp.runtime.secretStore;
    const token = randomUUID();
    for (const step of steps.slice(0, 3))
      await engineWith(store).step({ key: "workloadIdentityRootKey", token, step }, context);
    const pending = (await store.getSecretValue(rootId(), "AWSPENDING"))!;
    // The store move happens, then the process dies before its DynamoDB transaction.
    const dying = new SecretRotation(
      Object.create(cp.runtime.store, { commit: { value: () => Promise.reject(new Error("process died")) } }),
      store,
      cp.runtime.env.HYBRID_CICD_SECRET_PREFIX,
      cp.runtime.clock,
      { ackTimeoutSeconds: 0, graceSeconds: 600 },
    );
    await expect(
      dying.step({ key: "workloadIdentityRootKey", token, step: "finishSecret" }, context),
    ).rejects.toThrow(/process died/);
    expect((await store.getSecretValue(rootId()))?.versionId).toBe(token);
    await expectOneCurrent(store, rootId());
    // The agent signing with its old key (now AWSPREVIOUS, no deadline recorded) and with the new one both work.
    expect((await heartbeat(agent)).status).toBe(200);
    const newKey = deriveAgentKey(Buffer.from(pending.value, "base64url"), agent.agentId, 0);
    expect((await heartbeat({ agentId: agent.agentId, key: newKey })).status).toBe(200);
    await expect(cp.runtime.rotation.abort("workloadIdentityRootKey", context)).rejects.toThrow(
      /can only be finished/,
    );
    const done = await engineWith(store).step(
      { key: "workloadIdentityRootKey", token, step: "finishSecret" },
      context,
    );
    expect(done.outcome).toBe("current");
    expect((await cp.runtime.store.secretRotations.state(rootId()))?.active_rotation).toBeUndefined();
  });
});

describe("an agent offline during the whole rotation", () => {
  it("is reported by testSecret, refused with key-rotated after the grace window, and can re-enrol", async () => {
    // Its own control plane: only these two agents exist.
    const plane = await startTestControlPlane("rotation-offline", {
      env: { HYBRID_CICD_ROTATION_GRACE_SECONDS: String(GRACE_SECONDS) },
    });
    try {
      await offlineAgentScenario(plane);
    } finally {
      await plane.close();
    }
  }, 60_000);

  async function offlineAgentScenario(cp: TestControlPlane) {
    const heartbeat = (identity: AgentIdentity) => heartbeatTo(cp, identity);
    const offline = await cp.registerAgent({ name: "offline" });
    const online = await cp.registerAgent({ name: "online" });
    expect((await heartbeat(offline)).status).toBe(200);
    // Its last heartbeat is long past: the agent is dead, not waited for.
    await cp.runtime.store.doc.send(
      new UpdateCommand({
        TableName: cp.runtime.store.tables.agents,
        Key: { agent_id: offline.agentId },
        UpdateExpression: "SET last_heartbeat_at = :old, registered_at = :old",
        ExpressionAttributeValues: { ":old": "2020-01-01T00:00:00.000Z" },
      }),
    );
    const ring = new AgentKeyRing(online.agentId, online.key);
    const beat = async () => {
      const response = await heartbeat(ring);
      expect(response.status).toBe(200);
      await ring.learn(response.body.key_rotation);
    };
    const started = await cp.runtime.rotation.start("workloadIdentityRootKey", { trigger: "api" }, context);
    await cp.runtime.rotation.advance("workloadIdentityRootKey", context);
    await beat(); // receives the pending key
    await beat(); // signs with it: acknowledged
    const finished = await finishRotation(cp.runtime.rotation);
    expect(finished?.status).toBe("finished");
    const test = finished!.steps.find((step) => step.step === "testSecret")!;
    expect(test.details?.offline).toContain(offline.agentId);
    expect(test.details?.laggards).toEqual([]);
    const refused = await eventually(
      async () => {
        const response = await heartbeat(offline);
        return response.status === 401 ? response : undefined;
      },
      "the offline agent's key to be refused",
      20_000,
    );
    expect(refused.body.type).toBe("/problems/key-rotated");
    const reenrolled = await cp.registerAgent({ name: "offline-again" });
    expect((await heartbeat(reenrolled)).status).toBe(200);
    expect(started.rotation_id).toBe(finished?.rotation_id);
  }

  it("an active agent that never acknowledges is a laggard: testSecret waits, then passes after the timeout naming it", async () => {
    const laggard = await cp.registerAgent({ name: "laggard" });
    expect((await heartbeat(laggard)).status).toBe(200);
    const engine = new SecretRotation(
      cp.runtime.store,
      cp.runtime.secretStore,
      cp.runtime.env.HYBRID_CICD_SECRET_PREFIX,
      cp.runtime.clock,
      { ackTimeoutSeconds: 2, graceSeconds: 600 },
    );
    await engine.start("workloadIdentityRootKey", { trigger: "api" }, context);
    const waiting = await engine.advance("workloadIdentityRootKey", context);
    expect(waiting?.step).toBe("setSecret");
    const finished = await finishRotation(engine);
    const test = finished!.steps.find((step) => step.step === "testSecret")!;
    expect(test.outcome).toBe("timed out waiting for agents");
    expect(test.details?.laggards).toContain(laggard.agentId);
    // Inside the grace window its old key still works, and the reply hands it the new key.
    const response = await heartbeat(laggard);
    expect(response.status).toBe(200);
    expect(response.body.key_rotation.status).toBe("promoted");
    expect(response.body.key_rotation.workload_identity_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
  }, 60_000);
});

describe("abort, and the other secrets", () => {
  it("abort before finishSecret removes AWSPENDING and agents drop it", async () => {
    const agent = await cp.registerAgent({ name: "abort-agent" });
    const ring = new AgentKeyRing(agent.agentId, agent.key);
    const admin = await cp.token("admin");
    const before = (await cp.runtime.secretStore.getSecretValue(rootId()))!.versionId;
    const started = await cp.request("POST", "/secrets/workload-identity-root-key/rotate", { token: admin });
    expect(started.status).toBe(202);
    await eventually(async () => {
      const response = await heartbeat(ring);
      await ring.learn(response.body.key_rotation);
      return ring.pendingVersion ? true : undefined;
    }, "the pending key");
    const aborted = await cp.request("POST", "/secrets/workload-identity-root-key/rotation/abort", {
      token: admin,
    });
    expect(aborted.status).toBe(200);
    expect(aborted.body.status).toBe("aborted");
    expect(await cp.runtime.secretStore.getSecretValue(rootId(), "AWSPENDING")).toBeUndefined();
    expect((await cp.runtime.secretStore.getSecretValue(rootId()))?.versionId).toBe(before);
    const response = await heartbeat(ring);
    expect(response.status).toBe(200);
    expect(response.body.key_rotation?.status).not.toBe("pending");
    await ring.learn(response.body.key_rotation);
    expect(ring.pendingVersion).toBeUndefined();
    expect((await heartbeat(ring)).status).toBe(200);
    const again = await cp.request("POST", "/secrets/workload-identity-root-key/rotation/abort", {
      token: admin,
    });
    expect(again.status).toBe(409);
  });

  it("rotates the audit signing key: new digests carry the new key id, old digests still verify", async () => {
    const admin = await cp.token("admin");
    const before = await cp.request("POST", "/audit/digests", { token: admin });
    expect(before.status).toBe(201);
    const rotated = await cp.request("POST", "/secrets/audit-signing-key/rotate", { token: admin });
    expect(rotated.status).toBe(200);
    expect(rotated.body.status).toBe("finished");
    const after = await cp.request("POST", "/audit/digests", { token: admin });
    expect(after.body.key_id).not.toBe(before.body.key_id);
    const verified = await cp.request("GET", "/audit/verify", { token: admin });
    expect(verified.status).toBe(200);
    expect(verified.body.ok).toBe(true);
  });

  it("rotates OAuth client secrets set by an admin, then promoted", async () => {
    const admin = await cp.token("admin");
    const refused = await cp.request("POST", "/secrets/oauth-client-secrets/rotate", { token: admin });
    expect(refused.status).toBe(400);
    const rotated = await cp.request("POST", "/secrets/oauth-client-secrets/rotate", {
      token: admin,
      body: { client_secrets: { github: "new-github-secret" } },
    });
    expect(rotated.status).toBe(200);
    const id = secretId(cp.runtime.env.HYBRID_CICD_SECRET_PREFIX, "oauthClientSecrets");
    expect(JSON.parse((await cp.runtime.secretStore.getSecretValue(id))!.value).github).toBe(
      "new-github-secret",
    );
    const listed = await cp.request("GET", "/secrets", { token: admin });
    expect(JSON.stringify(listed.body)).not.toContain("new-github-secret");
    expect(await cp.request("GET", "/secrets", { token: await cp.token("operator") })).toMatchObject({
      status: 403,
    });
  });

  it("a rotation started through the engine refuses a second one by name", async () => {
    const first = await cp.runtime.rotation.start("workloadIdentityRootKey", { trigger: "api" }, context);
    await expect(
      cp.runtime.rotation.start("workloadIdentityRootKey", { trigger: "schedule" }, context),
    ).rejects.toBeInstanceOf(RotationInProgressError);
    const aborted = await cp.runtime.rotation.abort("workloadIdentityRootKey", context);
    expect(aborted.rotation_id).toBe(first.rotation_id);
  });
});

describe("the first rotation of a key (what `pulumi up` starts on AWS)", () => {
  it("creates a key that has no version yet through the four steps, idempotently, each step audited", async () => {
    const prefix = `${randomUUID()}/`;
    const engine = new SecretRotation(cp.runtime.store, cp.runtime.secretStore, prefix, cp.runtime.clock);
    const id = secretId(prefix, "auditSigningKey");
    await cp.runtime.secretStore.createSecret(id);
    const token = randomUUID();
    for (const step of steps) await engine.step({ key: "auditSigningKey", token, step }, context);
    for (const step of steps)
      expect((await engine.step({ key: "auditSigningKey", token, step }, context)).outcome).toBe(
        "already finished",
      );
    expect((await cp.runtime.secretStore.getSecretValue(id))?.versionId).toBe(token);
    expect(await cp.runtime.secretStore.getSecretValue(id, "AWSPENDING")).toBeUndefined();
    const events = await cp.runtime.audit.list({ action: "secret.rotate.finish", limit: 20, order: "desc" });
    expect(events.events.some((event) => event.details?.version_id === token)).toBe(true);
  });

  it("refuses finishSecret for a rotation that was never started", async () => {
    await expect(
      cp.runtime.rotation.step(
        { key: "auditSigningKey", token: randomUUID(), step: "finishSecret" },
        context,
      ),
    ).rejects.toThrow(/createSecret first/);
  });
});

describe("where a rotation function does the steps (Secrets Manager)", () => {
  it("one click asks for a rotation with a fresh token, audited, and runs no step itself; 409 while one is under way", async () => {
    const requested: [string, string][] = [];
    const store = cp.runtime.secretStore;
    const remote = Object.create(store, {
      startRotation: { value: async (id: string, token: string) => void requested.push([id, token]) },
    }) as SecretStore;
    const engine = new SecretRotation(
      cp.runtime.store,
      remote,
      cp.runtime.env.HYBRID_CICD_SECRET_PREFIX,
      cp.runtime.clock,
    );
    const before = await store.listVersions(rootId());
    const view = await engine.start("workloadIdentityRootKey", { trigger: "api" }, context);
    expect(view.step).toBe("requested");
    expect(requested).toEqual([[rootId(), view.rotation_id]]);
    expect(await engine.advance("workloadIdentityRootKey", context)).toBeUndefined();
    expect(await store.listVersions(rootId())).toHaveLength(before.length);
    const audited = await cp.runtime.audit.list({ action: "secret.rotate.request", limit: 5, order: "desc" });
    expect(audited.events[0]?.details?.rotation_id).toBe(view.rotation_id);
    await expect(
      engine.start("oauthClientSecrets", { trigger: "api", clientSecrets: { github: "x" } }, context),
    ).rejects.toThrow(/pulumi config set/);
    // Secrets Manager's createSecret (the rotation function) takes the lock; a second click gets 409.
    await cp.runtime.rotation.step(
      { key: "workloadIdentityRootKey", token: view.rotation_id, step: "createSecret" },
      context,
    );
    await expect(engine.start("workloadIdentityRootKey", { trigger: "api" }, context)).rejects.toBeInstanceOf(
      RotationInProgressError,
    );
    await cp.runtime.rotation.abort("workloadIdentityRootKey", context);
    // The function, called again with the aborted token, removes nothing it should not and says so.
    expect(
      (
        await cp.runtime.rotation.step(
          { key: "workloadIdentityRootKey", token: view.rotation_id, step: "setSecret" },
          context,
        )
      ).outcome,
    ).toBe("already aborted");
  });

  it("the rotation Lambda's testSecret waits for agents within its invocation time, then passes", async () => {
    const agent = await cp.registerAgent({ name: "lambda-agent" });
    const ring = new AgentKeyRing(agent.agentId, agent.key);
    // Only this agent is active: the others registered by earlier tests are marked long gone.
    for (const other of (await cp.runtime.agents.list({ limit: 100 })).agents) {
      if (other.agent_id === agent.agentId) continue;
      await cp.runtime.store.doc.send(
        new UpdateCommand({
          TableName: cp.runtime.store.tables.agents,
          Key: { agent_id: other.agent_id },
          UpdateExpression: "SET last_heartbeat_at = :old, registered_at = :old",
          ExpressionAttributeValues: { ":old": "2020-01-01T00:00:00.000Z" },
        }),
      );
    }
    const token = randomUUID();
    for (const step of ["createSecret", "setSecret"] as const)
      await runStep(cp.runtime, "workloadIdentityRootKey", { Step: step, ClientRequestToken: token });
    // The agent heartbeats meanwhile: it receives its pending key, then acknowledges it.
    const beating = (async () => {
      // Until it has its pending key and has promoted it (at most 50 beats).
      for (let beat = 0; beat < 50 && (beat < 2 || ring.pendingVersion !== undefined); beat++) {
        const response = await heartbeat(ring);
        expect(response.status).toBe(200);
        await ring.learn(response.body.key_rotation);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    })();
    const tested = await runStep(
      cp.runtime,
      "workloadIdentityRootKey",
      { Step: "testSecret", ClientRequestToken: token },
      { getRemainingTimeInMillis: () => 600_000 },
      100,
    );
    expect(tested.outcome).toBe("every active agent acknowledged");
    await runStep(cp.runtime, "workloadIdentityRootKey", { Step: "finishSecret", ClientRequestToken: token });
    await beating;
    expect((await cp.runtime.secretStore.getSecretValue(rootId()))?.versionId).toBe(token);
  });
});
