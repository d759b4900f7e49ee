import { type SecretKey, secretId, secrets } from "@hybrid-cicd/runtime/secrets/catalog";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { type ControlPlanePartArgs, partContext } from "./control-plane-part";
import { createChild } from "./inventory";
import { controlTags } from "./policy/resource-types";
import type { Transform } from "./transform";

const secretKeys = Object.keys(secrets) as SecretKey[];

export interface ControlPlaneSecretsArgs extends ControlPlanePartArgs {
  /** Customer-managed KMS key ARN for the secrets. Without one, Secrets Manager's AWS-managed key. */
  kmsKeyArn?: pulumi.Input<string>;
  /**
   * `protect` the secrets and keep them 30 days after deletion; otherwise they are deleted at once, so
   * a removed stack can be created again under the same names.
   * @default false
   */
  protect?: boolean;
  /**
   * The OAuth client secrets, a JSON object by provider (`{"github":"...","google":"..."}`). Set with
   * `pulumi config set --secret`. Without it the secret is created empty and filled by hand.
   */
  oauthClientSecrets?: pulumi.Input<string>;
  transform?: {
    secret?: Transform<aws.secretsmanager.SecretArgs>;
    secretVersion?: Transform<aws.secretsmanager.SecretVersionArgs>;
    secretRotation?: Transform<aws.secretsmanager.SecretRotationArgs>;
    permission?: Transform<aws.lambda.PermissionArgs>;
  };
}

/** What `rotateWith` needs of the rotation function. */
export interface RotationFunction {
  readonly arn: pulumi.Input<string>;
  readonly name: pulumi.Input<string>;
}

/**
 * One Secrets Manager secret per entry of the runtime's secret catalog (runtime/src/secrets/catalog.ts),
 * named `${name}/${environment}/${secret}`, the prefix the runtime receives as HYBRID_CICD_SECRET_PREFIX.
 * Key material is created by the rotation function (it alone may write it): `rotateWith` schedules
 * rotation for every secret with a rotation period, starting with an immediate first rotation.
 *
 * @example
 * ```ts
 * const secrets = new ControlPlaneSecrets("hybrid-cicd", { environment: "staging" });
 * secrets.rotateWith({ arn: rotationFunction.arn, name: rotationFunction.name });
 * ```
 */
export class ControlPlaneSecrets extends pulumi.ComponentResource {
  readonly secrets: Record<SecretKey, aws.secretsmanager.Secret>;
  readonly arns: Record<SecretKey, pulumi.Output<string>>;
  readonly oauthClientSecretsVersion?: aws.secretsmanager.SecretVersion;
  readonly rotations: Partial<Record<SecretKey, aws.secretsmanager.SecretRotation>> = {};
  readonly rotationPermissions: Partial<Record<SecretKey, aws.lambda.Permission>> = {};
  /** HYBRID_CICD_SECRET_PREFIX for this control plane. */
  readonly prefix: string;

  private readonly componentName: string;
  private readonly args: ControlPlaneSecretsArgs;

  constructor(name: string, args: ControlPlaneSecretsArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("hybrid-cicd:aws:ControlPlaneSecrets", name, {}, opts);
    const { names, tags } = partContext(name, args);
    const protect = args.protect ?? false;
    this.componentName = name;
    this.args = args;
    this.prefix = names.secretPrefix;

    const created = {} as Record<SecretKey, aws.secretsmanager.Secret>;
    for (const key of secretKeys) {
      const declaration: { description: string; rotationDays?: number } = secrets[key];
      created[key] = createChild(
        aws.secretsmanager.Secret,
        `${name}-${secrets[key].name}`,
        {
          name: secretId(names.secretPrefix, key),
          description: declaration.description,
          kmsKeyId: args.kmsKeyArn,
          recoveryWindowInDays: protect ? 30 : 0,
          tags:
            declaration.rotationDays === undefined
              ? {
                  ...tags,
                  [controlTags.rotationExemption]:
                    "rotated by hand: no rotation period in the secret catalog",
                }
              : tags,
        },
        { parent: this, protect, retainOnDelete: protect },
        args.transform?.secret,
        args.inventory,
      );
    }
    this.secrets = created;
    this.arns = Object.fromEntries(secretKeys.map((key) => [key, created[key].arn])) as Record<
      SecretKey,
      pulumi.Output<string>
    >;

    if (args.oauthClientSecrets !== undefined) {
      this.oauthClientSecretsVersion = createChild(
        aws.secretsmanager.SecretVersion,
        `${name}-oauth-client-secrets-value`,
        { secretId: created.oauthClientSecrets.id, secretString: pulumi.secret(args.oauthClientSecrets) },
        { parent: this },
        args.transform?.secretVersion,
        args.inventory,
      );
    }
    this.registerOutputs({ arns: this.arns });
  }

  /**
   * Lets Secrets Manager invoke the rotation function for each secret with a rotation period (a
   * permission scoped to that secret's ARN) and schedules the rotation.
   */
  rotateWith(rotation: RotationFunction): void {
    const name = this.componentName;
    for (const key of secretKeys) {
      const days = (secrets[key] as { rotationDays?: number }).rotationDays;
      if (days === undefined) continue;
      const secret = this.secrets[key];
      const permission = createChild(
        aws.lambda.Permission,
        `${name}-${secrets[key].name}-rotation-invoke`,
        {
          action: "lambda:InvokeFunction",
          function: rotation.name,
          principal: "secretsmanager.amazonaws.com",
          sourceArn: secret.arn,
        },
        { parent: this },
        this.args.transform?.permission,
        this.args.inventory,
      );
      this.rotationPermissions[key] = permission;
      this.rotations[key] = createChild(
        aws.secretsmanager.SecretRotation,
        `${name}-${secrets[key].name}-rotation`,
        {
          secretId: secret.arn,
          rotationLambdaArn: rotation.arn,
          rotationRules: { automaticallyAfterDays: days },
          // The first rotation creates the key material: only the rotation function may write it.
          rotateImmediately: true,
        },
        { parent: this, dependsOn: [permission] },
        this.args.transform?.secretRotation,
        this.args.inventory,
      );
    }
  }
}
