import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GENESIS_HASH } from "../../runtime/src/domain/audit/audit-event";
import { digestTask, handler } from "../../runtime/src/lambda/scheduled";
import { startMaintenanceTimers } from "../../runtime/src/local/maintenance-timers";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";
import { eventually } from "../support/jobs";

/**
 * The scheduled digest: on AWS, EventBridge invokes the scheduled Lambda's handler with
 * `{"task":"digest"}`; locally, the maintenance timers run the same task. Either way a digest is signed
 * every interval, quiet ones too, and refusals counted in memory are written before the head is signed.
 */

let cp: TestControlPlane;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  cp = await startTestControlPlane("digest-schedule");
  // The scheduled function reads its configuration from the environment, as on AWS: the same tables
  // and secret store as the control plane under test.
  const env = {
    HYBRID_CICD_ENVIRONMENT: "test",
    HYBRID_CICD_TABLE_PREFIX: cp.runtime.env.HYBRID_CICD_TABLE_PREFIX,
    DYNAMODB_ENDPOINT: cp.runtime.env.DYNAMODB_ENDPOINT,
    HYBRID_CICD_DATA_DIR: cp.dataDir,
    HYBRID_CICD_SECRET_STORE: "local",
  };
  for (const [name, value] of Object.entries(env)) {
    saved[name] = process.env[name];
    process.env[name] = value;
  }
});
afterAll(async () => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await cp.close();
});

describe("the scheduled digest", () => {
  it("signs the head when EventBridge invokes the scheduled function with task digest", async () => {
    await cp.runtime.audit.record({
      action: "secret.read",
      actor: { type: "user", id: "scheduled-test" },
      target: { type: "secret", id: "x" },
      outcome: "success",
    });
    const head = (await cp.runtime.store.audit.head("main"))!;
    const result = await handler({ task: "digest" });
    expect(result.digest).toEqual({ digest_seq: 1, head_seq: head.seq });
    const stored = await cp.runtime.store.audit.latestDigest("main");
    expect(stored).toMatchObject({
      digest_seq: 1,
      reason: "interval",
      head_seq: head.seq,
      head_hash: head.hash,
      previous_digest_hash: GENESIS_HASH,
    });
  });

  it("signs a quiet interval too, linked to the digest before it", async () => {
    const before = (await cp.runtime.store.audit.latestDigest("main"))!;
    await handler({ task: "digest" });
    const after = (await cp.runtime.store.audit.latestDigest("main"))!;
    expect(after).toMatchObject({
      digest_seq: before.digest_seq + 1,
      head_seq: before.head_seq,
      previous_digest_hash: before.digest_hash,
      reason: "interval",
    });
    const check = await cp.request("GET", "/audit/verify", { token: await cp.token("auditor") });
    expect(check.body).toMatchObject({ ok: true });
  });

  it("runs on the local control plane's timer, writing counted refusals before it signs", async () => {
    // A refusal is counted in memory until its window ends; the digest task writes it first.
    expect((await cp.request("GET", "/jobs", { token: "hcp_not-a-token" })).status).toBe(401);
    const before = (await cp.runtime.store.audit.latestDigest("main"))!;
    const timers = startMaintenanceTimers(cp.runtime, [{ ...digestTask, everySeconds: () => 0.05 }]);
    try {
      const digest = await eventually(async () => {
        const latest = await cp.runtime.store.audit.latestDigest("main");
        return latest && latest.digest_seq > before.digest_seq ? latest : undefined;
      }, "a digest from the timer");
      const denied = await cp.runtime.store.audit.list({
        chain: "main",
        action: "request.denied",
        order: "desc",
        limit: 5,
      });
      expect(denied.items.length).toBeGreaterThan(0);
      expect(digest.head_seq).toBeGreaterThanOrEqual(denied.items[0]!.seq);
    } finally {
      await timers.stop();
    }
  });
});
