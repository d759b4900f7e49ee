import { tableKeys } from "@hybrid-cicd/runtime/store/schema";
import { beforeAll, describe, expect, test } from "vitest";
import { resourceTypes } from "../../platform/src/policy/resource-types";
import otherTeamProgram from "./fixtures/other-team-program";
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

  test("creates two control planes and a standalone part with no URN or physical-name collision", () => {
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
    expect(Object.values(outputs.archiveTables)).toEqual(
      tableKeys.map((key) => `payments-archive-staging-${key}`),
    );
    expect(outputs.paymentsApi).not.toBe(outputs.searchApi);
  });

  test("applies a control plane's transforms and capacity to its own children only", () => {
    const functions = recorder.ofType(resourceTypes.function);
    const memory = (prefix: string) =>
      Object.fromEntries(
        functions
          .filter((fn) => fn.name.startsWith(prefix))
          .map((fn) => [fn.inputs["name"], fn.inputs["memorySize"]]),
      );
    expect(memory("payments-ci-")).toEqual({
      "payments-ci-staging-api": 1024,
      "payments-ci-staging-console": 1024,
      "payments-ci-staging-scheduled": 1024,
      "payments-ci-staging-rotation": 1024,
    });
    expect(memory("search-ci-")).toEqual({
      "search-ci-staging-api": 512,
      "search-ci-staging-console": 512,
      "search-ci-staging-scheduled": 256,
      "search-ci-staging-rotation": 256,
    });

    const paymentsTables = recorder
      .ofType(resourceTypes.table)
      .filter((table) => table.name.startsWith("payments-ci-"));
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
      .filter((t) => !t.name.startsWith("payments-ci-"))) {
      expect(table.inputs["tableClass"]).toBeUndefined();
      expect(table.inputs["billingMode"]).toBe("PAY_PER_REQUEST");
    }
    // One control plane turned alarms off, the other kept the default.
    expect(
      recorder.ofType(resourceTypes.metricAlarm).every((alarm) => alarm.name.startsWith("search-ci-")),
    ).toBe(true);
    expect(recorder.ofType(resourceTypes.metricAlarm).length).toBeGreaterThan(0);
    // Each control plane's role reaches its own tables only.
    const paymentsApiPolicy = recorder.one(resourceTypes.rolePolicy, "payments-ci-api-grants").inputs[
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
      expect.stringMatching(/^urn:pulumi:dev::hybrid-cicd::.*\$aws:dynamodb\/table:Table::payments-ci-jobs$/),
    );
    expect(duplicates(physicalNames(clashing))).toContain(`${resourceTypes.table} payments-ci-staging-jobs`);
  });
});
