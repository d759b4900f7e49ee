import {
  type TableDeclaration,
  type TableKey,
  tableKeys,
  tableName,
  tables,
} from "@hybrid-cicd/runtime/store/schema";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { type ControlPlanePartArgs, partContext } from "./control-plane-part";
import { createChild } from "./inventory";
import type { Transform } from "./transform";

/** DynamoDB capacity of every table and index. */
export type TableCapacity =
  | { mode: "on-demand" }
  | {
      mode: "provisioned";
      /** Read capacity units per table and per index. */
      readUnits: number;
      /** Write capacity units per table and per index. */
      writeUnits: number;
    };

export interface ControlPlaneTablesArgs extends ControlPlanePartArgs {
  /**
   * On-demand (pay per request) or provisioned capacity.
   * @default { mode: "on-demand" }
   * @example { mode: "provisioned", readUnits: 20, writeUnits: 20 }
   */
  capacity?: TableCapacity;
  /**
   * Customer-managed KMS key ARN for encryption at rest. Without one, DynamoDB's AWS-owned key is used
   * (and the `dynamodb-customer-managed-key` rule fails).
   */
  kmsKeyArn?: pulumi.Input<string>;
  /**
   * Deletion protection on every table, `protect` and `retainOnDelete` in the stack: a production
   * table survives `pulumi destroy` and a mistaken replacement.
   * @default false
   */
  protect?: boolean;
  transform?: { table?: Transform<aws.dynamodb.TableArgs> };
}

/**
 * Every table of the runtime's schema (runtime/src/store/schema.ts) with its keys, indexes and TTL
 * exactly as declared there; point-in-time recovery always on; named `${name}-${environment}-${table}`,
 * the prefix the runtime receives as HYBRID_CICD_TABLE_PREFIX.
 *
 * @example
 * ```ts
 * const tables = new ControlPlaneTables("hybrid-cicd", { environment: "staging" });
 * export const jobsTable = tables.names.jobs;
 * ```
 */
export class ControlPlaneTables extends pulumi.ComponentResource {
  readonly tables: Record<TableKey, aws.dynamodb.Table>;
  readonly names: Record<TableKey, pulumi.Output<string>>;
  readonly arns: Record<TableKey, pulumi.Output<string>>;
  /** HYBRID_CICD_TABLE_PREFIX for this control plane. */
  readonly prefix: string;

  constructor(name: string, args: ControlPlaneTablesArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("hybrid-cicd:aws:ControlPlaneTables", name, {}, opts);
    const { names, tags } = partContext(name, args);
    const capacity = args.capacity ?? { mode: "on-demand" };
    const protect = args.protect ?? false;
    if (capacity.mode === "provisioned" && (capacity.readUnits < 1 || capacity.writeUnits < 1)) {
      throw new Error("provisioned capacity needs at least 1 read and 1 write unit");
    }
    this.prefix = names.tablePrefix;

    const created = {} as Record<TableKey, aws.dynamodb.Table>;
    for (const key of tableKeys) {
      created[key] = createChild(
        aws.dynamodb.Table,
        `${name}-${key}`,
        tableArgs(tableName(names.tablePrefix, key), tables[key], capacity, args.kmsKeyArn, protect, tags),
        { parent: this, protect, retainOnDelete: protect },
        args.transform?.table,
        args.inventory,
      );
    }
    this.tables = created;
    this.names = mapTables((key) => created[key].name);
    this.arns = mapTables((key) => created[key].arn);
    this.registerOutputs({ names: this.names, arns: this.arns });
  }
}

function mapTables<T>(value: (key: TableKey) => T): Record<TableKey, T> {
  return Object.fromEntries(tableKeys.map((key) => [key, value(key)])) as Record<TableKey, T>;
}

/** The table's arguments, from its declaration alone: every key and index attribute defined once. */
export function tableArgs(
  physicalName: string,
  declaration: TableDeclaration,
  capacity: TableCapacity,
  kmsKeyArn: pulumi.Input<string> | undefined,
  deletionProtection: boolean,
  tags: Record<string, string>,
): aws.dynamodb.TableArgs {
  const keyAttributes = new Map<string, string>();
  const use = (attribute: { name: string; type: string } | undefined) => {
    if (!attribute) return;
    const known = keyAttributes.get(attribute.name);
    if (known && known !== attribute.type) {
      throw new Error(
        `${physicalName}: attribute ${attribute.name} is declared as both ${known} and ${attribute.type}`,
      );
    }
    keyAttributes.set(attribute.name, attribute.type);
  };
  use(declaration.partitionKey);
  use(declaration.sortKey);
  for (const index of Object.values(declaration.indexes)) {
    use(index.partitionKey);
    use(index.sortKey);
  }
  const provisioned =
    capacity.mode === "provisioned"
      ? { readCapacity: capacity.readUnits, writeCapacity: capacity.writeUnits }
      : {};
  return {
    name: physicalName,
    billingMode: capacity.mode === "provisioned" ? "PROVISIONED" : "PAY_PER_REQUEST",
    ...provisioned,
    hashKey: declaration.partitionKey.name,
    rangeKey: declaration.sortKey?.name,
    attributes: [...keyAttributes].map(([attributeName, type]) => ({ name: attributeName, type })),
    globalSecondaryIndexes: Object.entries(declaration.indexes).map(([indexName, index]) => ({
      name: indexName,
      keySchemas: [
        { attributeName: index.partitionKey.name, keyType: "HASH" },
        ...(index.sortKey ? [{ attributeName: index.sortKey.name, keyType: "RANGE" }] : []),
      ],
      projectionType: index.projection,
      ...provisioned,
    })),
    ttl: declaration.ttlAttribute ? { attributeName: declaration.ttlAttribute, enabled: true } : undefined,
    pointInTimeRecovery: { enabled: true },
    serverSideEncryption: kmsKeyArn ? { enabled: true, kmsKeyArn } : { enabled: false },
    deletionProtectionEnabled: deletionProtection,
    tags,
  };
}
