import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { tableKeys } from "@hybrid-cicd/runtime/store/schema";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ControlPlane } from "../../platform/src/control-plane";
import type { DeploymentRecord } from "../../platform/src/deployment-record";
import { policyPackName } from "../../platform/src/policy/pack";
import { controlTags, resourceTypes, taggableResourceTypes } from "../../platform/src/policy/resource-types";
import { type CheckedResource, evaluateRules, rules, violations } from "../../platform/src/policy/rules";
import { PolicyAnalyzer, urnOf } from "./support/policy-analyzer";
import { repositoryRoot, useMocks } from "./support/pulumi-mocks";
import { runProgram, unmarshall } from "./support/stack-run";

/** `EnforcementLevel.MANDATORY` in the analyzer protocol. */
const mandatory = 1;

/**
 * The policy pack's rules: each one on hand-written resources (pass and fail), each one firing on a
 * control plane deliberately broken through its arguments and transforms, and the pack as the Pulumi
 * engine sees it (served over gRPC by platform/policy/index.js).
 */

const production = { [controlTags.environment]: "production", [controlTags.controlPlane]: "cp" };
const staging = { [controlTags.environment]: "staging", [controlTags.controlPlane]: "cp" };
const logStreams = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/cp-production-api:log-stream:*";
const policy = (statement: object) => JSON.stringify({ Version: "2012-10-17", Statement: [statement] });

