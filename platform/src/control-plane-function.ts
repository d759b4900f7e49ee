import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { type ControlPlanePartArgs, partContext } from "./control-plane-part";
import { type FunctionGrants, type FunctionKind, functionPolicyDocument, type GrantTargets } from "./grants";
import { createChild } from "./inventory";
import type { LambdaArtifact } from "./lambda-artifact";
import { lambdaRuntime } from "./lambda-runtime";
import type { Transform } from "./transform";

/** Memory, time and concurrency of one function. */
export interface FunctionSizing {
  /**
   * Memory in MB (CPU grows with it).
   * @default 512 for the API, 256 for the others
   * @example 1024
   */
  memory?: number;
  /**
   * Timeout in seconds.
   * @default 20 for the API and console (the HTTP API gives up at 30 s), 60 for scheduled, 120 for rotation
   */
  timeout?: number;
  /**
   * Reserved concurrency: the most instances that may run at once, and capacity kept for this function.
   * @default 10 for the API and console, 2 for scheduled and rotation (the hourly digest may meet a sweep;
   * both rotated secrets rotate at once on the first deployment)
   * @example 100
   */
  reservedConcurrency?: number;
  /**
   * Instances kept initialised (API only): needs a published version and alias, which the API
   * integration then targets. Must not exceed `reservedConcurrency`.
   * @default 0
   */
  provisionedConcurrency?: number;
}

export interface ControlPlaneFunctionArgs extends ControlPlanePartArgs, FunctionSizing {
  /** Which of the control plane's functions this is: it names it and picks its defaults. */
  kind: FunctionKind;
  description?: string;
  /** The bundled code (see `lambdaArtifact`). */
  code: LambdaArtifact | Promise<LambdaArtifact>;
  /** The function's grants, expanded into its IAM policy against `grantTargets`. */
  grants: FunctionGrants;
  grantTargets: pulumi.Input<Omit<GrantTargets, "logGroupArn" | "deadLetterQueueArn" | "tracing">>;
  environmentVariables: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /**
   * Instruction set.
   * @default "arm64"
   */
  architecture?: "arm64" | "x86_64";
  /**
   * X-Ray active tracing.
   * @default true
   */
  tracing?: boolean;
  /** Days the function's log group keeps logs. */
  logRetentionDays: number;
  /** Customer-managed KMS key ARN for the log group. */
  logKmsKeyArn?: pulumi.Input<string>;
  /** IAM permissions boundary ARN for the role. */
  permissionsBoundary?: pulumi.Input<string>;
  /**
   * A dead-letter queue for failed asynchronous invocations.
   * @default false
   */
  deadLetterQueue?: boolean;
  /**
   * Publish a version on every code change and point the alias `live` at it. Callers (the HTTP API)
   * then invoke the alias, and provisioned concurrency warms exactly what they call.
   * @default false
   */
  alias?: boolean;
  /**
   * The alias is shifted by a gradual release (CodeDeploy, see control-plane-releases.ts), not by
   * Pulumi: Pulumi creates it on the first version and then ignores its version and routing, so a
   * `pulumi up` never undoes a release in progress or a rollback.
   * @default false
   */
  gradualRelease?: boolean;
  /** Keep the log group when the stack is destroyed. @default false */
  retainLogs?: boolean;
  transform?: {
    role?: Transform<aws.iam.RoleArgs>;
    rolePolicy?: Transform<aws.iam.RolePolicyArgs>;
    logGroup?: Transform<aws.cloudwatch.LogGroupArgs>;
    function?: Transform<aws.lambda.FunctionArgs>;
    alias?: Transform<aws.lambda.AliasArgs>;
    provisionedConcurrency?: Transform<aws.lambda.ProvisionedConcurrencyConfigArgs>;
    deadLetterQueue?: Transform<aws.sqs.QueueArgs>;
  };
}

/** Name of the alias callers invoke. */
export const liveAlias = "live";

/**
 * One Lambda function of the control plane with everything it needs: its own role whose only policy
 * is generated from the function's grants, its own log group (JSON logs, retention, optional KMS),
 * X-Ray tracing, reserved concurrency, optionally a dead-letter queue, and optionally a published
 * version behind the alias `live` with provisioned concurrency on that alias.
 */
