import { DeleteCommand, type DynamoDBDocumentClient, PutCommand } from "@aws-sdk/lib-dynamodb";
import { isConditionalCheckFailed } from "./transaction";

/**
 * An OAuth sign-in in progress, keyed by the SHA-256 of its `state`. It holds what the callback must check
 * (PKCE verifier, nonce, redirect URI) and the hash of a random value in the starting browser's cookie, so
 * a callback from another browser (login CSRF) is refused. Ephemeral protocol state: not audited itself;
 * the sign-in it ends in (or the failure) is.
 */
export interface OAuthFlowRecord {
  state_hash: string;
  provider: string;
  code_verifier: string;
  nonce?: string;
  redirect_uri: string;
  /** SHA-256 of the `hcp_oauth` cookie set when the flow started. */
  binding_hash: string;
  return_to: string;
  created_at: string;
  /** Epoch seconds; also the TTL attribute (DynamoDB deletes stale flows within days, so it is also checked). */
  expires_at: number;
}

export class OAuthFlowsRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async put(record: OAuthFlowRecord): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.table,
        Item: record,
        ConditionExpression: "attribute_not_exists(state_hash)",
      }),
    );
  }

  /** Removes the flow and returns it: a flow is used at most once, even by concurrent callbacks. */
  async take(stateHash: string): Promise<OAuthFlowRecord | undefined> {
    try {
      const result = await this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { state_hash: stateHash },
          ConditionExpression: "attribute_exists(state_hash)",
          ReturnValues: "ALL_OLD",
        }),
      );
      return result.Attributes as OAuthFlowRecord | undefined;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return undefined;
      throw error;
    }
  }
}
