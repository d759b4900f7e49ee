import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { type ControlPlanePartArgs, partContext } from "./control-plane-part";
import { createChild } from "./inventory";
import type { Transform } from "./transform";

/** The scheduled function's tasks: the event it receives is `{"task": "<name>"}`. */
export const scheduledTasks = ["sweep", "digest"] as const;
export type ScheduledTask = (typeof scheduledTasks)[number];

export interface ControlPlaneSchedulesArgs extends ControlPlanePartArgs {
  /** The function every schedule invokes. */
  target: { arn: pulumi.Input<string>; name: pulumi.Input<string> };
  /**
   * EventBridge schedule expression per task: `sweep` requeues or fails jobs whose agent stopped
   * heartbeating and expires stale records; `digest` signs the audit chain's head.
   * @default { sweep: "rate(1 minute)", digest: "rate(1 hour)" }
   */
  schedules?: Partial<Record<ScheduledTask, string>>;
  transform?: {
    scheduleRule?: Transform<aws.cloudwatch.EventRuleArgs>;
    scheduleTarget?: Transform<aws.cloudwatch.EventTargetArgs>;
    permission?: Transform<aws.lambda.PermissionArgs>;
  };
}

export const defaultSchedules: Readonly<Record<ScheduledTask, string>> = {
  sweep: "rate(1 minute)",
  digest: "rate(1 hour)",
};

/**
 * EventBridge rules that invoke the scheduled function (asynchronously: failures go to its dead-letter
 * queue after EventBridge's and Lambda's retries), each allowed by a permission scoped to its rule.
 */
export class ControlPlaneSchedules extends pulumi.ComponentResource {
  readonly rules: Partial<Record<ScheduledTask, aws.cloudwatch.EventRule>> = {};
  readonly targets: Partial<Record<ScheduledTask, aws.cloudwatch.EventTarget>> = {};
  readonly permissions: Partial<Record<ScheduledTask, aws.lambda.Permission>> = {};

  constructor(name: string, args: ControlPlaneSchedulesArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("hybrid-cicd:aws:ControlPlaneSchedules", name, {}, opts);
    const { names, tags } = partContext(name, args);
    const schedules = { ...defaultSchedules, ...args.schedules };
    for (const task of scheduledTasks) {
      const expression = schedules[task];
      if (!/^(rate|cron)\(.+\)$/.test(expression)) {
        throw new Error(
          `schedule for ${task}: "${expression}" is not an EventBridge rate() or cron() expression`,
        );
      }
      const rule = createChild(
        aws.cloudwatch.EventRule,
        `${name}-${task}-schedule`,
        {
          name: names.physical(`${task}-schedule`),
          description: `Invokes the scheduled function of ${names.stem} with task ${task}`,
          scheduleExpression: expression,
          state: "ENABLED",
          tags,
        },
        { parent: this },
        args.transform?.scheduleRule,
        args.inventory,
      );
      this.rules[task] = rule;
      this.permissions[task] = createChild(
        aws.lambda.Permission,
        `${name}-${task}-invoke`,
        {
          action: "lambda:InvokeFunction",
          function: args.target.name,
          principal: "events.amazonaws.com",
          sourceArn: rule.arn,
        },
        { parent: this },
        args.transform?.permission,
        args.inventory,
      );
      this.targets[task] = createChild(
        aws.cloudwatch.EventTarget,
        `${name}-${task}-target`,
        {
          rule: rule.name,
          arn: args.target.arn,
          input: JSON.stringify({ task }),
          retryPolicy: { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 3600 },
        },
        { parent: this },
        args.transform?.scheduleTarget,
        args.inventory,
      );
    }
    this.registerOutputs({});
  }
}
