// Entry of the policy pack the Pulumi engine runs. The rules are TypeScript shared with the component,
// so tsx is registered here before they are loaded; constructing the PolicyPack starts the analyzer server.
import { register } from "tsx/esm/api";

register();
const { PolicyPack } = await import("@pulumi/policy");
const { policyPackArgs, policyPackName } = await import("../src/policy/pack.ts");

new PolicyPack(policyPackName, policyPackArgs);
