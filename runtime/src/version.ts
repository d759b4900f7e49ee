import runtimePackage from "../package.json" with { type: "json" };

/** The product version, from the runtime package (bundles inline it). */
export const productName = "hybrid-cicd-control-plane";
export const version: string = runtimePackage.version;
