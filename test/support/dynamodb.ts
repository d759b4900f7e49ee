import { randomBytes } from "node:crypto";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { inject } from "vitest";
import { createDynamoClients } from "../../runtime/src/store/client";
import { deleteTables, ensureTables } from "../../runtime/src/store/tables";
import { assertLoopback } from "./dynamodb-global-setup";

export interface FreshTables {
  /** The run's loopback DynamoDB endpoint. */
  endpoint: string;
  /** Unique to this call, e.g. `t-jobs-1a2b3c4d-`. */
  prefix: string;
  dynamodb: DynamoDBClient;
  doc: DynamoDBDocumentClient;
  /** Deletes the tables and closes the clients. */
  cleanup(): Promise<void>;
}

/** Every table of schema.ts under a prefix of its own, on the run's DynamoDB Local. */
export async function freshTables(label: string): Promise<FreshTables> {
  const endpoint = inject("dynamodbEndpoint");
  assertLoopback(endpoint);
  const prefix = `t-${label.replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 40)}-${randomBytes(4).toString("hex")}-`;
  const { dynamodb, doc } = createDynamoClients({ endpoint, region: "us-east-1" });
  await ensureTables(dynamodb, prefix);
  return {
    endpoint,
    prefix,
    dynamodb,
    doc,
    cleanup: async () => {
      try {
        await deleteTables(dynamodb, prefix);
      } finally {
        dynamodb.destroy();
      }
    },
  };
}
