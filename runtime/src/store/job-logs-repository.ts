import { type DynamoDBDocumentClient, GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import type { WriteTransaction } from "./transaction";

/** One uploaded piece of a job's log: bytes [offset, offset + length) of the job's log. */
export interface JobLogChunk {
  job_id: string;
  offset: number;
  /** Byte length of `data` as UTF-8. */
  length: number;
  data: string;
  /** SHA-256 of `data` (hex), to recognise a repeated upload. */
  sha256: string;
  attempt: number;
  agent_id: string;
  written_at: string;
  /** Epoch seconds; TTL attribute. */
  expires_at: number;
}

export class JobLogsRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** A chunk at a new offset; a chunk already stored there is never overwritten. */
  put(tx: WriteTransaction, chunk: JobLogChunk, onExists: () => Error): void {
    tx.add(
      {
        Put: {
          TableName: this.table,
          Item: chunk,
          ConditionExpression: "attribute_not_exists(#offset)",
          ExpressionAttributeNames: { "#offset": "offset" },
        },
      },
      onExists,
    );
  }

  async get(jobId: string, offset: number): Promise<JobLogChunk | undefined> {
    const result = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { job_id: jobId, offset }, ConsistentRead: true }),
    );
    return result.Item as JobLogChunk | undefined;
  }

  /**
   * The chunks that hold bytes from `from` on, in order, until about `maxBytes` are collected: the
   * chunk that contains `from` (it may start before it), then the ones after.
   */
  async read(jobId: string, from: number, maxBytes: number): Promise<JobLogChunk[]> {
    const containing = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: "job_id = :job AND #offset <= :from",
        ExpressionAttributeNames: { "#offset": "offset" },
        ExpressionAttributeValues: { ":job": jobId, ":from": from },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    const first = containing.Items?.[0] as JobLogChunk | undefined;
    const start = first && first.offset + first.length > from ? first.offset : from;
    const chunks: JobLogChunk[] = [];
    let bytes = 0;
    let cursor: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: "job_id = :job AND #offset >= :start",
          ExpressionAttributeNames: { "#offset": "offset" },
          ExpressionAttributeValues: { ":job": jobId, ":start": start },
          ConsistentRead: true,
          Limit: 64,
          ExclusiveStartKey: cursor,
        }),
      );
      for (const chunk of (page.Items ?? []) as JobLogChunk[]) {
        if (bytes > 0 && bytes + chunk.length > maxBytes) return chunks;
        chunks.push(chunk);
        bytes += chunk.length;
      }
      cursor = page.LastEvaluatedKey;
    } while (cursor && bytes < maxBytes);
    return chunks;
  }
}
