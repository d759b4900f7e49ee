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
const n = (name: string): KeyAttribute => ({ name, type: "N" });

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
      "jobs-by-queue": {
        partitionKey: s("queue_key"),
        sortKey: s("queue_order"),
        projection: "KEYS_ONLY",
        serves:
          "claim the highest-priority, then oldest, queued job of one tag set; queue depth and oldest wait per tag set (sparse: only queued jobs carry queue_key)",
      },
      "jobs-by-lease": {
        partitionKey: s("lease_partition"),
        sortKey: s("lease_expires_at"),
        projection: "KEYS_ONLY",
        serves:
          "the sweeper: leased jobs whose lease has expired (sparse: only leased jobs carry lease_partition)",
      },
      "jobs-by-deadline": {
        partitionKey: s("lease_partition"),
        sortKey: s("deadline_at"),
        projection: "KEYS_ONLY",
        serves:
          "the sweeper: leased jobs past their server deadline (timeout, or cancel deadline) even while their agent heartbeats (sparse)",
      },
      "jobs-by-agent": {
        partitionKey: s("held_by"),
        sortKey: s("job_id"),
        projection: "KEYS_ONLY",
        serves: "revoking an agent: the jobs it holds right now (sparse: only leased jobs carry held_by)",
      },
    },
  },
  job_logs: {
    description:
      "Job log chunks as the agent uploaded them, one item per chunk, addressed by job and byte offset.",
    partitionKey: s("job_id"),
    sortKey: n("offset"),
    indexes: {},
    ttlAttribute: "expires_at",
  },
  job_queues: {
    description:
      "Every environment and tag set that has had queued jobs (one small item each): the jobs-by-queue partitions a claiming agent and the queue metrics look in. Also the job counts by status (partition `counts`, a few shards), updated in the jobs' own transactions.",
    partitionKey: s("listing"),
    sortKey: s("queue_key"),
    indexes: {},
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
      "credentials-by-id": {
        partitionKey: s("credential_id"),
        projection: "KEYS_ONLY",
        serves: "find a token by the short id shown in listings (revoke by id)",
      },
    },
    ttlAttribute: "expires_at",
  },
  oauth_flows: {
    description:
      "OAuth sign-ins in progress (PKCE verifier, nonce, browser binding), keyed by the SHA-256 of `state`; used once, expire after minutes.",
    partitionKey: s("state_hash"),
    indexes: {},
    ttlAttribute: "expires_at",
  },
  role_bindings: {
    description:
      "Role bindings managed through the API (verified e-mail, e-mail domain or user id → role), plus the admin counter that protects the last admin.",
    partitionKey: s("subject"),
    indexes: {
      "bindings-by-listing": {
        partitionKey: s("listing"),
        sortKey: s("subject"),
        projection: "ALL",
        serves: "list every role binding without a scan",
      },
    },
  },
  rate_limits: {
    description:
      "Fixed-window hit counters of rate-limited endpoints (sign-in, tokens), per client and window.",
    partitionKey: s("limit_key"),
    indexes: {},
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
  audit: {
    description:
      "The audit trail: hash-chained events (seq 1, 2, ...) and the chain head (seq 0), one partition per chain. Periods are found by binary search over seq (event times never go backwards), so no time index is written.",
    partitionKey: s("chain"),
    sortKey: n("seq"),
    indexes: {
      "audit-by-actor": {
        partitionKey: s("actor_key"),
        sortKey: s("time_seq"),
        projection: "ALL",
        serves: "what one user, token, agent or address did",
      },
      "audit-by-target": {
        partitionKey: s("target_key"),
        sortKey: s("time_seq"),
        projection: "ALL",
        serves: "everything that happened to one job, agent, session or token",
      },
    },
  },
  audit_digests: {
    description:
      "Ed25519-signed digests of the audit chain head, one per interval (quiet ones too) and on demand.",
    partitionKey: s("chain"),
    sortKey: n("digest_seq"),
    indexes: {},
  },
  secret_rotations: {
    description:
      "Secret rotation: per secret one `state` item (the conditional lock naming the rotation under way, last rotation, until when AWSPREVIOUS is accepted) and one `rotation#<started_at>#<id>` item per rotation with its steps.",
    partitionKey: s("secret"),
    sortKey: s("record"),
    indexes: {},
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
