import { ValidationError } from "../domain/errors";

/**
 * Pagination cursors are DynamoDB's LastEvaluatedKey, base64url-encoded JSON. A cursor from a client is
 * checked against the exact key attributes the index returns, so a forged one is a 400, not a 500.
 */
export type Key = Record<string, string | number>;

export function encodeCursor(key: Record<string, unknown> | undefined): string | null {
  return key ? Buffer.from(JSON.stringify(key), "utf8").toString("base64url") : null;
}

export function decodeCursor(cursor: string | undefined, keyNames: readonly string[]): Key | undefined {
  if (cursor === undefined || cursor === "") return undefined;
  const invalid = () =>
    new ValidationError("cursor is not valid", [
      { field: "cursor", message: "not a cursor this API issued" },
    ]);
  if (cursor.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalid();
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw invalid();
  const entries = Object.entries(parsed);
  const expected = [...new Set(keyNames)].sort();
  const actual = entries.map(([name]) => name).sort();
  if (expected.length !== actual.length || expected.some((name, index) => name !== actual[index]))
    throw invalid();
  for (const [, value] of entries) {
    if (
      !(typeof value === "string" && value.length > 0 && value.length <= 1024) &&
      typeof value !== "number"
    ) {
      throw invalid();
    }
  }
  return parsed as Key;
}
