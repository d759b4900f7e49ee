import { type DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { Role } from "../identity/permissions";
import { isConditionalCheckFailed, type WriteTransaction } from "./transaction";

/** A session as stored: keyed by the SHA-256 of its id; the id itself is never stored. */
export interface SessionRecord {
  session_hash: string;
  /** `<provider>:<subject>` (e.g. `github-id:583231`), or the name a sign-in link was issued for. */
  user_id: string;
  provider: string;
  /** Absent: signed in, but no role binding matches (403 everywhere except sign-out). */
  role?: Role;
  /**
   * The binding subjects this identity matches (`google:1234`, `email:alice@example.com`,
   * `domain:example.com`), most specific first. The role is re-resolved from them on every request, and
   * the session id rotates when it changes. Absent for sign-in-link sessions: their role is fixed.
   */
  subjects?: string[];
  email?: string;
  name?: string;
  created_at: string;
  last_seen_at: string;
  /** Absolute expiry, epoch seconds; also the TTL attribute. */
  expires_at: number;
  /** Idle expiry, epoch seconds; pushed forward as the session is used. */
  idle_expires_at: number;
  user_agent?: string;
  ip?: string;
}

export class SessionsRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  put(tx: WriteTransaction, record: SessionRecord, onExists: () => Error): void {
    tx.add(
      {
        Put: {
          TableName: this.table,
          Item: record,
          ConditionExpression: "attribute_not_exists(session_hash)",
        },
      },
      onExists,
    );
  }

  async get(sessionHash: string): Promise<SessionRecord | undefined> {
    const result = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { session_hash: sessionHash }, ConsistentRead: true }),
    );
    return result.Item as SessionRecord | undefined;
  }

  delete(tx: WriteTransaction, sessionHash: string): void {
    tx.add({ Delete: { TableName: this.table, Key: { session_hash: sessionHash } } });
  }

  /** Deletes a session that must still exist (rotation: a concurrent rotation or sign-out wins). */
  deleteExisting(tx: WriteTransaction, sessionHash: string, onGone: () => Error): void {
    tx.add(
      {
        Delete: {
          TableName: this.table,
          Key: { session_hash: sessionHash },
          ConditionExpression: "attribute_exists(session_hash)",
        },
      },
      onGone,
    );
  }

  /** Slides the idle expiry; a session deleted meanwhile stays deleted. */
  async touch(sessionHash: string, now: Date, idleExpiresAt: number): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { session_hash: sessionHash },
          UpdateExpression: "SET last_seen_at = :now, idle_expires_at = :idle",
          ConditionExpression: "attribute_exists(session_hash)",
          ExpressionAttributeValues: { ":now": now.toISOString(), ":idle": idleExpiresAt },
        }),
      );
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
  }

  async listByUser(userId: string): Promise<SessionRecord[]> {
    const items: SessionRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const result = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: "sessions-by-user",
          KeyConditionExpression: "user_id = :user",
          ExpressionAttributeValues: { ":user": userId },
          ScanIndexForward: false,
          ExclusiveStartKey: start,
        }),
      );
      items.push(...((result.Items ?? []) as SessionRecord[]));
      start = result.LastEvaluatedKey;
    } while (start);
    return items;
  }
}
