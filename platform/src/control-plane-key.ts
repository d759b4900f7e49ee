import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { accountContext, type ControlPlanePartArgs, partContext } from "./control-plane-part";
import { createChild } from "./inventory";
import type { Transform } from "./transform";

export interface ControlPlaneKeyArgs extends ControlPlanePartArgs {
  /**
   * Keep the key when the stack is destroyed and refuse to delete it (`protect`).
   * @default false
   */
  protect?: boolean;
  /**
   * Days a deleted key waits before it is gone (7 to 30).
   * @default 30
   */
  deletionWindowInDays?: number;
  transform?: {
    kmsKey?: Transform<aws.kms.KeyArgs>;
    kmsAlias?: Transform<aws.kms.AliasArgs>;
  };
}

/**
 * A customer-managed KMS key for one control plane: its tables, secrets, log groups and alarm topic.
 * Key material rotates yearly. IAM policies in the account decide who uses it (the functions get
 * Decrypt/Encrypt only through DynamoDB and Secrets Manager); CloudWatch Logs and CloudWatch alarms are
 * allowed by the key policy, scoped to this account and this control plane's log groups.
 *
 * @example
 * ```ts
 * const key = new ControlPlaneKey("hybrid-cicd", { environment: "staging" });
 * ```
 */
export class ControlPlaneKey extends pulumi.ComponentResource {
  readonly key: aws.kms.Key;
  readonly alias: aws.kms.Alias;
  readonly arn: pulumi.Output<string>;

  constructor(name: string, args: ControlPlaneKeyArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("hybrid-cicd:aws:ControlPlaneKey", name, {}, opts);
    const { names, tags } = partContext(name, args);
    const account = accountContext(this);
    const protect = args.protect ?? false;

    this.key = createChild(
      aws.kms.Key,
      `${name}-key`,
      {
        description: `hybrid-cicd ${args.environment}: tables, secrets, logs and alarms of ${names.stem}`,
        enableKeyRotation: true,
        deletionWindowInDays: args.deletionWindowInDays ?? 30,
        policy: account.apply((context) => JSON.stringify(keyPolicy(names.stem, context))),
        tags,
      },
      { parent: this, protect, retainOnDelete: protect },
      args.transform?.kmsKey,
      args.inventory,
    );
    this.alias = createChild(
      aws.kms.Alias,
      `${name}-key-alias`,
      { name: `alias/${names.stem}`, targetKeyId: this.key.keyId },
      { parent: this },
      args.transform?.kmsAlias,
      args.inventory,
    );
    this.arn = this.key.arn;
    this.registerOutputs({ arn: this.arn });
  }
}

function keyPolicy(
  stem: string,
  { accountId, region, partition }: { accountId: string; region: string; partition: string },
) {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        // The account's default: IAM policies decide who may use the key (KMS' own default key policy).
        Sid: "AccountAdministersAndDelegatesToIam",
        Effect: "Allow",
        Principal: { AWS: `arn:${partition}:iam::${accountId}:root` },
        Action: "kms:*",
        Resource: "*",
      },
      {
        Sid: "CloudWatchLogsEncryptsThisControlPlanesLogGroups",
        Effect: "Allow",
        Principal: { Service: `logs.${region}.amazonaws.com` },
        Action: [
          "kms:Decrypt",
          "kms:DescribeKey",
          "kms:Encrypt",
          "kms:GenerateDataKey",
          "kms:GenerateDataKeyWithoutPlaintext",
          "kms:ReEncryptFrom",
          "kms:ReEncryptTo",
        ],
        Resource: "*",
        Condition: {
          ArnLike: {
            "kms:EncryptionContext:aws:logs:arn": `arn:${partition}:logs:${region}:${accountId}:log-group:/aws/*/${stem}-*`,
          },
        },
      },
      {
        Sid: "CloudWatchAlarmsPublishToTheEncryptedTopic",
        Effect: "Allow",
        Principal: { Service: "cloudwatch.amazonaws.com" },
        Action: ["kms:Decrypt", "kms:GenerateDataKey"],
        Resource: "*",
        Condition: { StringEquals: { "aws:SourceAccount": accountId } },
      },
    ],
  };
}
