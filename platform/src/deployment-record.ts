import { createHash } from "node:crypto";
import { resourceTypes } from "./policy/resource-types";
import {
  type CheckedResource,
  defaultRuleContext,
  evaluateRules,
  type RuleContext,
  rules,
} from "./policy/rules";

/**
 * The record a ControlPlane writes into its own `deployments` table at every `pulumi up`: what was
 * deployed, the control-relevant settings of each resource and the policy pack's verdicts on them. The
 * console and the compliance report read it to show the running environment's infrastructure controls.
 * Fields are snake_case, as everywhere on the wire. Secret values never appear in it.
 */
export interface DeploymentRecord {
  /** Partition key of the `deployments` table. */
  readonly environment: string;
  /** Sort key: ISO 8601 time of the deployment. */
  readonly deployed_at: string;
  readonly project: string;
  readonly stack: string;
  readonly control_plane: string;
  readonly product_version: string;
  readonly platform_version: string;
  readonly resources: readonly DeployedResource[];
  readonly policy: PolicyResults;
}

export interface DeployedResource {
  /** Short type, e.g. `dynamodb.table`. */
  readonly type: string;
  /** Pulumi resource name. */
  readonly name: string;
  readonly settings: Readonly<Record<string, string | number | boolean | string[] | null>>;
}

export interface PolicyResults {
  readonly pack: string;
  /** Rules that failed somewhere; zero is a clean deployment. */
  readonly violations: number;
  readonly rules: readonly RuleResult[];
}

export interface RuleResult {
  readonly rule: string;
  readonly description: string;
  readonly checkov: readonly string[];
  readonly prowler: readonly string[];
  readonly aws_fsbp: readonly string[];
  readonly soc2: readonly string[];
  readonly passed: number;
  readonly failed: readonly { resource: string; message: string }[];
  readonly not_applicable: readonly { resource: string; reason: string }[];
}

/** Name of the policy pack (platform/policy/), recorded with its verdicts. */
export const policyPackName = "hybrid-cicd-compliance";

const shortTypes: Record<string, string> = Object.fromEntries(
  Object.entries(resourceTypes).map(([, token]) => {
    const [, module = "", resource = ""] = /^aws:([^/]+)\/([^:]+):/.exec(token) ?? [];
    return [token, `${module}.${resource.replace(/([a-z])([A-Z])/g, "$1-$2").toLowerCase()}`];
  }),
);

type Settings = Record<string, string | number | boolean | string[] | null>;