/** Per rule: resources it passes and resources it must fail. */
const cases: Record<string, { pass: CheckedResource[][]; fail: CheckedResource[][] }> = {
  "dynamodb-point-in-time-recovery": {
    pass: [[{ type: resourceTypes.table, name: "t", props: { pointInTimeRecovery: { enabled: true } } }]],
    fail: [
      [{ type: resourceTypes.table, name: "t", props: { pointInTimeRecovery: { enabled: false } } }],
      [{ type: resourceTypes.table, name: "t", props: {} }],
    ],
  },
  "dynamodb-customer-managed-key": {
    pass: [
      [
        {
          type: resourceTypes.table,
          name: "t",
          props: { serverSideEncryption: { enabled: true, kmsKeyArn: "arn:aws:kms:x" } },
        },
      ],
    ],
    fail: [
      [{ type: resourceTypes.table, name: "t", props: { serverSideEncryption: { enabled: true } } }],
      [{ type: resourceTypes.table, name: "t", props: {} }],
      // The AWS-managed key of DynamoDB is not the account's own key.
      [
        {
          type: resourceTypes.table,
          name: "t",
          props: {
            serverSideEncryption: {
              enabled: true,
              kmsKeyArn: "arn:aws:kms:eu-west-1:123456789012:alias/aws/dynamodb",
            },
          },
        },
      ],
    ],
  },
  "dynamodb-deletion-protection": {
    pass: [
      [
        {
          type: resourceTypes.table,
          name: "t",
          protect: true,
          props: { deletionProtectionEnabled: true, tags: production },
        },
      ],
      [{ type: resourceTypes.table, name: "t", protect: false, props: { tags: staging } }],
    ],
    fail: [
      [{ type: resourceTypes.table, name: "t", protect: true, props: { tags: production } }],
      [
        {
          type: resourceTypes.table,
          name: "t",
          protect: false,
          props: { deletionProtectionEnabled: true, tags: production },
        },
      ],
    ],
  },
  "secretsmanager-rotation-enabled": {
    pass: [
      [
        { type: resourceTypes.secret, name: "s", props: { arn: "arn:s" } },
        {
          type: resourceTypes.secretRotation,
          name: "r",
          props: { secretId: "arn:s", rotationLambdaArn: "arn:f" },
        },
      ],
      [
        { type: resourceTypes.secret, name: "s", urn: "urn:s", props: {} },
        {
          type: resourceTypes.secretRotation,
          name: "r",
          props: { rotationLambdaArn: "arn:f" },
          propertyDependencies: { secretId: ["urn:s"] },
        },
      ],
      [
        {
          type: resourceTypes.secret,
          name: "s",
          props: { tags: { [controlTags.rotationExemption]: "issued by GitHub" } },
        },
      ],
    ],
    fail: [
      [{ type: resourceTypes.secret, name: "s", props: { arn: "arn:s" } }],
      [
        { type: resourceTypes.secret, name: "s", props: { arn: "arn:s" } },
        {
          type: resourceTypes.secretRotation,
          name: "r",
          props: { secretId: "arn:other", rotationLambdaArn: "arn:f" },
        },
      ],
      [
        { type: resourceTypes.secret, name: "s", props: { arn: "arn:s" } },
        {
          type: resourceTypes.secretRotation,
          name: "r",
          props: { secretId: "arn:s", rotationLambdaArn: "arn:f", rotationEnabled: false },
        },
      ],
    ],
  },
  "secretsmanager-rotation-within-90-days": {
    pass: [
      [
        {
          type: resourceTypes.secretRotation,
          name: "r",
          props: { rotationRules: { automaticallyAfterDays: 90 } },
        },
      ],
      [
        {
          type: resourceTypes.secretRotation,
          name: "r",
          props: { rotationRules: { scheduleExpression: "rate(30 days)" } },
        },
      ],
    ],
    fail: [
      [
        {
          type: resourceTypes.secretRotation,
          name: "r",
          props: { rotationRules: { automaticallyAfterDays: 91 } },
        },
      ],
      [
        {
          type: resourceTypes.secretRotation,
          name: "r",
          props: { rotationRules: { scheduleExpression: "cron(0 0 1 * ? *)" } },
        },
      ],
    ],
  },
  "secretsmanager-customer-managed-key": {
    pass: [
      [{ type: resourceTypes.secret, name: "s", props: { kmsKeyId: "arn:aws:kms:x" } }],
      [{ type: resourceTypes.secret, name: "s", props: { kmsKeyId: "alias/cicd" } }],
    ],
    fail: [
      [{ type: resourceTypes.secret, name: "s", props: {} }],
      [{ type: resourceTypes.secret, name: "s", props: { kmsKeyId: "alias/aws/secretsmanager" } }],
    ],
  },
  "cloudwatch-log-retention-set": {
    pass: [[{ type: resourceTypes.logGroup, name: "l", props: { retentionInDays: 14 } }]],
    fail: [
      [{ type: resourceTypes.logGroup, name: "l", props: {} }],
      [{ type: resourceTypes.logGroup, name: "l", props: { retentionInDays: 0 } }],
    ],
  },
  "cloudwatch-log-retention-one-year-in-production": {
    pass: [
      [{ type: resourceTypes.logGroup, name: "l", props: { retentionInDays: 365, tags: production } }],
      [{ type: resourceTypes.logGroup, name: "l", props: { retentionInDays: 14, tags: staging } }],
    ],
    fail: [[{ type: resourceTypes.logGroup, name: "l", props: { retentionInDays: 180, tags: production } }]],
  },
  "cloudwatch-log-group-customer-managed-key": {
    pass: [[{ type: resourceTypes.logGroup, name: "l", props: { kmsKeyId: "arn:aws:kms:x" } }]],
    fail: [
      [{ type: resourceTypes.logGroup, name: "l", props: {} }],
      [
        {
          type: resourceTypes.logGroup,
          name: "l",
          props: { kmsKeyId: "arn:aws:kms:eu-west-1:123456789012:alias/aws/logs" },
        },
      ],
    ],
  },
  "apigateway-access-logging": {
    pass: [
      [
        {
          type: resourceTypes.stage,
          name: "s",
          props: { accessLogSettings: { destinationArn: "arn:l", format: "{}" } },
        },
      ],
    ],
    fail: [[{ type: resourceTypes.stage, name: "s", props: {} }]],
  },
  "lambda-permission-source-arn": {
    pass: [
      [
        {
          type: resourceTypes.permission,
          name: "p",
          props: {
            principal: "events.amazonaws.com",
            sourceArn: "arn:aws:events:eu-west-1:123456789012:rule/cp-sweep",
          },
        },
      ],
      [
        {
          type: resourceTypes.permission,
          name: "p",
          props: {
            principal: "apigateway.amazonaws.com",
            sourceArn: "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3/*/*/console",
          },
        },
      ],
    ],
    fail: [
      [{ type: resourceTypes.permission, name: "p", props: { principal: "events.amazonaws.com" } }],
      [
        {
          type: resourceTypes.permission,
          name: "p",
          props: { principal: "*", sourceArn: "arn:aws:events:eu-west-1:123456789012:rule/r" },
        },
      ],
      [
        {
          type: resourceTypes.permission,
          name: "p",
          props: { principal: "events.amazonaws.com", sourceArn: "*" },
        },
      ],
      [
        {
          type: resourceTypes.permission,
          name: "p",
          props: { principal: "apigateway.amazonaws.com", sourceArn: "arn:aws:execute-api:eu-west-1:*:*" },
        },
      ],
      [
        {
          type: resourceTypes.permission,
          name: "p",
          props: {
            principal: "apigateway.amazonaws.com",
            sourceArn: "arn:aws:execute-api:eu-west-1:123456789012:*",
          },
        },
      ],
    ],
  },
  "lambda-tracing": {
    pass: [[{ type: resourceTypes.function, name: "f", props: { tracingConfig: { mode: "Active" } } }]],
    fail: [[{ type: resourceTypes.function, name: "f", props: { tracingConfig: { mode: "PassThrough" } } }]],
  },
  "lambda-supported-runtime": {
    pass: [
      [{ type: resourceTypes.function, name: "f", props: { runtime: "nodejs22.x" } }],
      [{ type: resourceTypes.function, name: "f", props: { runtime: "nodejs24.x" } }],
      [{ type: resourceTypes.function, name: "f", props: { packageType: "Image" } }],
    ],
    fail: [
      [{ type: resourceTypes.function, name: "f", props: { runtime: "nodejs20.x" } }],
      [{ type: resourceTypes.function, name: "f", props: { runtime: "nodejs18.x" } }],
      [{ type: resourceTypes.function, name: "f", props: {} }],
    ],
  },
  "lambda-concurrency-limit": {
    pass: [[{ type: resourceTypes.function, name: "f", props: { reservedConcurrentExecutions: 10 } }]],
    fail: [
      [{ type: resourceTypes.function, name: "f", props: {} }],
      [{ type: resourceTypes.function, name: "f", props: { reservedConcurrentExecutions: -1 } }],
    ],
  },
  "iam-no-wildcard-actions": {
    pass: [
      [
        {
          type: resourceTypes.rolePolicy,
          name: "p",
          props: { policy: policy({ Effect: "Allow", Action: ["dynamodb:GetItem"], Resource: "arn:t" }) },
        },
      ],
      [
        {
          type: resourceTypes.rolePolicyAttachment,
          name: "a",
          props: { role: "r", policyArn: "arn:aws:iam::123456789012:policy/ci-read-only" },
        },
      ],
    ],
    fail: [
      // AWS-managed policies: their actions are not in the stack to be checked.
      [
        {
          type: resourceTypes.rolePolicyAttachment,
          name: "a",
          props: { role: "r", policyArn: "arn:aws:iam::aws:policy/AdministratorAccess" },
        },
      ],
      [
        {
          type: resourceTypes.role,
          name: "r",
          props: { managedPolicyArns: ["arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess"] },
        },
      ],
      [
        {
          type: resourceTypes.rolePolicy,
          name: "p",
          props: { policy: policy({ Effect: "Allow", Action: "dynamodb:*", Resource: "arn:t" }) },
        },
      ],
      [
        {
          type: resourceTypes.rolePolicy,
          name: "p",
          props: { policy: policy({ Effect: "Allow", Action: ["dynamodb:Get*"], Resource: "arn:t" }) },
        },
      ],
      [
        {
          type: resourceTypes.rolePolicy,
          name: "p",
          props: { policy: policy({ Effect: "Allow", NotAction: "iam:*", Resource: "arn:t" }) },
        },
      ],
      [
        {
          type: resourceTypes.role,
          name: "r",
          props: {
            inlinePolicies: [
              { name: "x", policy: policy({ Effect: "Allow", Action: "*", Resource: "arn:t" }) },
            ],
          },
        },
      ],
    ],
  },
  "iam-no-wildcard-resources": {
    pass: [
      [
        {
          type: resourceTypes.rolePolicy,
          name: "p",
          props: {
            policy: policy({ Effect: "Allow", Action: ["logs:PutLogEvents"], Resource: [logStreams] }),
          },
        },
      ],
      [
        {
          type: resourceTypes.rolePolicy,
          name: "p",
          props: { policy: policy({ Effect: "Allow", Action: ["xray:PutTraceSegments"], Resource: "*" }) },
        },
      ],
    ],
    fail: [
      [
        {
          type: resourceTypes.rolePolicy,
          name: "p",
          props: { policy: policy({ Effect: "Allow", Action: ["dynamodb:GetItem"], Resource: "*" }) },
        },
      ],
      [
        {
          type: resourceTypes.rolePolicy,
          name: "p",
          props: {
            policy: policy({
              Effect: "Allow",
              Action: ["dynamodb:GetItem"],
              Resource: "arn:aws:dynamodb:eu-west-1:123456789012:table/*",
            }),
          },
        },
      ],
      [
        {
          type: resourceTypes.rolePolicy,
          name: "p",
          props: {
            policy: policy({
              Effect: "Allow",
              Action: ["xray:PutTraceSegments", "s3:GetObject"],
              Resource: "*",
            }),
          },
        },
      ],
    ],
  },
  "kms-key-rotation": {
    pass: [[{ type: resourceTypes.kmsKey, name: "k", props: { enableKeyRotation: true } }]],
    fail: [[{ type: resourceTypes.kmsKey, name: "k", props: {} }]],
  },
  "tags-present": {
    pass: [
      [{ type: resourceTypes.queue, name: "q", props: { tags: staging } }],
      // Not created by a ControlPlane (no component in its URN's type chain): not the pack's to judge.
      [
        {
          type: resourceTypes.queue,
          name: "q",
          urn: "urn:pulumi:test::shop::aws:sqs/queue:Queue::orders",
          props: {},
        },
      ],
    ],
    fail: [
      [{ type: resourceTypes.queue, name: "q", props: {} }],
      [{ type: resourceTypes.queue, name: "q", props: { tags: { [controlTags.environment]: "staging" } } }],
    ],
  },
};

