import { DeleteCommand, type DynamoDBDocumentClient, UpdateCommand } from "@aws-sdk/lib-dynamodb";

/**
 * Fixed-window hit counters shared by every Lambda instance (an in-memory counter would be per instance).
 * One atomic `ADD` per counted request; the TTL removes old windows.
 */
export class RateLimitsRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** Counts a hit in the window and returns the window's total so far. */
  async hit(key: string, expiresAt: number, by = 1): Promise<number> {
    const result = await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { limit_key: key },
        UpdateExpression: "ADD hits :by SET expires_at = if_not_exists(expires_at, :expires)",
        ExpressionAttributeValues: { ":by": by, ":expires": expiresAt },
        ReturnValues: "UPDATED_NEW",
      }),
    );
    return Number(result.Attributes?.hits ?? 0);
  }

  async reset(key: string): Promise<void> {
    await this.doc.send(new DeleteCommand({ TableName: this.table, Key: { limit_key: key } }));
  }
}