export class ControlPlaneFunction extends pulumi.ComponentResource {
  readonly function: aws.lambda.Function;
  readonly role: aws.iam.Role;
  readonly rolePolicy: aws.iam.RolePolicy;
  readonly logGroup: aws.cloudwatch.LogGroup;
  readonly deadLetterQueue?: aws.sqs.Queue;
  readonly alias?: aws.lambda.Alias;
  readonly provisionedConcurrency?: aws.lambda.ProvisionedConcurrencyConfig;
  readonly kind: FunctionKind;
  /** The physical function name. */
  readonly name: pulumi.Output<string>;
  readonly arn: pulumi.Output<string>;
  /** What callers invoke: the alias's invoke ARN when there is one. */
  readonly invokeArn: pulumi.Output<string>;
  /** The alias name callers' permissions are scoped to, if any. */
  readonly qualifier?: pulumi.Output<string>;
  /** The version published by this deployment (`$LATEST` when nothing is published). */
  readonly version: pulumi.Output<string>;
  readonly timeout: number;
  readonly reservedConcurrency: number;

  constructor(name: string, args: ControlPlaneFunctionArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("hybrid-cicd:aws:ControlPlaneFunction", name, {}, opts);
    const { names, tags } = partContext(name, args);
    const sizing = normalizeSizing(args.kind, args);
    const physicalName = names.physical(args.kind);
    const tracing = args.tracing ?? true;
    this.kind = args.kind;
    this.timeout = sizing.timeout;
    this.reservedConcurrency = sizing.reservedConcurrency;

    this.logGroup = createChild(
      aws.cloudwatch.LogGroup,
      `${name}-logs`,
      {
        name: `/aws/lambda/${physicalName}`,
        retentionInDays: args.logRetentionDays,
        kmsKeyId: args.logKmsKeyArn,
        tags,
      },
      { parent: this, retainOnDelete: args.retainLogs ?? false },
      args.transform?.logGroup,
      args.inventory,
    );

    if (args.deadLetterQueue) {
      this.deadLetterQueue = createChild(
        aws.sqs.Queue,
        `${name}-dead-letters`,
        {
          name: `${physicalName}-dead-letters`,
          messageRetentionSeconds: 14 * 24 * 3600,
          sqsManagedSseEnabled: true,
          tags,
        },
        { parent: this },
        args.transform?.deadLetterQueue,
        args.inventory,
      );
    }

    this.role = createChild(
      aws.iam.Role,
      `${name}-role`,
      {
        name: `${physicalName}-role`,
        description: `Runs the ${args.kind} function of ${names.stem}`,
        assumeRolePolicy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            { Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" },
          ],
        }),
        permissionsBoundary: args.permissionsBoundary,
        tags,
      },
      { parent: this },
      args.transform?.role,
      args.inventory,
    );

    const policy = pulumi
      .all([args.grantTargets, this.logGroup.arn, this.deadLetterQueue?.arn])
      .apply(([targets, logGroupArn, deadLetterQueueArn]) =>
        JSON.stringify(
          functionPolicyDocument(args.grants, { ...targets, logGroupArn, deadLetterQueueArn, tracing }),
        ),
      );
    this.rolePolicy = createChild(
      aws.iam.RolePolicy,
      `${name}-grants`,
      { name: "grants", role: this.role.name, policy },
      { parent: this },
      args.transform?.rolePolicy,
      args.inventory,
    );

    const artifact = pulumi
      .output(Promise.resolve(args.code))
      .apply((built) => ({ path: built.path, sourceCodeHash: built.sourceCodeHash, handler: built.handler }));
    this.function = createChild(
      aws.lambda.Function,
      `${name}-function`,
      {
        name: physicalName,
        description: args.description,
        role: this.role.arn,
        runtime: lambdaRuntime,
        architectures: [args.architecture ?? "arm64"],
        handler: artifact.handler,
        code: artifact.path.apply((path) => new pulumi.asset.FileArchive(path)),
        sourceCodeHash: artifact.sourceCodeHash,
        memorySize: sizing.memory,
        timeout: sizing.timeout,
        reservedConcurrentExecutions: sizing.reservedConcurrency,
        publish: args.alias ?? false,
        environment: { variables: args.environmentVariables },
        tracingConfig: { mode: tracing ? "Active" : "PassThrough" },
        loggingConfig: { logFormat: "JSON", logGroup: this.logGroup.name },
        deadLetterConfig: this.deadLetterQueue ? { targetArn: this.deadLetterQueue.arn } : undefined,
        tags,
      },
      // The role must be able to write logs (and reach its dead-letter queue) from the first invocation.
      { parent: this, dependsOn: [this.rolePolicy, this.logGroup] },
      args.transform?.function,
      args.inventory,
    );
    this.name = this.function.name;
    this.arn = this.function.arn;
    this.version = this.function.version;

    if (args.alias) {
      this.alias = createChild(
        aws.lambda.Alias,
        `${name}-live`,
        {
          name: liveAlias,
          description: "The published version callers invoke",
          functionName: this.function.name,
          functionVersion: this.function.version,
        },
        args.gradualRelease
          ? { parent: this, ignoreChanges: ["functionVersion", "routingConfig"] }
          : { parent: this },
        args.transform?.alias,
        args.inventory,
      );
      this.qualifier = this.alias.name;
      if (sizing.provisionedConcurrency > 0) {
        this.provisionedConcurrency = createChild(
          aws.lambda.ProvisionedConcurrencyConfig,
          `${name}-warm`,
          {
            functionName: this.function.name,
            qualifier: this.alias.name,
            provisionedConcurrentExecutions: sizing.provisionedConcurrency,
          },
          { parent: this },
          args.transform?.provisionedConcurrency,
          args.inventory,
        );
      }
    } else if (sizing.provisionedConcurrency > 0) {
      throw new Error(`${physicalName}: provisioned concurrency needs the alias (alias: true)`);
    }
    this.invokeArn = this.alias ? this.alias.invokeArn : this.function.invokeArn;

    this.registerOutputs({ name: this.name, arn: this.arn, invokeArn: this.invokeArn });
  }
}

