import { ControlPlane } from "./control-plane";
import { readStackConfig } from "./stack-config";

/**
 * A whole stack program: one ControlPlane configured by the stack's `hybrid-cicd:*` settings (this
 * repository's Pulumi.staging.yaml and Pulumi.production.yaml; platform/stack.mjs is its `main`).
 * Pulumi runs it as the program's default export and makes what it returns the stack's outputs.
 */
export async function controlPlaneStack() {
  const { name, args } = readStackConfig();
  const controlPlane = new ControlPlane(name, args);
  return {
    environment: args.environment,
    apiUrl: controlPlane.apiUrl,
    consoleUrl: controlPlane.consoleUrl,
    tableNames: controlPlane.tableNames,
    functionNames: controlPlane.functionNames,
    secretArns: controlPlane.secretArns,
    alarmTopicArn: controlPlane.alarmTopicArn,
    kmsKeyArn: controlPlane.kmsKeyArn,
    domainTarget: controlPlane.domainTarget,
    releaseTargets: controlPlane.releaseTargets,
  };
}
