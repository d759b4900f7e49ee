import { type DynamoDBDocumentClient, PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";

/** The right edge of the chain's Merkle tree at one size (domain/audit/merkle.ts). */
export interface StoredFrontier {
  size: number;
  nodes: { height: number; hash: string }[];
}

/**
 * Merkle frontiers, kept next to the digests (same table, partition `<chain>#merkle`, sort key = tree
 * size), and the event hashes a proof is built from. A frontier is derived data: losing one only means
 * the next digest starts from an older one.
 */
export class MerkleRepository {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly eventsTable: string,
    private readonly digestsTable: string,
  ) {}

  /** The largest stored frontier of at most `maxSize` leaves. */
  async frontierAtMost(chain: string, maxSize: number): Promise<StoredFrontier | undefined> {
    const result = await this.doc.send(
      new QueryCommand({
        TableName: this.digestsTable,
        KeyConditionExpression: "#chain = :chain AND digest_seq <= :size",
        ExpressionAttributeNames: { "#chain": "chain" },
        ExpressionAttributeValues: { ":chain": frontierPartition(chain), ":size": maxSize },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
      }),
    );
    const item = result.Items?.[0];
    return item
      ? { size: item.digest_seq as number, nodes: item.nodes as StoredFrontier["nodes"] }
      : undefined;
  }

  async putFrontier(chain: string, frontier: StoredFrontier): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.digestsTable,
        Item: { chain: frontierPartition(chain), digest_seq: frontier.size, nodes: frontier.nodes },
      }),
    );
  }

  /** The chain hashes of events `fromSeq..toSeq`, oldest first (only `seq` and `hash` are read). */
  async *eventHashes(
    chain: string,
    fromSeq: number,
    toSeq: number,
  ): AsyncGenerator<{ seq: number; hash: string }> {
    if (toSeq < fromSeq) return;
    let start: Record<string, unknown> | undefined;
    do {
      const result = await this.doc.send(
        new QueryCommand({
          TableName: this.eventsTable,
          KeyConditionExpression: "#chain = :chain AND #seq BETWEEN :from AND :to",
          ProjectionExpression: "#seq, #hash",
          ExpressionAttributeNames: { "#chain": "chain", "#seq": "seq", "#hash": "hash" },
          ExpressionAttributeValues: { ":chain": chain, ":from": Math.max(1, fromSeq), ":to": toSeq },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of result.Items ?? []) yield { seq: item.seq as number, hash: item.hash as string };
      start = result.LastEvaluatedKey;
    } while (start);
  }
}

const frontierPartition = (chain: string) => `${chain}#merkle`;
