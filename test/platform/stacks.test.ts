import { envSchema, lambdaEnvironmentVariables } from "@hybrid-cicd/runtime/config/env";
import { secrets } from "@hybrid-cicd/runtime/secrets/catalog";
import {
  type IndexDeclaration,
  type TableDeclaration,
  type TableKey,
  tableKeys,
  tables,
} from "@hybrid-cicd/runtime/store/schema";
import { version as productVersion } from "@hybrid-cicd/runtime/version";
import { beforeAll, describe, expect, test } from "vitest";
import type { DeploymentRecord } from "../../platform/src/deployment-record";
import { functionKinds } from "../../platform/src/grants";
import { controlTags, resourceTypes, taggableResourceTypes } from "../../platform/src/policy/resource-types";
import {
  actionsWithoutResourceLevelPermissions,
  evaluateRules,
  rules,
  violations,
} from "../../platform/src/policy/rules";
import type { MockedResource } from "./support/pulumi-mocks";
import {
  oauthClientSecretsSentinel,
  runPolicyPack,
  runStackFile,
  type StackRun,
  unmarshall,
} from "./support/stack-run";

/**
 * The repository's own stacks, each run with its stack file's configuration under Pulumi's mocks: the
 * resource graph is checked against the runtime's declarations and the requirements.
 */

interface PolicyDocument {
  Statement: {
    Sid: string;
    Effect: string;
    Action: string[];
    Resource: string | string[];
    Condition?: unknown;
  }[];
}

const stacks = [
  {
    file: "Pulumi.staging.yaml",
    environment: "staging",
    production: false,
    logRetentionDays: 14,
    apiReservedConcurrency: 10,
    provisionedConcurrency: 0,
  },
  {
    file: "Pulumi.production.yaml",
    environment: "production",
    production: true,
    logRetentionDays: 731,
    apiReservedConcurrency: 100,
    provisionedConcurrency: 2,
  },
] as const;

