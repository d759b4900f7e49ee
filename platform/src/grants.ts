import { type SecretKey, secrets } from "@hybrid-cicd/runtime/secrets/catalog";
import { type TableKey, tableKeys, tables } from "@hybrid-cicd/runtime/store/schema";
import type { PolicyStatement } from "./policy/rules";

/**
 * What each Lambda function may touch, declared once as data. IAM policies are generated from these
 * grants: named actions on named table, index and secret ARNs, nothing else (no `dynamodb:*`, no
 * `Resource: "*"`). A table added to the runtime schema is picked up by the grants written as "every
 * table"; the others must name it.
 */
export const functionKinds = ["api", "console", "scheduled", "rotation"] as const;
export type FunctionKind = (typeof functionKinds)[number];

/**
 * How a function uses a table, each a fixed set of DynamoDB actions (see `tableActions`):
 * - `read`: GetItem, BatchGetItem, Query;
 * - `append`: read + PutItem. The audit digests: the code only ever adds an item, conditioned on
 *   `attribute_not_exists`. IAM cannot require the condition (no condition key covers it), but it can
 *   leave out DeleteItem, UpdateItem and BatchWriteItem, so an item once written cannot be changed or
 *   removed with the function's credentials;
 * - `chain`: append + UpdateItem. The audit events: events are added the same way, and one item per
 *   chain, the head, is updated with a condition on the previous head;
 * - `read-write`: read + PutItem, UpdateItem, DeleteItem, ConditionCheckItem (transactions).
 * BatchWriteItem and Scan are granted to no one: no code path of the runtime calls them.
 */
export type TableAccess = "read" | "append" | "chain" | "read-write";
/** `rotate`: the Secrets Manager rotation protocol's calls on that secret. */
export type SecretAccess = "read" | "rotate";

export interface FunctionGrants {
  readonly tables: Readonly<Partial<Record<TableKey, TableAccess>>>;
  readonly secrets: Readonly<Partial<Record<SecretKey, SecretAccess>>>;
  /** Secrets this function may ask Secrets Manager to rotate now (`RotateSecret`; the rotation function does the steps). */
  readonly startRotation?: readonly SecretKey[];
}

const secretKeys = Object.keys(secrets) as SecretKey[];

/** The audit tables are append-only for every function (docs/decisions/109-least-privilege-per-function.md). */
const auditAccess = { audit: "chain", audit_digests: "append" } as const satisfies Partial<
  Record<TableKey, TableAccess>
>;

function everyTable(
  access: TableAccess,
  except: Partial<Record<TableKey, TableAccess>> = {},
): Partial<Record<TableKey, TableAccess>> {
  return Object.fromEntries(tableKeys.map((key) => [key, except[key] ?? access]));
}

/** The secrets the rotation function rotates: every catalog entry with a rotation period. */
export const rotatedSecretKeys: readonly SecretKey[] = secretKeys.filter(
  (key) => (secrets[key] as { rotationDays?: number }).rotationDays !== undefined,
);

/**
 * Per function, what its entry point's code paths touch (runtime/src/lambda/*.ts and the services they
 * call); a test checks each list.
 */
export const functionGrants: Readonly<Record<FunctionKind, FunctionGrants>> = {
  api: {
    // Every use case of the API; the deployment records are only read (the platform writes them).
    tables: everyTable("read-write", { deployments: "read", ...auditAccess }),
    // The root key derives agent keys; the signing key seals exports with a digest and serves its
    // public half (GET /audit/public-key); the OAuth client secrets complete sign-ins.
    secrets: { workloadIdentityRootKey: "read", auditSigningKey: "read", oauthClientSecrets: "read" },
    // `POST /secrets/{name}/rotate`: one click asks Secrets Manager to run the rotation function now.
    startRotation: rotatedSecretKeys,
  },
  scheduled: {
    // sweep: expired leases requeued or failed (jobs, per-tag-set queues, the requeue's audit event in
    // the same transaction), queue metrics (agents read); digest: signs the chain head.
    tables: { jobs: "read-write", job_queues: "read-write", agents: "read", ...auditAccess },
    secrets: { auditSigningKey: "read" },
  },
  rotation: {
    // testSecret lists the active agents and their acknowledgements; the rotation's lock and history;
    // every step is audited. The keys themselves live in Secrets Manager.
    tables: { agents: "read", secret_rotations: "read-write", audit: "chain" },
    secrets: Object.fromEntries(rotatedSecretKeys.map((key) => [key, "rotate"])),
  },
  console: {
    // The console's loaders and actions call the runtime's domain services (sessions, jobs, agents,
    // audit) like the API. It signs users in, but never derives agent keys or signs digests.
    tables: everyTable("read-write", { deployments: "read", ...auditAccess }),
    secrets: { oauthClientSecrets: "read" },
  },
};

const readActions = ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query"];

export const tableActions: Readonly<Record<TableAccess, readonly string[]>> = {
  read: readActions,
  append: [...readActions, "dynamodb:PutItem"].sort(),
  chain: [...readActions, "dynamodb:PutItem", "dynamodb:UpdateItem"].sort(),
  "read-write": [
    ...readActions,
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
  ].sort(),
};
/** Indexes are only ever queried, whatever the access to their table. */
export const indexActions: readonly string[] = ["dynamodb:Query"];

export const secretActions: Readonly<Record<SecretAccess, readonly string[]>> = {
  // ListSecretVersionIds: every kept version of the audit signing key verifies old digests; the
  // rotation steps find the versions holding each staging label.
  read: [
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:ListSecretVersionIds",
  ],
  rotate: [
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:ListSecretVersionIds",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
  ],
};

