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

export type TableAccess = "read" | "read-write";
/** `rotate`: the Secrets Manager rotation protocol's calls on that secret. */
export type SecretAccess = "read" | "rotate";

export interface FunctionGrants {
  readonly tables: Readonly<Partial<Record<TableKey, TableAccess>>>;
  readonly secrets: Readonly<Partial<Record<SecretKey, SecretAccess>>>;
  /** Secrets this function may ask Secrets Manager to rotate now (`RotateSecret`; the rotation function does the steps). */
  readonly startRotation?: readonly SecretKey[];
}

const secretKeys = Object.keys(secrets) as SecretKey[];

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

export const functionGrants: Readonly<Record<FunctionKind, FunctionGrants>> = {
  api: {
    tables: everyTable("read-write", { deployments: "read" }),
    secrets: { workloadIdentityRootKey: "read", auditSigningKey: "read", oauthClientSecrets: "read" },
    // `POST /secrets/{name}/rotate`: one click asks Secrets Manager to run the rotation function now.
    startRotation: rotatedSecretKeys,
  },
  scheduled: {
    tables: {
      jobs: "read-write",
      agents: "read-write",
      nonces: "read-write",
      sessions: "read-write",
      credentials: "read-write",
      idempotency: "read-write",
      // The sweep keeps the per-tag-set queues and writes each requeue's audit event in the same
      // transaction; the digest signs the audit chain's head.
      job_queues: "read-write",
      audit: "read-write",
      audit_digests: "read-write",
    },
    secrets: { auditSigningKey: "read" },
  },
  rotation: {
    // Agents learn their pending keys; the rotation's lock and history; every rotation step is audited.
    tables: { agents: "read-write", audit: "read-write", secret_rotations: "read-write" },
    secrets: Object.fromEntries(rotatedSecretKeys.map((key) => [key, "rotate"])),
  },
  console: {
    tables: everyTable("read", { sessions: "read-write" }),
    secrets: Object.fromEntries(secretKeys.map((key) => [key, "read"])),
  },
};

export const tableActions: Readonly<Record<TableAccess, readonly string[]>> = {
  read: [
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
  ],
  "read-write": [
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
  ],
};
/** Indexes are only ever queried or scanned, whatever the access to their table. */
export const indexActions: readonly string[] = ["dynamodb:Query", "dynamodb:Scan"];

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

/** With a customer-managed key, data is only readable through DynamoDB / Secrets Manager with these. */
const kmsDecryptActions = ["kms:Decrypt", "kms:DescribeKey"];
const kmsEncryptActions = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"];

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
  for (const access of ["read", "read-write"] as const) {
    const keys = grantedTables.filter(([, granted]) => granted === access).map(([key]) => key);
    if (keys.length === 0) continue;
    const sid = access === "read" ? "ReadTables" : "ReadWriteTables";
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

  if (targets.kmsKeyArn && (grantedTables.length > 0 || grantedSecrets.length > 0)) {
    const writes =
      grantedTables.some(([, access]) => access === "read-write") ||
      grantedSecrets.some(([, access]) => access === "rotate");
    const services = [
      ...(grantedTables.length > 0 ? [`dynamodb.${targets.region}.amazonaws.com`] : []),
      ...(grantedSecrets.length > 0 ? [`secretsmanager.${targets.region}.amazonaws.com`] : []),
    ];
    statements.push({
      Sid: "UseDataKeyThroughServices",
      Effect: "Allow",
      Action: writes ? kmsEncryptActions : kmsDecryptActions,
      Resource: [targets.kmsKeyArn],
      Condition: { StringEquals: { "kms:ViaService": services } },
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