function get(value: unknown, ...path: string[]): unknown {
  let current = value;
  for (const key of path) {
    if (typeof current !== "object" || current === null) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}
const text = (value: unknown): string | null => (typeof value === "string" ? value : null);
const number = (value: unknown): number | null => (typeof value === "number" ? value : null);
const flag = (value: unknown): boolean => value === true;
const present = (value: unknown): boolean => typeof value === "string" && value.length > 0;

/** The settings an auditor asks about, per resource type; other resource types are not listed. */
function controlSettings(resource: CheckedResource): Settings | undefined {
  const p = resource.props;
  switch (resource.type) {
    case resourceTypes.table:
      return {
        physical_name: text(p["name"]),
        billing_mode: text(p["billingMode"]),
        read_capacity: number(p["readCapacity"]),
        write_capacity: number(p["writeCapacity"]),
        point_in_time_recovery: flag(get(p, "pointInTimeRecovery", "enabled")),
        encryption: present(get(p, "serverSideEncryption", "kmsKeyArn"))
          ? "customer-managed-key"
          : "aws-owned-key",
        deletion_protection: flag(p["deletionProtectionEnabled"]),
        protected_in_stack: resource.protect === true,
        ttl_attribute: text(get(p, "ttl", "attributeName")),
      };
    case resourceTypes.function:
      return {
        physical_name: text(p["name"]),
        runtime: text(p["runtime"]),
        architecture: Array.isArray(p["architectures"]) ? (p["architectures"] as string[]) : null,
        memory_mb: number(p["memorySize"]),
        timeout_seconds: number(p["timeout"]),
        reserved_concurrency: number(p["reservedConcurrentExecutions"]),
        tracing: text(get(p, "tracingConfig", "mode")),
        log_format: text(get(p, "loggingConfig", "logFormat")),
        dead_letter_queue: present(get(p, "deadLetterConfig", "targetArn")),
        publishes_versions: flag(p["publish"]),
        code_sha256: text(p["sourceCodeHash"]),
      };
    case resourceTypes.provisionedConcurrency:
      return {
        function: text(p["functionName"]),
        qualifier: text(p["qualifier"]),
        provisioned_concurrency: number(p["provisionedConcurrentExecutions"]),
      };
    case resourceTypes.logGroup:
      return {
        physical_name: text(p["name"]),
        retention_days: number(p["retentionInDays"]),
        encryption: present(p["kmsKeyId"]) ? "customer-managed-key" : "cloudwatch-default",
      };
    case resourceTypes.secret:
      return {
        physical_name: text(p["name"]),
        encryption: present(p["kmsKeyId"]) ? "customer-managed-key" : "aws-managed-key",
        recovery_window_days: number(p["recoveryWindowInDays"]),
        protected_in_stack: resource.protect === true,
      };
    case resourceTypes.secretRotation:
      return {
        rotation_days: number(get(p, "rotationRules", "automaticallyAfterDays")),
        schedule: text(get(p, "rotationRules", "scheduleExpression")),
      };
    case resourceTypes.stage:
      return {
        access_logging: present(get(p, "accessLogSettings", "destinationArn")),
        throttling_rate_limit: number(get(p, "defaultRouteSettings", "throttlingRateLimit")),
        throttling_burst_limit: number(get(p, "defaultRouteSettings", "throttlingBurstLimit")),
      };
    case resourceTypes.permission:
      return {
        principal: text(p["principal"]),
        scoped_by_source_arn: present(p["sourceArn"]),
        qualifier: text(p["qualifier"]),
      };
    case resourceTypes.role:
      return { physical_name: text(p["name"]), permissions_boundary: text(p["permissionsBoundary"]) };
    case resourceTypes.rolePolicy: {
      const statements = get(safeJson(p["policy"]), "Statement");
      const actions = Array.isArray(statements)
        ? [...new Set(statements.flatMap((statement) => [get(statement, "Action")].flat()))].filter(
            (action): action is string => typeof action === "string",
          )
        : [];
      return { actions: actions.sort() };
    }
    case resourceTypes.metricAlarm:
      return {
        physical_name: text(p["name"]),
        metric: text(p["metricName"]) ?? "metric-math",
        threshold: number(p["threshold"]),
        notifies: Array.isArray(p["alarmActions"]) && p["alarmActions"].length > 0,
      };
    case resourceTypes.kmsKey:
      return {
        key_rotation: flag(p["enableKeyRotation"]),
        deletion_window_days: number(p["deletionWindowInDays"]),
      };
    case resourceTypes.topic:
      return {
        physical_name: text(p["name"]),
        encryption: present(p["kmsMasterKeyId"]) ? "customer-managed-key" : "none",
      };
    case resourceTypes.queue:
      return {
        physical_name: text(p["name"]),
        encryption: present(p["kmsMasterKeyId"])
          ? "customer-managed-key"
          : flag(p["sqsManagedSseEnabled"])
            ? "sqs-managed"
            : "none",
      };
    case resourceTypes.eventRule:
      return { physical_name: text(p["name"]), schedule: text(p["scheduleExpression"]) };
    case resourceTypes.domainName:
      return {
        domain: text(p["domainName"]),
        security_policy: text(get(p, "domainNameConfiguration", "securityPolicy")),
      };
    default:
      return undefined;
  }
}

function safeJson(value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

/** The policy pack's verdicts on a set of resources, summarised per rule. */
export function policyResults(
  resources: readonly CheckedResource[],
  context: RuleContext = defaultRuleContext,
): PolicyResults {
  const verdicts = evaluateRules(resources, context);
  const results: RuleResult[] = rules.map((rule) => {
    const mine = verdicts.filter((verdict) => verdict.rule === rule.name);
    return {
      rule: rule.name,
      description: rule.description,
      checkov: rule.controls.checkov,
      prowler: rule.controls.prowler,
      aws_fsbp: rule.controls.awsFsbp,
      soc2: rule.controls.soc2,
      passed: mine.filter((verdict) => verdict.outcome.status === "pass").length,
      failed: mine.flatMap((verdict) =>
        verdict.outcome.status === "fail"
          ? verdict.outcome.messages.map((message) => ({ resource: verdict.resourceName, message }))
          : [],
      ),
      not_applicable: mine.flatMap((verdict) =>
        verdict.outcome.status === "not-applicable"
          ? [{ resource: verdict.resourceName, reason: verdict.outcome.reason }]
          : [],
      ),
    };
  });
  return {
    pack: policyPackName,
    violations: results.filter((result) => result.failed.length > 0).length,
    rules: results,
  };
}

export interface DeploymentRecordInput {
  readonly environment: string;
  readonly deployedAt: string;
  readonly project: string;
  readonly stack: string;
  readonly controlPlane: string;
  readonly productVersion: string;
  readonly platformVersion: string;
  readonly resources: readonly CheckedResource[];
  readonly ruleContext?: RuleContext;
}

export function deploymentRecord(input: DeploymentRecordInput): DeploymentRecord {
  return {
    environment: input.environment,
    deployed_at: input.deployedAt,
    project: input.project,
    stack: input.stack,
    control_plane: input.controlPlane,
    product_version: input.productVersion,
    platform_version: input.platformVersion,
    resources: input.resources.flatMap((resource) => {
      const settings = controlSettings(resource);
      return settings
        ? [{ type: shortTypes[resource.type] ?? resource.type, name: resource.name, settings }]
        : [];
    }),
    policy: policyResults(input.resources, input.ruleContext),
  };
}

/** A DynamoDB attribute value (the wire format `aws.dynamodb.TableItem` takes). */
export type AttributeValue =
  | { S: string }
  | { N: string }
  | { BOOL: boolean }
  | { NULL: true }
  | { L: AttributeValue[] }
  | { M: Record<string, AttributeValue> };

export function toAttributeValue(value: unknown): AttributeValue {
  if (value === null || value === undefined) return { NULL: true };
  if (typeof value === "string") return { S: value };
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`cannot store the number ${value}`);
    return { N: String(value) };
  }
  if (typeof value === "boolean") return { BOOL: value };
  if (Array.isArray(value)) return { L: value.map(toAttributeValue) };
  if (typeof value === "object") {
    return {
      M: Object.fromEntries(
        Object.entries(value as Record<string, unknown>)
          .filter(([, entry]) => entry !== undefined)
          .map(([key, entry]) => [key, toAttributeValue(entry)]),
      ),
    };
  }
  throw new Error(`cannot store a ${typeof value} in DynamoDB`);
}

