import * as pulumi from "@pulumi/pulumi";
import type { CheckedResource } from "./policy/rules";
import { applyTransform, type Transform } from "./transform";

/**
 * What a ControlPlane created, as the policy rules see it: type, name and arguments (after the user's
 * transforms) of every child. The deployment record is computed from it, so the record shows exactly
 * what was deployed, transforms included.
 */
interface InventoryEntry {
  readonly type: string;
  readonly name: string;
  readonly props: Record<string, unknown>;
  readonly protect: boolean;
}

/** Arguments that carry secret material never enter the inventory (nor the record made from it). */
const secretArguments = ["secretString", "secretBinary", "secretStringWo"];

export class Inventory {
  private readonly entries: InventoryEntry[] = [];

  add(
    type: string,
    name: string,
    args: object,
    opts: pulumi.CustomResourceOptions,
    outputs: object = {},
  ): void {
    const props: Record<string, unknown> = { ...(args as Record<string, unknown>), ...outputs };
    for (const key of secretArguments) delete props[key];
    this.entries.push({ type, name, props, protect: opts.protect === true });
  }

  /** Every child, resolved (unknown during a preview of new resources). */
  resolve(): pulumi.Output<CheckedResource[]> {
    return pulumi
      .all(
        this.entries.map((entry) =>
          pulumi.output(entry.props).apply((props) => ({
            type: entry.type,
            name: entry.name,
            protect: entry.protect,
            props: props as Record<string, unknown>,
          })),
        ),
      )
      .apply((resources) => resources as CheckedResource[]);
  }

  get size(): number {
    return this.entries.length;
  }
}

type ResourceClass<R, A> = {
  new (name: string, args: A, opts?: pulumi.CustomResourceOptions): R;
};

/** The type token generated resource classes carry (e.g. `aws:dynamodb/table:Table`). */
export function pulumiType(resourceClass: object): string {
  const type = (resourceClass as { __pulumiType?: unknown }).__pulumiType;
  if (typeof type !== "string") throw new Error("not a generated Pulumi resource class");
  return type;
}

/**
 * Creates one child: applies the user's transform for its kind, creates the resource and records it in
 * the inventory (with its `arn`, which stack-level rules match on).
 */
export function createChild<R extends pulumi.CustomResource, A extends object>(
  resourceClass: ResourceClass<R, A>,
  name: string,
  args: A,
  opts: pulumi.CustomResourceOptions,
  transform: Transform<A> | undefined,
  inventory: Inventory | undefined,
): R {
  const [finalName, finalArgs, finalOpts] = applyTransform(transform, name, args, opts);
  const resource = new resourceClass(finalName, finalArgs, finalOpts);
  const arn = (resource as unknown as { arn?: unknown }).arn;
  inventory?.add(
    pulumiType(resourceClass),
    finalName,
    finalArgs,
    finalOpts,
    pulumi.Output.isInstance(arn) ? { arn } : {},
  );
  return resource;
}
