import { BatchGetCommand, type DynamoDBDocumentClient, QueryCommand } from "@aws-sdk/lib-dynamodb";
import type { Role } from "../identity/permissions";
import { LISTING_PARTITION } from "./schema";
import type { WriteTransaction } from "./transaction";

/** A role binding managed through the API (bindings from configuration are never stored). */
export interface RoleBindingRecord {
  /** `email:alice@example.com`, `domain:example.com`, or a user id such as `github-id:583231`. */
  subject: string;
  role: Role;
  listing: typeof LISTING_PARTITION;
  created_at: string;
  created_by: string;
  updated_at: string;
  updated_by: string;
}

/**
 * The item counting stored admin bindings. "Keep at least one admin" is a condition on this counter in
 * the same transaction as the binding change, so two admins demoting each other at once cannot both win.
 */
const ADMIN_COUNTER = "#admin-count";

export class RoleBindingsRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** The stored bindings of these subjects (one round trip). */
  async getMany(subjects: readonly string[]): Promise<RoleBindingRecord[]> {
    if (subjects.length === 0) return [];
    const result = await this.doc.send(
      new BatchGetCommand({
        RequestItems: {
          [this.table]: {
            Keys: [...new Set(subjects)].map((subject) => ({ subject })),
            ConsistentRead: true,
          },
        },
      }),
    );
    return (result.Responses?.[this.table] ?? []) as RoleBindingRecord[];
  }

  async list(): Promise<RoleBindingRecord[]> {
    const items: RoleBindingRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const result = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: "bindings-by-listing",
          KeyConditionExpression: "listing = :listing",
          ExpressionAttributeValues: { ":listing": LISTING_PARTITION },
          ExclusiveStartKey: start,
        }),
      );
      items.push(...((result.Items ?? []) as RoleBindingRecord[]));
      start = result.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** Creates or changes a binding, on condition that it is still what the caller read (`previous`). */
  put(
    tx: WriteTransaction,
    record: RoleBindingRecord,
    previous: Role | undefined,
    onChanged: () => Error,
  ): void {
    tx.add(
      {
        Put: {
          TableName: this.table,
          Item: record,
          ...(previous === undefined
            ? { ConditionExpression: "attribute_not_exists(subject)" }
            : {
                ConditionExpression: "#role = :previous",
                ExpressionAttributeNames: { "#role": "role" },
                ExpressionAttributeValues: { ":previous": previous },
              }),
        },
      },
      onChanged,
    );
  }

  delete(tx: WriteTransaction, subject: string, previous: Role, onChanged: () => Error): void {
    tx.add(
      {
        Delete: {
          TableName: this.table,
          Key: { subject },
          ConditionExpression: "#role = :previous",
          ExpressionAttributeNames: { "#role": "role" },
          ExpressionAttributeValues: { ":previous": previous },
        },
      },
      onChanged,
    );
  }

  /**
   * Moves the stored-admin count by `delta`. With `keepOne`, a decrement must leave at least one stored
   * admin, or `onLastAdmin` is raised and the whole transaction is refused.
   */
  countAdmins(tx: WriteTransaction, delta: 1 | -1, keepOne: boolean, onLastAdmin: () => Error): void {
    const guarded = delta < 0 && keepOne;
    tx.add(
      {
        Update: {
          TableName: this.table,
          Key: { subject: ADMIN_COUNTER },
          UpdateExpression: "ADD admins :delta",
          ...(guarded
            ? {
                ConditionExpression: "admins > :one",
                ExpressionAttributeValues: { ":delta": delta, ":one": 1 },
              }
            : { ExpressionAttributeValues: { ":delta": delta } }),
        },
      },
      guarded ? onLastAdmin : undefined,
    );
  }
}
