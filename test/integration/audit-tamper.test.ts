import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterEach, describe, expect, it } from "vitest";
import { type AuditEvent, eventHash } from "../../runtime/src/domain/audit/audit-event";
import { verifyExport } from "../../runtime/src/domain/audit/audit-export";
import { parsePublicKeys } from "../../runtime/src/domain/audit/audit-signing";
import type { ProblemKind } from "../../runtime/src/domain/audit/chain-verifier";
import { digestOf, newSigningKey } from "../support/audit-chain";
import { runCli } from "../support/cli";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";

/**
 * Someone with write access to the tables edits the audit trail behind the API. Each edit must be
 * found twice: by the store check (GET /audit/verify) and by the offline verifier on an export made
 * afterwards.
 */

const EVENTS = 12;
let cp: TestControlPlane | undefined;
afterEach(async () => {
  await cp?.close();
  cp = undefined;
});

async function seededControlPlane(label: string): Promise<TestControlPlane> {
  cp = await startTestControlPlane(`tamper-${label}`);
  for (let index = 1; index <= EVENTS; index++) {
    await cp.runtime.audit.record({
      action: "secret.read",
      actor: { type: "user", id: `user-${index % 3}` },
      target: { type: "secret", id: "workload-identity-root-key" },
      outcome: "success",
      request_id: `seed-${index}`,
      details: { n: index },
    });
  }
  await cp.runtime.audit.createDigest("interval");
  return cp;
}

function tables(plane: TestControlPlane) {
  return {
    doc: plane.runtime.store.doc,
    events: plane.runtime.store.tables.audit,
    digests: plane.runtime.store.tables.audit_digests,
  };
}

async function item(plane: TestControlPlane, seq: number): Promise<Record<string, unknown>> {
  const { doc, events } = tables(plane);
  return (await doc.send(new GetCommand({ TableName: events, Key: { chain: "main", seq } }))).Item!;
}

async function put(plane: TestControlPlane, record: Record<string, unknown>): Promise<void> {
  const { doc, events } = tables(plane);
  await doc.send(new PutCommand({ TableName: events, Item: record }));
}

/** The event as hashed: the stored item without the store's own attributes. */
function fromStored(record: AuditEvent): AuditEvent {
  const {
    chain: _chain,
    actor_key: _actor,
    target_key: _target,
    time_seq: _time,
    ...event
  } = record as AuditEvent & Record<string, unknown>;
  return event as AuditEvent;
}

async function setHead(plane: TestControlPlane, seq: number, hash: string): Promise<void> {
  const { doc, events } = tables(plane);
  await doc.send(
    new UpdateCommand({
      TableName: events,
      Key: { chain: "main", seq: 0 },
      UpdateExpression: "SET head_seq = :seq, head_hash = :hash",
      ExpressionAttributeValues: { ":seq": seq, ":hash": hash },
    }),
  );
  plane.runtime.store.auditChain.forgetHead();
}

async function storeCheck(plane: TestControlPlane) {
  const response = await plane.request("GET", "/audit/verify", { token: await plane.token("auditor") });
  expect(response.status).toBe(200);
  return response.body;
}

async function exportNow(
  plane: TestControlPlane,
): Promise<{ text: string; keys: ReturnType<typeof parsePublicKeys>; keyJson: string }> {
  const response = await plane.request("GET", "/audit/export", { token: await plane.token("auditor") });
  expect(response.status).toBe(200);
  const keyJson = JSON.stringify((await plane.request("GET", "/audit/public-key")).body);
  return { text: response.body as string, keys: parsePublicKeys(keyJson), keyJson };
}

async function expectBothToFind(
  plane: TestControlPlane,
  expected: { kinds: ProblemKind[]; seq?: number; digestSeq?: number },
) {
  const stored = await storeCheck(plane);
  expect(stored.ok).toBe(false);
  expect(expected.kinds).toContain(stored.first_problem.kind);
  if (expected.seq !== undefined) expect(stored.first_problem.seq).toBe(expected.seq);
  if (expected.digestSeq !== undefined) expect(stored.first_problem.digest_seq).toBe(expected.digestSeq);

  const exported = await exportNow(plane);
  const offline = await verifyExport(exported.text.split("\n"), { publicKeys: exported.keys });
  expect(offline.ok).toBe(false);
  expect(expected.kinds).toContain(offline.first_problem!.kind);
  if (expected.seq !== undefined) expect(offline.first_problem!.seq).toBe(expected.seq);
  if (expected.digestSeq !== undefined) expect(offline.first_problem!.digest_seq).toBe(expected.digestSeq);
  return { stored, offline, exported };
}

