import { ValidationError } from "../shared/errors";
import { type KeyAttribute, type TableDeclaration, type TableKey, tables } from "./schema";

/**
 * Pagination cursors are DynamoDB's LastEvaluatedKey, base64url-encoded JSON. A cursor from a client is
 * checked before DynamoDB sees it: exactly the key attributes the query's index returns, each of the
 * declared type, and the query's own partition values (a cursor from another listing, or forged with a
 * different partition, is refused). Whatever DynamoDB still refuses as a start key is the client's
 * mistake too (`pageFrom`). Every refusal is a 400, never a 500.
 */
export type Key = Record<string, string | number>;

export function encodeCursor(key: Record<string, unknown> | undefined): string | null {
  return key ? Buffer.from(JSON.stringify(key), "utf8").toString("base64url") : null;
}

const invalidCursor = () =>
  new ValidationError("cursor is not valid", [{ field: "cursor", message: "not a cursor this API issued" }]);

/** The key attributes of a table, plus its index's (a query through an index returns both). */
function keyAttributes(table: TableKey, index?: string): KeyAttribute[] {
  const declaration: TableDeclaration = tables[table];
  const attributes = [declaration.partitionKey, ...(declaration.sortKey ? [declaration.sortKey] : [])];
  if (index !== undefined) {
    const indexDeclaration = declaration.indexes[index];
    if (!indexDeclaration) throw new Error(`table ${table} has no index ${index}`);
    attributes.push(indexDeclaration.partitionKey);
    if (indexDeclaration.sortKey) attributes.push(indexDeclaration.sortKey);
  }
  return [...new Map(attributes.map((attribute) => [attribute.name, attribute])).values()];
}

/**
 * The start key a client's cursor names, checked against the table's declaration and the query.
 * `partition`: the values the query fixes (its partition key), which the cursor must repeat.
 */
export function decodeCursor(
  cursor: string | undefined,
  query: { table: TableKey; index?: string; partition: Readonly<Record<string, string | number>> },
): Key | undefined {
  if (cursor === undefined || cursor === "") return undefined;
  if (cursor.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalidCursor();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalidCursor();
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw invalidCursor();
  const key = parsed as Record<string, unknown>;
  const expected = keyAttributes(query.table, query.index);
  if (Object.keys(key).length !== expected.length) throw invalidCursor();
  for (const { name, type } of expected) {
    const value = key[name];
    const valid =
      type === "S"
        ? typeof value === "string" && value.length > 0 && Buffer.byteLength(value, "utf8") <= 1024
        : typeof value === "number" && Number.isSafeInteger(value);
    if (!valid) throw invalidCursor();
  }
  for (const [name, value] of Object.entries(query.partition)) {
    if (key[name] !== value) throw invalidCursor();
  }
  return key as Key;
}

/**
 * Runs a query that starts from a client's cursor: a start key DynamoDB refuses (outside the query's
 * range, for instance) is a 400 like any other bad cursor.
 */
export async function pageFrom<T>(start: Key | undefined, query: () => Promise<T>): Promise<T> {
  try {
    return await query();
  } catch (error) {
    if (start !== undefined && (error as { name?: string })?.name === "ValidationException") {
      throw invalidCursor();
    }
    throw error;
  }
}
