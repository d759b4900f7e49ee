import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  canonicalJson,
  eventHash,
  GENESIS_HASH,
  sealEvent,
} from "../../runtime/src/domain/audit/audit-event";
import { exportLine, lineEventHash, verifyExport } from "../../runtime/src/domain/audit/audit-export";
import { buildChain, exportFile, linesOf } from "../support/audit-chain";

/**
 * Offline verification hashes an event line's own bytes when the line is already the event's RFC 8785
 * form (issue 14): these tests hold that shortcut to exactly what the slow path (re-serialise the parsed
 * event in JCS, hash it) decides.
 */

const sealed = (details: Record<string, unknown>, seq = 1) =>
  sealEvent(
    {
      action: "job.create",
      actor: { type: "user", id: "alice", ip: "192.0.2.1" },
      target: { type: "job", id: `job_${seq}` },
      outcome: "success",
      request_id: `r${seq}`,
      details,
    },
    {
      seq,
      prevHash: GENESIS_HASH,
      time: "2026-01-01T00:00:00.000Z",
      eventId: "01J0000000000000000000000",
      environment: "test",
    },
  );

const lineOf = (event: ReturnType<typeof sealed>) => exportLine({ record: "event", ...event }).trimEnd();

/** JSON values as an attacker or a strange writer could put into `details`. */
const jsonDetails = fc.dictionary(
  fc.string(),
  fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.parse(JSON.stringify(value)) as unknown),
  { maxKeys: 6 },
);

describe("event lines of an export", () => {
  it("are `record` first, then the event's JCS form: the fast path hashes them to the event's hash", () => {
    fc.assert(
      fc.property(jsonDetails, (details) => {
        const event = sealed(details);
        const line = lineOf(event);
        expect(line).toBe(`{"record":"event",${canonicalJson(event).slice(1)}`);
        const record = JSON.parse(line) as Record<string, unknown>;
        // Integer-like member names are the one JCS form JSON.parse does not keep in order: slow path.
        const integerKey = /"(0|[1-9]\d*)":/.test(line);
        if (!integerKey) expect(lineEventHash(line, record)).toBe(event.hash);
      }),
      { numRuns: 300 },
    );
  });

  it("never gives a hash the slow path would not give, whatever the line", () => {
    const event = sealed({ tags: ["b", "a"], hash: "x", nested: { z: 1, a: [1, { b: 2, a: 1 }] } });
    const line = lineOf(event);
    const edits = fc.oneof(
      // Whitespace, reordered members, other escapes and number forms, duplicate members.
      fc.constant(line.replace('"action":', ' "action":')),
      fc.constant(line.replace('{"record":"event",', '{"record":"event","seq":1,')),
      fc.constant(line.replace('"alice"', '"\\u0061lice"')),
      fc.constant(line.replace('"seq":1', '"seq":1.0')),
      fc.constant(line.replace('"z":1', '"z":1,"z":1')),
      fc.constant(line.replace('{"b":2,"a":1}', '{"a":1,"b":2}').replace('"nested":{"a"', '"nested":{"a"')),
      fc.constant(
        `{"action":"job.create",${line.slice('{"record":"event",'.length).replace('"action":"job.create",', '"record":"event",')}`,
      ),
      // Any single character changed.
      fc
        .tuple(fc.nat(line.length - 1), fc.constantFrom(...' "{}[],:\\0123456789abcdefx'))
        .map(([at, char]) => line.slice(0, at) + char + line.slice(at + 1)),
    );
    fc.assert(
      fc.property(edits, (edited) => {
        let record: Record<string, unknown>;
        try {
          record = JSON.parse(edited);
        } catch {
          return;
        }
        const fast = lineEventHash(edited, record);
        if (fast === undefined) return;
        const { record: _kind, ...body } = record;
        // What the shortcut returns is always what re-serialising the parsed event gives.
        expect(fast).toBe(eventHash(body as never));
      }),
      { numRuns: 1000 },
    );
  });

  it("leaves lines in another member order (older exports) to the slow path, which still verifies them", async () => {
    const chain = buildChain(30, { digestEvery: 5 });
    const file = await exportFile(chain);
    const reordered = linesOf(file).map((line) => {
      const record = JSON.parse(line) as Record<string, unknown>;
      if (record.record !== "event") return line;
      const { record: kind, ...rest } = record;
      const reversed = Object.fromEntries(Object.entries(rest).reverse());
      const written = JSON.stringify({ record: kind, ...reversed });
      expect(lineEventHash(written, JSON.parse(written))).toBeUndefined();
      return written;
    });
    const report = await verifyExport(reordered, { publicKeys: chain.key.trusted });
    expect(report.ok).toBe(true);
    expect(report.events).toBe(30);
  });

  it("still finds an altered event when the altered line is canonical", async () => {
    const chain = buildChain(20, { digestEvery: 5 });
    const lines = linesOf(await exportFile(chain));
    const index = lines.findIndex((line) => line.includes('"seq":7,'));
    const record = JSON.parse(lines[index]!) as Record<string, unknown>;
    const { record: _kind, ...event } = record;
    // Re-written canonically with one changed member: the fast path applies and must disagree.
    lines[index] = exportLine({ record: "event", ...event, outcome: "denied" } as never).trimEnd();
    const report = await verifyExport(lines, { publicKeys: chain.key.trusted });
    expect(report.ok).toBe(false);
    expect(report.first_problem?.kind).toBe("hash_mismatch");
    expect(report.first_problem?.seq).toBe(7);
  });
});