describe("the resource types the rules know", () => {
  test("are classed as taggable exactly when the AWS provider's arguments accept tags", () => {
    const awsPackage = path.dirname(createRequire(import.meta.url).resolve("@pulumi/aws/package.json"));
    for (const token of Object.values(resourceTypes)) {
      const [, module, file, className] = /^aws:([^/]+)\/([^:]+):(.+)$/.exec(token) ?? [];
      const declarations = readFileSync(path.join(awsPackage, module ?? "", `${file}.d.ts`), "utf8");
      const args = new RegExp(`export interface ${className}Args \\{([\\s\\S]*?)\\n\\}`).exec(
        declarations,
      )?.[1];
      expect(args, token).toBeDefined();
      expect(/\n {4}tags\?:/.test(args ?? ""), token).toBe(taggableResourceTypes.includes(token));
    }
  });
});

/**
 * Hand-written resources stand in for a ControlPlane's children: their URNs put them under the
 * component, as `tags-present` (which judges only what the component created) expects.
 */
const asChild = (resource: CheckedResource): CheckedResource => ({
  ...resource,
  urn: resource.urn ?? urnOf(resource, "hybrid-cicd:aws:ControlPlane"),
});

describe("each rule on hand-written resources, through the pack the CLI runs (run-policy-pack, gRPC)", () => {
  let analyzer: PolicyAnalyzer;

  beforeAll(async () => {
    analyzer = await PolicyAnalyzer.start();
  });

  afterAll(() => analyzer?.close());

  test("every rule of the pack has cases", () => {
    expect(Object.keys(cases).sort()).toEqual(rules.map((rule) => rule.name).sort());
  });

  for (const rule of rules) {
    test(`${rule.name} passes what complies and fails what does not`, async () => {
      const ruleCases = cases[rule.name];
      if (!ruleCases) throw new Error(`no cases for ${rule.name}`);
      const reported = async (resources: CheckedResource[]) =>
        (await analyzer.analyzeAll(resources.map(asChild))).filter((entry) => entry.policy === rule.name);
      for (const resources of ruleCases.pass) {
        expect(await reported(resources), JSON.stringify(resources)).toEqual([]);
        // The component's deployment record evaluates the same rules in-process: same verdict.
        expect(violations(evaluateRules(resources.map(asChild), undefined, [rule]))).toEqual([]);
      }
      for (const resources of ruleCases.fail) {
        const failures = await reported(resources);
        expect(failures.length, JSON.stringify(resources)).toBeGreaterThan(0);
        expect(failures.every((failure) => failure.enforcementLevel === mandatory)).toBe(true);
        expect(violations(evaluateRules(resources.map(asChild), undefined, [rule])).length).toBeGreaterThan(
          0,
        );
      }
    });
  }
});

