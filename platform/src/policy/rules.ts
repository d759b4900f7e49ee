import { controlTags, resourceTypes, taggableResourceTypes } from "./resource-types";

/**
 * The compliance rules of the infrastructure, as plain functions over resource properties. The policy
 * pack (`platform/policy/`) runs them in the Pulumi engine's analyzer; the ControlPlane runs the same
 * functions over its own children to put the verdicts in its deployment record; the tests run them
 * against the mocked resources. Each rule names the public checks it corresponds to.
 */

/** One resource as the rules see it: its type token, name and (resolved) properties. */
export interface CheckedResource {
  readonly type: string;
  readonly name: string;
  readonly urn?: string;
  readonly props: Readonly<Record<string, unknown>>;
  /** The `protect` resource option. */
  readonly protect?: boolean;
  /** For stack rules: the URNs each property depends on (from the engine, when available). */
  readonly propertyDependencies?: Readonly<Record<string, readonly string[]>>;
}

export interface RuleContext {
  /** Environments (the `hybrid-cicd:environment` tag) held to production rules. */
  readonly productionEnvironments: readonly string[];
  /** Tag keys every taggable resource must carry. */
  readonly requiredTags: readonly string[];
}

export const defaultRuleContext: RuleContext = {
  productionEnvironments: ["production", "prod"],
  requiredTags: [controlTags.environment, controlTags.controlPlane],
};

/** The public controls a rule corresponds to. */
export interface RuleControls {
  readonly checkov: readonly string[];
  readonly prowler: readonly string[];
  /** AWS Foundational Security Best Practices control ids. */
  readonly awsFsbp: readonly string[];
  /** SOC 2 Trust Services Criteria. */
  readonly soc2: readonly string[];
}

export type Outcome =
  | { readonly status: "pass" }
  | { readonly status: "fail"; readonly messages: readonly string[] }
  | { readonly status: "not-applicable"; readonly reason: string };

interface RuleBase {
  /** Policy name in the pack, e.g. `dynamodb-point-in-time-recovery`. */
  readonly name: string;
  readonly description: string;
  readonly severity: "low" | "medium" | "high" | "critical";
  readonly controls: RuleControls;
  readonly remediation: string;
}

export interface ResourceRule extends RuleBase {
  readonly kind: "resource";
  /** Type tokens the rule looks at. */
  readonly types: readonly string[];
  evaluate(resource: CheckedResource, context: RuleContext): Outcome;
}

export interface StackRule extends RuleBase {
  readonly kind: "stack";
  /** Type tokens of the resources the verdicts are about. */
  readonly types: readonly string[];
  evaluate(
    resources: readonly CheckedResource[],
    context: RuleContext,
  ): { resource: CheckedResource; outcome: Outcome }[];
}

export type Rule = ResourceRule | StackRule;

const pass: Outcome = { status: "pass" };
const fail = (...messages: string[]): Outcome => ({ status: "fail", messages });
const notApplicable = (reason: string): Outcome => ({ status: "not-applicable", reason });
const fromProblems = (problems: string[]): Outcome => (problems.length === 0 ? pass : fail(...problems));

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function nonEmptyString(value: unknown): value is string {
  return typeof value === "string" && value.length > 0;
}

export function tagsOf(resource: CheckedResource): Record<string, unknown> {
  return record(resource.props["tags"]) ?? {};
}

export function environmentOf(resource: CheckedResource): string | undefined {
  const environment = tagsOf(resource)[controlTags.environment];
  return typeof environment === "string" ? environment : undefined;
}

function isProduction(resource: CheckedResource, context: RuleContext): boolean {
  const environment = environmentOf(resource);
  return environment !== undefined && context.productionEnvironments.includes(environment);
}

// ---------------------------------------------------------------------------------------------- IAM

export interface PolicyStatement {
  readonly Effect?: string;
  readonly Action?: string | readonly string[];
  readonly NotAction?: string | readonly string[];
  readonly Resource?: string | readonly string[];
  readonly NotResource?: string | readonly string[];
  readonly Sid?: string;
}

