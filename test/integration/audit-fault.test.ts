import type { TransactWriteCommandInput } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";

/**
 * Vault's rule: when the audit record cannot be written, the request fails and changes nothing. The
 * faults are injected into the TransactWriteItems on its way to DynamoDB, so the refusal (and the
 * rollback of the change that shares the transaction) is DynamoDB's own.
 */

type Fault = (items: NonNullable<TransactWriteCommandInput["TransactItems"]>) => void;

let cp: TestControlPlane;
let operator: string;
let fault: Fault | undefined;

beforeAll(async () => {
  cp = await startTestControlPlane("audit-fault");
  operator = await cp.token("operator");
  cp.runtime.store.doc.middlewareStack.add(
    (next) => async (args) => {
      const input = args.input as Partial<TransactWriteCommandInput>;
      if (fault && Array.isArray(input.TransactItems)) fault(input.TransactItems);
      return next(args);
    },
    { step: "initialize", name: "injectAuditFault" },
  );
});
afterAll(() => cp.close());

async function state() {
  const jobs = await cp.request("GET", "/jobs", { token: operator });
  return { jobs: jobs.body.total as number, head: (await cp.runtime.store.audit.head("main"))! };
}

async function createJobExpecting503() {
  const before = await state();
  const response = await cp.request("POST", "/jobs?git_ref=fault", { token: operator });
  fault = undefined;
  expect(response.status).toBe(503);
  expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  expect(response.headers.get("retry-after")).toMatch(/^\d+$/);
  expect(response.body).toMatchObject({ type: "/problems/service-unavailable", status: 503 });
  expect(response.body.detail).not.toMatch(/Exception|dynamodb|table/i);
  const after = await state();
  expect(after.jobs).toBe(before.jobs);
  expect(after.head).toEqual(before.head);
}

describe("when the audit part of a transaction fails", () => {
  it("answers 503 and creates no job when DynamoDB refuses the audit event", async () => {
    const events = cp.runtime.store.tables.audit;
    fault = (items) => {
      for (const item of items) {
        if (item.Put?.TableName === events) item.Put.TableName = `${events}-unavailable`;
      }
    };
    await createJobExpecting503();
  });

  it("answers 503 and creates no job when the chain head never comes free", async () => {
    const events = cp.runtime.store.tables.audit;
    let attempts = 0;
    const stuck: Fault = (items) => {
      for (const item of items) {
        if (item.Update?.TableName === events && item.Update.ExpressionAttributeValues) {
          attempts++;
          item.Update.ExpressionAttributeValues[":expectedHash"] = "f".repeat(64);
        }
      }
      fault = stuck;
    };
    fault = stuck;
    await createJobExpecting503();
    expect(attempts).toBeGreaterThan(1);
  });

  it("still answers a refused change with its own error, not 503", async () => {
    const before = await state();
    const headers = { "idempotency-key": `fault-${Date.now()}` };
    expect(
      (await cp.request("POST", "/jobs", { token: operator, body: { git_ref: "a" }, headers })).status,
    ).toBe(201);
    const mismatch = await cp.request("POST", "/jobs", { token: operator, body: { git_ref: "b" }, headers });
    expect(mismatch.status).toBe(422);
    const after = await state();
    expect(after.jobs).toBe(before.jobs + 1);
    expect(after.head.seq).toBe(before.head.seq + 1);
  });

  it("works again once the fault is gone, on an unbroken chain", async () => {
    const response = await cp.request("POST", "/jobs?git_ref=recovered", { token: operator });
    expect(response.status).toBe(201);
    const check = await cp.request("GET", "/audit/verify", { token: await cp.token("auditor") });
    expect(check.body).toMatchObject({ ok: true, problem_count: 0 });
  });
});
