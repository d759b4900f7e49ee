import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { type ControlPlanePartArgs, partContext } from "./control-plane-part";
import { createChild } from "./inventory";
import type { Transform } from "./transform";

/**
 * Gradual releases of the functions behind the `live` alias, by AWS CodeDeploy: a deployment shifts the
 * alias from the version it points at to the newly published one (10 % for 5 minutes, then all, by
 * default) and rolls back by itself when one of the function's alarms fires. Pulumi publishes the new
 * version and leaves the alias to CodeDeploy (`ignoreChanges` on it, see control-plane-function.ts); the
 * deploy workflow starts the deployment (platform/scripts/release.ts, README "Releases").
 * docs/decisions/110-deployment-records-and-gradual-releases.md.
 */
export interface ReleasedFunction {
  /** The function's physical name and ARN. */
  readonly name: pulumi.Input<string>;
  readonly arn: pulumi.Input<string>;
  /** The alias traffic is shifted on. */
  readonly alias: pulumi.Input<string>;
  /** The version Pulumi just published: the target of the next release. */
  readonly version: pulumi.Input<string>;
  /** Alarms that stop the release and roll back (names), with their ARNs for the role's policy. */
  readonly alarms: readonly { name: pulumi.Input<string>; arn: pulumi.Input<string> }[];
}

export interface ControlPlaneReleasesArgs extends ControlPlanePartArgs {
  /** The functions released gradually, by short name (e.g. `api`). */
  functions: Record<string, ReleasedFunction>;
  /**
   * A CodeDeploy deployment configuration for Lambda.
   * @default "CodeDeployDefault.LambdaCanary10Percent5Minutes"
   * @example "CodeDeployDefault.LambdaLinear10PercentEvery1Minute"
   */
  deploymentConfig?: string;
  permissionsBoundary?: pulumi.Input<string>;
  transform?: {
    codeDeployApplication?: Transform<aws.codedeploy.ApplicationArgs>;
    deploymentGroup?: Transform<aws.codedeploy.DeploymentGroupArgs>;
    role?: Transform<aws.iam.RoleArgs>;
    rolePolicy?: Transform<aws.iam.RolePolicyArgs>;
  };
}

export const defaultDeploymentConfig = "CodeDeployDefault.LambdaCanary10Percent5Minutes";

/** What the deploy workflow needs to start one function's release. */
export interface ReleaseTarget {
  readonly application: string;
  readonly deploymentGroup: string;
  readonly functionName: string;
  readonly alias: string;
  readonly targetVersion: string;
}

export class ControlPlaneReleases extends pulumi.ComponentResource {
  readonly application: aws.codedeploy.Application;
  readonly role: aws.iam.Role;
  readonly rolePolicy: aws.iam.RolePolicy;
  readonly deploymentGroups: Record<string, aws.codedeploy.DeploymentGroup> = {};
  /** Per function: application, deployment group, alias and the version to release. */
  readonly targets: pulumi.Output<Record<string, ReleaseTarget>>;

  constructor(name: string, args: ControlPlaneReleasesArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("hybrid-cicd:aws:ControlPlaneReleases", name, {}, opts);
    const { names, tags } = partContext(name, args);

    this.application = createChild(
      aws.codedeploy.Application,
      `${name}-releases`,
      { name: names.physical("releases"), computePlatform: "Lambda", tags },
      { parent: this },
      args.transform?.codeDeployApplication,
      args.inventory,
    );

    this.role = createChild(
      aws.iam.Role,
      `${name}-releases-role`,
      {
        name: names.physical("releases-role"),
        description: "CodeDeploy shifts traffic on the functions' live alias and watches their alarms",
        assumeRolePolicy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            { Effect: "Allow", Principal: { Service: "codedeploy.amazonaws.com" }, Action: "sts:AssumeRole" },
          ],
        }),
        permissionsBoundary: args.permissionsBoundary,
        tags,
      },
      { parent: this },
      args.transform?.role,
      args.inventory,
    );

    // What the AWS-managed AWSCodeDeployRoleForLambda grants on `*`, on the released functions' aliases
    // and alarms only (https://docs.aws.amazon.com/codedeploy/latest/userguide/getting-started-create-service-role.html).
    const released = Object.values(args.functions);
    const policy = pulumi
      .all(
        released.map((fn) => pulumi.all([fn.arn, fn.alias, pulumi.all(fn.alarms.map((alarm) => alarm.arn))])),
      )
      .apply((entries) =>
        JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            {
              Sid: "ShiftLiveAlias",
              Effect: "Allow",
              Action: ["lambda:GetAlias", "lambda:GetProvisionedConcurrencyConfig", "lambda:UpdateAlias"],
              Resource: entries.map(([arn, alias]) => `${arn}:${alias}`),
            },
            {
              Sid: "WatchAlarms",
              Effect: "Allow",
              Action: ["cloudwatch:DescribeAlarms"],
              Resource: entries.flatMap(([, , alarms]) => alarms),
            },
          ],
        }),
      );
    this.rolePolicy = createChild(
      aws.iam.RolePolicy,
      `${name}-releases-grants`,
      { name: "releases", role: this.role.id, policy },
      { parent: this },
      args.transform?.rolePolicy,
      args.inventory,
    );

    const targets: Record<string, pulumi.Output<ReleaseTarget>> = {};
    for (const [short, fn] of Object.entries(args.functions)) {
      const group = createChild(
        aws.codedeploy.DeploymentGroup,
        `${name}-${short}-release`,
        {
          appName: this.application.name,
          deploymentGroupName: names.physical(`${short}-release`),
          serviceRoleArn: this.role.arn,
          deploymentConfigName: args.deploymentConfig ?? defaultDeploymentConfig,
          deploymentStyle: { deploymentOption: "WITH_TRAFFIC_CONTROL", deploymentType: "BLUE_GREEN" },
          autoRollbackConfiguration: {
            enabled: true,
            events: ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"],
          },
          alarmConfiguration: { enabled: true, alarms: fn.alarms.map((alarm) => alarm.name) },
          tags,
        },
        { parent: this, dependsOn: [this.rolePolicy] },
        args.transform?.deploymentGroup,
        args.inventory,
      );
      this.deploymentGroups[short] = group;
      targets[short] = pulumi
        .all([this.application.name, group.deploymentGroupName, fn.name, fn.alias, fn.version])
        .apply(([application, deploymentGroup, functionName, alias, targetVersion]) => ({
          application,
          deploymentGroup,
          functionName,
          alias,
          targetVersion,
        }));
    }
    this.targets = pulumi.all(targets);
    this.registerOutputs({ targets: this.targets });
  }
}