/**
 * With a customer-managed key, reading a table or a secret needs `kms:Decrypt` through that service;
 * writing a secret version (rotation) needs `kms:GenerateDataKey` too. DynamoDB writes need no KMS
 * permission of the caller (the table key is DynamoDB's), and `kms:Encrypt` is never used
 * (docs/decisions/109-least-privilege-per-function.md cites the AWS pages).
 */
const kmsDecryptActions = ["kms:Decrypt"];
const kmsRotateActions = ["kms:Decrypt", "kms:GenerateDataKey"];

/** X-Ray has no resource-level permissions (see `actionsWithoutResourceLevelPermissions`). */
export const tracingActions: readonly string[] = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"];

/** The ARNs a function's policy is written against, resolved. */
export interface GrantTargets {
  readonly tableArns: Readonly<Partial<Record<TableKey, string>>>;
  readonly secretArns: Readonly<Partial<Record<SecretKey, string>>>;
  /** The customer-managed key of tables and secrets, if any. */
  readonly kmsKeyArn?: string;
  /** Region of the tables and secrets (for the `kms:ViaService` condition). */
  readonly region: string;
  /** The function's own log group. */
  readonly logGroupArn: string;
  readonly deadLetterQueueArn?: string;
  readonly tracing: boolean;
}

export interface PolicyDocument {
  readonly Version: "2012-10-17";
  readonly Statement: (PolicyStatement & { Condition?: Record<string, Record<string, string | string[]>> })[];
}

function requireArn<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`grant refers to ${what}, which this control plane does not have`);
  return value;
}

/** The IAM policy of one function: its grants expanded against resolved ARNs. */
export function functionPolicyDocument(grants: FunctionGrants, targets: GrantTargets): PolicyDocument {
  const statements: PolicyDocument["Statement"] = [];
  const grantedTables = Object.entries(grants.tables) as [TableKey, TableAccess][];
  const tableSids: Record<TableAccess, string> = {
    read: "ReadTables",
    append: "AppendToTables",
    chain: "AppendToAuditChain",
    "read-write": "ReadWriteTables",
  };
  for (const access of ["read", "append", "chain", "read-write"] as const) {
    const keys = grantedTables.filter(([, granted]) => granted === access).map(([key]) => key);
    if (keys.length === 0) continue;
    const sid = tableSids[access];
    const arns = keys.map((key) => requireArn(targets.tableArns[key], `table ${key}`));
    statements.push({ Sid: sid, Effect: "Allow", Action: [...tableActions[access]], Resource: arns });
  }
  const indexArns = grantedTables.flatMap(([key]) =>
    Object.keys(tables[key].indexes).map((index) => `${targets.tableArns[key]}/index/${index}`),
  );
  if (indexArns.length > 0) {
    statements.push({ Sid: "QueryIndexes", Effect: "Allow", Action: [...indexActions], Resource: indexArns });
  }

  const grantedSecrets = Object.entries(grants.secrets) as [SecretKey, SecretAccess][];
  for (const access of ["read", "rotate"] as const) {
    const keys = grantedSecrets.filter(([, granted]) => granted === access).map(([key]) => key);
    if (keys.length === 0) continue;
    const arns = keys.map((key) => requireArn(targets.secretArns[key], `secret ${key}`));
    const sid = access === "read" ? "ReadSecrets" : "RotateSecrets";
    statements.push({ Sid: sid, Effect: "Allow", Action: [...secretActions[access]], Resource: arns });
  }

  if (grants.startRotation && grants.startRotation.length > 0) {
    statements.push({
      Sid: "StartRotation",
      Effect: "Allow",
      Action: ["secretsmanager:RotateSecret"],
      Resource: grants.startRotation.map((key) => requireArn(targets.secretArns[key], `secret ${key}`)),
    });
  }

  if (targets.kmsKeyArn && grantedTables.length > 0) {
    statements.push({
      Sid: "DecryptTablesThroughDynamoDb",
      Effect: "Allow",
      Action: kmsDecryptActions,
      Resource: [targets.kmsKeyArn],
      Condition: { StringEquals: { "kms:ViaService": `dynamodb.${targets.region}.amazonaws.com` } },
    });
  }
  if (targets.kmsKeyArn && grantedSecrets.length > 0) {
    const rotates = grantedSecrets.some(([, access]) => access === "rotate");
    statements.push({
      Sid: "UseSecretKeyThroughSecretsManager",
      Effect: "Allow",
      Action: rotates ? kmsRotateActions : kmsDecryptActions,
      Resource: [targets.kmsKeyArn],
      Condition: { StringEquals: { "kms:ViaService": `secretsmanager.${targets.region}.amazonaws.com` } },
    });
  }

  statements.push({
    Sid: "WriteOwnLogs",
    Effect: "Allow",
    Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
    Resource: [`${targets.logGroupArn}:log-stream:*`],
  });
  if (targets.deadLetterQueueArn) {
    statements.push({
      Sid: "SendToDeadLetterQueue",
      Effect: "Allow",
      Action: ["sqs:SendMessage"],
      Resource: [targets.deadLetterQueueArn],
    });
  }
  if (targets.tracing) {
    statements.push({ Sid: "SendTraces", Effect: "Allow", Action: [...tracingActions], Resource: "*" });
  }
  return { Version: "2012-10-17", Statement: statements };
}