/** A production control plane with every control broken through its arguments and transforms. */
function brokenControlPlane() {
  return new ControlPlane("broken", {
    environment: "production",
    kmsKey: "create",
    protect: false,
    tracing: false,
    logRetentionDays: 90,
    transform: {
      kmsKey: { enableKeyRotation: false },
      table: (args) => {
        args.pointInTimeRecovery = { enabled: false };
        args.serverSideEncryption = { enabled: false };
      },
      secret: { kmsKeyId: undefined },
      secretRotation: (args, _opts, name) => {
        if (name.includes("audit")) args.rotationEnabled = false;
        else args.rotationRules = { automaticallyAfterDays: 120 };
      },
      logGroup: (args, _opts, name) => {
        args.kmsKeyId = undefined;
        if (name.endsWith("access-logs")) args.retentionInDays = undefined;
      },
      stage: { accessLogSettings: undefined },
      permission: (args, _opts, name) => {
        if (name.includes("schedule") || name.endsWith("sweep-invoke")) args.sourceArn = undefined;
      },
      function: (args, _opts, name) => {
        if (name.startsWith("broken-production-console")) args.reservedConcurrentExecutions = undefined;
        if (name.startsWith("broken-production-scheduled")) args.runtime = "nodejs20.x";
        if (name.startsWith("broken-production-rotation")) args.tags = {};
      },
      rolePolicy: (args, _opts, name) => {
        if (name.startsWith("broken-production-scheduled")) {
          args.policy = policy({ Effect: "Allow", Action: ["dynamodb:*"], Resource: "*" });
        }
      },
    },
  });
}

