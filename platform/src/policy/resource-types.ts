/**
 * Pulumi type tokens of the AWS resources the rules look at (the `type` the engine, the mocks and the
 * policy analyzer all report). Spelled once here.
 */
export const resourceTypes = {
  table: "aws:dynamodb/table:Table",
  tableItem: "aws:dynamodb/tableItem:TableItem",
  secret: "aws:secretsmanager/secret:Secret",
  secretVersion: "aws:secretsmanager/secretVersion:SecretVersion",
  secretRotation: "aws:secretsmanager/secretRotation:SecretRotation",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
  metricAlarm: "aws:cloudwatch/metricAlarm:MetricAlarm",
  eventRule: "aws:cloudwatch/eventRule:EventRule",
  eventTarget: "aws:cloudwatch/eventTarget:EventTarget",
  function: "aws:lambda/function:Function",
  alias: "aws:lambda/alias:Alias",
  provisionedConcurrency: "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig",
  permission: "aws:lambda/permission:Permission",
  role: "aws:iam/role:Role",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  policy: "aws:iam/policy:Policy",
  rolePolicyAttachment: "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
  api: "aws:apigatewayv2/api:Api",
  stage: "aws:apigatewayv2/stage:Stage",
  route: "aws:apigatewayv2/route:Route",
  integration: "aws:apigatewayv2/integration:Integration",
  domainName: "aws:apigatewayv2/domainName:DomainName",
  apiMapping: "aws:apigatewayv2/apiMapping:ApiMapping",
  kmsKey: "aws:kms/key:Key",
  kmsAlias: "aws:kms/alias:Alias",
  topic: "aws:sns/topic:Topic",
  queue: "aws:sqs/queue:Queue",
} as const;

export type ResourceTypeKey = keyof typeof resourceTypes;

/**
 * The resource types above whose arguments accept `tags` (checked against the provider's own type
 * declarations by the platform tests, so a wrong entry fails there).
 */
export const taggableResourceTypes: readonly string[] = [
  resourceTypes.table,
  resourceTypes.secret,
  resourceTypes.logGroup,
  resourceTypes.metricAlarm,
  resourceTypes.eventRule,
  resourceTypes.function,
  resourceTypes.role,
  resourceTypes.policy,
  resourceTypes.api,
  resourceTypes.stage,
  resourceTypes.domainName,
  resourceTypes.kmsKey,
  resourceTypes.topic,
  resourceTypes.queue,
];

/** Tag keys the component puts on every taggable child and the `tags-present` rule requires. */
export const controlTags = {
  environment: "hybrid-cicd:environment",
  controlPlane: "hybrid-cicd:control-plane",
  /** On a secret that is rotated by hand: why (read by the rotation rule). */
  rotationExemption: "hybrid-cicd:rotation-exemption",
} as const;
