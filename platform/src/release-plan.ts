import type { ReleaseTarget } from "./control-plane-releases";

/**
 * The deploy workflow's side of a gradual release (platform/scripts/release.ts runs it with the AWS
 * CLI): after `pulumi up` published new versions, start one CodeDeploy deployment per function whose
 * `live` alias is not on the new version yet, then wait for each to end. CodeDeploy shifts the traffic
 * and rolls back on an alarm; this decides what to start and how to read the outcome.
 */

/** The AppSpec of a Lambda deployment (https://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file-structure-resources.html). */
export function lambdaAppSpec(target: ReleaseTarget, currentVersion: string): string {
  return JSON.stringify({
    version: 0.0,
    Resources: [
      {
        [target.functionName]: {
          Type: "AWS::Lambda::Function",
          Properties: {
            Name: target.functionName,
            Alias: target.alias,
            CurrentVersion: currentVersion,
            TargetVersion: target.targetVersion,
          },
        },
      },
    ],
  });
}

export type ReleaseStep =
  | { readonly action: "skip"; readonly reason: string }
  | {
      readonly action: "deploy";
      /** `aws deploy create-deployment --cli-input-json` */
      readonly createDeployment: {
        applicationName: string;
        deploymentGroupName: string;
        description: string;
        revision: { revisionType: "AppSpecContent"; appSpecContent: { content: string } };
      };
    };

/** What to do for one function, given the version its alias points at now. */
export function planRelease(target: ReleaseTarget, currentVersion: string): ReleaseStep {
  if (!/^\d+$/.test(target.targetVersion)) {
    return { action: "skip", reason: `no published version to release (${target.targetVersion})` };
  }
  if (currentVersion === target.targetVersion) {
    return { action: "skip", reason: `${target.alias} already serves version ${currentVersion}` };
  }
  if (/^\d+$/.test(currentVersion) && Number(currentVersion) > Number(target.targetVersion)) {
    return {
      action: "skip",
      reason: `${target.alias} serves version ${currentVersion}, newer than ${target.targetVersion}: not going back`,
    };
  }
  return {
    action: "deploy",
    createDeployment: {
      applicationName: target.application,
      deploymentGroupName: target.deploymentGroup,
      description: `${target.functionName}: ${target.alias} ${currentVersion} → ${target.targetVersion}`,
      revision: {
        revisionType: "AppSpecContent",
        appSpecContent: { content: lambdaAppSpec(target, currentVersion) },
      },
    },
  };
}

/** CodeDeploy's deployment states (`aws deploy get-deployment`, deploymentInfo.status). */
export type DeploymentStatus =
  | "Created"
  | "Queued"
  | "InProgress"
  | "Baking"
  | "Ready"
  | "Succeeded"
  | "Failed"
  | "Stopped";

export type ReleaseOutcome =
  | { readonly state: "in-progress" }
  | { readonly state: "released"; readonly version: string }
  | { readonly state: "rolled-back"; readonly version: string; readonly reason: string }
  | { readonly state: "failed"; readonly reason: string };

/**
 * Reads a deployment's state: still shifting, released, or rolled back to the previous version (an
 * alarm fired or a step failed; CodeDeploy moved the alias back). The workflow fails on anything but
 * `released`.
 */
export function releaseOutcome(
  step: { target: ReleaseTarget; currentVersion: string },
  deployment: {
    status: DeploymentStatus;
    errorInformation?: { code?: string; message?: string };
    rollbackInfo?: { rollbackDeploymentId?: string; rollbackMessage?: string };
  },
): ReleaseOutcome {
  switch (deployment.status) {
    case "Succeeded":
      return { state: "released", version: step.target.targetVersion };
    case "Failed":
    case "Stopped": {
      const reason =
        deployment.errorInformation?.message ?? deployment.errorInformation?.code ?? deployment.status;
      if (
        deployment.rollbackInfo?.rollbackDeploymentId ||
        deployment.errorInformation?.code === "ALARM_ACTIVE"
      ) {
        return { state: "rolled-back", version: step.currentVersion, reason };
      }
      return { state: "failed", reason };
    }
    default:
      return { state: "in-progress" };
  }
}
