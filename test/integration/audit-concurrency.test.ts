import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditEvent } from "../../runtime/src/domain/audit/audit-event";
import { eventHash, GENESIS_HASH } from "../../runtime/src/domain/audit/audit-event";
import { createLogger } from "../../runtime/src/logger";
import { createRuntime, type Runtime } from "../../runtime/src/runtime";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";

/**
 * 20 writers, 100 audited operations each, spread over 4 runtimes that share nothing but the tables —
 * as 4 Lambda instances would: each has its own cached head and its own queue, so they really race
 * for the chain head. Every tenth operation is a real change (a job) written with its event.
 */
const INSTANCES = Number(process.env.AUDIT_TEST_INSTANCES ?? 4);
const WRITERS = 20;
const OPERATIONS = 100;

let cp: TestControlPlane;
let instances: Runtime[];

beforeAll(async () => {
  cp = await startTestControlPlane("audit-concurrency");
  instances = Array.from({ length: INSTANCES }, () =>
    createRuntime({
      env: cp.runtime.env,
      doc: cp.runtime.store.doc,
      secretStore: cp.runtime.secretStore,
      logger: createLogger({ level: "silent" }),
    }),
  );
});
afterAll(() => cp.close());

describe("concurrent appends", () => {
  it("never fork the chain: 20 writers × 100 operations add exactly 2,000 linked events", async () => {
    await cp.runtime.audit.record({
      action: "test.start",
      actor: { type: "system", id: "test" },
      target: { type: "test", id: "concurrency" },
      outcome: "success",
    });
    const viewer = await cp.token("viewer");
    const jobsBefore = (await cp.request("GET", "/jobs", { token: viewer })).body.total;
    const before = (await cp.runtime.store.audit.head("main"))!;

    await Promise.all(
      Array.from({ length: WRITERS }, async (_, writer) => {
        const runtime = instances[writer % INSTANCES]!;
        const principal = { type: "system" as const, id: `writer-${writer}` };
        for (let operation = 0; operation < OPERATIONS; operation++) {
          const context = { requestId: `writer-${writer}-${operation}`, principal };
          if (operation % 10 === 0) {
            await runtime.jobs.create(
              { git_ref: `w${writer}-${operation}`, tags: [], priority: 50 },
              context,
            );
          } else {
            await runtime.audit.record({
              action: "agent.config.read",
              actor: { type: "system", id: `writer-${writer}` },
              target: { type: "writer", id: String(writer) },
              outcome: "success",
              request_id: `writer-${writer}-${operation}`,
              details: { operation },
            });
          }
        }
      }),
    );

    const after = (await cp.runtime.store.audit.head("main"))!;
    expect(after.seq - before.seq).toBe(WRITERS * OPERATIONS);

    const appended: AuditEvent[] = [];
    for await (const event of cp.runtime.store.audit.events("main", before.seq + 1)) appended.push(event);
    expect(appended).toHaveLength(WRITERS * OPERATIONS);
    let previous = before.hash;
    for (const [index, event] of appended.entries()) {
      expect(event.seq).toBe(before.seq + 1 + index);
      expect(event.prev_hash).toBe(previous);
      expect(eventHash(event)).toBe(event.hash);
      previous = event.hash;
    }
    expect(previous).toBe(after.hash);
    expect(new Set(appended.map((event) => event.request_id)).size).toBe(WRITERS * OPERATIONS);
    expect(appended.filter((event) => event.action === "job.create")).toHaveLength(WRITERS * 10);
    const jobsAfter = (await cp.request("GET", "/jobs", { token: viewer })).body.total;
    expect(jobsAfter - jobsBefore).toBe(WRITERS * 10);

    const check = await cp.runtime.audit.verify({}, { requestId: "check" });
    expect(check).toMatchObject({ ok: true, first_seq: 1, problem_count: 0 });
    expect(check.first_seq === 1 && GENESIS_HASH).toBeTruthy();
  }, 120_000);
});
