import { type DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { Role } from "../identity/permissions";
import { decodeCursor, encodeCursor } from "./cursor";
import { keyAttributeNames } from "./schema";
import type { WriteTransaction } from "./transaction";

export type CredentialKind = "api" | "registration" | "signin";

/** A bearer credential as stored: only its hash, never the token. */
export interface CredentialRecord {
  token_hash: string;
  kind: CredentialKind;
  /** Short, non-secret id shown in listings and audit events (first 12 hex chars of the hash). */
  credential_id: string;
  name: string;
  role?: Role;
  created_at: string;
  created_by: string;
  /** Epoch seconds; also the TTL attribute. */
  expires_at: number;
  used_at?: string;
  used_by?: string;
  last_used_at?: string;
  revoked_at?: string;
}

export class CredentialsRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  put(tx: WriteTransaction, record: CredentialRecord, onExists: () => Error): void {
    tx.add(
      {
        Put: { TableName: this.table, Item: record, ConditionExpression: "attribute_not_exists(token_hash)" },
      },
      onExists,
    );
  }

  async get(tokenHash: string): Promise<CredentialRecord | undefined> {
    const result = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { token_hash: tokenHash }, ConsistentRead: true }),
    );
    return result.Item as CredentialRecord | undefined;
  }

  /** Marks a one-time credential used; the condition makes a second use (or an expired one) fail. */
  consume(
    tx: WriteTransaction,
    tokenHash: string,
    kind: CredentialKind,
    now: Date,
    usedBy: string,
    onRefused: () => Error,
  ): void {
    tx.add(
      {
        Update: {
          TableName: this.table,
          Key: { token_hash: tokenHash },
          UpdateExpression: "SET used_at = :now, used_by = :by",
          ConditionExpression:
            "attribute_exists(token_hash) AND kind = :kind AND attribute_not_exists(used_at) AND attribute_not_exists(revoked_at) AND expires_at > :epoch",
          ExpressionAttributeValues: {
            ":now": now.toISOString(),
            ":by": usedBy,
            ":kind": kind,
            ":epoch": Math.floor(now.getTime() / 1000),
          },
        },
      },
      onRefused,
    );
  }

  revoke(tx: WriteTransaction, tokenHash: string, now: Date, onRefused: () => Error): void {
    tx.add(
      {
        Update: {
          TableName: this.table,
          Key: { token_hash: tokenHash },
          UpdateExpression: "SET revoked_at = :now",
          ConditionExpression: "attribute_exists(token_hash) AND attribute_not_exists(revoked_at)",
          ExpressionAttributeValues: { ":now": now.toISOString() },
        },
      },
      onRefused,
    );
  }

  /** Records when an API token was last used (telemetry; not part of any transaction). */
  async touch(tokenHash: string, now: Date): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { token_hash: tokenHash },
        UpdateExpression: "SET last_used_at = :now",
        ConditionExpression: "attribute_exists(token_hash)",
        ExpressionAttributeValues: { ":now": now.toISOString() },
      }),
    );
  }

  async list(
    kind: CredentialKind,
    limit: number,
    cursor?: string,
  ): Promise<{ items: CredentialRecord[]; nextCursor: string | null }> {
    const index = "credentials-by-kind";
    const result = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: index,
        KeyConditionExpression: "kind = :kind",
        ExpressionAttributeValues: { ":kind": kind },
        ScanIndexForward: false,
        Limit: limit,
        ExclusiveStartKey: decodeCursor(cursor, keyAttributeNames("credentials", index)),
      }),
    );
    return {
      items: (result.Items ?? []) as CredentialRecord[],
      nextCursor: encodeCursor(result.LastEvaluatedKey),
    };
  }
}
