import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyRotation, RotationNotSupportedError } from "../../runtime/src/domain/secrets/key-rotation";
import { secretId } from "../../runtime/src/secrets/catalog";
import { LocalSecretStore } from "../../runtime/src/secrets/local-secret-store";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";

let cp: TestControlPlane;
let store: LocalSecretStore;
let rotation: KeyRotation;
const context = { requestId: "rotation-test", principal: { type: "system" as const, id: "rotation" } };
const steps = ["createSecret", "setSecret", "testSecret", "finishSecret"] as const;

beforeAll(async () => {
  cp = await startTestControlPlane("key-rotation");
  store = await LocalSecretStore.open(cp.dataDir);
  rotation = new KeyRotation(
    store,
    (tx) => cp.runtime.store.commit(tx),
    () => cp.runtime.store.transaction(),
  );
});
afterAll(() => cp.close());

describe("the first rotation of a key (what `pulumi up` starts on AWS)", () => {
  it("creates the audit signing key through the four steps, idempotently, each step audited", async () => {
    const id = `${randomUUID()}/audit-signing-key`;
    await store.createSecret(id);
    const token = randomUUID();
    for (const step of steps)
      await rotation.step({ secretId: id, key: "auditSigningKey", token, step }, context);
    for (const step of steps) {
      expect(
        (await rotation.step({ secretId: id, key: "auditSigningKey", token, step }, context)).outcome,
      ).toBe("already current");
    }
    const current = await store.getSecretValue(id, "AWSCURRENT");
    expect(current?.versionId).toBe(token);
    expect(await store.getSecretValue(id, "AWSPENDING")).toBeUndefined();
    const events = await cp.runtime.audit.list({ action: "secret.rotate.finish", limit: 10, order: "desc" });
    expect(events.events.some((event) => event.details?.version_id === token)).toBe(true);
  });

  it("resumes after a failure between steps and keeps the first created material", async () => {
    const id = secretId(`${randomUUID()}/`, "workloadIdentityRootKey");
    await store.createSecret(id);
    const token = randomUUID();
    await rotation.step(
      { secretId: id, key: "workloadIdentityRootKey", token, step: "createSecret" },
      context,
    );
    const pending = await store.getSecretValue(id, "AWSPENDING");
    await rotation.step(
      { secretId: id, key: "workloadIdentityRootKey", token, step: "createSecret" },
      context,
    );
    for (const step of steps)
      await rotation.step({ secretId: id, key: "workloadIdentityRootKey", token, step }, context);
    const current = await store.getSecretValue(id, "AWSCURRENT");
    expect(current?.value).toBe(pending?.value);
    expect(Buffer.from(current!.value, "base64url")).toHaveLength(32);
  });

  it("refuses to rotate a key that already has a current version, changing nothing", async () => {
    const id = `${randomUUID()}/workload-identity-root-key`;
    const first = await store.ensureSecret(id, () => Buffer.alloc(32, 1).toString("base64url"));
    await expect(
      rotation.step(
        { secretId: id, key: "workloadIdentityRootKey", token: randomUUID(), step: "createSecret" },
        context,
      ),
    ).rejects.toBeInstanceOf(RotationNotSupportedError);
    expect(await store.listVersions(id)).toHaveLength(1);
    expect((await store.getSecretValue(id))?.versionId).toBe(first.versionId);
  });

  it("refuses finishSecret for a version that was never created", async () => {
    const id = `${randomUUID()}/audit-signing-key`;
    await expect(
      rotation.step(
        { secretId: id, key: "auditSigningKey", token: randomUUID(), step: "finishSecret" },
        context,
      ),
    ).rejects.toThrow(/createSecret first/);
  });
});
