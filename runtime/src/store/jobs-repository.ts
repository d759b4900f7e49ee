import { type DynamoDBDocumentClient, GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { decodeCursor, encodeCursor } from "./cursor";
import { keyAttributeNames, LISTING_PARTITION } from "./schema";
import type { WriteTransaction } from "./transaction";

export const jobStatuses = [
  "awaiting_approval",
  "queued",
  "running",
  "cancelling",
  "completed",
  "failed",
  "cancelled",
] as const;
export type JobStatus = (typeof jobStatuses)[number];

export interface JobRecord {
  job_id: string;
  status: JobStatus;
  git_ref: string;
  repository?: string;
  command?: string;
  tags: string[];
  environment?: string;
  priority: number;
  timeout_seconds: number;
  created_at: string;
  updated_at: string;
  created_by: string;
  listing: typeof LISTING_PARTITION;
  attempt: number;
  agent_id?: string;
  started_at?: string;
  finished_at?: string;
  exit_code?: number;
  error_message?: string;
}

export class JobsRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  put(tx: WriteTransaction, record: JobRecord, onExists: () => Error): void {
    tx.add(
      { Put: { TableName: this.table, Item: record, ConditionExpression: "attribute_not_exists(job_id)" } },
      onExists,
    );
  }

  async get(jobId: string): Promise<JobRecord | undefined> {
    const result = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { job_id: jobId }, ConsistentRead: true }),
    );
    return result.Item as JobRecord | undefined;
  }

  private query(status: JobStatus | undefined) {
    return status === undefined
      ? {
          IndexName: "jobs-by-created",
          KeyConditionExpression: "listing = :value",
          ExpressionAttributeValues: { ":value": LISTING_PARTITION },
        }
      : {
          IndexName: "jobs-by-status",
          KeyConditionExpression: "#status = :value",
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: { ":value": status },
        };
  }

  /** Newest first, one page. */
  async list(options: {
    status?: JobStatus;
    limit: number;
    cursor?: string;
  }): Promise<{ items: JobRecord[]; nextCursor: string | null }> {
    const query = this.query(options.status);
    const result = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        ...query,
        ScanIndexForward: false,
        Limit: options.limit,
        ExclusiveStartKey: decodeCursor(options.cursor, keyAttributeNames("jobs", query.IndexName)),
      }),
    );
    return { items: (result.Items ?? []) as JobRecord[], nextCursor: encodeCursor(result.LastEvaluatedKey) };
  }

  /** How many jobs match; reads index keys only (Select COUNT), page by page. */
  async count(status?: JobStatus): Promise<number> {
    const query = this.query(status);
    let total = 0;
    let start: Record<string, unknown> | undefined;
    do {
      const result = await this.doc.send(
        new QueryCommand({ TableName: this.table, ...query, Select: "COUNT", ExclusiveStartKey: start }),
      );
      total += result.Count ?? 0;
      start = result.LastEvaluatedKey;
    } while (start);
    return total;
  }
}