/** DynamoDB's item size limit, less room for attribute-name overhead. */
const maxItemBytes = 380_000;

/** The record as a DynamoDB item (JSON text for `aws.dynamodb.TableItem.item`). */
/**
 * What identifies a deployment: SHA-256 over every child's type, name, protection and arguments
 * (resolved; code hashes included), with object keys sorted. Equal programs with equal inputs give
 * equal digests.
 */
export function deploymentDigest(resources: readonly CheckedResource[]): string {
  const canonical = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(canonical);
    if (typeof value === "object" && value !== null) {
      return Object.fromEntries(
        Object.keys(value)
          .sort()
          .map((key) => [key, canonical((value as Record<string, unknown>)[key])]),
      );
    }
    return value;
  };
  const entries = resources.map((resource) => canonical(resource));
  return createHash("sha256").update(JSON.stringify(entries)).digest("hex");
}

export function deploymentRecordItem(record: DeploymentRecord): string {
  const attributes = (toAttributeValue(record) as { M: Record<string, AttributeValue> }).M;
  const item = JSON.stringify(attributes);
  if (Buffer.byteLength(item) > maxItemBytes) {
    throw new Error(
      `the deployment record is ${Buffer.byteLength(item)} bytes, over DynamoDB's item size limit`,
    );
  }
  return item;
}
