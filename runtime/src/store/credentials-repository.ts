import { type DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { Role } from "../identity/permissions";
import { decodeCursor, encodeCursor, pageFrom } from "./cursor";
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
  last_used_ip?: string;
  revoked_at?: string;
  revoked_by?: string;
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

  /** Revokes a credential of `kind` that is not revoked yet. */
  revoke(
    tx: WriteTransaction,
    tokenHash: string,
    kind: CredentialKind,
    now: Date,
    by: string,
    onRefused: () => Error,
  ): void {
    tx.add(
      {
        Update: {
          TableName: this.table,
          Key: { token_hash: tokenHash },
          UpdateExpression: "SET revoked_at = :now, revoked_by = :by",
          ConditionExpression:
            "attribute_exists(token_hash) AND kind = :kind AND attribute_not_exists(revoked_at)",
          ExpressionAttributeValues: { ":now": now.toISOString(), ":by": by, ":kind": kind },
        },
      },
      onRefused,
    );
  }

  /** Records when (and from where) an API token was last used; not part of any transaction. */
  async touch(tokenHash: string, now: Date, ip?: string): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { token_hash: tokenHash },
        UpdateExpression:
          ip === undefined ? "SET last_used_at = :now" : "SET last_used_at = :now, last_used_ip = :ip",
        ConditionExpression: "attribute_exists(token_hash)",
        ExpressionAttributeValues: { ":now": now.toISOString(), ...(ip === undefined ? {} : { ":ip": ip }) },
      }),
    );
  }

  /** The token hash behind a short credential id (the id listings and audit events show). */
  async findHashById(credentialId: string): Promise<string | undefined> {
    const result = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: "credentials-by-id",
        KeyConditionExpression: "credential_id = :id",
        ExpressionAttributeValues: { ":id": credentialId },
        Limit: 2,
      }),
    );
    return (result.Items?.[0] as { token_hash?: string } | undefined)?.token_hash;
  }

  async list(
    kind: CredentialKind,
    limit: number,
    cursor?: string,
  ): Promise<{ items: CredentialRecord[]; nextCursor: string | null }> {
    const index = "credentials-by-kind";
    const start = decodeCursor(cursor, { table: "credentials", index, partition: { kind } });
    const result = await pageFrom(start, () =>
      this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: index,
          KeyConditionExpression: "kind = :kind",
          ExpressionAttributeValues: { ":kind": kind },
          ScanIndexForward: false,
          Limit: limit,
          ExclusiveStartKey: start,
        }),
      ),
    );
    return {
      items: (result.Items ?? []) as CredentialRecord[],
      nextCursor: encodeCursor(result.LastEvaluatedKey),
    };
  }
}
