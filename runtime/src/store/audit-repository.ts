import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import type { AuditDigest, AuditEvent, AuditOutcome } from "../domain/audit/audit-event";
import { decodeCursor, encodeCursor, pageFrom } from "./cursor";
import { type IndexName, keyAttributeNames } from "./schema";
import { isConditionalCheckFailed, type TransactItem } from "./transaction";

/** The chain head: the seq, hash and time of the newest event (seq 0 and the genesis hash when empty). */
export interface ChainHead {
  seq: number;
  hash: string;
  time: string | null;
  /** A writer that kept losing the race holds the next turn until then (epoch ms). */
  turn?: { writer: string; until: number };
}

/** Whose turn it is: the head moves only for the writer holding the turn, or when nobody holds it. */
const TURN_FREE = "(attribute_not_exists(turn) OR turn = :writer OR turn_until < :now)";

/** The head lives in the chain's own partition, at the seq before the first event. */
const HEAD_SEQ = 0;

/** Attributes only the store adds (partition and index keys); everything else is the event, as hashed. */
const storageAttributes = ["chain", "actor_key", "target_key", "time_seq"] as const;

export interface AuditListQuery {
  chain: string;
  /** ISO 8601, inclusive. */
  from?: string;
  to?: string;
  /** `type:id`, e.g. `user:alice`. */
  actor?: string;
  /** `type:id`, e.g. `job:job_01...`. */
  target?: string;
  action?: string;
  /** Matches actions starting with this, e.g. `job.`. */
  actionPrefix?: string;
  outcome?: AuditOutcome;
  order: "asc" | "desc";
  limit: number;
  cursor?: string;
}

/** At most this many DynamoDB pages per listing call; a sparse filter returns a cursor to go on. */
const MAX_PAGES_PER_LIST = 20;

export const actorKey = (actor: { type: string; id: string }) => `${actor.type}:${actor.id}`;
export const targetKey = (target: { type: string; id: string }) => `${target.type}:${target.id}`;
/** Index sort key: time first, seq to order events of the same millisecond. */
export const timeSeq = (time: string, seq: number) => `${time}#${String(seq).padStart(15, "0")}`;