/** The statements of an IAM policy given as JSON text or as an object (both occur in resource inputs). */
export function policyStatements(policy: unknown): PolicyStatement[] {
  let document: unknown = policy;
  if (typeof policy === "string") {
    try {
      document = JSON.parse(policy);
    } catch {
      return [];
    }
  }
  const statement = record(document)?.["Statement"];
  if (Array.isArray(statement)) return statement as PolicyStatement[];
  return record(statement) ? [statement as PolicyStatement] : [];
}

/** Every IAM policy document a resource carries (role policies, managed policies, inline policies). */
function policyDocumentsOf(resource: CheckedResource): unknown[] {
  if (resource.type === resourceTypes.rolePolicy || resource.type === resourceTypes.policy) {
    return [resource.props["policy"]];
  }
  if (resource.type === resourceTypes.role) {
    const inline = resource.props["inlinePolicies"];
    return Array.isArray(inline) ? inline.map((entry) => record(entry)?.["policy"]) : [];
  }
  return [];
}

const list = (value: string | readonly string[] | undefined): readonly string[] =>
  value === undefined ? [] : typeof value === "string" ? [value] : value;

/**
 * Actions that support no resource-level permission, so `Resource: "*"` is the only way to grant them
 * (Checkov's CKV_AWS_355 exempts them the same way). X-Ray is what Lambda tracing needs.
 */
export const actionsWithoutResourceLevelPermissions: readonly string[] = [
  "xray:PutTraceSegments",
  "xray:PutTelemetryRecords",
  "xray:GetSamplingRules",
  "xray:GetSamplingTargets",
];

/**
 * A wildcard in a resource ARN is accepted only where AWS names children the policy author cannot know:
 * the log streams of one named log group.
 */
function resourceWildcardAllowed(resource: string): boolean {
  return /^arn:[a-z-]+:logs:[a-z0-9-]+:\d{12}:log-group:[^*]+:log-stream:\*$/.test(resource);
}

/**
 * A customer-managed key: a key ARN, key id or alias of the account's own. `alias/aws/<service>` names an
 * AWS-managed key (its policy cannot be changed and it cannot be disabled), so it does not count
 * (https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-key).
 */
export function isCustomerManagedKey(value: unknown): boolean {
  if (!nonEmptyString(value)) return false;
  return !/(^|:)alias\/aws\//.test(value);
}

/**
 * A source ARN that names one resource: `arn:<partition>:<service>:<region>:<account>:<resource>` with
 * the account spelt out and a resource that is not just a wildcard. API Gateway execute-api ARNs end in
 * stage/method/path wildcards below one API id, which stays scoped to that API.
 */
export function isScopedSourceArn(value: unknown): boolean {
  if (!nonEmptyString(value)) return false;
  const match = /^arn:[a-z-]+:[a-z0-9-]+:([a-z0-9-]*):(\d{12}):(.+)$/.exec(value);
  if (!match) return false;
  const resource = match[3] ?? "";
  return !/^[*?]/.test(resource) && !/^[^/:]*[*?]/.test(resource);
}

/** A component-created resource: its URN's type chain has one of this package's components in it. */
export function createdByControlPlane(resource: CheckedResource): boolean {
  if (resource.urn === undefined) return true;
  const qualifiedType = resource.urn.split("::")[2] ?? "";
  return qualifiedType.split("$").some((type) => type.startsWith("hybrid-cicd:aws:"));
}

/**
 * Lambda runtimes that are deprecated or past end of life: Lambda blocks creating functions on them
 * (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html#runtimes-deprecated). Node.js 20
 * ended in April 2026.
 */
export const deprecatedLambdaRuntimes: readonly string[] = [
  "nodejs",
  "nodejs4.3",
  "nodejs4.3-edge",
  "nodejs6.10",
  "nodejs8.10",
  "nodejs10.x",
  "nodejs12.x",
  "nodejs14.x",
  "nodejs16.x",
  "nodejs18.x",
  "nodejs20.x",
  "python2.7",
  "python3.6",
  "python3.7",
  "python3.8",
  "python3.9",
  "ruby2.5",
  "ruby2.7",
  "ruby3.2",
  "java8",
  "go1.x",
  "dotnetcore1.0",
  "dotnetcore2.0",
  "dotnetcore2.1",
  "dotnetcore3.1",
  "dotnet6",
  "dotnet5.0",
  "provided",
];

