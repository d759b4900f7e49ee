import type {
  PolicyPackArgs,
  ReportViolation,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
} from "@pulumi/policy";
import { policyPackName } from "../deployment-record";
import {
  type CheckedResource,
  defaultRuleContext,
  type Outcome,
  type ResourceRule,
  type Rule,
  type RuleContext,
  rules,
  type StackRule,
} from "./rules";

/**
 * The rules as a `@pulumi/policy` pack. `platform/policy/index.js` serves it to the Pulumi engine
 * (`pulumi preview --policy-pack platform/policy`); the tests call the same policies directly.
 */

const configSchema = {
  properties: {
    productionEnvironments: {
      type: "array" as const,
      items: { type: "string" as const },
      default: [...defaultRuleContext.productionEnvironments],
    },
    requiredTags: {
      type: "array" as const,
      items: { type: "string" as const },
      default: [...defaultRuleContext.requiredTags],
    },
  },
};

function contextFrom(args: { getConfig<T extends object>(): T }): RuleContext {
  const config = args.getConfig<Partial<RuleContext>>();
  return {
    productionEnvironments: config.productionEnvironments ?? defaultRuleContext.productionEnvironments,
    requiredTags: config.requiredTags ?? defaultRuleContext.requiredTags,
  };
}

function metadata(rule: Rule) {
  const ids = [
    ...rule.controls.checkov,
    ...rule.controls.prowler.map((id) => `prowler:${id}`),
    ...rule.controls.awsFsbp.map((id) => `aws-fsbp:${id}`),
    ...rule.controls.soc2.map((id) => `soc2:${id}`),
  ];
  return {
    name: rule.name,
    description: `${rule.description} [${ids.join(", ")}]`,
    enforcementLevel: "mandatory" as const,
    severity: rule.severity,
    tags: ids,
    remediationSteps: rule.remediation,
    configSchema,
  };
}

/** Reports a rule's outcome the way the analyzer expects. */
function report(
  outcome: Outcome,
  reportViolation: ReportViolation,
  notApplicable: ((reason: string) => never) | undefined,
  urn?: string,
): void {
  if (outcome.status === "fail") {
    for (const message of outcome.messages) reportViolation(message, urn);
  } else if (outcome.status === "not-applicable" && notApplicable) {
    notApplicable(outcome.reason);
  }
}

function resourcePolicy(rule: ResourceRule): ResourceValidationPolicy {
  return {
    ...metadata(rule),
    validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
      if (!rule.types.includes(args.type)) return;
      const resource: CheckedResource = {
        type: args.type,
        name: args.name,
        urn: args.urn,
        props: args.props,
        protect: args.opts?.protect,
      };
      report(rule.evaluate(resource, contextFrom(args)), reportViolation, (reason) =>
        args.notApplicable(reason),
      );
    },
  };
}

function stackPolicy(rule: StackRule): StackValidationPolicy {
  return {
    ...metadata(rule),
    validateStack: (args: StackValidationArgs, reportViolation: ReportViolation) => {
      const resources: CheckedResource[] = args.resources.map((resource) => ({
        type: resource.type,
        name: resource.name,
        urn: resource.urn,
        props: resource.props,
        protect: resource.opts?.protect,
        propertyDependencies: Object.fromEntries(
          Object.entries(resource.propertyDependencies ?? {}).map(([property, dependencies]) => [
            property,
            dependencies.map((dependency) => dependency.urn),
          ]),
        ),
      }));
      for (const { resource, outcome } of rule.evaluate(resources, contextFrom(args))) {
        // A stack policy can only be inapplicable as a whole; per-resource exemptions are simply not violations.
        report(outcome, reportViolation, undefined, resource.urn);
      }
    },
  };
}

export const policies: (ResourceValidationPolicy | StackValidationPolicy)[] = rules.map((rule) =>
  rule.kind === "resource" ? resourcePolicy(rule) : stackPolicy(rule),
);

export const policyPackArgs: PolicyPackArgs = {
  policies,
  enforcementLevel: "mandatory",
  description:
    "Compliance of the hybrid CI/CD control plane's infrastructure: rules mapped to Checkov, Prowler, AWS Foundational Security Best Practices and SOC 2.",
  displayName: "hybrid-cicd compliance",
  provider: "aws",
  tags: ["aws", "compliance", "soc2"],
};

export { policyPackName };
