import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
} from "@aws-sdk/lib-dynamodb";
import type { JobStatus } from "./jobs-repository";
import type { WriteTransaction } from "./transaction";

/** The partition of the job_queues table that holds the counters (the queues live under `all`). */
const COUNTS_PARTITION = "counts";
/**
 * Counters are split over a few items, one picked at random per write: concurrent job transactions
 * rarely touch the same item, and a read is one BatchGet of every shard — the same cost at ten jobs or
 * ten million.
 */
export const COUNT_SHARDS = 8;

export type JobCounts = Record<JobStatus, number>;

/**
 * Jobs by status, maintained in the same transaction as every status change (decision 012), so
 * `GET /jobs` totals and the queue metrics never read the jobs themselves.
 */
export class JobCountsRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** One job moves from `from` (undefined: a new job) to `to`, in the transaction that moves it. */
  move(tx: WriteTransaction, from: JobStatus | undefined, to: JobStatus): void {
    if (from === to) return;
    const shard = Math.floor(Math.random() * COUNT_SHARDS);
    const names: Record<string, string> = { "#to": to };
    const values: Record<string, number> = { ":plus": 1 };
    let expression = "ADD #to :plus";
    if (from !== undefined) {
      names["#from"] = from;
      values[":minus"] = -1;
      expression += ", #from :minus";
    }
    tx.add({
      Update: {
        TableName: this.table,
        Key: { listing: COUNTS_PARTITION, queue_key: `shard#${shard}` },
        UpdateExpression: expression,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
    });
  }

  /** The sum of every shard: one BatchGet, whatever the number of jobs. */
  async read(): Promise<JobCounts> {
    const counts = {
      awaiting_approval: 0,
      queued: 0,
      running: 0,
      cancelling: 0,
      completed: 0,
      failed: 0,
      cancelled: 0,
    } satisfies JobCounts;
    let keys: Record<string, unknown>[] | undefined = Array.from({ length: COUNT_SHARDS }, (_, shard) => ({
      listing: COUNTS_PARTITION,
      queue_key: `shard#${shard}`,
    }));
    for (let round = 0; keys && keys.length > 0 && round < 5; round++) {
      const result: BatchGetCommandOutput = await this.doc.send(
        new BatchGetCommand({ RequestItems: { [this.table]: { Keys: keys, ConsistentRead: true } } }),
      );
      for (const item of result.Responses?.[this.table] ?? []) {
        for (const status of Object.keys(counts) as JobStatus[]) {
          const value = item[status];
          if (typeof value === "number") counts[status] += value;
        }
      }
      keys = result.UnprocessedKeys?.[this.table]?.Keys;
    }
    return counts;
  }
}
