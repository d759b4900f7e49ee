import { type DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { decodeCursor, encodeCursor, pageFrom } from "./cursor";
import { LISTING_PARTITION } from "./schema";
import { isConditionalCheckFailed, type WriteTransaction } from "./transaction";

export interface ResourceFigures {
  cpu_percent: number;
  memory_percent: number;
  disk_percent: number;
  jobs_queued: number;
  jobs_completed: number;
  uptime_seconds: number;
}

export interface AgentRecord {
  agent_id: string;
  name: string;
  region: string;
  tags: string[];
  version?: string;
  /** Bumped on revocation: the agent's derived key changes with it. */
  key_epoch: number;
  registered_at: string;
  registered_by: string;
  listing: typeof LISTING_PARTITION;
  last_heartbeat_at?: string;
  last_figures?: ResourceFigures;
  revoked_at?: string;
  revoked_by?: string;
}

export class AgentsRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  put(tx: WriteTransaction, record: AgentRecord, onExists: () => Error): void {
    tx.add(
      { Put: { TableName: this.table, Item: record, ConditionExpression: "attribute_not_exists(agent_id)" } },
      onExists,
    );
  }

  async get(agentId: string): Promise<AgentRecord | undefined> {
    const result = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { agent_id: agentId }, ConsistentRead: true }),
    );
    return result.Item as AgentRecord | undefined;
  }

  /** Stores a heartbeat; refused (returns false) for an unknown or revoked agent. */
  async recordHeartbeat(
    agentId: string,
    figures: ResourceFigures,
    now: Date,
  ): Promise<AgentRecord | undefined> {
    try {
      const result = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { agent_id: agentId },
          UpdateExpression: "SET last_heartbeat_at = :now, last_figures = :figures",
          ConditionExpression: "attribute_exists(agent_id) AND attribute_not_exists(revoked_at)",
          ExpressionAttributeValues: { ":now": now.toISOString(), ":figures": figures },
          ReturnValues: "ALL_NEW",
        }),
      );
      return result.Attributes as AgentRecord;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return undefined;
      throw error;
    }
  }

  /**
   * A heartbeat inside a transaction (when it changes the agent's health, the audit event goes with it):
   * only on top of the heartbeat `previous` saw, so a concurrent heartbeat is not recorded twice.
   */
  recordHeartbeatIn(
    tx: WriteTransaction,
    previous: AgentRecord,
    figures: ResourceFigures,
    now: Date,
    onOvertaken: () => Error,
  ): void {
    const seen = previous.last_heartbeat_at;
    tx.add(
      {
        Update: {
          TableName: this.table,
          Key: { agent_id: previous.agent_id },
          UpdateExpression: "SET last_heartbeat_at = :now, last_figures = :figures",
          ConditionExpression:
            "attribute_exists(agent_id) AND attribute_not_exists(revoked_at) AND " +
            (seen === undefined ? "attribute_not_exists(last_heartbeat_at)" : "last_heartbeat_at = :seen"),
          ExpressionAttributeValues: {
            ":now": now.toISOString(),
            ":figures": figures,
            ...(seen === undefined ? {} : { ":seen": seen }),
          },
        },
      },
      onOvertaken,
    );
  }

  revoke(tx: WriteTransaction, agentId: string, actor: string, now: Date, onRefused: () => Error): void {
    tx.add(
      {
        Update: {
          TableName: this.table,
          Key: { agent_id: agentId },
          UpdateExpression: "SET revoked_at = :now, revoked_by = :actor, key_epoch = key_epoch + :one",
          ConditionExpression: "attribute_exists(agent_id) AND attribute_not_exists(revoked_at)",
          ExpressionAttributeValues: { ":now": now.toISOString(), ":actor": actor, ":one": 1 },
        },
      },
      onRefused,
    );
  }

  async list(options: {
    region?: string;
    limit: number;
    cursor?: string;
  }): Promise<{ items: AgentRecord[]; nextCursor: string | null }> {
    const index = options.region === undefined ? "agents-by-listing" : "agents-by-region";
    const condition = options.region === undefined ? "listing = :value" : "#region = :value";
    const start = decodeCursor(options.cursor, {
      table: "agents",
      index,
      partition: options.region === undefined ? { listing: LISTING_PARTITION } : { region: options.region },
    });
    const result = await pageFrom(start, () =>
      this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: index,
          KeyConditionExpression: condition,
          ExpressionAttributeNames: options.region === undefined ? undefined : { "#region": "region" },
          ExpressionAttributeValues: { ":value": options.region ?? LISTING_PARTITION },
          Limit: options.limit,
          ExclusiveStartKey: start,
        }),
      ),
    );
    return {
      items: (result.Items ?? []) as AgentRecord[],
      nextCursor: encodeCursor(result.LastEvaluatedKey),
    };
  }
}
