import { spawn } from "node:child_process";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type DynamoDBClient,
  ListTablesCommand,
  TransactionCanceledException,
} from "@aws-sdk/client-dynamodb";
import { GetCommand, PutCommand, QueryCommand, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import {
  DynamoDbLocalStartError,
  JavaMissingError,
  startDynamoDbLocal,
} from "../../runtime/src/local/dynamodb-local";
import { createDynamoClients } from "../../runtime/src/store/client";
import {
  type KeyAttribute,
  type TableDeclaration,
  tableKeys,
  tableName,
  tables,
} from "../../runtime/src/store/schema";
import { deleteTables, ensureTables, TableSchemaMismatchError } from "../../runtime/src/store/tables";
import { type FreshTables, freshTables } from "../support/dynamodb";

const repositoryRoot = join(import.meta.dirname, "../..");
const dynamodbLocalModule = join(repositoryRoot, "runtime/src/local/dynamodb-local.ts");

const temporaryDirs: string[] = [];
async function temporaryDir(label: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `ddb-test-${label}-`));
  temporaryDirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(temporaryDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((wait) => setTimeout(wait, 50));
  }
  return condition();
}

function keySchema(keys: { partitionKey: KeyAttribute; sortKey?: KeyAttribute }) {
  return [
    { AttributeName: keys.partitionKey.name, KeyType: "HASH" },
    ...(keys.sortKey ? [{ AttributeName: keys.sortKey.name, KeyType: "RANGE" }] : []),
  ];
}

function byName(a: { name?: string }, b: { name?: string }): number {
  return String(a.name).localeCompare(String(b.name));
}

async function tablesWithPrefix(dynamodb: DynamoDBClient, prefix: string): Promise<string[]> {
  const { TableNames = [] } = await dynamodb.send(new ListTablesCommand({ ExclusiveStartTableName: prefix }));
  return TableNames.filter((name) => name.startsWith(prefix));
}

describe("ensureTables", () => {
  let fresh: FreshTables;
  beforeAll(async () => {
    fresh = await freshTables("ensure");
  });
  afterAll(async () => {
    await fresh.cleanup();
  });

  it("creates every table with the keys, indexes, billing mode and TTL that schema.ts declares", async () => {
    for (const key of tableKeys) {
      const declaration: TableDeclaration = tables[key];
      const name = tableName(fresh.prefix, key);
      const indexes = Object.entries(declaration.indexes);
      const keyAttributes = [declaration, ...indexes.map(([, index]) => index)].flatMap((keys) =>
        keys.sortKey ? [keys.partitionKey, keys.sortKey] : [keys.partitionKey],
      );

      const { Table: table } = await fresh.dynamodb.send(new DescribeTableCommand({ TableName: name }));
      const { TimeToLiveDescription: ttl } = await fresh.dynamodb.send(
        new DescribeTimeToLiveCommand({ TableName: name }),
      );

      expect(table?.TableStatus).toBe("ACTIVE");
      expect(table?.BillingModeSummary?.BillingMode).toBe("PAY_PER_REQUEST");
      expect(table?.KeySchema).toEqual(keySchema(declaration));
      expect(
        (table?.GlobalSecondaryIndexes ?? [])
          .map((index) => ({
            name: index.IndexName,
            keys: index.KeySchema,
            projection: index.Projection?.ProjectionType,
          }))
          .sort(byName),
      ).toEqual(
        indexes
          .map(([indexName, index]) => ({
            name: indexName,
            keys: keySchema(index),
            projection: index.projection,
          }))
          .sort(byName),
      );
      for (const attribute of keyAttributes) {
        expect(table?.AttributeDefinitions).toContainEqual({
          AttributeName: attribute.name,
          AttributeType: attribute.type,
        });
      }
      expect(ttl).toEqual(
        declaration.ttlAttribute
          ? { TimeToLiveStatus: "ENABLED", AttributeName: declaration.ttlAttribute }
          : { TimeToLiveStatus: "DISABLED" },
      );
    }
  });

  it("is idempotent, also when two callers race on a new prefix", async () => {
    const prefix = `t-race-${Date.now()}-`;
    try {
      await Promise.all([ensureTables(fresh.dynamodb, prefix), ensureTables(fresh.dynamodb, prefix)]);
      await ensureTables(fresh.dynamodb, prefix);

      expect((await tablesWithPrefix(fresh.dynamodb, prefix)).sort()).toEqual(
        tableKeys.map((key) => tableName(prefix, key)).sort(),
      );
    } finally {
      await deleteTables(fresh.dynamodb, prefix);
    }
  });

  it("refuses a table whose key differs from schema.ts", async () => {
    const prefix = `t-wrong-key-${Date.now()}-`;
    const key = tableKeys[0]!;
    await fresh.dynamodb.send(
      new CreateTableCommand({
        TableName: tableName(prefix, key),
        BillingMode: "PAY_PER_REQUEST",
        KeySchema: [{ AttributeName: "not_the_declared_key", KeyType: "HASH" }],
        AttributeDefinitions: [{ AttributeName: "not_the_declared_key", AttributeType: "S" }],
      }),
    );
    try {
      await expect(ensureTables(fresh.dynamodb, prefix)).rejects.toThrow(TableSchemaMismatchError);
    } finally {
      await deleteTables(fresh.dynamodb, prefix);
    }
  });
});

