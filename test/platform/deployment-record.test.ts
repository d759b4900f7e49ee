import { describe, expect, test } from "vitest";
import { ControlPlane } from "../../platform/src/control-plane";
import { resourceTypes } from "../../platform/src/policy/resource-types";
import { type ResourceRecorder, useMocks } from "./support/pulumi-mocks";
import { runProgram } from "./support/stack-run";

/**
 * The deployment record accumulates (one item per deployment that changed something, never deleted)
 * and an unchanged program previews with no diff: everything the record's resources are given is the
 * same in two runs of the same program with the same inputs.
 */

const deployedAtType = "time:index/static:Static";

async function run(logRetentionDays: number): Promise<ResourceRecorder> {
  const recorder = await useMocks("records");
  await runProgram(recorder, () => {
    new ControlPlane("rec", { environment: "staging", kmsKey: "create", alarms: false, logRetentionDays });
  });
  return recorder;
}

const inputsOf = (recorder: ResourceRecorder, type: string, name: string) => recorder.one(type, name).inputs;

describe("the deployment record", () => {
  test("gets the same inputs in two runs of the same program: a second preview shows no diff", async () => {
    const first = await run(30);
    const second = await run(30);
    expect(inputsOf(second, deployedAtType, "rec-staging-deployed-at")).toEqual(
      inputsOf(first, deployedAtType, "rec-staging-deployed-at"),
    );
    expect(inputsOf(second, resourceTypes.tableItem, "rec-staging-deployment-record")).toEqual(
      inputsOf(first, resourceTypes.tableItem, "rec-staging-deployment-record"),
    );
  });

  test("gets a new deployment time when anything deployed changes, and keeps the previous item", async () => {
    const before = await run(30);
    const after = await run(60);
    const triggers = (recorder: ResourceRecorder) =>
      (inputsOf(recorder, deployedAtType, "rec-staging-deployed-at")["triggers"] as { deployment: string })
        .deployment;
    expect(triggers(before)).toMatch(/^[0-9a-f]{64}$/);
    expect(triggers(after)).not.toBe(triggers(before));

    // A new time is a new sort key: the item is replaced (created first), the old one retained.
    const registration = after.registration(resourceTypes.tableItem, "rec-staging-deployment-record");
    expect(registration.retainOnDelete).toBe(true);
    expect(registration.replaceOnChanges).toEqual(["item"]);
    const item = JSON.parse(
      inputsOf(after, resourceTypes.tableItem, "rec-staging-deployment-record")["item"] as string,
    ) as Record<string, { S?: string }>;
    expect(item["deployed_at"]?.S).toBe("2026-11-30T06:00:00Z");
  });
});