const defaultSizing: Record<FunctionKind, Required<FunctionSizing>> = {
  api: { memory: 512, timeout: 20, reservedConcurrency: 10, provisionedConcurrency: 0 },
  console: { memory: 512, timeout: 20, reservedConcurrency: 10, provisionedConcurrency: 0 },
  scheduled: { memory: 256, timeout: 60, reservedConcurrency: 2, provisionedConcurrency: 0 },
  rotation: { memory: 256, timeout: 120, reservedConcurrency: 2, provisionedConcurrency: 0 },
};

/** Defaults filled in and checked against Lambda's limits. */
export function normalizeSizing(kind: FunctionKind, sizing: FunctionSizing): Required<FunctionSizing> {
  const given = {
    memory: sizing.memory,
    timeout: sizing.timeout,
    reservedConcurrency: sizing.reservedConcurrency,
    provisionedConcurrency: sizing.provisionedConcurrency,
  };
  const result = { ...defaultSizing[kind], ...withoutUndefined(given) };
  const { memory, timeout, reservedConcurrency, provisionedConcurrency } = result;
  if (!Number.isInteger(memory) || memory < 128 || memory > 10_240) {
    throw new Error(`${kind}: memory ${memory} MB is outside Lambda's 128 to 10240`);
  }
  if (!Number.isInteger(timeout) || timeout < 1 || timeout > 900) {
    throw new Error(`${kind}: timeout ${timeout} s is outside Lambda's 1 to 900`);
  }
  if ((kind === "api" || kind === "console") && timeout > 29) {
    throw new Error(`${kind}: timeout ${timeout} s is longer than the HTTP API waits (29 s)`);
  }
  if (!Number.isInteger(reservedConcurrency) || reservedConcurrency < 1) {
    throw new Error(`${kind}: reserved concurrency must be a positive integer`);
  }
  if (!Number.isInteger(provisionedConcurrency) || provisionedConcurrency < 0) {
    throw new Error(`${kind}: provisioned concurrency must be a non-negative integer`);
  }
  if (provisionedConcurrency > reservedConcurrency) {
    throw new Error(
      `${kind}: provisioned concurrency ${provisionedConcurrency} exceeds reserved concurrency ${reservedConcurrency}`,
    );
  }
  if (provisionedConcurrency > 0 && kind !== "api") {
    throw new Error(`${kind}: provisioned concurrency is only offered for the API function`);
  }
  return result;
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as Partial<T>;
}
