import { describe, expect, test } from "vitest";
import type { ReleaseTarget } from "../../platform/src/control-plane-releases";
import { lambdaAppSpec, planRelease, releaseOutcome } from "../../platform/src/release-plan";

/** The deploy workflow's release steps (platform/scripts/release.ts), around CodeDeploy's own shifting. */
const target: ReleaseTarget = {
  application: "hybrid-cicd-production-releases",
  deploymentGroup: "hybrid-cicd-production-api-release",
  functionName: "hybrid-cicd-production-api",
  alias: "live",
  targetVersion: "8",
};

describe("a gradual release", () => {
  test("starts a CodeDeploy deployment from the alias's version to the one pulumi up published", () => {
    const step = planRelease(target, "7");
    expect(step.action).toBe("deploy");
    if (step.action !== "deploy") return;
    expect(step.createDeployment).toMatchObject({
      applicationName: "hybrid-cicd-production-releases",
      deploymentGroupName: "hybrid-cicd-production-api-release",
      revision: { revisionType: "AppSpecContent" },
    });
    expect(JSON.parse(step.createDeployment.revision.appSpecContent.content)).toEqual({
      version: 0,
      Resources: [
        {
          "hybrid-cicd-production-api": {
            Type: "AWS::Lambda::Function",
            Properties: {
              Name: "hybrid-cicd-production-api",
              Alias: "live",
              CurrentVersion: "7",
              TargetVersion: "8",
            },
          },
        },
      ],
    });
    expect(lambdaAppSpec(target, "7")).toBe(step.createDeployment.revision.appSpecContent.content);
  });

  test("starts nothing when the alias already serves the version, or a newer one, or nothing was published", () => {
    expect(planRelease(target, "8")).toMatchObject({ action: "skip" });
    expect(planRelease(target, "9")).toMatchObject({
      action: "skip",
      reason: expect.stringContaining("not going back"),
    });
    expect(planRelease({ ...target, targetVersion: "$LATEST" }, "7")).toMatchObject({ action: "skip" });
  });

  test("waits while CodeDeploy shifts, and reports the release when it succeeds", () => {
    const step = { target, currentVersion: "7" };
    for (const status of ["Created", "Queued", "InProgress", "Baking", "Ready"] as const) {
      expect(releaseOutcome(step, { status })).toEqual({ state: "in-progress" });
    }
    expect(releaseOutcome(step, { status: "Succeeded" })).toEqual({ state: "released", version: "8" });
  });

  test("reports a rollback to the previous version when an alarm stopped the release", () => {
    const step = { target, currentVersion: "7" };
    expect(
      releaseOutcome(step, {
        status: "Stopped",
        errorInformation: { code: "ALARM_ACTIVE", message: "One or more alarms have been activated" },
        rollbackInfo: { rollbackDeploymentId: "d-ROLLBACK1" },
      }),
    ).toEqual({ state: "rolled-back", version: "7", reason: "One or more alarms have been activated" });
    expect(
      releaseOutcome(step, {
        status: "Failed",
        errorInformation: { code: "HEALTH_CONSTRAINTS" },
        rollbackInfo: {},
      }),
    ).toEqual({ state: "failed", reason: "HEALTH_CONSTRAINTS" });
  });
});
