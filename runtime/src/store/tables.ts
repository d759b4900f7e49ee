import {
  type AttributeDefinition,
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type DynamoDBClient,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
  type TableDescription,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
} from "@aws-sdk/client-dynamodb";
import {
  type IndexDeclaration,
  type KeyAttribute,
  type TableDeclaration,
  type TableKey,
  tableKeys,
  tableName,
  tables,
} from "./schema";

/**
 * Creates the tables of `schema.ts` under one prefix: the embedded DynamoDB in local mode and every
 * integration test. On AWS the platform creates them. Safe to call on every start and from several
 * processes at once: whoever loses a race finds the table (or index, or TTL) already there.
 */
export async function ensureTables(dynamodb: DynamoDBClient, prefix: string): Promise<void> {
  await Promise.all(tableKeys.map((key) => ensureTable(dynamodb, prefix, key)));
}

/** Deletes the tables of one prefix (tests); absent tables are fine. */
export async function deleteTables(dynamodb: DynamoDBClient, prefix: string): Promise<void> {
  await Promise.all(
    tableKeys.map(async (key) => {
      const name = tableName(prefix, key);
      try {
        await dynamodb.send(new DeleteTableCommand({ TableName: name }));
      } catch (error) {
        if (isAws(error, "ResourceNotFoundException")) return;
        throw error;
      }
      await waitFor(`${name} to be deleted`, async () => (await describe(dynamodb, name)) === undefined);
    }),
  );
}

export class TableSchemaMismatchError extends Error {
  override name = "TableSchemaMismatchError";
}

async function ensureTable(dynamodb: DynamoDBClient, prefix: string, key: TableKey): Promise<void> {
  const declaration: TableDeclaration = tables[key];
  const name = tableName(prefix, key);
  if ((await describe(dynamodb, name)) === undefined) {
    try {
      await dynamodb.send(new CreateTableCommand(createTableInput(name, declaration)));
    } catch (error) {
      if (!isAws(error, "ResourceInUseException")) throw error;
    }
  }
  let table = await waitUntilActive(dynamodb, name);
  assertKeys(name, table.KeySchema, declaration);
  for (const [indexName, index] of Object.entries(declaration.indexes)) {
    if (table.GlobalSecondaryIndexes?.some((existing) => existing.IndexName === indexName)) continue;
    table = await addIndex(dynamodb, name, indexName, index);
  }
  if (declaration.ttlAttribute) await ensureTtl(dynamodb, name, declaration.ttlAttribute);
}

function createTableInput(name: string, declaration: TableDeclaration) {
  const indexes = Object.entries(declaration.indexes);
  return {
    TableName: name,
    BillingMode: "PAY_PER_REQUEST" as const,
    KeySchema: keySchema(declaration),
    AttributeDefinitions: attributeDefinitions([
      declaration.partitionKey,
      declaration.sortKey,
      ...indexes.flatMap(([, index]) => [index.partitionKey, index.sortKey]),
    ]),
    ...(indexes.length > 0
      ? {
          GlobalSecondaryIndexes: indexes.map(([indexName, index]) => globalSecondaryIndex(indexName, index)),
        }
      : {}),
  };
}

function keySchema(keys: { partitionKey: KeyAttribute; sortKey?: KeyAttribute }): KeySchemaElement[] {
  return [
    { AttributeName: keys.partitionKey.name, KeyType: "HASH" },
    ...(keys.sortKey ? [{ AttributeName: keys.sortKey.name, KeyType: "RANGE" as const }] : []),
  ];
}

function globalSecondaryIndex(indexName: string, index: IndexDeclaration): GlobalSecondaryIndex {
  return {
    IndexName: indexName,
    KeySchema: keySchema(index),
    Projection: { ProjectionType: index.projection },
  };
}

/** One definition per attribute used as a key anywhere; the same name with two types is a declaration bug. */
function attributeDefinitions(keys: readonly (KeyAttribute | undefined)[]): AttributeDefinition[] {
  const types = new Map<string, KeyAttribute["type"]>();
  for (const key of keys) {
    if (!key) continue;
    const known = types.get(key.name);
    if (known && known !== key.type) {
      throw new TableSchemaMismatchError(`attribute ${key.name} is declared both ${known} and ${key.type}`);
    }
    types.set(key.name, key.type);
  }
  return [...types].map(([AttributeName, AttributeType]) => ({ AttributeName, AttributeType }));
}

