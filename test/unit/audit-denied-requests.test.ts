import { describe, expect, it } from "vitest";
import { type DeniedRequest, DeniedRequests } from "../../runtime/src/domain/audit/denied-requests";
import type { AuditDraft } from "../../runtime/src/store/transaction";

function setup(options: { maxKeys?: number; failWrites?: number } = {}) {
  let now = new Date("2026-01-01T00:00:00.000Z");
  const written: AuditDraft[][] = [];
  let failures = options.failWrites ?? 0;
  const denied = new DeniedRequests({
    windowSeconds: 30,
    maxKeys: options.maxKeys ?? 100,
    now: () => now,
    write: async (drafts) => {
      if (failures > 0) {
        failures--;
        throw new Error("chain busy");
      }
      written.push(drafts);
    },
    correlate: async (value) => `hmac(${value.length})`,
  });
  return {
    denied,
    written,
    advance: (seconds: number) => {
      now = new Date(now.getTime() + seconds * 1000);
    },
  };
}

const refusal = (overrides: Partial<DeniedRequest> = {}): DeniedRequest => ({
  status: 401,
  method: "GET",
  route: "/jobs",
  reason: "sign in or send `Authorization: Bearer <API token>`",
  actor: { type: "anonymous", id: "anonymous", ip: "192.0.2.7" },
  requestId: "r1",
  ...overrides,
});

describe("denied request aggregation", () => {
  it("writes one event per client and route however many refusals there were", async () => {
    const { denied, written } = setup();
    for (let index = 0; index < 500; index++) {
      denied.record(refusal({ requestId: `r${index}`, credential: `hcp_${index % 3}` }));
    }
    denied.record(
      refusal({ route: "/agents", status: 403, actor: { type: "user", id: "bob", ip: "192.0.2.8" } }),
    );
    await denied.flush();
    expect(written.flat()).toHaveLength(2);
    const [flood] = written.flat();
    expect(flood).toMatchObject({
      action: "request.denied",
      outcome: "denied",
      target: { type: "route", id: "GET /jobs" },
      request_id: "r0",
      details: { status: 401, count: 500, request_ids: ["r0", "r1", "r2", "r3", "r4"] },
    });
    expect(flood!.details!.credential_hmacs).toHaveLength(3);
    expect(JSON.stringify(flood)).not.toContain("hcp_");
  });

  it("folds keys beyond the cap into one overflow record, so memory and chain writes stay bounded", async () => {
    const { denied, written } = setup({ maxKeys: 10 });
    for (let index = 0; index < 1000; index++) {
      denied.record(
        refusal({ actor: { type: "anonymous", id: "anonymous", ip: `198.51.100.${index % 250}` } }),
      );
    }
    await denied.flush();
    const events = written.flat();
    expect(events).toHaveLength(11);
    expect(events.reduce((sum, event) => sum + Number(event.details!.count), 0)).toBe(1000);
    expect(events.at(-1)).toMatchObject({ actor: { id: "*" }, target: { id: "* *" } });
  });

  it("keeps the counts when the chain cannot take them, and writes them with the next window", async () => {
    const { denied, written } = setup({ failWrites: 1 });
    denied.record(refusal());
    denied.record(refusal());
    await denied.flush();
    expect(written).toHaveLength(0);
    expect(denied.pending).toBe(2);
    denied.record(refusal());
    await denied.flush();
    expect(written.flat()).toMatchObject([{ details: { count: 3 } }]);
    expect(denied.pending).toBe(0);
  });

  it("writes a window once it has passed even when the timer never fired (a thawed Lambda)", async () => {
    const { denied, written, advance } = setup();
    denied.record(refusal());
    advance(31);
    denied.record(refusal());
    await denied.flush();
    expect(written.flat().reduce((sum, event) => sum + Number(event.details!.count), 0)).toBe(2);
  });
});
