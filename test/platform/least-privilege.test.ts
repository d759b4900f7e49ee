import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { functionGrants, functionKinds, indexActions, tableActions } from "../../platform/src/grants";
import { repositoryRoot } from "./support/pulumi-mocks";

/**
 * The DynamoDB actions granted, against the ones the runtime's store code can issue: read from the
 * store's sources (each `...Command` and each transaction item kind maps to one IAM action).
 */
const commandActions: Record<string, string> = {
  GetCommand: "dynamodb:GetItem",
  PutCommand: "dynamodb:PutItem",
  UpdateCommand: "dynamodb:UpdateItem",
  DeleteCommand: "dynamodb:DeleteItem",
  QueryCommand: "dynamodb:Query",
  ScanCommand: "dynamodb:Scan",
  BatchGetCommand: "dynamodb:BatchGetItem",
  BatchWriteCommand: "dynamodb:BatchWriteItem",
  "Put:": "dynamodb:PutItem",
  "Update:": "dynamodb:UpdateItem",
  "Delete:": "dynamodb:DeleteItem",
  "ConditionCheck:": "dynamodb:ConditionCheckItem",
};

function actionsIn(source: string): Set<string> {
  const found = new Set<string>();
  for (const [token, action] of Object.entries(commandActions)) {
    const pattern = token.endsWith(":") ? new RegExp(`\\b${token}\\s*\\{`) : new RegExp(`new ${token}\\(`);
    if (pattern.test(source)) found.add(action);
  }
  return found;
}

const storeDirectory = path.join(repositoryRoot, "runtime/src/store");
const storeSources = Object.fromEntries(
  readdirSync(storeDirectory)
    .filter((file) => file.endsWith(".ts"))
    .map((file) => [file, readFileSync(path.join(storeDirectory, file), "utf8")]),
);

describe("least privilege, checked against the store's code", () => {
  test("grants no DynamoDB action that no code path of the store issues (no Scan, no BatchWriteItem)", () => {
    const used = new Set(Object.values(storeSources).flatMap((source) => [...actionsIn(source)]));
    // Transactions carry Put/Update/Delete/ConditionCheck items: the item kinds are what IAM checks.
    const granted = new Set(
      functionKinds.flatMap((kind) =>
        Object.values(functionGrants[kind].tables).flatMap((access) => [...tableActions[access]]),
      ),
    );
    for (const action of [...granted, ...indexActions]) {
      if (action === "dynamodb:ConditionCheckItem") continue; // transaction condition items, kept for writers
      expect(used, action).toContain(action);
    }
    expect(granted).not.toContain("dynamodb:Scan");
    expect(granted).not.toContain("dynamodb:BatchWriteItem");
  });

  test("the audit tables are granted exactly what the audit repository issues: append, head update, reads", () => {
    const auditActions = actionsIn(storeSources["audit-repository.ts"] ?? "");
    expect([...auditActions].sort()).toEqual(
      [...tableActions.chain].filter((a) => a !== "dynamodb:BatchGetItem"),
    );
    for (const kind of functionKinds) {
      const audit = functionGrants[kind].tables.audit;
      const digests = functionGrants[kind].tables.audit_digests;
      if (audit) expect(["read", "chain"], kind).toContain(audit);
      if (digests) expect(["read", "append"], kind).toContain(digests);
    }
  });

  test("lists each function's grants (the figures of docs/decisions/109)", () => {
    const summary = Object.fromEntries(
      functionKinds.map((kind) => [
        kind,
        {
          tables: Object.entries(functionGrants[kind].tables)
            .map(([table, access]) => `${table}:${access}`)
            .sort(),
          secrets: Object.entries(functionGrants[kind].secrets)
            .map(([secret, access]) => `${secret}:${access}`)
            .sort(),
        },
      ]),
    );
    expect(summary["scheduled"]).toEqual({
      tables: [
        "agents:read",
        "audit:chain",
        "audit_digests:append",
        "job_queues:read-write",
        "jobs:read-write",
      ],
      secrets: ["auditSigningKey:read"],
    });
    expect(summary["rotation"]).toEqual({
      tables: ["agents:read", "audit:chain", "secret_rotations:read-write"],
      secrets: ["auditSigningKey:rotate", "workloadIdentityRootKey:rotate"],
    });
    expect(summary["console"]?.secrets).toEqual(["oauthClientSecrets:read"]);
    expect(summary["api"]?.secrets).toEqual([
      "auditSigningKey:read",
      "oauthClientSecrets:read",
      "workloadIdentityRootKey:read",
    ]);
    expect(summary["api"]?.tables).toContain("audit:chain");
    expect(summary["api"]?.tables).toContain("deployments:read");
  });
});