describe("a control plane broken through its arguments and transforms", () => {
  let recorder: Awaited<ReturnType<typeof useMocks>>;
  let analyzer: PolicyAnalyzer;

  beforeAll(async () => {
    recorder = await useMocks("broken");
    await runProgram(recorder, () => brokenControlPlane());
    analyzer = await PolicyAnalyzer.start();
  });

  afterAll(() => analyzer?.close());

  test("makes every rule of the pack fire", () => {
    const failing = new Set(violations(evaluateRules(recorder.checked())).map((verdict) => verdict.rule));
    expect([...failing].sort()).toEqual(rules.map((rule) => rule.name).sort());
  });

  test("is reported by the pack the CLI runs, for every rule", async () => {
    const checked = recorder.checked();
    const nameOf = (urn: string) => checked.find((resource) => resource.urn === urn)?.name;
    const reported = (await analyzer.analyzeAll(checked)).map((entry) => ({
      policy: entry.policy,
      message: entry.message,
      resource: nameOf(entry.urn),
    }));
    expect([...new Set(reported.map((violation) => violation.policy))].sort()).toEqual(
      rules.map((rule) => rule.name).sort(),
    );
    expect(reported).toContainEqual({
      policy: "dynamodb-point-in-time-recovery",
      message: "table broken-production-jobs has no point-in-time recovery",
      resource: "broken-production-jobs",
    });
    expect(reported).toContainEqual({
      policy: "secretsmanager-rotation-enabled",
      message: "secret broken-production-audit-signing-key has no automatic rotation",
      resource: "broken-production-audit-signing-key",
    });
    expect(reported.filter((violation) => violation.policy === "lambda-permission-source-arn")).toHaveLength(
      1,
    );
    expect(reported.filter((violation) => violation.policy === "lambda-concurrency-limit")).toEqual([
      expect.objectContaining({ resource: "broken-production-console-function" }),
    ]);
  });

  test("records the failures in its deployment record", () => {
    const item = recorder.one(resourceTypes.tableItem, "broken-production-deployment-record").inputs[
      "item"
    ] as string;
    const record = unmarshall(JSON.parse(item)) as unknown as DeploymentRecord;
    expect(record.policy.violations).toBe(rules.length);
    const pitr = record.policy.rules.find((rule) => rule.rule === "dynamodb-point-in-time-recovery");
    expect(pitr?.failed).toHaveLength(tableKeys.length);
    expect(pitr?.checkov).toEqual(["CKV_AWS_28"]);
    const tables = record.resources.filter((resource) => resource.type === "dynamodb.table");
    expect(tables.every((table) => table.settings["point_in_time_recovery"] === false)).toBe(true);
  });
});

