import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  QueryCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { LISTING_PARTITION } from "./schema";
import { isConditionalCheckFailed } from "./transaction";

/** An environment's tag set that has had queued jobs: one partition of the jobs-by-queue index. */
export interface JobQueueRecord {
  listing: typeof LISTING_PARTITION;
  queue_key: string;
  /** Absent on queues from before environments (decision 010): no agent looks there. */
  environment?: string;
  tags: string[];
  last_queued_at: string;
}

/**
 * The registry of tag sets, so a claiming agent queries only the queues whose tags it has, and the
 * queue metrics know every queue, without a scan. Written outside transactions (it is an idempotent
 * upsert, before the job that needs it): a hot tag set never makes job transactions conflict.
 */
export class JobQueuesRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async record(queueKey: string, environment: string, tags: readonly string[], now: string): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { listing: LISTING_PARTITION, queue_key: queueKey },
        UpdateExpression: "SET tags = :tags, #environment = :environment, last_queued_at = :now",
        ExpressionAttributeNames: { "#environment": "environment" },
        ExpressionAttributeValues: { ":tags": [...tags].sort(), ":environment": environment, ":now": now },
      }),
    );
  }

  async list(): Promise<JobQueueRecord[]> {
    const queues: JobQueueRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const result = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: "listing = :all",
          ExpressionAttributeValues: { ":all": LISTING_PARTITION },
          ExclusiveStartKey: start,
        }),
      );
      queues.push(...((result.Items ?? []) as JobQueueRecord[]));
      start = result.LastEvaluatedKey;
    } while (start);
    return queues;
  }

  /** Removes an idle queue unless a job was queued in it since `lastQueuedAt` was read. */
  async forget(queueKey: string, lastQueuedAt: string): Promise<boolean> {
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { listing: LISTING_PARTITION, queue_key: queueKey },
          ConditionExpression: "last_queued_at = :seen",
          ExpressionAttributeValues: { ":seen": lastQueuedAt },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }
}
