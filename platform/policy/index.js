// Entry of the policy pack as the Pulumi CLI loads it: `@pulumi/pulumi/cmd/run-policy-pack` require()s
// this file, and constructing the PolicyPack starts the analyzer server. The rules are the component's
// own (platform/src/policy/), bundled into dist/pack.cjs by `npm run build -w platform`, so the pack
// needs nothing outside this folder at run time and can be published with `pulumi policy publish`.
const { PolicyPack } = require("@pulumi/policy");
const { policyPackArgs, policyPackName } = require("./dist/pack.cjs");

new PolicyPack(policyPackName, policyPackArgs);