describe("the run's DynamoDB Local", () => {
  let fresh: FreshTables;
  beforeAll(async () => {
    fresh = await freshTables("transactions");
  });
  afterAll(async () => {
    await fresh.cleanup();
  });

  it("cancels a transaction whose condition fails and gives a reason per item", async () => {
    const key = tableKeys[0]!;
    const table = tableName(fresh.prefix, key);
    const partitionKey = tables[key].partitionKey.name;
    await fresh.doc.send(new PutCommand({ TableName: table, Item: { [partitionKey]: "existing" } }));

    const transaction = fresh.doc.send(
      new TransactWriteCommand({
        TransactItems: [
          { Put: { TableName: table, Item: { [partitionKey]: "new" } } },
          {
            Put: {
              TableName: table,
              Item: { [partitionKey]: "existing" },
              ConditionExpression: "attribute_not_exists(#key)",
              ExpressionAttributeNames: { "#key": partitionKey },
            },
          },
        ],
      }),
    );

    const error = await transaction.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TransactionCanceledException);
    expect((error as TransactionCanceledException).CancellationReasons?.map((reason) => reason.Code)).toEqual(
      ["None", "ConditionalCheckFailed"],
    );
    const untouched = await fresh.doc.send(
      new GetCommand({ TableName: table, Key: { [partitionKey]: "new" } }),
    );
    expect(untouched.Item).toBeUndefined();
  });

  const externalAddress = Object.values(networkInterfaces())
    .flat()
    .find((address) => address && address.family === "IPv4" && !address.internal)?.address;

  it.runIf(externalAddress)("accepts connections on loopback only", async () => {
    const port = Number(new URL(inject("dynamodbEndpoint")).port);

    const outcome = await new Promise<string>((resolve) => {
      const socket = connect({ host: externalAddress, port, timeout: 2_000 });
      socket.once("connect", () => {
        socket.destroy();
        resolve("connected");
      });
      socket.once("timeout", () => {
        socket.destroy();
        resolve("timeout");
      });
      socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
    });

    expect(outcome).toBe("ECONNREFUSED");
  });
});