/** AWS-managed IAM policies (`arn:aws:iam::aws:policy/...`): their actions are AWS's to change. */
function isAwsManagedPolicy(arn: unknown): boolean {
  return typeof arn === "string" && /^arn:[a-z-]+:iam::aws:policy\//.test(arn);
}

/** Managed policies a role or attachment brings in (their documents are not in the stack). */
function attachedPolicyArns(resource: CheckedResource): unknown[] {
  if (resource.type === resourceTypes.rolePolicyAttachment) return [resource.props["policyArn"]];
  if (resource.type === resourceTypes.role) {
    const managed = resource.props["managedPolicyArns"];
    return Array.isArray(managed) ? managed : [];
  }
  return [];
}

// ------------------------------------------------------------------------------------------- rules

const tablePointInTimeRecovery: ResourceRule = {
  kind: "resource",
  name: "dynamodb-point-in-time-recovery",
  description: "DynamoDB tables have point-in-time recovery enabled.",
  severity: "medium",
  controls: {
    checkov: ["CKV_AWS_28"],
    prowler: ["dynamodb_tables_pitr_enabled"],
    awsFsbp: ["DynamoDB.2"],
    soc2: ["A1.2"],
  },
  remediation: "Set pointInTimeRecovery: { enabled: true } on the table.",
  types: [resourceTypes.table],
  evaluate: (table) =>
    record(table.props["pointInTimeRecovery"])?.["enabled"] === true
      ? pass
      : fail(`table ${table.name} has no point-in-time recovery`),
};

const tableCustomerManagedKey: ResourceRule = {
  kind: "resource",
  name: "dynamodb-customer-managed-key",
  description: "DynamoDB tables are encrypted at rest with a customer-managed KMS key.",
  severity: "medium",
  controls: {
    checkov: ["CKV_AWS_119"],
    prowler: ["dynamodb_tables_kms_cmk_encryption_enabled"],
    awsFsbp: [],
    soc2: ["CC6.1"],
  },
  remediation: 'Give the ControlPlane a kmsKey ("create" or an existing key ARN).',
  types: [resourceTypes.table],
  evaluate: (table) => {
    const encryption = record(table.props["serverSideEncryption"]);
    return encryption?.["enabled"] === true && isCustomerManagedKey(encryption["kmsKeyArn"])
      ? pass
      : fail(`table ${table.name} is not encrypted with a customer-managed KMS key`);
  },
};

const tableDeletionProtection: ResourceRule = {
  kind: "resource",
  name: "dynamodb-deletion-protection",
  description:
    "Production DynamoDB tables have deletion protection on and are protected in the Pulumi stack.",
  severity: "high",
  controls: {
    checkov: [],
    prowler: ["dynamodb_table_deletion_protection_enabled"],
    awsFsbp: ["DynamoDB.6"],
    soc2: ["A1.2"],
  },
  remediation: "Set protect: true on the ControlPlane (the default in production).",
  types: [resourceTypes.table],
  evaluate: (table, context) => {
    if (!isProduction(table, context)) return notApplicable("not a production table");
    const problems: string[] = [];
    if (table.props["deletionProtectionEnabled"] !== true) {
      problems.push(`production table ${table.name} has no deletion protection`);
    }
    if (table.protect === false)
      problems.push(`production table ${table.name} is not protected in the stack`);
    return fromProblems(problems);
  },
};