describe("tampering with the stored audit trail", () => {
  it("is not reported when nothing was touched", async () => {
    const plane = await seededControlPlane("none");
    const stored = await storeCheck(plane);
    expect(stored).toMatchObject({ ok: true, problem_count: 0, sealed_through_seq: EVENTS });
    // The seeded events, the auditor's token, and the check itself.
    expect(stored.events).toBe(EVENTS + 2);
    const exported = await exportNow(plane);
    expect((await verifyExport(exported.text.split("\n"), { publicKeys: exported.keys })).ok).toBe(true);
  });

  it("finds an altered event, and the CLI names it and exits 1", async () => {
    const plane = await seededControlPlane("alter");
    const { doc, events } = tables(plane);
    await doc.send(
      new UpdateCommand({
        TableName: events,
        Key: { chain: "main", seq: 5 },
        UpdateExpression: "SET details.n = :n",
        ExpressionAttributeValues: { ":n": 999 },
      }),
    );
    const { exported } = await expectBothToFind(plane, { kinds: ["hash_mismatch"], seq: 5 });

    const dir = await mkdtemp(join(tmpdir(), "hcp-tamper-"));
    try {
      await writeFile(join(dir, "export.jsonl"), exported.text);
      await writeFile(join(dir, "key.json"), exported.keyJson);
      const cli = await runCli(["verify", join(dir, "export.jsonl"), "--public-key", join(dir, "key.json")]);
      expect(cli.code).toBe(1);
      expect(cli.stdout).toMatch(/FAILED at line \d+, seq 5, event \w+: hash_mismatch/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("finds a deleted event", async () => {
    const plane = await seededControlPlane("delete");
    const { doc, events } = tables(plane);
    await doc.send(new DeleteCommand({ TableName: events, Key: { chain: "main", seq: 5 } }));
    await expectBothToFind(plane, { kinds: ["missing_events"], seq: 6 });
  });

  it("finds a forged event inserted with a hash that links to its predecessor", async () => {
    const plane = await seededControlPlane("insert");
    // Make room at seq 5 by moving every later event up one, then plant a well-formed event there.
    for (let seq = EVENTS; seq >= 5; seq--) await put(plane, { ...(await item(plane, seq)), seq: seq + 1 });
    const before = (await item(plane, 4)) as unknown as AuditEvent;
    const { hash: _hash, ...body } = {
      ...before,
      seq: 5,
      event_id: "01FORGED000000000000000000",
      actor: { type: "user", id: "mallory" },
      prev_hash: before.hash,
    } as AuditEvent & { chain?: string; actor_key?: string; target_key?: string; time_seq?: string };
    delete body.chain;
    delete body.actor_key;
    delete body.target_key;
    delete body.time_seq;
    await put(plane, { ...body, hash: eventHash(body), chain: "main" });
    const last = (await item(plane, EVENTS + 1)) as unknown as AuditEvent;
    await setHead(plane, EVENTS + 1, last.hash);
    await expectBothToFind(plane, { kinds: ["broken_link", "hash_mismatch"], seq: 6 });
  });

  it("stops appending at an event planted past the head, and the store check names it", async () => {
    const plane = await seededControlPlane("plant");
    const auditor = await plane.token("auditor");
    const admin = await plane.token("admin");
    const head = (await plane.runtime.store.audit.head("main"))!;
    const last = (await item(plane, head.seq)) as unknown as AuditEvent;
    const { hash: _hash, ...body } = {
      ...fromStored(last),
      seq: head.seq + 1,
      prev_hash: last.hash,
      event_id: "01PLANTED0000000000000000",
    };
    await put(plane, { ...body, hash: eventHash(body), chain: "main" });

    const refused = await plane.request("POST", "/jobs?git_ref=main", { token: admin });
    expect(refused.status).toBe(503);
    const stored = await plane.request("GET", "/audit/verify", { token: auditor });
    expect(stored.body).toMatchObject({
      ok: false,
      recorded: false,
      first_problem: { kind: "head_mismatch" },
    });
  });

  it("finds two swapped events", async () => {
    const plane = await seededControlPlane("swap");
    const fourth = await item(plane, 4);
    const fifth = await item(plane, 5);
    await put(plane, { ...fifth, seq: 4 });
    await put(plane, { ...fourth, seq: 5 });
    await expectBothToFind(plane, { kinds: ["broken_link", "hash_mismatch"], seq: 4 });
  });

  it("finds a truncated tail even when the head was moved back to match", async () => {
    const plane = await seededControlPlane("truncate");
    const { doc, events } = tables(plane);
    for (const seq of [EVENTS, EVENTS - 1, EVENTS - 2]) {
      await doc.send(new DeleteCommand({ TableName: events, Key: { chain: "main", seq } }));
    }
    const newLast = (await item(plane, EVENTS - 3)) as unknown as AuditEvent;
    await setHead(plane, newLast.seq, newLast.hash);
    const { stored, offline } = await expectBothToFind(plane, {
      kinds: ["digest_beyond_events", "digest_mismatch", "broken_link", "hash_mismatch"],
    });
    expect(stored.problems.map((problem: { kind: string }) => problem.kind)).toContain(
      "digest_beyond_events",
    );
    expect(offline.problems.map((problem) => problem.kind)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^digest_(beyond_events|mismatch)$/)]),
    );
  });

  it("finds a digest whose signed head was changed", async () => {
    const plane = await seededControlPlane("forge-digest");
    const { doc, digests } = tables(plane);
    const third = (await item(plane, 3)) as unknown as AuditEvent;
    await doc.send(
      new UpdateCommand({
        TableName: digests,
        Key: { chain: "main", digest_seq: 1 },
        UpdateExpression: "SET head_seq = :seq, head_hash = :hash",
        ExpressionAttributeValues: { ":seq": 3, ":hash": third.hash },
      }),
    );
    await expectBothToFind(plane, { kinds: ["bad_signature"], digestSeq: 1 });
  });

  it("finds a digest forged with a key that is not the published one", async () => {
    const plane = await seededControlPlane("forge-key");
    const { doc, digests } = tables(plane);
    const head = (await item(plane, EVENTS)) as unknown as AuditEvent;
    const forged = digestOf(head, undefined, newSigningKey().signer);
    await doc.send(new PutCommand({ TableName: digests, Item: { ...forged, chain: "main" } }));
    await expectBothToFind(plane, { kinds: ["unknown_key"], digestSeq: 1 });
  });
});
