import { createRequire } from "node:module";

/** The product version, from the runtime package (bundles inline it). */
export const productName = "hybrid-cicd-control-plane";
export const version: string = (createRequire(import.meta.url)("../package.json") as { version: string })
  .version;