const secretRotationEnabled: StackRule = {
  kind: "stack",
  name: "secretsmanager-rotation-enabled",
  description:
    "Every Secrets Manager secret has automatic rotation, unless it carries a written exemption (e.g. OAuth client secrets issued by the provider).",
  severity: "medium",
  controls: {
    checkov: ["CKV2_AWS_57"],
    prowler: ["secretsmanager_automatic_rotation_enabled"],
    awsFsbp: ["SecretsManager.1"],
    soc2: ["CC6.1"],
  },
  remediation: "Declare rotationDays for the secret in runtime/src/secrets/catalog.ts.",
  types: [resourceTypes.secret],
  evaluate: (resources) => {
    const rotations = resources.filter((resource) => resource.type === resourceTypes.secretRotation);
    return resources
      .filter((resource) => resource.type === resourceTypes.secret)
      .map((secret) => {
        const exemption = tagsOf(secret)[controlTags.rotationExemption];
        if (nonEmptyString(exemption)) return { resource: secret, outcome: notApplicable(exemption) };
        const identities = [secret.props["arn"], secret.props["id"], secret.props["name"]].filter(
          nonEmptyString,
        );
        const rotation = rotations.find(
          (candidate) =>
            (nonEmptyString(candidate.props["secretId"]) &&
              identities.includes(candidate.props["secretId"])) ||
            (secret.urn !== undefined && candidate.propertyDependencies?.["secretId"]?.includes(secret.urn)),
        );
        const enabled =
          rotation !== undefined &&
          rotation.props["rotationEnabled"] !== false &&
          nonEmptyString(rotation.props["rotationLambdaArn"]);
        return {
          resource: secret,
          outcome: enabled ? pass : fail(`secret ${secret.name} has no automatic rotation`),
        };
      });
  },
};

/** Days between rotations a rotation's rules allow, if they can be read. */
function rotationIntervalDays(rules: Record<string, unknown> | undefined): number | undefined {
  if (!rules) return undefined;
  if (typeof rules["automaticallyAfterDays"] === "number") return rules["automaticallyAfterDays"];
  const expression = rules["scheduleExpression"];
  if (typeof expression !== "string") return undefined;
  const rate = /^rate\((\d+) (hour|hours|day|days)\)$/.exec(expression);
  if (!rate) return undefined;
  const amount = Number(rate[1]);
  return rate[2]?.startsWith("hour") ? amount / 24 : amount;
}

const secretRotationWithin90Days: ResourceRule = {
  kind: "resource",
  name: "secretsmanager-rotation-within-90-days",
  description: "Secret rotation happens at least every 90 days.",
  severity: "medium",
  controls: {
    checkov: ["CKV_AWS_304"],
    prowler: ["secretsmanager_automatic_rotation_enabled"],
    awsFsbp: ["SecretsManager.4"],
    soc2: ["CC6.1"],
  },
  remediation: "Set rotationDays ≤ 90 in the secret catalog.",
  types: [resourceTypes.secretRotation],
  evaluate: (rotation) => {
    const days = rotationIntervalDays(record(rotation.props["rotationRules"]));
    if (days === undefined) {
      return fail(
        `rotation ${rotation.name} has no interval that can be checked (use automaticallyAfterDays)`,
      );
    }
    return days <= 90 ? pass : fail(`rotation ${rotation.name} rotates every ${days} days (more than 90)`);
  },
};

const secretCustomerManagedKey: ResourceRule = {
  kind: "resource",
  name: "secretsmanager-customer-managed-key",
  description: "Secrets are encrypted with a customer-managed KMS key.",
  severity: "low",
  controls: { checkov: ["CKV_AWS_149"], prowler: [], awsFsbp: [], soc2: ["CC6.1"] },
  remediation: "Give the ControlPlane a kmsKey.",
  types: [resourceTypes.secret],
  evaluate: (secret) =>
    isCustomerManagedKey(secret.props["kmsKeyId"])
      ? pass
      : fail(`secret ${secret.name} is not encrypted with a customer-managed KMS key`),
};

const logRetentionSet: ResourceRule = {
  kind: "resource",
  name: "cloudwatch-log-retention-set",
  description: "Every log group has a retention period (logs never kept forever by accident).",
  severity: "low",
  controls: {
    checkov: ["CKV_AWS_66"],
    prowler: ["cloudwatch_log_group_retention_policy_specific_days_enabled"],
    awsFsbp: [],
    soc2: ["CC7.2"],
  },
  remediation: "Set logRetentionDays on the ControlPlane.",
  types: [resourceTypes.logGroup],
  evaluate: (group) => {
    const days = group.props["retentionInDays"];
    return typeof days === "number" && days > 0
      ? pass
      : fail(`log group ${group.name} has no retention period`);
  },
};

