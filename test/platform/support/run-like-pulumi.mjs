// Loads a Pulumi program the way Pulumi's Node.js language host does for an ES module package (dynamic
// import of `main`, then calling its default export), in a process started with the nodeargs of
// Pulumi.yaml, against Pulumi's mocks. Prints what it registered as one JSON line.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import * as pulumi from "@pulumi/pulumi";
import yaml from "js-yaml";

const [main, stackFile, stack] = process.argv.slice(2);
const { config } = yaml.load(readFileSync(stackFile, "utf8"));
pulumi.runtime.setAllConfig(
  Object.fromEntries(
    Object.entries(config).map(([key, value]) => [
      key,
      typeof value === "string" ? value : JSON.stringify(value),
    ]),
  ),
);
const types = [];
await pulumi.runtime.setMocks(
  {
    newResource: ({ type, name, inputs }) => {
      types.push(type);
      return {
        id: `${name}-id`,
        state: {
          ...inputs,
          arn: `arn:aws:mock:eu-west-1:123456789012:${name}`,
          version: "1",
          rfc3339: "2026-11-30T06:00:00Z",
        },
      };
    },
    call: ({ token }) =>
      token.endsWith("getCallerIdentity")
        ? { accountId: "123456789012" }
        : token.endsWith("getRegion")
          ? { region: "eu-west-1" }
          : { partition: "aws" },
  },
  "hybrid-cicd",
  stack,
  false,
);
let exported = await import(pathToFileURL(main).href);
if (Object.getOwnPropertyDescriptor(exported, "default") !== undefined) exported = exported.default;
const outputs = typeof exported === "function" ? await exported() : exported;
await new Promise((resolve) => pulumi.output(outputs).apply(resolve));
let last = -1;
for (let stable = 0; stable < 3; ) {
  await new Promise((resolve) => setTimeout(resolve, 20));
  stable = types.length === last ? stable + 1 : 0;
  last = types.length;
}
const resolved = await new Promise((resolve) => pulumi.output(outputs).apply(resolve));
process.stdout.write(
  `${JSON.stringify({ resources: types.filter((type) => type.startsWith("aws:")).length, outputs: Object.keys(resolved) })}\n`,
);
process.exit(0);
