import { tableKeys } from "@hybrid-cicd/runtime/store/schema";
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, test } from "vitest";
import { resourceTypes } from "../../platform/src/policy/resource-types";
import otherTeamProgram, { created } from "./fixtures/other-team-program";
import { type ResourceRecorder, useMocks } from "./support/pulumi-mocks";
import { runProgram } from "./support/stack-run";

/**
 * Another team's program imports the component and creates two control planes: nothing may collide,
 * neither in the Pulumi state (URNs) nor in the AWS account (physical names).
 */

/** Physical names that must be unique in an account, with the scope they are unique in. */
function physicalNames(recorder: ResourceRecorder): string[] {
  const scoped: Record<string, (inputs: Record<string, unknown>) => unknown> = {
    [resourceTypes.alias]: (inputs) => `${inputs["functionName"]}:${inputs["name"]}`,
    [resourceTypes.rolePolicy]: (inputs) => `${inputs["role"]}:${inputs["name"]}`,
    [resourceTypes.stage]: (inputs) => `${inputs["apiId"]}:${inputs["name"]}`,
  };
  return recorder.custom
    .map((resource) => {
      const name = scoped[resource.type]?.(resource.inputs) ?? resource.inputs["name"];
      return typeof name === "string" ? `${resource.type} ${name}` : undefined;
    })
    .filter((name): name is string => name !== undefined);
}

function duplicates(values: readonly string[]): string[] {
  return [...new Set(values.filter((value, index) => values.indexOf(value) !== index))];
}