const logRetentionOneYearInProduction: ResourceRule = {
  kind: "resource",
  name: "cloudwatch-log-retention-one-year-in-production",
  description: "Production log groups keep their logs for at least one year.",
  severity: "medium",
  controls: {
    checkov: ["CKV_AWS_338"],
    prowler: ["cloudwatch_log_group_retention_policy_specific_days_enabled"],
    awsFsbp: [],
    soc2: ["CC7.2"],
  },
  remediation: "Set logRetentionDays ≥ 365 for production.",
  types: [resourceTypes.logGroup],
  evaluate: (group, context) => {
    if (!isProduction(group, context)) return notApplicable("not a production log group");
    const days = group.props["retentionInDays"];
    // No retention (or 0) means logs never expire: over a year; `cloudwatch-log-retention-set` judges that.
    if (typeof days !== "number" || days === 0) return pass;
    return days >= 365
      ? pass
      : fail(`production log group ${group.name} keeps logs ${days} days (less than 365)`);
  },
};

const logGroupCustomerManagedKey: ResourceRule = {
  kind: "resource",
  name: "cloudwatch-log-group-customer-managed-key",
  description: "Log groups are encrypted with a customer-managed KMS key.",
  severity: "low",
  controls: {
    checkov: ["CKV_AWS_158"],
    prowler: ["cloudwatch_log_group_kms_encryption_enabled"],
    awsFsbp: [],
    soc2: ["CC6.1"],
  },
  remediation: "Give the ControlPlane a kmsKey.",
  types: [resourceTypes.logGroup],
  evaluate: (group) =>
    isCustomerManagedKey(group.props["kmsKeyId"])
      ? pass
      : fail(`log group ${group.name} is not encrypted with a customer-managed KMS key`),
};

const apiAccessLogging: ResourceRule = {
  kind: "resource",
  name: "apigateway-access-logging",
  description: "HTTP API stages write access logs.",
  severity: "medium",
  controls: {
    checkov: ["CKV_AWS_76"],
    prowler: ["apigatewayv2_api_access_logging_enabled"],
    awsFsbp: ["APIGateway.9"],
    soc2: ["CC7.2"],
  },
  remediation: "Keep the stage's accessLogSettings (the ControlPlane always sets them).",
  types: [resourceTypes.stage],
  evaluate: (stage) => {
    const settings = record(stage.props["accessLogSettings"]);
    return nonEmptyString(settings?.["destinationArn"]) && nonEmptyString(settings?.["format"])
      ? pass
      : fail(`stage ${stage.name} writes no access logs`);
  },
};

const lambdaPermissionSourceArn: ResourceRule = {
  kind: "resource",
  name: "lambda-permission-source-arn",
  description: "Lambda invoke permissions granted to AWS services are scoped to one source ARN.",
  severity: "high",
  controls: {
    checkov: ["CKV_AWS_364"],
    prowler: ["awslambda_function_not_publicly_accessible"],
    awsFsbp: ["Lambda.1"],
    soc2: ["CC6.1", "CC6.3"],
  },
  remediation: "Pass sourceArn (the API's execution ARN, the rule's or the secret's ARN).",
  types: [resourceTypes.permission],
  evaluate: (permission) => {
    const problems: string[] = [];
    if (permission.props["principal"] === "*")
      problems.push(`permission ${permission.name} is granted to everyone`);
    if (!nonEmptyString(permission.props["sourceArn"])) {
      problems.push(`permission ${permission.name} is not scoped with a sourceArn`);
    } else if (!isScopedSourceArn(permission.props["sourceArn"])) {
      problems.push(`permission ${permission.name} has a sourceArn that names no single resource`);
    }
    return fromProblems(problems);
  },
};

const lambdaTracing: ResourceRule = {
  kind: "resource",
  name: "lambda-tracing",
  description: "Lambda functions send X-Ray traces (active tracing).",
  severity: "low",
  controls: { checkov: ["CKV_AWS_50"], prowler: [], awsFsbp: [], soc2: ["CC7.2"] },
  remediation: "Keep tracing: true on the ControlPlane.",
  types: [resourceTypes.function],
  evaluate: (fn) =>
    record(fn.props["tracingConfig"])?.["mode"] === "Active"
      ? pass
      : fail(`function ${fn.name} has no active X-Ray tracing`),
};