export class AuditRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    readonly eventsTable: string,
    readonly digestsTable: string,
  ) {}

  async head(chain: string): Promise<ChainHead | undefined> {
    const result = await this.doc.send(
      new GetCommand({ TableName: this.eventsTable, Key: { chain, seq: HEAD_SEQ }, ConsistentRead: true }),
    );
    return result.Item ? headFromItem(result.Item) : undefined;
  }

  /**
   * The items that append `events` to the chain inside a transaction: each event put only where its seq
   * is free, and the head moved only from the head the events were built on. A concurrent writer that
   * got there first fails the head condition, and the whole transaction (the change too) is refused.
   */
  appendItems(
    chain: string,
    events: readonly AuditEvent[],
    expected: ChainHead,
    writer: { id: string; now: number },
  ): TransactItem[] {
    const last = events.at(-1);
    if (!last) return [];
    const puts: TransactItem[] = events.map((event) => ({
      Put: {
        TableName: this.eventsTable,
        Item: toItem(chain, event),
        ConditionExpression: "attribute_not_exists(#seq)",
        ExpressionAttributeNames: { "#seq": "seq" },
      },
    }));
    const moveHead: TransactItem = {
      Update: {
        TableName: this.eventsTable,
        Key: { chain, seq: HEAD_SEQ },
        UpdateExpression: "SET head_seq = :seq, head_hash = :hash, head_time = :time REMOVE turn, turn_until",
        ConditionExpression:
          expected.seq === 0
            ? `attribute_not_exists(head_seq) AND ${TURN_FREE}`
            : `head_seq = :expected AND head_hash = :expectedHash AND ${TURN_FREE}`,
        ExpressionAttributeValues: {
          ":seq": last.seq,
          ":hash": last.hash,
          ":time": last.time,
          ":writer": writer.id,
          ":now": writer.now,
          ...(expected.seq === 0 ? {} : { ":expected": expected.seq, ":expectedHash": expected.hash }),
        },
        // The current head comes back with a refusal, saving a read before the retry.
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      },
    };
    return [...puts, moveHead];
  }

  /**
   * Claims the next turn for a writer that keeps losing the race (decision 003): while it holds the
   * turn, every other writer's head condition fails, so its next attempt wins. Undefined when another
   * writer holds it; otherwise the head as it is now.
   */
  async takeTurn(chain: string, writer: string, now: number, holdMs: number): Promise<ChainHead | undefined> {
    try {
      const result = await this.doc.send(
        new UpdateCommand({
          TableName: this.eventsTable,
          Key: { chain, seq: HEAD_SEQ },
          UpdateExpression: "SET turn = :writer, turn_until = :until",
          ConditionExpression: `attribute_exists(head_seq) AND ${TURN_FREE}`,
          ExpressionAttributeValues: { ":writer": writer, ":now": now, ":until": now + holdMs },
          ReturnValues: "ALL_NEW",
        }),
      );
      return result.Attributes ? headFromItem(result.Attributes) : undefined;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return undefined;
      throw error;
    }
  }

  /** Gives the turn back (a writer that held it and gave up); someone else's turn is left alone. */
  async releaseTurn(chain: string, writer: string): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.eventsTable,
          Key: { chain, seq: HEAD_SEQ },
          UpdateExpression: "REMOVE turn, turn_until",
          ConditionExpression: "turn = :writer",
          ExpressionAttributeValues: { ":writer": writer },
        }),
      );
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
    }
  }

  async eventAt(chain: string, seq: number): Promise<AuditEvent | undefined> {
    if (seq < 1) return undefined;
    const result = await this.doc.send(
      new GetCommand({ TableName: this.eventsTable, Key: { chain, seq }, ConsistentRead: true }),
    );
    return result.Item ? fromItem(result.Item) : undefined;
  }

  /** Events `fromSeq..toSeq` (inclusive; `toSeq` undefined = to the end), oldest first, page by page. */
  async *events(chain: string, fromSeq: number, toSeq?: number): AsyncGenerator<AuditEvent> {
    let start: Record<string, unknown> | undefined;
    do {
      const result = await this.doc.send(
        new QueryCommand({
          TableName: this.eventsTable,
          KeyConditionExpression:
            toSeq === undefined
              ? "#chain = :chain AND #seq >= :from"
              : "#chain = :chain AND #seq BETWEEN :from AND :to",
          ExpressionAttributeNames: { "#chain": "chain", "#seq": "seq" },
          ExpressionAttributeValues: {
            ":chain": chain,
            ":from": Math.max(1, fromSeq),
            ...(toSeq === undefined ? {} : { ":to": toSeq }),
          },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of result.Items ?? []) yield fromItem(item);
      start = result.LastEvaluatedKey;
    } while (start);
  }

  /**
   * The seq of the first event at or after `time`, or of the last at or before it. Event times never go
   * backwards along the chain (the writer sees to it), so this is a binary search over seq: about 20
   * one-item reads for a million events, and no index to keep up on every write.
   */
  async seqAt(
    chain: string,
    time: string,
    direction: "first-after" | "last-before",
  ): Promise<number | undefined> {
    const last = await this.nearestEvent(chain, Number.MAX_SAFE_INTEGER, "backward");
    if (!last) return undefined;
    let low = 1;
    let high = last.seq;
    let found: number | undefined;
    while (low <= high) {
      const middle = Math.floor((low + high) / 2);
      const event = await this.nearestEvent(chain, middle, "forward");
      if (!event || event.seq > high) {
        high = middle - 1;
      } else if (direction === "first-after" ? event.time >= time : event.time <= time) {
        found = event.seq;
        if (direction === "first-after") high = middle - 1;
        else low = event.seq + 1;
      } else if (direction === "first-after") {
        low = event.seq + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  }

  /** The seq and time of the first event at or after `seq` (forward) or at or before it (backward). */
  private async nearestEvent(
    chain: string,
    seq: number,
    direction: "forward" | "backward",
  ): Promise<{ seq: number; time: string } | undefined> {
    const forward = direction === "forward";
    const result = await this.doc.send(
      new QueryCommand({
        TableName: this.eventsTable,
        KeyConditionExpression: forward
          ? "#chain = :chain AND #seq >= :seq"
          : "#chain = :chain AND #seq BETWEEN :first AND :seq",
        ExpressionAttributeNames: { "#chain": "chain", "#seq": "seq", "#time": "time" },
        ExpressionAttributeValues: {
          ":chain": chain,
          ":seq": Math.max(1, seq),
          ...(forward ? {} : { ":first": 1 }),
        },
        ProjectionExpression: "#seq, #time",
        ScanIndexForward: forward,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    const item = result.Items?.[0];
    return item ? { seq: Number(item.seq), time: String(item.time) } : undefined;
  }

  /** One page of events matching a query: by actor or target through their index, else along the chain. */
  async list(query: AuditListQuery): Promise<{ items: AuditEvent[]; nextCursor: string | null }> {
    let seqs: { from: number; to: number } | undefined;
    if (query.actor === undefined && query.target === undefined) {
      const from = query.from === undefined ? 1 : await this.seqAt(query.chain, query.from, "first-after");
      const to =
        query.to === undefined
          ? Number.MAX_SAFE_INTEGER
          : await this.seqAt(query.chain, query.to, "last-before");
      if (from === undefined || to === undefined || from > to) return { items: [], nextCursor: null };
      seqs = { from, to };
    }
    const plan = queryPlan(query, seqs);
    const items: AuditEvent[] = [];
    const partition: Record<string, string> = { chain: query.chain };
    if (plan.IndexName === "audit-by-actor") partition.actor_key = query.actor!;
    if (plan.IndexName === "audit-by-target") partition.target_key = query.target!;
    const fromClient = decodeCursor(query.cursor, { table: "audit", index: plan.IndexName, partition });
    let start: Record<string, unknown> | undefined = fromClient;
    for (let page = 0; page < MAX_PAGES_PER_LIST; page++) {
      const result = await pageFrom(page === 0 ? fromClient : undefined, () =>
        this.doc.send(
          new QueryCommand({
            ...plan,
            TableName: this.eventsTable,
            ScanIndexForward: query.order === "asc",
            Limit: Math.max(query.limit, 25),
            ExclusiveStartKey: start,
          }),
        ),
      );
      for (const item of result.Items ?? []) {
        items.push(fromItem(item));
        if (items.length === query.limit) {
          const more = item !== result.Items?.at(-1) || result.LastEvaluatedKey !== undefined;
          return { items, nextCursor: more ? encodeCursor(cursorOf(item, plan.IndexName)) : null };
        }
      }
      start = result.LastEvaluatedKey as typeof start;
      if (!start) return { items, nextCursor: null };
    }
    return { items, nextCursor: encodeCursor(start) };
  }

  /** Stores a digest; false when another writer took its digest_seq first. */
  async putDigest(chain: string, digest: AuditDigest): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.digestsTable,
          Item: { ...digest, chain },
          ConditionExpression: "attribute_not_exists(digest_seq)",
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  async latestDigest(chain: string): Promise<AuditDigest | undefined> {
    const result = await this.doc.send(
      new QueryCommand({
        TableName: this.digestsTable,
        KeyConditionExpression: "#chain = :chain",
        ExpressionAttributeNames: { "#chain": "chain" },
        ExpressionAttributeValues: { ":chain": chain },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    const item = result.Items?.[0];
    return item ? digestFromItem(item) : undefined;
  }

  async digestAt(chain: string, digestSeq: number): Promise<AuditDigest | undefined> {
    const result = await this.doc.send(
      new GetCommand({
        TableName: this.digestsTable,
        Key: { chain, digest_seq: digestSeq },
        ConsistentRead: true,
      }),
    );
    return result.Item ? digestFromItem(result.Item) : undefined;
  }

  /**
   * The first digest whose head is at or after `seq`. Digests sign heads in order, so this is a binary
   * search by digest_seq: a dozen reads for a year of hourly digests.
   */
  async firstDigestCovering(chain: string, seq: number): Promise<AuditDigest | undefined> {
    const latest = await this.latestDigest(chain);
    if (!latest || latest.head_seq < seq) return undefined;
    let low = 1;
    let high = latest.digest_seq;
    let found: AuditDigest = latest;
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      const digest = await this.digestAt(chain, middle);
      if (digest && digest.head_seq >= seq) {
        found = digest;
        high = middle;
      } else {
        low = middle + 1;
      }
    }
    if (found.digest_seq !== low) found = (await this.digestAt(chain, low)) ?? found;
    return found;
  }

  /** Digests `fromDigestSeq..toDigestSeq`, oldest first. */
  async *digests(chain: string, fromDigestSeq: number, toDigestSeq?: number): AsyncGenerator<AuditDigest> {
    let start: Record<string, unknown> | undefined;
    do {
      const result = await this.doc.send(
        new QueryCommand({
          TableName: this.digestsTable,
          KeyConditionExpression:
            toDigestSeq === undefined
              ? "#chain = :chain AND digest_seq >= :from"
              : "#chain = :chain AND digest_seq BETWEEN :from AND :to",
          ExpressionAttributeNames: { "#chain": "chain" },
          ExpressionAttributeValues: {
            ":chain": chain,
            ":from": Math.max(1, fromDigestSeq),
            ...(toDigestSeq === undefined ? {} : { ":to": toDigestSeq }),
          },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of result.Items ?? []) yield digestFromItem(item);
      start = result.LastEvaluatedKey;
    } while (start);
  }
}

export function toItem(chain: string, event: AuditEvent): Record<string, unknown> {
  return {
    ...event,
    chain,
    actor_key: actorKey(event.actor),
    target_key: targetKey(event.target),
    time_seq: timeSeq(event.time, event.seq),
  };
}

/** The event as it was hashed: the stored item without the store's own key attributes. */
export function fromItem(item: Record<string, unknown>): AuditEvent {
  const event = { ...item };
  for (const name of storageAttributes) delete event[name];
  return event as unknown as AuditEvent;
}

/** A digest's `chain` is its partition key and part of what it signs: the item is the digest. */
function digestFromItem(item: Record<string, unknown>): AuditDigest {
  return item as unknown as AuditDigest;
}

/** Reads a head item, plain or in DynamoDB's attribute-value form (cancellation reasons carry that). */
export function headFromItem(item: Record<string, unknown>): ChainHead | undefined {
  const value = (name: string): unknown => {
    const raw = item[name];
    if (raw && typeof raw === "object" && !Array.isArray(raw)) {
      const typed = raw as { S?: string; N?: string };
      return typed.N !== undefined ? Number(typed.N) : typed.S;
    }
    return raw;
  };
  const seq = value("head_seq");
  const hash = value("head_hash");
  if (typeof seq !== "number" || typeof hash !== "string") return undefined;
  const time = value("head_time");
  const turn = value("turn");
  const until = value("turn_until");
  return {
    seq,
    hash,
    time: typeof time === "string" ? time : null,
    ...(typeof turn === "string" && typeof until === "number" ? { turn: { writer: turn, until } } : {}),
  };
}

type Plan = Pick<
  QueryCommandInput,
  "KeyConditionExpression" | "FilterExpression" | "ExpressionAttributeNames" | "ExpressionAttributeValues"
> & { IndexName?: IndexName<"audit"> };

function queryPlan(query: AuditListQuery, seqs: { from: number; to: number } | undefined): Plan {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const filters: string[] = [];
  let index: IndexName<"audit"> | undefined;
  let keyCondition: string;
  if (seqs) {
    names["#chain"] = "chain";
    names["#seq"] = "seq";
    values[":chain"] = query.chain;
    values[":fromSeq"] = seqs.from;
    values[":toSeq"] = seqs.to;
    keyCondition = "#chain = :chain AND #seq BETWEEN :fromSeq AND :toSeq";
  } else {
    index = query.actor !== undefined ? "audit-by-actor" : "audit-by-target";
    names["#pk"] = query.actor !== undefined ? "actor_key" : "target_key";
    values[":pk"] = query.actor ?? query.target;
    keyCondition = "#pk = :pk";
    if (query.from !== undefined) values[":from"] = query.from;
    if (query.to !== undefined) values[":to"] = `${query.to}#~`;
    if (query.from !== undefined && query.to !== undefined)
      keyCondition += " AND time_seq BETWEEN :from AND :to";
    else if (query.from !== undefined) keyCondition += " AND time_seq >= :from";
    else if (query.to !== undefined) keyCondition += " AND time_seq <= :to";
    names["#chain"] = "chain";
    values[":chain"] = query.chain;
    filters.push("#chain = :chain");
  }
  if (query.target !== undefined && index !== "audit-by-target") {
    names["#target"] = "target_key";
    values[":target"] = query.target;
    filters.push("#target = :target");
  }
  if (query.action !== undefined) {
    names["#action"] = "action";
    values[":action"] = query.action;
    filters.push("#action = :action");
  }
  if (query.actionPrefix !== undefined) {
    names["#action"] = "action";
    values[":actionPrefix"] = query.actionPrefix;
    filters.push("begins_with(#action, :actionPrefix)");
  }
  if (query.outcome !== undefined) {
    names["#outcome"] = "outcome";
    values[":outcome"] = query.outcome;
    filters.push("#outcome = :outcome");
  }
  return {
    ...(index ? { IndexName: index } : {}),
    KeyConditionExpression: keyCondition,
    ...(filters.length > 0 ? { FilterExpression: filters.join(" AND ") } : {}),
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  };
}

/** The cursor after `item`: the table's keys, plus the index's for an index query. */
function cursorOf(
  item: Record<string, unknown>,
  index: IndexName<"audit"> | undefined,
): Record<string, unknown> {
  return Object.fromEntries(keyAttributeNames("audit", index).map((name) => [name, item[name]]));
}
