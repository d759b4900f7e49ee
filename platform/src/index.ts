/**
 * @hybrid-cicd/platform: the hybrid CI/CD control plane as a Pulumi component, its parts (usable on
 * their own), the Lambda bundling it uses and the compliance rules of its policy pack.
 */
export {
  type AlarmSettings,
  ControlPlane,
  type ControlPlaneArgs,
  type ControlPlaneTransforms,
  type OAuthSettings,
  type ReleaseSettings,
  type RoleBindings,
} from "./control-plane";
export {
  ControlPlaneFunction,
  type ControlPlaneFunctionArgs,
  type FunctionSizing,
} from "./control-plane-function";
export {
  type ApiThrottling,
  ControlPlaneHttpApi,
  type ControlPlaneHttpApiArgs,
  type CustomDomain,
} from "./control-plane-http-api";
export { ControlPlaneKey, type ControlPlaneKeyArgs } from "./control-plane-key";
export { ControlPlaneMonitoring, type ControlPlaneMonitoringArgs } from "./control-plane-monitoring";
export {
  ControlPlaneReleases,
  type ControlPlaneReleasesArgs,
  defaultDeploymentConfig,
  type ReleaseTarget,
} from "./control-plane-releases";
export {
  ControlPlaneSchedules,
  type ControlPlaneSchedulesArgs,
  type ScheduledTask,
  scheduledTasks,
} from "./control-plane-schedules";
export { ControlPlaneSecrets, type ControlPlaneSecretsArgs } from "./control-plane-secrets";
export { controlPlaneStack } from "./control-plane-stack";
export { ControlPlaneTables, type ControlPlaneTablesArgs, type TableCapacity } from "./control-plane-tables";
export { type DeploymentRecord, deploymentRecord, policyResults } from "./deployment-record";
export {
  type FunctionGrants,
  type FunctionKind,
  functionGrants,
  functionKinds,
  functionPolicyDocument,
} from "./grants";
export {
  buildLambdaArtifact,
  type LambdaArtifact,
  type LambdaArtifactOptions,
  lambdaArtifact,
  lambdaEntries,
} from "./lambda-artifact";
export { lambdaRuntime } from "./lambda-runtime";
export { controlPlaneNames } from "./naming";
export { type CheckedResource, evaluateRules, rules, violations } from "./policy/rules";
export { readStackConfig } from "./stack-config";
export type { Transform } from "./transform";
