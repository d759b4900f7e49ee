import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";

export interface DynamoClientOptions {
  /** Another DynamoDB API (DynamoDB Local); unset = the region's AWS endpoint with the default credentials. */
  endpoint?: string;
  region: string;
  /** Attempts per call, the first one included. @default 3 */
  maxAttempts?: number;
}

export interface DynamoClients {
  readonly dynamodb: DynamoDBClient;
  readonly doc: DynamoDBDocumentClient;
}

/** DynamoDB Local accepts any key pair; fixed ones keep the SDK from searching for real credentials. */
const localCredentials = { accessKeyId: "local", secretAccessKey: "local" };

export function createDynamoClients(options: DynamoClientOptions): DynamoClients {
  const dynamodb = new DynamoDBClient({
    region: options.region,
    maxAttempts: options.maxAttempts ?? 3,
    // A stalled socket must fail (and be retried) well before a Lambda invocation times out.
    requestHandler: { connectionTimeout: 3_000, requestTimeout: 10_000 },
    ...(options.endpoint ? { endpoint: options.endpoint, credentials: localCredentials } : {}),
  });
  const doc = DynamoDBDocumentClient.from(dynamodb, {
    marshallOptions: { removeUndefinedValues: true },
  });
  return { dynamodb, doc };
}