describe("startDynamoDbLocal", () => {
  const started: { stop(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((instance) => instance.stop()));
  });

  // Also where indexes added to schema.ts after a table was created are checked: DynamoDB Local builds
  // such an index in a background job that stops for good when a table is deleted while it scans, which
  // the shared instance (tests delete their tables) cannot rule out.
  it("keeps a data dir's items across restarts, adds indexes declared since, and leaves no process behind", async () => {
    const dataDir = join(await temporaryDir("persist"), "not-yet-created");
    const prefix = "persist-";
    const key = tableKeys.find((candidate) => Object.keys(tables[candidate].indexes).length > 0)!;
    const declaration = tables[key];
    const [indexName, index] = Object.entries(declaration.indexes)[0]!;
    const item = {
      [declaration.partitionKey.name]: "kept",
      [index.partitionKey.name]: "found-by-index",
      ...(index.sortKey ? { [index.sortKey.name]: "1" } : {}),
    };
    const first = await startDynamoDbLocal({ dataDir });
    started.push(first);
    const writer = createDynamoClients({ endpoint: first.endpoint, region: "eu-west-1" });
    // The table as an older version of schema.ts, without indexes, created it.
    await writer.dynamodb.send(
      new CreateTableCommand({
        TableName: tableName(prefix, key),
        BillingMode: "PAY_PER_REQUEST",
        KeySchema: [{ AttributeName: declaration.partitionKey.name, KeyType: "HASH" }],
        AttributeDefinitions: [{ AttributeName: declaration.partitionKey.name, AttributeType: "S" }],
      }),
    );
    await ensureTables(writer.dynamodb, prefix);
    await writer.doc.send(new PutCommand({ TableName: tableName(prefix, key), Item: item }));
    writer.dynamodb.destroy();

    await first.stop();
    await first.stop();
    const firstGone = !isRunning(first.pid);
    // Another region and key pair: -sharedDb shows every client the same tables.
    const second = await startDynamoDbLocal({ dataDir });
    started.push(second);
    const reader = createDynamoClients({ endpoint: second.endpoint, region: "ap-southeast-2" });
    const read = await reader.doc.send(
      new GetCommand({ TableName: tableName(prefix, key), Key: { [declaration.partitionKey.name]: "kept" } }),
    );
    const byIndex = await reader.doc.send(
      new QueryCommand({
        TableName: tableName(prefix, key),
        IndexName: indexName,
        KeyConditionExpression: "#key = :value",
        ExpressionAttributeNames: { "#key": index.partitionKey.name },
        ExpressionAttributeValues: { ":value": "found-by-index" },
      }),
    );
    reader.dynamodb.destroy();
    await second.stop();

    expect(firstGone).toBe(true);
    expect(read.Item).toEqual(item);
    expect(byIndex.Items).toEqual([item]);
    expect(isRunning(second.pid)).toBe(false);
  }, 120_000); // restarts a disk-backed DynamoDB Local and creates every table: slow on a loaded machine

  it("exits when the process that started it is killed", async () => {
    const parent = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        `const { startDynamoDbLocal } = await import(${JSON.stringify(dynamodbLocalModule)});
         const database = await startDynamoDbLocal({});
         console.log(JSON.stringify({ pid: database.pid }));
         setInterval(() => {}, 1000);`,
      ],
      { cwd: repositoryRoot, stdio: ["ignore", "pipe", "pipe"] },
    );
    const childPid = await new Promise<number>((resolve, reject) => {
      let output = "";
      parent.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        const line = /\{"pid":(\d+)\}/.exec(output);
        if (line) resolve(Number(line[1]));
      });
      parent.stderr.on("data", (chunk: Buffer) => {
        output += chunk.toString();
      });
      parent.once("exit", () => reject(new Error(`parent exited early: ${output}`)));
    });
    expect(isRunning(childPid)).toBe(true);

    parent.kill("SIGKILL");

    expect(await waitUntil(() => !isRunning(childPid), 10_000)).toBe(true);
  });

  it("says Java 17+ is needed, in one line, when java is not on PATH", async () => {
    const emptyPath = await temporaryDir("no-java");

    const error = await startDynamoDbLocal({ env: { ...process.env, PATH: emptyPath } }).catch(
      (caught) => caught,
    );

    expect(error).toBeInstanceOf(JavaMissingError);
    expect(error.message).toMatch(/^Java 17\+ is needed .*openjdk-17-jre-headless.*DYNAMODB_ENDPOINT/);
    expect(error.message).not.toContain("\n");
  });

  it("says Java 17+ is needed when the java found is older", async () => {
    const java = await fakeJava("old-java", `echo 'openjdk version "11.0.22" 2024-01-16' >&2`);

    const error = await startDynamoDbLocal({ javaPath: java }).catch((caught) => caught);

    expect(error).toBeInstanceOf(JavaMissingError);
    expect(error.message).toContain("found Java 11");
  });

  it("reports the last output lines when DynamoDB Local exits while starting", async () => {
    const java = await fakeJava(
      "failing-java",
      `if [ "$1" = "-version" ]; then echo 'openjdk version "17.0.15" 2025-04-15' >&2; exit 0; fi
echo "Initializing DynamoDB Local"
echo "DynamoDB Local failed to start: java.io.IOException: Failed to bind to 127.0.0.1:8000" >&2
exit 1`,
    );

    const error = await startDynamoDbLocal({ javaPath: java }).catch((caught) => caught);

    expect(error).toBeInstanceOf(DynamoDbLocalStartError);
    expect(error.message).toContain("exited (code 1) before listening");
    expect(error.message).toContain("Failed to bind to 127.0.0.1:8000");
  });
});

async function fakeJava(label: string, script: string): Promise<string> {
  const path = join(await temporaryDir(label), "java");
  await writeFile(path, `#!/bin/sh\n${script}\n`);
  await chmod(path, 0o755);
  return path;
}