describe("a program that imports the component", () => {
  let recorder: ResourceRecorder;
  let outputs: Awaited<ReturnType<typeof runProgram<ReturnType<typeof otherTeamProgram>>>>;

  beforeAll(async () => {
    recorder = await useMocks("dev");
    outputs = await runProgram(recorder, () => otherTeamProgram());
  });

  test("creates three control planes (one name in two environments) and a standalone part with no URN or physical-name collision", () => {
    const urns = recorder.registrations.map((registration) => registration.urn ?? "");
    expect(urns.every((urn) => urn.startsWith("urn:pulumi:dev::hybrid-cicd::"))).toBe(true);
    expect(duplicates(urns)).toEqual([]);
    const names = physicalNames(recorder);
    expect(names.length).toBeGreaterThan(100);
    expect(duplicates(names)).toEqual([]);

    expect(Object.values(outputs.paymentsTables)).toEqual(
      tableKeys.map((key) => `payments-ci-staging-${key}`),
    );
    expect(Object.values(outputs.searchTables)).toEqual(tableKeys.map((key) => `search-ci-staging-${key}`));
    expect(Object.values(outputs.paymentsProductionTables)).toEqual(
      tableKeys.map((key) => `payments-ci-production-${key}`),
    );
    expect(Object.values(outputs.archiveTables)).toEqual(
      tableKeys.map((key) => `payments-archive-staging-${key}`),
    );
    expect(outputs.paymentsApi).not.toBe(outputs.searchApi);
  });

  test("serves a control plane on its custom domain with the given certificate", () => {
    const domain = recorder.one(resourceTypes.domainName, "search-ci-staging-domain");
    expect(domain.inputs).toMatchObject({
      domainName: "cicd.search.example.com",
      domainNameConfiguration: {
        certificateArn: "arn:aws:acm:eu-west-1:123456789012:certificate/0f2c1d3e-example",
        endpointType: "REGIONAL",
        securityPolicy: "TLS_1_2",
      },
    });
    const api = recorder.one(resourceTypes.api, "search-ci-staging-http-api");
    expect(recorder.one(resourceTypes.apiMapping, "search-ci-staging-domain-mapping").inputs).toMatchObject({
      apiId: api.id,
      domainName: "cicd.search.example.com",
      stage: "$default",
    });
    expect(outputs.searchApi).toBe("https://cicd.search.example.com");
    expect(outputs.searchConsole).toBe("https://cicd.search.example.com/console/");
    expect(outputs.searchDomainTarget).toEqual({
      domainName: expect.stringMatching(/\.execute-api\.eu-west-1\.amazonaws\.com$/),
      hostedZoneId: expect.any(String),
    });
    expect(recorder.ofType(resourceTypes.domainName)).toHaveLength(1);
  });

  test("exposes every child of a control plane through its nodes", () => {
    const reachable = new Set<string>();
    const walk = (value: unknown) => {
      if (value instanceof pulumi.CustomResource) {
        reachable.add((value as unknown as { __name: string }).__name);
      } else if (value && typeof value === "object" && !pulumi.Output.isInstance(value)) {
        for (const entry of Object.values(value)) walk(entry);
      }
    };
    walk(created.payments?.nodes);
    const children = recorder.custom.filter((resource) => resource.name.startsWith("payments-ci-staging-"));
    expect(children.length).toBeGreaterThan(50);
    expect(children.map((resource) => resource.name).filter((name) => !reachable.has(name))).toEqual([]);
  });

  test("puts the permissions boundary on every role of the control plane that asked for it", () => {
    for (const role of recorder.ofType(resourceTypes.role)) {
      expect(role.inputs["permissionsBoundary"], role.name).toBe(
        role.name.startsWith("payments-ci-staging-")
          ? "arn:aws:iam::123456789012:policy/team-boundary"
          : undefined,
      );
    }
  });

  test("applies a control plane's transforms and capacity to its own children only", () => {
    const functions = recorder.ofType(resourceTypes.function);
    const memory = (prefix: string) =>
      Object.fromEntries(
        functions
          .filter((fn) => fn.name.startsWith(prefix))
          .map((fn) => [fn.inputs["name"], fn.inputs["memorySize"]]),
      );
    expect(memory("payments-ci-staging-")).toEqual({
      "payments-ci-staging-api": 1024,
      "payments-ci-staging-console": 1024,
      "payments-ci-staging-scheduled": 1024,
      "payments-ci-staging-rotation": 1024,
    });
    expect(memory("search-ci-staging-")).toEqual({
      "search-ci-staging-api": 512,
      "search-ci-staging-console": 512,
      "search-ci-staging-scheduled": 256,
      "search-ci-staging-rotation": 256,
    });

    const paymentsTables = recorder
      .ofType(resourceTypes.table)
      .filter((table) => table.name.startsWith("payments-ci-staging-"));
    expect(paymentsTables).toHaveLength(tableKeys.length);
    for (const table of paymentsTables) {
      expect(table.inputs).toMatchObject({
        tableClass: "STANDARD_INFREQUENT_ACCESS",
        billingMode: "PROVISIONED",
        readCapacity: 5,
        writeCapacity: 5,
      });
      for (const index of (table.inputs["globalSecondaryIndexes"] ?? []) as Record<string, unknown>[]) {
        expect(index).toMatchObject({ readCapacity: 5, writeCapacity: 5 });
      }
    }
    for (const table of recorder
      .ofType(resourceTypes.table)
      .filter((t) => !t.name.startsWith("payments-ci-staging-"))) {
      expect(table.inputs["tableClass"]).toBeUndefined();
      expect(table.inputs["billingMode"]).toBe("PAY_PER_REQUEST");
    }
    // One control plane turned alarms off, the other kept the default.
    expect(
      recorder.ofType(resourceTypes.metricAlarm).every((alarm) => alarm.name.startsWith("search-ci-")),
    ).toBe(true);
    expect(recorder.ofType(resourceTypes.metricAlarm).length).toBeGreaterThan(0);
    // Each control plane's role reaches its own tables only.
    const paymentsApiPolicy = recorder.one(resourceTypes.rolePolicy, "payments-ci-staging-api-grants").inputs[
      "policy"
    ] as string;
    expect(paymentsApiPolicy).toContain(":table/payments-ci-staging-jobs");
    expect(paymentsApiPolicy).not.toContain("search-ci");
  });

  test("the collision check notices two control planes given the same name", async () => {
    const clashing = await useMocks("dev");
    await runProgram(clashing, () => otherTeamProgram({ secondName: "payments-ci" }));

    const urns = clashing.registrations.map((registration) => registration.urn ?? "");
    expect(duplicates(urns)).toContainEqual(
      expect.stringMatching(
        /^urn:pulumi:dev::hybrid-cicd::.*\$aws:dynamodb\/table:Table::payments-ci-staging-jobs$/,
      ),
    );
    expect(duplicates(physicalNames(clashing))).toContain(`${resourceTypes.table} payments-ci-staging-jobs`);
  });
});
