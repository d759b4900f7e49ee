import type * as pulumi from "@pulumi/pulumi";

/**
 * A hook that adjusts one child resource before it is created: either an object whose fields replace
 * the component's arguments (shallow merge), or a function that edits the arguments and options in place
 * (or returns new ones).
 *
 * @example
 * ```ts
 * transform: {
 *   table: { tableClass: "STANDARD_INFREQUENT_ACCESS" },
 *   function: (args, opts, name) => {
 *     args.ephemeralStorage = { size: 1024 };
 *   },
 * }
 * ```
 */
export type Transform<Args> =
  | Partial<Args>
  // biome-ignore lint/suspicious/noConfusingVoidType: callbacks that edit in place are typed as returning void
  | ((args: Args, opts: pulumi.CustomResourceOptions, name: string) => void | Args);

/** Applies a transform and returns the name, arguments and options to create the child with. */
export function applyTransform<Args extends object>(
  transform: Transform<Args> | undefined,
  name: string,
  args: Args,
  opts: pulumi.CustomResourceOptions,
): [string, Args, pulumi.CustomResourceOptions] {
  if (transform === undefined) return [name, args, opts];
  if (typeof transform === "function") {
    const replaced = transform(args, opts, name);
    return [name, replaced ?? args, opts];
  }
  return [name, { ...args, ...transform }, opts];
}