/** A key schema cannot change in place: say so plainly instead of failing later on every write. */
function assertKeys(
  name: string,
  actual: KeySchemaElement[] | undefined,
  declaration: TableDeclaration,
): void {
  const expected = keySchema(declaration);
  const same =
    actual?.length === expected.length &&
    expected.every(
      (element, i) =>
        actual[i]?.AttributeName === element.AttributeName && actual[i]?.KeyType === element.KeyType,
    );
  if (!same) {
    throw new TableSchemaMismatchError(
      `table ${name} exists with key ${JSON.stringify(actual)} but schema.ts declares ${JSON.stringify(expected)}: ` +
        "delete the table (local data dir) or migrate it",
    );
  }
}

/** An index added to schema.ts after the table was created (a local data dir kept across versions). */
async function addIndex(
  dynamodb: DynamoDBClient,
  name: string,
  indexName: string,
  index: IndexDeclaration,
): Promise<TableDescription> {
  try {
    await dynamodb.send(
      new UpdateTableCommand({
        TableName: name,
        AttributeDefinitions: attributeDefinitions([index.partitionKey, index.sortKey]),
        GlobalSecondaryIndexUpdates: [{ Create: globalSecondaryIndex(indexName, index) }],
      }),
    );
  } catch (error) {
    // Another process added it first (or is adding it: one index change at a time per table).
    if (!isAws(error, "ResourceInUseException") && !isAws(error, "ValidationException")) throw error;
    const table = await waitUntilActive(dynamodb, name);
    if (!table.GlobalSecondaryIndexes?.some((existing) => existing.IndexName === indexName)) throw error;
  }
  return waitUntilActive(dynamodb, name);
}

async function ensureTtl(dynamodb: DynamoDBClient, name: string, attribute: string): Promise<void> {
  if (await ttlIsOn(dynamodb, name, attribute)) return;
  try {
    await dynamodb.send(
      new UpdateTimeToLiveCommand({
        TableName: name,
        TimeToLiveSpecification: { AttributeName: attribute, Enabled: true },
      }),
    );
  } catch (error) {
    // "TimeToLive is already enabled": a concurrent caller won.
    if (!isAws(error, "ValidationException") || !(await ttlIsOn(dynamodb, name, attribute))) throw error;
  }
}

async function ttlIsOn(dynamodb: DynamoDBClient, name: string, attribute: string): Promise<boolean> {
  const { TimeToLiveDescription: ttl } = await dynamodb.send(
    new DescribeTimeToLiveCommand({ TableName: name }),
  );
  const on = ttl?.TimeToLiveStatus === "ENABLED" || ttl?.TimeToLiveStatus === "ENABLING";
  if (on && ttl?.AttributeName !== attribute) {
    throw new TableSchemaMismatchError(
      `table ${name} expires items by ${ttl?.AttributeName} but schema.ts declares ${attribute}`,
    );
  }
  return on;
}

async function describe(dynamodb: DynamoDBClient, name: string): Promise<TableDescription | undefined> {
  try {
    return (await dynamodb.send(new DescribeTableCommand({ TableName: name }))).Table;
  } catch (error) {
    if (isAws(error, "ResourceNotFoundException")) return undefined;
    throw error;
  }
}

/** The table and every index ACTIVE (on AWS both take seconds; DynamoDB Local is immediate). */
async function waitUntilActive(dynamodb: DynamoDBClient, name: string): Promise<TableDescription> {
  let table: TableDescription | undefined;
  await waitFor(`${name} to become ACTIVE`, async () => {
    table = await describe(dynamodb, name);
    return (
      table?.TableStatus === "ACTIVE" &&
      (table.GlobalSecondaryIndexes ?? []).every((index) => index.IndexStatus === "ACTIVE")
    );
  });
  return table!;
}

async function waitFor(what: string, done: () => Promise<boolean>, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 50; ; delay = Math.min(delay * 2, 2_000)) {
    if (await done()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((wait) => setTimeout(wait, delay));
  }
}

function isAws(error: unknown, name: string): boolean {
  return error instanceof Error && error.name === name;
}
