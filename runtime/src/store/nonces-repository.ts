import { type DynamoDBDocumentClient, PutCommand } from "@aws-sdk/lib-dynamodb";
import { isConditionalCheckFailed } from "./transaction";

/** Signature nonces seen within the replay window. */
export class NoncesRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** Remembers a nonce; false when it was already seen (a replay). */
  async remember(agentId: string, nonce: string, expiresAt: number): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { nonce_key: `${agentId}#${nonce}`, expires_at: expiresAt },
          ConditionExpression: "attribute_not_exists(nonce_key)",
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }
}
