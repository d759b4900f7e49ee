import type { TransactWriteCommandInput } from "@aws-sdk/lib-dynamodb";
import type { FinalizeRequestMiddleware } from "@smithy/types";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AgentIdentity } from "../../runtime/src/agent/signed-fetch";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";
import { appendLog, claim, queueJob } from "../support/jobs";

/**
 * The 503 paths once every retry has run out: DynamoDB throttling past the SDK's own retries, a
 * transaction that keeps conflicting, a job that keeps changing under a log upload. Each answer is a 503
 * problem+json with Retry-After, and nothing was changed. Faults are injected below the SDK's retry
 * middleware, so every retry the SDK makes meets them too.
 */

type Fault = (command: string, input: Record<string, unknown>) => void;

let cp: TestControlPlane;
let operator: string;
let fault: Fault | undefined;
const attempts = new Map<string, number>();

beforeAll(async () => {
  cp = await startTestControlPlane("unavailable");
  operator = await cp.token("operator");
  const inject: FinalizeRequestMiddleware<object, object> = (next, context) => async (args) => {
    const command = String((context as { commandName?: string }).commandName ?? "");
    attempts.set(command, (attempts.get(command) ?? 0) + 1);
    fault?.(command, (args as unknown as { input: Record<string, unknown> }).input);
    return next(args);
  };
  cp.runtime.store.doc.middlewareStack.addRelativeTo(inject as never, {
    relation: "after",
    toMiddleware: "retryMiddleware",
    name: "injectUnavailable",
  });
});
afterAll(() => cp.close());
afterEach(() => {
  fault = undefined;
  attempts.clear();
});

const transactWrites = () =>
  [...attempts].filter(([command]) => command.startsWith("TransactWrite")).reduce((sum, [, n]) => sum + n, 0);

const awsError = (name: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(name), { name, $fault: "client", $metadata: { httpStatusCode: 400 }, ...extra });

function expect503(response: { status: number; headers: Headers; body: { detail?: string; type?: string } }) {
  expect(response.status).toBe(503);
  expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  expect(response.headers.get("retry-after")).toMatch(/^\d+$/);
  expect(response.body.type).toBe("/problems/service-unavailable");
  expect(response.body.detail).not.toMatch(/Exception|TransactWrite|table/);
}

async function jobCount(): Promise<number> {
  return (await cp.request("GET", "/jobs", { token: operator })).body.total;
}

describe("503 once retries have run out", () => {
  it("when DynamoDB throttles every attempt of a read the SDK retries", async () => {
    fault = (command) => {
      if (command === "QueryCommand") throw awsError("ThrottlingException");
    };
    const response = await cp.request("GET", "/jobs", { token: operator });
    expect503(response);
    // The SDK retried (3 attempts per call) before the app gave up.
    expect(attempts.get("QueryCommand")).toBeGreaterThanOrEqual(3);
  });

  it("when DynamoDB throttles every attempt of a write: no job, no audit event", async () => {
    const before = { jobs: await jobCount(), head: await cp.runtime.store.audit.head("main") };
    fault = (command) => {
      if (command.startsWith("TransactWrite")) throw awsError("ProvisionedThroughputExceededException");
    };
    expect503(await cp.request("POST", "/jobs?git_ref=throttled", { token: operator }));
    expect(transactWrites()).toBeGreaterThanOrEqual(3);
    fault = undefined;
    expect(await jobCount()).toBe(before.jobs);
    expect(await cp.runtime.store.audit.head("main")).toEqual(before.head);
  });

  describe("a log upload", () => {
    let agent: AgentIdentity;
    let jobId: string;
    let attempt: number;
    beforeAll(async () => {
      agent = await cp.registerAgent({ name: "unavailable-agent" });
      await queueJob(cp, operator, {});
      const claimed = await claim(cp, agent);
      expect(claimed.status).toBe(200);
      jobId = claimed.body.job.job_id;
      attempt = claimed.body.attempt;
    });

    it("whose transaction keeps conflicting with concurrent writes", async () => {
      fault = (command, input) => {
        if (!command.startsWith("TransactWrite")) return;
        const items = (input as Partial<TransactWriteCommandInput>).TransactItems ?? [];
        throw awsError("TransactionCanceledException", {
          CancellationReasons: items.map(() => ({ Code: "TransactionConflict" })),
        });
      };
      expect503(await appendLog(cp, agent, jobId, { attempt, offset: 0, data: "hello\n" }));
      // The first try and its conflict retries, each meeting the conflict.
      expect(transactWrites()).toBeGreaterThan(1);
      fault = undefined;
      const job = await cp.request("GET", `/jobs/${jobId}`, { token: operator });
      expect(job.body.log_size ?? 0).toBe(0);
    });

    it("while the job keeps changing under it", async () => {
      fault = (command, input) => {
        if (!command.startsWith("TransactWrite")) return;
        const items = (input as Partial<TransactWriteCommandInput>).TransactItems ?? [];
        throw awsError("TransactionCanceledException", {
          CancellationReasons: items.map(() => ({ Code: "ConditionalCheckFailed" })),
        });
      };
      const response = await appendLog(cp, agent, jobId, { attempt, offset: 0, data: "hello\n" });
      expect503(response);
      expect(response.body.detail).toMatch(/kept changing/);
      expect(transactWrites()).toBeGreaterThan(1);
      fault = undefined;
      // Once the fault is gone the same upload goes through.
      expect((await appendLog(cp, agent, jobId, { attempt, offset: 0, data: "hello\n" })).status).toBe(200);
    });
  });
});