describe.each(stacks)("the $environment stack ($file)", (expected) => {
  let run: StackRun;
  const stem = `hybrid-cicd-${expected.environment}`;
  const ofType = (type: string) => run.recorder.ofType(type);
  const one = (type: string, name: string) => run.recorder.one(type, name);
  const policyOf = (kind: string) =>
    JSON.parse(
      one(resourceTypes.rolePolicy, `hybrid-cicd-${kind}-grants`).inputs["policy"] as string,
    ) as PolicyDocument;
  const arnOf = (resource: MockedResource) => resource.state["arn"] as string;

  beforeAll(async () => {
    run = await runStackFile(expected.file, {
      "hybrid-cicd:oauth": JSON.stringify({ github: { clientId: "Iv1.test-client" } }),
      "hybrid-cicd:roleBindings": JSON.stringify({
        admin: ["github-id:583231"],
        auditor: ["email:audit@example.com"],
      }),
    });
  });

  test("creates every table with the keys, indexes and TTL the runtime schema declares", () => {
    expect(ofType(resourceTypes.table)).toHaveLength(tableKeys.length);
    for (const key of tableKeys) {
      const declaration: TableDeclaration = tables[key];
      const table = one(resourceTypes.table, `hybrid-cicd-${key}`).inputs;
      expect(table["name"]).toBe(`${stem}-${key}`);
      expect(table["hashKey"]).toBe(declaration.partitionKey.name);
      expect(table["rangeKey"]).toBe(declaration.sortKey?.name);
      const indexes = Object.entries(declaration.indexes as Record<string, IndexDeclaration>);
      const keysOf = (index: {
        partitionKey: { name: string; type: string };
        sortKey?: { name: string; type: string };
      }) => [index.partitionKey, ...(index.sortKey ? [index.sortKey] : [])];
      expect(table["globalSecondaryIndexes"] ?? []).toEqual(
        indexes.map(([name, index]) => ({
          name,
          keySchemas: keysOf(index).map((attribute, position) => ({
            attributeName: attribute.name,
            keyType: position === 0 ? "HASH" : "RANGE",
          })),
          projectionType: index.projection,
        })),
      );
      const expectedAttributes = new Map(
        [...keysOf(declaration), ...indexes.flatMap(([, index]) => keysOf(index))].map((a) => [
          a.name,
          a.type,
        ]),
      );
      expect(
        new Map((table["attributes"] as { name: string; type: string }[]).map((a) => [a.name, a.type])),
      ).toEqual(expectedAttributes);
      const ttl = declaration.ttlAttribute;
      expect(table["ttl"]).toEqual(ttl ? { attributeName: ttl, enabled: true } : undefined);
      expect(table["billingMode"]).toBe("PAY_PER_REQUEST");
    }
  });

  test("turns on point-in-time recovery everywhere and deletion protection only in production", () => {
    for (const table of ofType(resourceTypes.table)) {
      expect(table.inputs["pointInTimeRecovery"]).toEqual({ enabled: true });
      expect(table.inputs["deletionProtectionEnabled"]).toBe(expected.production);
      expect((table.inputs["serverSideEncryption"] as { kmsKeyArn?: string }).kmsKeyArn).toMatch(
        /^arn:aws:kms:/,
      );
      const registration = run.recorder.registration(table.type, table.name);
      expect(registration.protect).toBe(expected.production);
      expect(registration.retainOnDelete).toBe(expected.production);
    }
    for (const secret of ofType(resourceTypes.secret)) {
      expect(run.recorder.registration(secret.type, secret.name).protect).toBe(expected.production);
      expect(secret.inputs["recoveryWindowInDays"]).toBe(expected.production ? 30 : 0);
    }
  });

  test("creates one secret per catalog entry and rotates those with a rotation period through the rotation function", () => {
    const rotationFunction = one(resourceTypes.function, "hybrid-cicd-rotation-function");
    for (const [key, declaration] of Object.entries(secrets)) {
      const secret = one(resourceTypes.secret, `hybrid-cicd-${declaration.name}`);
      expect(secret.inputs["name"]).toBe(`hybrid-cicd/${expected.environment}/${declaration.name}`);
      const rotations = ofType(resourceTypes.secretRotation).filter(
        (r) => r.inputs["secretId"] === arnOf(secret),
      );
      const days = (declaration as { rotationDays?: number }).rotationDays;
      if (days === undefined) {
        expect(rotations, key).toHaveLength(0);
        expect((secret.inputs["tags"] as Record<string, string>)[controlTags.rotationExemption]).toBeTruthy();
      } else {
        expect(rotations, key).toHaveLength(1);
        expect(rotations[0]?.inputs["rotationLambdaArn"]).toBe(arnOf(rotationFunction));
        expect(rotations[0]?.inputs["rotationRules"]).toEqual({ automaticallyAfterDays: days });
        const permission = ofType(resourceTypes.permission).find(
          (p) => p.inputs["sourceArn"] === arnOf(secret),
        );
        expect(permission?.inputs).toMatchObject({
          principal: "secretsmanager.amazonaws.com",
          function: `${stem}-rotation`,
        });
      }
    }
  });

  test("generates each role's policy from the declared grants: named actions on named ARNs only", () => {
    const tableArn = (key: TableKey) => arnOf(one(resourceTypes.table, `hybrid-cicd-${key}`));
    const secretArn = (name: string) => arnOf(one(resourceTypes.secret, `hybrid-cicd-${name}`));
    const statement = (kind: string, sid: string) => policyOf(kind).Statement.find((s) => s.Sid === sid);
    const others = tableKeys.filter((key) => key !== "deployments");

    expect(statement("api", "ReadWriteTables")?.Resource).toEqual(others.map(tableArn));
    expect(statement("api", "ReadTables")?.Resource).toEqual([tableArn("deployments")]);
    expect(statement("api", "ReadSecrets")?.Resource).toEqual(
      ["workload-identity-root-key", "audit-signing-key", "oauth-client-secrets"].map(secretArn),
    );
    const sorted = (value: string | string[] | undefined) => [value ?? []].flat().sort();
    expect(sorted(statement("scheduled", "ReadWriteTables")?.Resource)).toEqual(
      sorted(
        [
          "jobs",
          "agents",
          "nonces",
          "sessions",
          "credentials",
          "idempotency",
          "job_queues",
          "audit",
          "audit_digests",
        ].map((key) => tableArn(key as TableKey)),
      ),
    );
    expect(statement("scheduled", "ReadTables")).toBeUndefined();
    expect(statement("scheduled", "ReadSecrets")?.Resource).toEqual([secretArn("audit-signing-key")]);
    expect(sorted(statement("rotation", "ReadWriteTables")?.Resource)).toEqual(
      sorted([tableArn("agents"), tableArn("audit")]),
    );
    expect(statement("rotation", "RotateSecrets")).toMatchObject({
      Action: [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:ListSecretVersionIds",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
      ],
      Resource: ["workload-identity-root-key", "audit-signing-key"].map(secretArn),
    });
    expect(statement("console", "ReadWriteTables")?.Resource).toEqual([tableArn("sessions")]);
    expect(statement("console", "ReadTables")?.Resource).toEqual(
      tableKeys.filter((key) => key !== "sessions").map(tableArn),
    );
    expect(statement("api", "QueryIndexes")?.Resource).toContain(`${tableArn("jobs")}/index/jobs-by-status`);
    expect(statement("api", "QueryIndexes")?.Action).toEqual(["dynamodb:Query", "dynamodb:Scan"]);

    const keyArn = arnOf(ofType(resourceTypes.kmsKey)[0] as MockedResource);
    for (const kind of functionKinds) {
      const logGroup = arnOf(one(resourceTypes.logGroup, `hybrid-cicd-${kind}-logs`));
      for (const { Action, Resource, Sid } of policyOf(kind).Statement) {
        for (const action of Action) expect(action, `${kind} ${Sid}`).not.toContain("*");
        for (const resource of [Resource].flat()) {
          if (resource === "*") {
            expect(
              Action.every((a) => actionsWithoutResourceLevelPermissions.includes(a)),
              `${kind} ${Sid}`,
            ).toBe(true);
          } else if (resource.includes("*")) {
            expect(resource).toBe(`${logGroup}:log-stream:*`);
          } else {
            expect(resource, `${kind} ${Sid}`).toMatch(
              /^arn:aws:(dynamodb|secretsmanager|kms|sqs):eu-west-1:123456789012:/,
            );
          }
        }
      }
      expect(statement(kind, "UseDataKeyThroughServices")?.Resource).toEqual([keyArn]);
    }
    expect(statement("scheduled", "SendToDeadLetterQueue")?.Resource).toEqual([
      arnOf(one(resourceTypes.queue, "hybrid-cicd-scheduled-dead-letters")),
    ]);
    expect(statement("api", "SendToDeadLetterQueue")).toBeUndefined();
  });

  test("routes $default to the API alias and /console to the console alias, each permission scoped to its route", () => {
    const api = ofType(resourceTypes.api)[0] as MockedResource;
    const integrations = ofType(resourceTypes.integration);
    const routeTo = (routeKey: string) => {
      const route = ofType(resourceTypes.route).find((r) => r.inputs["routeKey"] === routeKey);
      const integration = integrations.find((i) => route?.inputs["target"] === `integrations/${i.id}`);
      return integration?.inputs;
    };
    const apiAlias = one(resourceTypes.alias, "hybrid-cicd-api-live");
    const consoleAlias = one(resourceTypes.alias, "hybrid-cicd-console-live");
    expect(apiAlias.inputs).toMatchObject({
      name: "live",
      functionName: `${stem}-api`,
      functionVersion: "1",
    });
    expect(routeTo("$default")).toMatchObject({
      integrationType: "AWS_PROXY",
      payloadFormatVersion: "2.0",
      integrationUri: apiAlias.state["invokeArn"],
    });
    expect(routeTo("ANY /console")?.["integrationUri"]).toBe(consoleAlias.state["invokeArn"]);
    expect(routeTo("ANY /console/{proxy+}")?.["integrationUri"]).toBe(consoleAlias.state["invokeArn"]);
    expect(String(routeTo("$default")?.["integrationUri"])).toContain(
      `:function:${stem}-api:live/invocations`,
    );

    const apiPermissions = ofType(resourceTypes.permission).filter(
      (p) => p.inputs["principal"] === "apigateway.amazonaws.com",
    );
    expect(
      apiPermissions.map((p) => [p.inputs["function"], p.inputs["qualifier"], p.inputs["sourceArn"]]).sort(),
    ).toEqual([
      [`${stem}-api`, "live", `${api.state["executionArn"]}/*/$default`],
      [`${stem}-console`, "live", `${api.state["executionArn"]}/*/*/console`],
      [`${stem}-console`, "live", `${api.state["executionArn"]}/*/*/console/{proxy+}`],
    ]);
    const stage = ofType(resourceTypes.stage)[0] as MockedResource;
    expect(stage.inputs).toMatchObject({ name: "$default", autoDeploy: true });
    expect((stage.inputs["accessLogSettings"] as { destinationArn: string }).destinationArn).toBe(
      arnOf(one(resourceTypes.logGroup, "hybrid-cicd-access-logs")),
    );
    expect(JSON.parse((stage.inputs["accessLogSettings"] as { format: string }).format)).toHaveProperty(
      "request_id",
    );
    expect(run.outputs["apiUrl"]).toBe(api.state["apiEndpoint"]);
    expect(run.outputs["consoleUrl"]).toBe(`${api.state["apiEndpoint"]}/console/`);
  });

  test("sizes the functions as configured: Node.js 20 on arm64, reserved and provisioned concurrency, tracing", () => {
    for (const kind of functionKinds) {
      const fn = one(resourceTypes.function, `hybrid-cicd-${kind}-function`).inputs;
      expect(fn).toMatchObject({
        name: `${stem}-${kind}`,
        runtime: "nodejs20.x",
        architectures: ["arm64"],
        handler: "index.handler",
        tracingConfig: { mode: "Active" },
        loggingConfig: { logFormat: "JSON", logGroup: `/aws/lambda/${stem}-${kind}` },
      });
      expect(fn["sourceCodeHash"]).toMatch(/^[A-Za-z0-9+/]{43}=$/);
      expect(fn["reservedConcurrentExecutions"]).toBeGreaterThan(0);
      expect(fn["publish"]).toBe(kind === "api" || kind === "console");
      expect(Boolean(fn["deadLetterConfig"])).toBe(kind === "scheduled" || kind === "rotation");
    }
    const api = one(resourceTypes.function, "hybrid-cicd-api-function").inputs;
    expect(api["reservedConcurrentExecutions"]).toBe(expected.apiReservedConcurrency);
    const warm = ofType(resourceTypes.provisionedConcurrency);
    if (expected.provisionedConcurrency === 0) {
      expect(warm).toHaveLength(0);
    } else {
      expect(warm.map((w) => w.inputs)).toEqual([
        {
          functionName: `${stem}-api`,
          qualifier: "live",
          provisionedConcurrentExecutions: expected.provisionedConcurrency,
        },
      ]);
    }
  });

  test("gives every function the runtime's environment variables, valid for its own schema", () => {
    const tableNames = Object.fromEntries(tableKeys.map((key) => [key, `${stem}-${key}`]));
    for (const kind of functionKinds) {
      const variables = (
        one(resourceTypes.function, `hybrid-cicd-${kind}-function`).inputs["environment"] as {
          variables: Record<string, string>;
        }
      ).variables;
      for (const name of lambdaEnvironmentVariables)
        expect(variables, `${kind} ${name}`).toHaveProperty(name);
      const env = envSchema.parse(variables);
      expect(env.HYBRID_CICD_SECRET_STORE).toBe("aws");
      expect(env.HYBRID_CICD_ENVIRONMENT).toBe(expected.environment);
      for (const key of tableKeys) expect(`${env.HYBRID_CICD_TABLE_PREFIX}${key}`).toBe(tableNames[key]);
      for (const secret of ofType(resourceTypes.secret)) {
        expect(String(secret.inputs["name"]).startsWith(env.HYBRID_CICD_SECRET_PREFIX)).toBe(true);
      }
      expect(JSON.stringify(variables)).not.toContain("SENTINEL");
    }
    const api = (
      one(resourceTypes.function, "hybrid-cicd-api-function").inputs["environment"] as {
        variables: Record<string, string>;
      }
    ).variables;
    expect(api["HYBRID_CICD_PUBLIC_URL"]).toBe(run.outputs["apiUrl"]);
    expect(api["HYBRID_CICD_OAUTH_GITHUB_CLIENT_ID"]).toBe("Iv1.test-client");
    expect(api["HYBRID_CICD_ROLE_BINDINGS"]).toBe("github-id:583231=admin,email:audit@example.com=auditor");
    expect(envSchema.parse(api).HYBRID_CICD_ROLE_BINDINGS).toBe(api["HYBRID_CICD_ROLE_BINDINGS"]);
    const scheduled = (
      one(resourceTypes.function, "hybrid-cicd-scheduled-function").inputs["environment"] as {
        variables: Record<string, string>;
      }
    ).variables;
    expect(scheduled).not.toHaveProperty("HYBRID_CICD_ROLE_BINDINGS");
  });

  test("stores the OAuth client secrets from the secret config only in their secret", () => {
    const versions = ofType(resourceTypes.secretVersion);
    expect(versions).toHaveLength(1);
    // Marked secret: the engine stores it encrypted.
    expect(versions[0]?.inputs["secretString"]).toMatchObject({ value: oauthClientSecretsSentinel });
    const elsewhere = run.recorder.resources.filter(
      (resource) => resource !== versions[0] && JSON.stringify(resource.inputs).includes("SENTINEL"),
    );
    expect(elsewhere.map((resource) => resource.name)).toEqual([]);
  });

  test("keeps every log group for the configured retention, encrypted with the control plane's key", () => {
    const groups = ofType(resourceTypes.logGroup);
    expect(groups.map((group) => group.inputs["name"]).sort()).toEqual(
      [
        ...functionKinds.map((kind) => `/aws/lambda/${stem}-${kind}`),
        `/aws/apigateway/${stem}-access`,
      ].sort(),
    );
    for (const group of groups) {
      expect(group.inputs["retentionInDays"]).toBe(expected.logRetentionDays);
      expect(group.inputs["kmsKeyId"]).toMatch(/^arn:aws:kms:/);
    }
  });

  test("schedules the sweeper and the digest through EventBridge, each permission scoped to its rule", () => {
    const scheduled = one(resourceTypes.function, "hybrid-cicd-scheduled-function");
    for (const [task, expression] of [
      ["sweep", "rate(1 minute)"],
      ["digest", "rate(1 hour)"],
    ] as const) {
      const rule = one(resourceTypes.eventRule, `hybrid-cicd-${task}-schedule`);
      expect(rule.inputs["scheduleExpression"]).toBe(expression);
      expect(one(resourceTypes.eventTarget, `hybrid-cicd-${task}-target`).inputs).toMatchObject({
        rule: rule.inputs["name"],
        arn: arnOf(scheduled),
        input: JSON.stringify({ task }),
      });
      expect(one(resourceTypes.permission, `hybrid-cicd-${task}-invoke`).inputs).toMatchObject({
        principal: "events.amazonaws.com",
        sourceArn: arnOf(rule),
      });
    }
  });

  test(`${expected.production ? "raises" : "has no"} alarms for functions, tables, the API and dead letters`, () => {
    const alarms = ofType(resourceTypes.metricAlarm);
    if (!expected.production) {
      expect(alarms).toHaveLength(0);
      expect(ofType(resourceTypes.topic)).toHaveLength(0);
      return;
    }
    const topic = arnOf(ofType(resourceTypes.topic)[0] as MockedResource);
    // errors, throttles, duration for every function; concurrency for the API and console (reserved ≥ 5)
    expect(alarms).toHaveLength(functionKinds.length * 3 + 2 + tableKeys.length * 2 + 2 + 2);
    expect(
      alarms
        .map((alarm) => alarm.name)
        .filter((name) => name.endsWith("-concurrency"))
        .sort(),
    ).toEqual(["hybrid-cicd-api-concurrency", "hybrid-cicd-console-concurrency"]);
    for (const alarm of alarms) expect(alarm.inputs["alarmActions"]).toEqual([topic]);
    const metric = (name: string) => one(resourceTypes.metricAlarm, `hybrid-cicd-${name}`).inputs;
    expect(metric("api-errors")).toMatchObject({
      namespace: "AWS/Lambda",
      metricName: "Errors",
      dimensions: { FunctionName: `${stem}-api` },
    });
    expect(metric("api-duration")["threshold"]).toBe(16_000);
    expect(metric("api-concurrency")["threshold"]).toBe(80);
    expect(metric("api-latency")).toMatchObject({
      metricName: "Latency",
      extendedStatistic: "p99",
      threshold: 2000,
    });
    expect(metric("api-5xx")).toMatchObject({ namespace: "AWS/ApiGateway", metricName: "5xx" });
    expect(JSON.stringify(metric("jobs-table-throttles")["metricQueries"])).toContain("WriteThrottleEvents");
    expect(JSON.stringify(metric("jobs-table-system-errors")["metricQueries"])).toContain(
      "TransactWriteItems",
    );
    expect(metric("rotation-dead-letters")).toMatchObject({
      namespace: "AWS/SQS",
      dimensions: { QueueName: `${stem}-rotation-dead-letters` },
    });
  });

  test("tags every taggable resource with its environment and control plane, plus the stack's tags", () => {
    const taggable = run.recorder.custom.filter((resource) => taggableResourceTypes.includes(resource.type));
    expect(taggable.length).toBeGreaterThan(20);
    for (const resource of taggable) {
      expect(resource.inputs["tags"], `${resource.type} ${resource.name}`).toMatchObject({
        [controlTags.environment]: expected.environment,
        [controlTags.controlPlane]: "hybrid-cicd",
        "cost-center": "platform",
      });
    }
  });

  test("passes every rule of the policy pack, evaluated directly and through the pack's policies", () => {
    expect(violations(evaluateRules(run.recorder.checked()))).toEqual([]);
    expect(runPolicyPack(run.recorder)).toEqual([]);
  });

  test("writes a deployment record with the control-relevant settings and the pack's verdicts", () => {
    const item = one(resourceTypes.tableItem, "hybrid-cicd-deployment-record").inputs;
    expect(item).toMatchObject({
      tableName: `${stem}-deployments`,
      hashKey: tables.deployments.partitionKey.name,
      rangeKey: tables.deployments.sortKey.name,
    });
    expect(
      run.recorder.registration(resourceTypes.tableItem, "hybrid-cicd-deployment-record").retainOnDelete,
    ).toBe(true);
    const record = unmarshall(JSON.parse(item["item"] as string)) as unknown as DeploymentRecord;
    expect(record).toMatchObject({
      environment: expected.environment,
      stack: expected.environment,
      project: "hybrid-cicd",
      control_plane: "hybrid-cicd",
      product_version: productVersion,
    });
    expect(new Date(record.deployed_at).toISOString()).toBe(record.deployed_at);
    expect(record.policy.violations).toBe(0);
    expect(record.policy.rules.map((rule) => rule.rule)).toEqual(rules.map((rule) => rule.name));
    expect(record.policy.rules.find((rule) => rule.rule === "dynamodb-point-in-time-recovery")?.passed).toBe(
      tableKeys.length,
    );
    const jobs = record.resources.find((resource) => resource.name === "hybrid-cicd-jobs");
    expect(jobs?.settings).toMatchObject({
      point_in_time_recovery: true,
      encryption: "customer-managed-key",
      deletion_protection: expected.production,
      protected_in_stack: expected.production,
    });
    const api = record.resources.find((resource) => resource.name === "hybrid-cicd-api-function");
    expect(api?.settings).toMatchObject({
      reserved_concurrency: expected.apiReservedConcurrency,
      tracing: "Active",
    });
    const logs = record.resources.filter((resource) => resource.type === "cloudwatch.log-group");
    expect(logs.map((group) => group.settings["retention_days"])).toEqual(
      logs.map(() => expected.logRetentionDays),
    );
    expect(item["item"]).not.toContain("SENTINEL");
  });
});