const lambdaSupportedRuntime: ResourceRule = {
  kind: "resource",
  name: "lambda-supported-runtime",
  description: "Lambda functions run on a runtime Lambda still supports (not deprecated, e.g. nodejs20.x).",
  severity: "high",
  controls: {
    checkov: ["CKV_AWS_363"],
    prowler: ["awslambda_function_using_supported_runtimes"],
    awsFsbp: ["Lambda.2"],
    soc2: ["CC7.1"],
  },
  remediation: "Use nodejs22.x or nodejs24.x (the ControlPlane's default is nodejs22.x).",
  types: [resourceTypes.function],
  evaluate: (fn) => {
    const runtime = fn.props["runtime"];
    if (runtime === undefined && fn.props["packageType"] === "Image") {
      return notApplicable("container image functions bring their own runtime");
    }
    return typeof runtime === "string" && !deprecatedLambdaRuntimes.includes(runtime)
      ? pass
      : fail(`function ${fn.name} runs on the deprecated runtime ${String(runtime)}`);
  },
};

const lambdaConcurrencyLimit: ResourceRule = {
  kind: "resource",
  name: "lambda-concurrency-limit",
  description: "Lambda functions have a function-level concurrency limit (reserved concurrency).",
  severity: "low",
  controls: { checkov: ["CKV_AWS_115"], prowler: [], awsFsbp: [], soc2: ["A1.1"] },
  remediation: "Set reservedConcurrency for the function.",
  types: [resourceTypes.function],
  evaluate: (fn) => {
    const reserved = fn.props["reservedConcurrentExecutions"];
    return typeof reserved === "number" && reserved >= 0
      ? pass
      : fail(`function ${fn.name} has no reserved concurrency limit`);
  },
};

const iamResourceTypes = [
  resourceTypes.rolePolicy,
  resourceTypes.policy,
  resourceTypes.role,
  resourceTypes.rolePolicyAttachment,
];

const iamNoWildcardActions: ResourceRule = {
  kind: "resource",
  name: "iam-no-wildcard-actions",
  description: "IAM policies name every action they allow: no `*`, no `service:*`, no `NotAction`.",
  severity: "high",
  controls: {
    checkov: ["CKV_AWS_63"],
    prowler: [],
    awsFsbp: ["IAM.21"],
    soc2: ["CC6.1", "CC6.3"],
  },
  remediation:
    "Declare the access as a grant (platform/src/grants.ts); grants expand to named actions. Attach no AWS-managed policies.",
  types: iamResourceTypes,
  evaluate: (resource) => {
    const problems: string[] = [];
    for (const arn of attachedPolicyArns(resource)) {
      if (isAwsManagedPolicy(arn)) {
        problems.push(
          `${resource.name}: attaches the AWS-managed policy ${arn}, whose actions are not named here`,
        );
      }
    }
    for (const statement of policyDocumentsOf(resource).flatMap(policyStatements)) {
      if (statement.Effect !== "Allow") continue;
      if (statement.NotAction !== undefined)
        problems.push(`${resource.name}: an Allow statement uses NotAction`);
      for (const action of list(statement.Action)) {
        if (action.includes("*")) problems.push(`${resource.name}: allows the wildcard action "${action}"`);
      }
    }
    return fromProblems(problems);
  },
};

