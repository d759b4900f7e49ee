import { type DynamoDBDocumentClient, GetCommand } from "@aws-sdk/lib-dynamodb";
import type { WriteTransaction } from "./transaction";

/** The first request made with an Idempotency-Key, and what it produced. */
export interface IdempotencyRecord {
  /** `${principal}#${operation}#${key}`: keys are scoped to who sent them. */
  idempotency_key: string;
  request_fingerprint: string;
  resource_id: string;
  /** Claims: the attempt the first request won, and where its log continued. */
  attempt?: number;
  log_offset?: number;
  lease_expires_at?: string;
  created_at: string;
  /** Epoch seconds; TTL attribute. */
  expires_at: number;
}

export class IdempotencyRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  claim(tx: WriteTransaction, record: IdempotencyRecord, onTaken: () => Error): void {
    tx.add(
      {
        Put: {
          TableName: this.table,
          Item: record,
          ConditionExpression: "attribute_not_exists(idempotency_key)",
        },
      },
      onTaken,
    );
  }

  async get(key: string): Promise<IdempotencyRecord | undefined> {
    const result = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { idempotency_key: key }, ConsistentRead: true }),
    );
    return result.Item as IdempotencyRecord | undefined;
  }
}
