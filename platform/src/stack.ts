import { ControlPlane } from "./control-plane";
import { readStackConfig } from "./stack-config";

/**
 * This repository's own stack program (Pulumi.yaml `main`): one ControlPlane configured by the stack's
 * `hybrid-cicd:*` settings (Pulumi.staging.yaml, Pulumi.production.yaml). Pulumi runs the default export
 * and makes what it returns the stack's outputs.
 */
export default async function controlPlaneStack() {
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
  };
}
