import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { Inventory } from "./inventory";
import { type ControlPlaneNames, controlPlaneNames } from "./naming";
import { controlTags } from "./policy/resource-types";

/** Arguments every part of a ControlPlane takes (each part is also usable on its own). */
export interface ControlPlanePartArgs {
  /**
   * The deployment environment. With the component's name it makes every physical name.
   * @example "staging"
   */
  environment: string;
  /**
   * Tags for every taggable child, besides `hybrid-cicd:environment` and `hybrid-cicd:control-plane`.
   * @default {}
   * @example { "cost-center": "platform" }
   */
  tags?: Record<string, string>;
  /**
   * The control plane this part belongs to, when the part's own name differs (e.g. the ControlPlane
   * "hybrid-cicd" names its API function part "hybrid-cicd-api"). Physical names and tags use it.
   * @default the part's own name
   */
  controlPlane?: string;
  /** @internal The ControlPlane's record of its children (for the deployment record). */
  inventory?: Inventory;
}

export interface PartContext {
  readonly names: ControlPlaneNames;
  readonly tags: Record<string, string>;
}

/**
 * The component's name and environment tags come last, so a user tag cannot mislabel the environment
 * the compliance rules judge a resource by.
 */
export function partContext(partName: string, args: ControlPlanePartArgs): PartContext {
  const name = args.controlPlane ?? partName;
  const names = controlPlaneNames(name, args.environment);
  return {
    names,
    tags: {
      ...args.tags,
      [controlTags.environment]: args.environment,
      [controlTags.controlPlane]: name,
    },
  };
}

export interface AccountContext {
  readonly accountId: string;
  readonly region: string;
  readonly partition: string;
}

/** The account, region and partition the parent's provider deploys into. */
export function accountContext(parent: pulumi.Resource): pulumi.Output<AccountContext> {
  return pulumi
    .all([
      aws.getCallerIdentityOutput({}, { parent }),
      aws.getRegionOutput({}, { parent }),
      aws.getPartitionOutput({}, { parent }),
    ])
    .apply(([identity, region, partition]) => ({
      accountId: identity.accountId,
      region: region.region,
      partition: partition.partition,
    }));
}
