import { type ChildProcess, spawn } from "node:child_process";
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
import { repositoryRoot, useMocks } from "./support/pulumi-mocks";
import { runPolicyPack, runProgram, unmarshall } from "./support/stack-run";

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
    pass: [[{ type: resourceTypes.secret, name: "s", props: { kmsKeyId: "arn:aws:kms:x" } }]],
    fail: [[{ type: resourceTypes.secret, name: "s", props: {} }]],
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
    fail: [[{ type: resourceTypes.logGroup, name: "l", props: {} }]],
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
          props: { principal: "events.amazonaws.com", sourceArn: "arn:r" },
        },
      ],
    ],
    fail: [
      [{ type: resourceTypes.permission, name: "p", props: { principal: "events.amazonaws.com" } }],
      [{ type: resourceTypes.permission, name: "p", props: { principal: "*", sourceArn: "arn:r" } }],
    ],
  },
  "lambda-tracing": {
    pass: [[{ type: resourceTypes.function, name: "f", props: { tracingConfig: { mode: "Active" } } }]],
    fail: [[{ type: resourceTypes.function, name: "f", props: { tracingConfig: { mode: "PassThrough" } } }]],
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
    ],
    fail: [
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
    pass: [[{ type: resourceTypes.queue, name: "q", props: { tags: staging } }]],
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

describe("each rule on hand-written resources", () => {
  test("every rule of the pack has cases", () => {
    expect(Object.keys(cases).sort()).toEqual(rules.map((rule) => rule.name).sort());
  });

  for (const rule of rules) {
    test(`${rule.name} passes what complies and fails what does not`, () => {
      const ruleCases = cases[rule.name];
      if (!ruleCases) throw new Error(`no cases for ${rule.name}`);
      for (const resources of ruleCases.pass) {
        expect(violations(evaluateRules(resources, undefined, [rule])), JSON.stringify(resources)).toEqual(
          [],
        );
      }
      for (const resources of ruleCases.fail) {
        expect(
          violations(evaluateRules(resources, undefined, [rule])).length,
          JSON.stringify(resources),
        ).toBeGreaterThan(0);
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
        if (name.startsWith("broken-console")) args.reservedConcurrentExecutions = undefined;
        if (name.startsWith("broken-rotation")) args.tags = {};
      },
      rolePolicy: (args, _opts, name) => {
        if (name.startsWith("broken-scheduled")) {
          args.policy = policy({ Effect: "Allow", Action: ["dynamodb:*"], Resource: "*" });
        }
      },
    },
  });
}

describe("a control plane broken through its arguments and transforms", () => {
  let recorder: Awaited<ReturnType<typeof useMocks>>;

  beforeAll(async () => {
    recorder = await useMocks("broken");
    await runProgram(recorder, () => brokenControlPlane());
  });

  test("makes every rule of the pack fire", () => {
    const failing = new Set(violations(evaluateRules(recorder.checked())).map((verdict) => verdict.rule));
    expect([...failing].sort()).toEqual(rules.map((rule) => rule.name).sort());
  });

  test("is reported by the pack's policies, as the analyzer calls them, for every rule", () => {
    const reported = runPolicyPack(recorder);
    expect([...new Set(reported.map((violation) => violation.policy))].sort()).toEqual(
      rules.map((rule) => rule.name).sort(),
    );
    expect(reported).toContainEqual({
      policy: "dynamodb-point-in-time-recovery",
      message: "table broken-jobs has no point-in-time recovery",
      resource: "broken-jobs",
    });
    expect(reported).toContainEqual({
      policy: "secretsmanager-rotation-enabled",
      message: "secret broken-audit-signing-key has no automatic rotation",
      resource: "broken-audit-signing-key",
    });
    expect(reported.filter((violation) => violation.policy === "lambda-permission-source-arn")).toHaveLength(
      1,
    );
    expect(reported.filter((violation) => violation.policy === "lambda-concurrency-limit")).toEqual([
      expect.objectContaining({ resource: "broken-console-function" }),
    ]);
  });

  test("records the failures in its deployment record", () => {
    const item = recorder.one(resourceTypes.tableItem, "broken-deployment-record").inputs["item"] as string;
    const record = unmarshall(JSON.parse(item)) as unknown as DeploymentRecord;
    expect(record.policy.violations).toBe(rules.length);
    const pitr = record.policy.rules.find((rule) => rule.rule === "dynamodb-point-in-time-recovery");
    expect(pitr?.failed).toHaveLength(tableKeys.length);
    expect(pitr?.checkov).toEqual(["CKV_AWS_28"]);
    const tables = record.resources.filter((resource) => resource.type === "dynamodb.table");
    expect(tables.every((table) => table.settings["point_in_time_recovery"] === false)).toBe(true);
  });
});

describe("the policy pack served to the Pulumi engine (platform/policy/index.js)", () => {
  const require = createRequire(import.meta.url);
  const grpc = require("@grpc/grpc-js") as typeof import("@grpc/grpc-js");
  const services = require("@pulumi/pulumi/proto/analyzer_grpc_pb.js");
  const messages = require("@pulumi/pulumi/proto/analyzer_pb.js");
  const { Empty } = require("google-protobuf/google/protobuf/empty_pb.js");
  const { Struct } = require("google-protobuf/google/protobuf/struct_pb.js");
  let server: ChildProcess;
  // biome-ignore lint/suspicious/noExplicitAny: generated gRPC client
  let client: any;

  const call = <T>(method: string, request: unknown) =>
    new Promise<T>((resolve, reject) =>
      client[method](request, (error: Error | null, response: T) =>
        error ? reject(error) : resolve(response),
      ),
    );

  beforeAll(async () => {
    server = spawn(process.execPath, ["index.js"], {
      cwd: path.join(repositoryRoot, "platform/policy"),
      stdio: ["ignore", "pipe", "pipe"],
    });
    const port = await new Promise<string>((resolve, reject) => {
      let output = "";
      let errors = "";
      server.stdout?.on("data", (chunk: Buffer) => {
        output += chunk;
        const match = /^(\d+)\s/.exec(output);
        if (match?.[1]) resolve(match[1]);
      });
      server.stderr?.on("data", (chunk: Buffer) => {
        errors += chunk;
      });
      server.on("exit", (code) => reject(new Error(`the policy pack exited (${code}): ${errors}`)));
    });
    client = new services.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });

  afterAll(() => {
    client?.close();
    server?.kill();
  });

  test("announces every rule, mandatory, tagged with its public control ids", async () => {
    const info = await call<{
      getName(): string;
      getPoliciesList(): { getName(): string; getEnforcementlevel(): number; getDescription(): string }[];
    }>("getAnalyzerInfo", new Empty());
    expect(info.getName()).toBe(policyPackName);
    const announced = info.getPoliciesList();
    expect(announced.map((entry) => entry.getName())).toEqual(rules.map((rule) => rule.name));
    expect(
      announced.find((entry) => entry.getName() === "dynamodb-point-in-time-recovery")?.getDescription(),
    ).toContain("CKV_AWS_28");
  });

  test("reports a table without point-in-time recovery when the engine analyzes it", async () => {
    const analyze = async (properties: object) => {
      const request = new messages.AnalyzeRequest();
      request.setType(resourceTypes.table);
      request.setName("orders");
      request.setUrn("urn:pulumi:dev::shop::aws:dynamodb/table:Table::orders");
      request.setProperties(Struct.fromJavaScript(properties));
      request.setOptions(new messages.AnalyzerResourceOptions());
      const response = await call<{
        getDiagnosticsList(): { getPolicyname(): string; getMessage(): string }[];
      }>("analyze", request);
      return response.getDiagnosticsList().map((diagnostic) => diagnostic.getPolicyname());
    };
    const compliant = {
      pointInTimeRecovery: { enabled: true },
      serverSideEncryption: { enabled: true, kmsKeyArn: "arn:aws:kms:eu-west-1:123456789012:key/k" },
      tags: staging,
    };
    expect(await analyze(compliant)).toEqual([]);
    expect(await analyze({ ...compliant, pointInTimeRecovery: { enabled: false } })).toEqual([
      "dynamodb-point-in-time-recovery",
    ]);
  });
});
