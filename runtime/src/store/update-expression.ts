/**
 * Builds the expression parts of a conditional UpdateItem from named changes, so repositories state
 * what changes and under which condition without hand-numbering placeholders. Every attribute is
 * referenced through `#name` (DynamoDB reserves words such as `status`, `offset` and `size`).
 */
export interface Change {
  /** attribute → new value; undefined values are skipped. */
  set?: Record<string, unknown>;
  /** SET clauses written out, e.g. `#attempts = list_append(#attempts, :entry)`. */
  setRaw?: string[];
  remove?: string[];
  /** Refers to attributes as `#name` and to `values` as `:name`. */
  condition: string;
  values?: Record<string, unknown>;
}

export interface UpdateParts {
  UpdateExpression: string;
  ConditionExpression: string;
  ExpressionAttributeNames: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
}

export function updateParts(change: Change): UpdateParts {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = { ...change.values };
  const assignments: string[] = [];
  for (const [name, value] of Object.entries(change.set ?? {})) {
    if (value === undefined) continue;
    names[`#${name}`] = name;
    values[`:set_${name}`] = value;
    assignments.push(`#${name} = :set_${name}`);
  }
  assignments.push(...(change.setRaw ?? []));
  const removals = (change.remove ?? []).map((name) => {
    names[`#${name}`] = name;
    return `#${name}`;
  });
  const written = `${change.condition} ${(change.setRaw ?? []).join(" ")}`;
  for (const match of written.matchAll(/#([A-Za-z_][A-Za-z0-9_]*)/g)) names[match[0]] = match[1]!;
  const parts = [
    assignments.length > 0 ? `SET ${assignments.join(", ")}` : "",
    removals.length > 0 ? `REMOVE ${removals.join(", ")}` : "",
  ];
  return {
    UpdateExpression: parts.filter(Boolean).join(" "),
    ConditionExpression: change.condition,
    ExpressionAttributeNames: names,
    ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
  };
}
