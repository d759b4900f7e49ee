import { type DynamoDBDocumentClient, GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import type { WriteTransaction } from "./transaction";
import { updateParts } from "./update-expression";

export type RotationStatus = "in_progress" | "finished" | "aborted";
export type RotationTrigger = "api" | "schedule" | "secrets-manager" | "cli";

export interface RotationStepEntry {
  step: string;
  at: string;
  outcome: string;
  details?: Record<string, unknown>;
}

/** One rotation of one secret: who started it, where it is, every step taken. */
export interface RotationRecord {
  secret: string;
  /** `rotation#<started_at>#<rotation_id>`: history in start order. */
  record: string;
  rotation_id: string;
  version_id: string;
  status: RotationStatus;
  /** The last step done (`started` before createSecret). */
  step: string;
  trigger: RotationTrigger;
  started_at: string;
  started_by: string;
  /** When agents started receiving the pending key (setSecret). */
  set_at?: string;
  finished_at?: string;
  steps: RotationStepEntry[];
}

/**
 * Per secret: the lock naming the rotation under way (`active_rotation`, written only on the condition
 * that no other holds it) and what the last finished rotation left behind.
 */
export interface SecretRotationState {
  secret: string;
  record: "state";
  active_rotation?: string;
  active_record?: string;
  active_version?: string;
  active_step?: string;
  active_set_at?: string;
  last_rotated_at?: string;
  current_version_id?: string;
  previous_version_id?: string;
  /** Until then (ISO time) signatures from AWSPREVIOUS-derived keys are accepted. */
  previous_accepted_until?: string;
}

export interface RotationAck {
  secret: string;
  record: string;
  agent_id: string;
  rotation_id: string;
  acknowledged_at: string;
}

const STATE = "state";

export const rotationRecordKey = (startedAt: string, rotationId: string) =>
  `rotation#${startedAt}#${rotationId}`;
const ackKey = (rotationId: string, agentId: string) => `ack#${rotationId}#${agentId}`;

export class SecretRotationsRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async state(secret: string): Promise<SecretRotationState | undefined> {
    const result = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { secret, record: STATE }, ConsistentRead: true }),
    );
    return result.Item as SecretRotationState | undefined;
  }

  async rotation(secret: string, record: string): Promise<RotationRecord | undefined> {
    const result = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { secret, record }, ConsistentRead: true }),
    );
    return result.Item as RotationRecord | undefined;
  }

  /** Newest first. */
  async history(secret: string, limit: number): Promise<RotationRecord[]> {
    const result = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: "#secret = :secret AND begins_with(#record, :prefix)",
        ExpressionAttributeNames: { "#secret": "secret", "#record": "record" },
        ExpressionAttributeValues: { ":secret": secret, ":prefix": "rotation#" },
        ScanIndexForward: false,
        Limit: limit,
      }),
    );
    return (result.Items ?? []) as RotationRecord[];
  }

  async acknowledgements(secret: string, rotationId: string): Promise<RotationAck[]> {
    const acks: RotationAck[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: "#secret = :secret AND begins_with(#record, :prefix)",
          ExpressionAttributeNames: { "#secret": "secret", "#record": "record" },
          ExpressionAttributeValues: { ":secret": secret, ":prefix": `ack#${rotationId}#` },
          ExclusiveStartKey: start,
        }),
      );
      acks.push(...((page.Items ?? []) as RotationAck[]));
      start = page.LastEvaluatedKey;
    } while (start);
    return acks;
  }

  /** Takes the lock for `rotation` and writes its history record; fails if another rotation holds it. */
  begin(tx: WriteTransaction, rotation: RotationRecord, onHeld: () => Error): void {
    tx.add(
      {
        Update: {
          TableName: this.table,
          Key: { secret: rotation.secret, record: STATE },
          ...updateParts({
            set: {
              active_rotation: rotation.rotation_id,
              active_record: rotation.record,
              active_version: rotation.version_id,
              active_step: rotation.step,
            },
            remove: ["active_set_at"],
            condition: "attribute_not_exists(#active_rotation)",
          }),
        },
      },
      onHeld,
    );
    tx.add(
      {
        Put: {
          TableName: this.table,
          Item: rotation,
          ConditionExpression: "attribute_not_exists(#record)",
          ExpressionAttributeNames: { "#record": "record" },
        },
      },
      onHeld,
    );
  }

  /** Records a step of the rotation holding the lock (and, for setSecret, when delivery began). */
  recordStep(
    tx: WriteTransaction,
    lock: { secret: string; record: string; rotationId: string },
    entry: RotationStepEntry,
    onLost: () => Error,
    setAt?: string,
  ): void {
    tx.add(
      {
        Update: {
          TableName: this.table,
          Key: { secret: lock.secret, record: STATE },
          ...updateParts({
            set: { active_step: entry.step, active_set_at: setAt },
            condition: "#active_rotation = :rotation",
            values: { ":rotation": lock.rotationId },
          }),
        },
      },
      onLost,
    );
    tx.add(
      {
        Update: {
          TableName: this.table,
          Key: { secret: lock.secret, record: lock.record },
          ...updateParts({
            set: { step: entry.step, set_at: setAt },
            setRaw: ["#steps = list_append(#steps, :entry)"],
            condition: "#status = :in_progress",
            values: { ":entry": [entry], ":in_progress": "in_progress" },
          }),
        },
      },
      onLost,
    );
  }

  /** Ends the rotation holding the lock: releases it and closes its history record. */
  end(
    tx: WriteTransaction,
    lock: { secret: string; record: string; rotationId: string },
    outcome: {
      status: "finished" | "aborted";
      entry: RotationStepEntry;
      state?: Partial<SecretRotationState>;
    },
    onLost: () => Error,
  ): void {
    tx.add(
      {
        Update: {
          TableName: this.table,
          Key: { secret: lock.secret, record: STATE },
          ...updateParts({
            set: { ...outcome.state },
            remove: ["active_rotation", "active_record", "active_version", "active_step", "active_set_at"],
            condition: "#active_rotation = :rotation",
            values: { ":rotation": lock.rotationId },
          }),
        },
      },
      onLost,
    );
    tx.add(
      {
        Update: {
          TableName: this.table,
          Key: { secret: lock.secret, record: lock.record },
          ...updateParts({
            set: { status: outcome.status, step: outcome.entry.step, finished_at: outcome.entry.at },
            setRaw: ["#steps = list_append(#steps, :entry)"],
            condition: "#status = :in_progress",
            values: { ":entry": [outcome.entry], ":in_progress": "in_progress" },
          }),
        },
      },
      onLost,
    );
  }

  /** An agent signed with the pending key of `rotationId` (once per agent and rotation). */
  acknowledge(tx: WriteTransaction, ack: Omit<RotationAck, "record">, onAlready: () => Error): void {
    tx.add(
      {
        Put: {
          TableName: this.table,
          Item: { ...ack, record: ackKey(ack.rotation_id, ack.agent_id) },
          ConditionExpression: "attribute_not_exists(#record)",
          ExpressionAttributeNames: { "#record": "record" },
        },
      },
      onAlready,
    );
  }
}