const iamNoWildcardResources: ResourceRule = {
  kind: "resource",
  name: "iam-no-wildcard-resources",
  description:
    'IAM policies name the resources they allow: no `Resource: "*"` for actions that can be scoped, no wildcard ARNs.',
  severity: "high",
  controls: { checkov: ["CKV_AWS_355"], prowler: [], awsFsbp: [], soc2: ["CC6.1", "CC6.3"] },
  remediation: "Grant on named table, index, secret, queue and log-group ARNs.",
  types: iamResourceTypes,
  evaluate: (resource) => {
    const problems: string[] = [];
    for (const statement of policyDocumentsOf(resource).flatMap(policyStatements)) {
      if (statement.Effect !== "Allow") continue;
      if (statement.NotResource !== undefined)
        problems.push(`${resource.name}: an Allow statement uses NotResource`);
      const unscopable = list(statement.Action).every((action) =>
        actionsWithoutResourceLevelPermissions.includes(action),
      );
      for (const target of list(statement.Resource)) {
        if (!target.includes("*")) continue;
        if (target === "*" && unscopable) continue;
        if (resourceWildcardAllowed(target)) continue;
        problems.push(`${resource.name}: allows the wildcard resource "${target}"`);
      }
    }
    return fromProblems(problems);
  },
};

const kmsKeyRotation: ResourceRule = {
  kind: "resource",
  name: "kms-key-rotation",
  description: "Customer-managed KMS keys rotate their key material yearly.",
  severity: "medium",
  controls: {
    checkov: ["CKV_AWS_7"],
    prowler: ["kms_cmk_rotation_enabled"],
    awsFsbp: ["KMS.4"],
    soc2: ["CC6.1"],
  },
  remediation: "Set enableKeyRotation: true on the key.",
  types: [resourceTypes.kmsKey],
  evaluate: (key) =>
    key.props["enableKeyRotation"] === true
      ? pass
      : fail(`KMS key ${key.name} does not rotate its key material`),
};

const tagsPresent: ResourceRule = {
  kind: "resource",
  name: "tags-present",
  description: "Every taggable resource carries the environment and control-plane tags (asset inventory).",
  severity: "low",
  controls: { checkov: [], prowler: [], awsFsbp: [], soc2: ["CC6.1"] },
  remediation: "Create resources through the ControlPlane, which tags every taggable child.",
  types: taggableResourceTypes,
  evaluate: (resource, context) => {
    if (!createdByControlPlane(resource)) return notApplicable("not created by a ControlPlane");
    const tags = tagsOf(resource);
    const missing = context.requiredTags.filter((key) => !nonEmptyString(tags[key]));
    return missing.length === 0 ? pass : fail(`${resource.name} lacks the tags ${missing.join(", ")}`);
  },
};

/** Every rule, in the order reports list them. */
export const rules: readonly Rule[] = [
  tablePointInTimeRecovery,
  tableCustomerManagedKey,
  tableDeletionProtection,
  secretRotationEnabled,
  secretRotationWithin90Days,
  secretCustomerManagedKey,
  logRetentionSet,
  logRetentionOneYearInProduction,
  logGroupCustomerManagedKey,
  apiAccessLogging,
  lambdaPermissionSourceArn,
  lambdaTracing,
  lambdaSupportedRuntime,
  lambdaConcurrencyLimit,
  iamNoWildcardActions,
  iamNoWildcardResources,
  kmsKeyRotation,
  tagsPresent,
];

/** One rule's verdict on one resource. */
export interface Verdict {
  readonly rule: string;
  readonly resourceType: string;
  readonly resourceName: string;
  readonly outcome: Outcome;
}

/** Runs every rule over a set of resources, as the analyzer would over a stack. */
export function evaluateRules(
  resources: readonly CheckedResource[],
  context: RuleContext = defaultRuleContext,
  selected: readonly Rule[] = rules,
): Verdict[] {
  const verdicts: Verdict[] = [];
  for (const rule of selected) {
    if (rule.kind === "resource") {
      for (const resource of resources) {
        if (!rule.types.includes(resource.type)) continue;
        verdicts.push({
          rule: rule.name,
          resourceType: resource.type,
          resourceName: resource.name,
          outcome: rule.evaluate(resource, context),
        });
      }
    } else {
      for (const { resource, outcome } of rule.evaluate(resources, context)) {
        verdicts.push({ rule: rule.name, resourceType: resource.type, resourceName: resource.name, outcome });
      }
    }
  }
  return verdicts;
}

/** The failing verdicts only. */
export function violations(verdicts: readonly Verdict[]): Verdict[] {
  return verdicts.filter((verdict) => verdict.outcome.status === "fail");
}