describe("the policy pack as the Pulumi CLI loads it (run-policy-pack → platform/policy/index.js)", () => {
  let analyzer: PolicyAnalyzer;

  beforeAll(async () => {
    analyzer = await PolicyAnalyzer.start();
  });

  afterAll(() => analyzer?.close());

  test("announces every rule, mandatory, tagged with its public control ids", async () => {
    const info = await analyzer.info();
    expect(info.name).toBe(policyPackName);
    expect(info.policies.map((entry) => entry.name)).toEqual(rules.map((rule) => rule.name));
    expect(info.policies.every((entry) => entry.enforcementLevel === mandatory)).toBe(true);
    expect(
      info.policies.find((entry) => entry.name === "dynamodb-point-in-time-recovery")?.description,
    ).toContain("CKV_AWS_28");
  });

  test("needs nothing outside its folder at run time (publishable with pulumi policy publish)", () => {
    const packDirectory = path.join(repositoryRoot, "platform/policy");
    const sources = ["index.js", "dist/pack.cjs"].map((file) =>
      readFileSync(path.join(packDirectory, file), "utf8"),
    );
    const required = sources.flatMap((source) =>
      [...source.matchAll(/require\("([^"]+)"\)/g)].map((match) => match[1] ?? ""),
    );
    const dependencies = Object.keys(
      (JSON.parse(readFileSync(path.join(packDirectory, "package.json"), "utf8")) as { dependencies: object })
        .dependencies,
    );
    for (const specifier of required) {
      const local = specifier.startsWith("./");
      const builtin = specifier.startsWith("node:");
      const declared = dependencies.some((name) => specifier === name || specifier.startsWith(`${name}/`));
      expect(local || builtin || declared, specifier).toBe(true);
    }
  });
});
