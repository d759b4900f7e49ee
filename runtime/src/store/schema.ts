/**
 * The one declaration of every DynamoDB table: names, keys, indexes (each named after the access
 * pattern it serves) and TTL attributes. The store creates local tables from it, the platform creates
 * `aws.dynamodb.Table`s from it, and IAM grants name its tables and indexes. Nothing here is spelled twice.
 */

export type AttributeType = "S" | "N";

export interface KeyAttribute {
  readonly name: string;
  readonly type: AttributeType;
}

export interface IndexDeclaration {
  readonly partitionKey: KeyAttribute;
  readonly sortKey?: KeyAttribute;
  /** ALL unless the access pattern only needs keys. */
  readonly projection: "ALL" | "KEYS_ONLY";
  /** The access pattern this index serves, for readers and generated docs. */
  readonly serves: string;
}

export interface TableDeclaration {
  readonly description: string;
  readonly partitionKey: KeyAttribute;
  readonly sortKey?: KeyAttribute;
  readonly indexes: Readonly<Record<string, IndexDeclaration>>;
  /** Epoch-seconds attribute DynamoDB TTL deletes items by. */
  readonly ttlAttribute?: string;
}

const s = (name: string): KeyAttribute => ({ name, type: "S" });

export const tables = {
  sessions: {
    description: "Browser and API sessions, keyed by the SHA-256 of the session id (never the id itself).",
    partitionKey: s("session_hash"),
    indexes: {
      "sessions-by-user": {
        partitionKey: s("user_id"),
        sortKey: s("created_at"),
        projection: "ALL",
        serves: "a user's active devices; sign out everywhere",
      },
    },
    ttlAttribute: "expires_at",
  },
  agents: {
    description: "Registered agents: identity, key epoch, tags, last heartbeat and its resource figures.",
    partitionKey: s("agent_id"),
    indexes: {
      "agents-by-region": {
        partitionKey: s("region"),
        sortKey: s("agent_id"),
        projection: "ALL",
        serves: "list agents in a region",
      },
      "agents-by-listing": {
        partitionKey: s("listing"),
        sortKey: s("agent_id"),
        projection: "ALL",
        serves: "list every agent, paginated, without a scan",
      },
    },
  },
  jobs: {
    description: "CI/CD jobs and their lifecycle state.",
    partitionKey: s("job_id"),
    indexes: {
      "jobs-by-created": {
        partitionKey: s("listing"),
        sortKey: s("created_at"),
        projection: "ALL",
        serves: "list every job, newest first",
      },
      "jobs-by-status": {
        partitionKey: s("status"),
        sortKey: s("created_at"),
        projection: "ALL",
        serves: "list jobs in one state, newest first; find queued jobs",
      },
    },
  },
  credentials: {
    description:
      "Bearer credentials keyed by their SHA-256: API tokens, one-time agent registration tokens, one-time sign-in links.",
    partitionKey: s("token_hash"),
    indexes: {
      "credentials-by-kind": {
        partitionKey: s("kind"),
        sortKey: s("created_at"),
        projection: "ALL",
        serves: "list API tokens (or registration tokens) without their secrets",
      },
    },
    ttlAttribute: "expires_at",
  },
  nonces: {
    description: "RFC 9421 signature nonces seen in the replay window, one item per agent and nonce.",
    partitionKey: s("nonce_key"),
    indexes: {},
    ttlAttribute: "expires_at",
  },
  idempotency: {
    description: "Idempotency-Key records: the first request's result, kept for 24 hours.",
    partitionKey: s("idempotency_key"),
    indexes: {},
    ttlAttribute: "expires_at",
  },
  deployments: {
    description:
      "What `pulumi up` deployed: stack, version, control-relevant settings and policy verdicts (written by the platform).",
    partitionKey: s("environment"),
    sortKey: s("deployed_at"),
    indexes: {},
  },
} as const satisfies Record<string, TableDeclaration>;

export type TableKey = keyof typeof tables;

export const tableKeys = Object.keys(tables) as TableKey[];

/** Index names of one table, e.g. IndexName<"jobs"> = "jobs-by-created" | "jobs-by-status". */
export type IndexName<T extends TableKey> = keyof (typeof tables)[T]["indexes"] & string;

/** The physical table name: every environment (and every test file) gets its own prefix. */
export function tableName(prefix: string, table: TableKey): string {
  return `${prefix}${table}`;
}

/** Physical names of every table for one prefix. */
export function tableNames(prefix: string): Record<TableKey, string> {
  return Object.fromEntries(tableKeys.map((key) => [key, tableName(prefix, key)])) as Record<
    TableKey,
    string
  >;
}

/** The constant partition value of the `listing` indexes (one partition: fine up to thousands of writes/s). */
export const LISTING_PARTITION = "all";

/** The attributes of a query's LastEvaluatedKey: the table's keys plus, for an index, the index keys. */
export function keyAttributeNames(table: TableKey, index?: string): string[] {
  const declaration: TableDeclaration = tables[table];
  const names = [declaration.partitionKey.name];
  if (declaration.sortKey) names.push(declaration.sortKey.name);
  if (index !== undefined) {
    const indexDeclaration = declaration.indexes[index];
    if (!indexDeclaration) throw new Error(`table ${table} has no index ${index}`);
    names.push(indexDeclaration.partitionKey.name);
    if (indexDeclaration.sortKey) names.push(indexDeclaration.sortKey.name);
  }
  return [...new Set(names)];
}
