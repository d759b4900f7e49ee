import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeleteCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { settings } from "../../runtime/src/domain/settings";
import { runCli } from "../support/cli";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";

/**
 * What an attacker with the export file in hand would edit, checked with the real `hybrid-cicd verify`:
 * a tail cut at an earlier digest with the header and end counts edited to match, a changed header, a
 * changed count. And the store-side checks around digests: a stale newest digest, who may ask for one,
 * and the public key's cache.
 */

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "hcp-export-integrity-"));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

let cp: TestControlPlane | undefined;
afterEach(async () => {
  await cp?.close();
  cp = undefined;
});

async function seed(plane: TestControlPlane, count: number, from = 1) {
  for (let n = from; n < from + count; n++) {
    await plane.runtime.audit.record({
      action: "secret.read",
      actor: { type: "user", id: `user-${n % 3}` },
      target: { type: "secret", id: "workload-identity-root-key" },
      outcome: "success",
      details: { n },
    });
  }
}

/** An export with two digests: one in the middle (an earlier cut point) and one sealing the end. */
async function exportWithTwoDigests(label: string) {
  cp = await startTestControlPlane(`export-${label}`);
  await seed(cp, 6);
  await cp.runtime.audit.createDigest("interval");
  await seed(cp, 6, 7);
  await cp.runtime.audit.createDigest("interval");
  const auditor = await cp.token("auditor");
  const response = await cp.request("GET", "/audit/export", { token: auditor });
  expect(response.status).toBe(200);
  const keyFile = join(scratch, `${label}-key.json`);
  await writeFile(keyFile, JSON.stringify((await cp.request("GET", "/audit/public-key")).body));
  const lines = (response.body as string).split("\n").filter((line) => line !== "");
  return { lines, records: lines.map((line) => JSON.parse(line)), keyFile };
}

async function verifyWithCli(label: string, records: unknown[], keyFile: string) {
  const file = join(scratch, `${label}.jsonl`);
  await writeFile(file, `${records.map((record) => JSON.stringify(record)).join("\n")}\n`);
  return runCli(["verify", file, "--public-key", keyFile, "--json"]);
}

describe("an export's signed end record", () => {
  it("verifies untouched", async () => {
    const { records, keyFile } = await exportWithTwoDigests("untouched");
    expect(records.at(-1)).toMatchObject({
      record: "end",
      header_hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      signature: expect.any(String),
    });
    const cli = await verifyWithCli("untouched", records, keyFile);
    expect(cli.code, cli.stdout + cli.stderr).toBe(0);
  });

  it("refuses a tail cut at an earlier digest with the header and end counts edited to match", async () => {
    const { records, keyFile } = await exportWithTwoDigests("cut");
    // Keep everything up to the first digest that signs the middle of the chain, drop the rest.
    const firstDigest = records.findIndex(
      (record, index) => index > 0 && record.record === "digest" && record.head_seq > 0,
    );
    const kept = records.slice(0, firstDigest + 1);
    const lastEvent = kept.filter((record) => record.record === "event").at(-1);
    const header = { ...kept[0], last_seq: lastEvent.seq };
    const end = {
      ...records.at(-1),
      events: kept.filter((record) => record.record === "event").length,
      digests: kept.filter((record) => record.record === "digest").length,
      last_seq: lastEvent.seq,
      last_hash: lastEvent.hash,
    };
    const cli = await verifyWithCli("cut", [header, ...kept.slice(1), end], keyFile);
    expect(cli.code).toBe(1);
    const report = JSON.parse(cli.stdout);
    expect(report.verified).toBe(false);
    expect(report.problems.map((problem: { kind: string }) => problem.kind)).toEqual(
      expect.arrayContaining(["bad_signature", "export_altered"]),
    );
  });

  it("refuses a changed header (environment, period, export time)", async () => {
    const { records, keyFile } = await exportWithTwoDigests("header");
    for (const change of [
      { environment: "production" },
      { from: "2020-01-01T00:00:00.000Z" },
      { exported_at: "2030-01-01T00:00:00.000Z" },
    ]) {
      const cli = await verifyWithCli("header", [{ ...records[0], ...change }, ...records.slice(1)], keyFile);
      expect(cli.code).toBe(1);
      expect(JSON.parse(cli.stdout).first_problem.kind).toBe("export_altered");
    }
  });

  it("refuses a changed count, whether or not the file was changed to match", async () => {
    const { records, keyFile } = await exportWithTwoDigests("count");
    const end = records.at(-1);
    const cli = await verifyWithCli(
      "count",
      [...records.slice(0, -1), { ...end, events: end.events - 1 }],
      keyFile,
    );
    expect(cli.code).toBe(1);
    const kinds = JSON.parse(cli.stdout).problems.map((problem: { kind: string }) => problem.kind);
    expect(kinds).toEqual(expect.arrayContaining(["bad_signature", "incomplete_export"]));
  });

  it("refuses an end record signed with a key that is not the trusted one", async () => {
    const { records, keyFile } = await exportWithTwoDigests("end-key");
    const end = { ...records.at(-1), key_id: "ed25519:0000000000000000" };
    const cli = await verifyWithCli("end-key", [...records.slice(0, -1), end], keyFile);
    expect(cli.code).toBe(1);
    expect(JSON.parse(cli.stdout).first_problem.kind).toBe("unknown_key");
  });
});

describe("GET /audit/verify and the age of the newest digest", () => {
  it("reports a newest digest older than the interval plus the margin", async () => {
    let now = Date.parse("2026-06-01T00:00:00.000Z");
    cp = await startTestControlPlane("stale-digest", { clock: () => new Date(now) });
    await seed(cp, 3);
    await cp.runtime.audit.createDigest("interval");
    const auditor = await cp.token("auditor");
    const limit = settings.audit.digestIntervalSeconds + settings.audit.digestMarginSeconds;

    now += (limit - 5) * 1000;
    const fresh = await cp.request("GET", "/audit/verify", { token: auditor });
    expect(fresh.body.problems.map((problem: { kind: string }) => problem.kind)).not.toContain(
      "stale_digest",
    );

    now += 10 * 1000;
    const stale = await cp.request("GET", "/audit/verify", { token: auditor });
    expect(stale.body.ok).toBe(false);
    expect(stale.body.problems).toContainEqual(
      expect.objectContaining({ kind: "stale_digest", digest_seq: 1 }),
    );
  });

  it("reports a tail deleted together with the digests that signed it", async () => {
    let now = Date.parse("2026-06-01T00:00:00.000Z");
    cp = await startTestControlPlane("deleted-tail", { clock: () => new Date(now) });
    await seed(cp, 3);
    const first = await cp.runtime.audit.createDigest("interval");
    now += settings.audit.digestIntervalSeconds * 1000;
    await seed(cp, 3, 4);
    const second = await cp.runtime.audit.createDigest("interval");
    const auditor = await cp.token("auditor");
    // Later, but before the next digest is due: untouched, the chain is fine.
    now += (settings.audit.digestMarginSeconds + 60) * 1000;
    expect((await cp.request("GET", "/audit/verify", { token: auditor })).body.ok).toBe(true);

    // Delete every event after the first digest's head, the second digest, and move the head back.
    const { doc, tables } = cp.runtime.store;
    const headItem = await cp.runtime.store.audit.head("main");
    for (let seq = first.head_seq + 1; seq <= headItem!.seq; seq++) {
      await doc.send(new DeleteCommand({ TableName: tables.audit, Key: { chain: "main", seq } }));
    }
    await doc.send(
      new DeleteCommand({
        TableName: tables.audit_digests,
        Key: { chain: "main", digest_seq: second.digest_seq },
      }),
    );
    await doc.send(
      new UpdateCommand({
        TableName: tables.audit,
        Key: { chain: "main", seq: 0 },
        UpdateExpression: "SET head_seq = :seq, head_hash = :hash",
        ExpressionAttributeValues: { ":seq": first.head_seq, ":hash": first.head_hash },
      }),
    );
    cp.runtime.store.auditChain.forgetHead();

    const response = await cp.request("GET", "/audit/verify", { token: auditor });
    // The links that are left are sound, and the last digest signs the head: only its age tells.
    expect(response.body.ok).toBe(false);
    expect(response.body.first_problem).toMatchObject({ kind: "stale_digest", digest_seq: first.digest_seq });
  });
});

describe("POST /audit/digests", () => {
  it("needs an admin, records the request, and the digest signs that record", async () => {
    cp = await startTestControlPlane("digest-admin");
    for (const role of ["auditor", "operator", "viewer"] as const) {
      const refused = await cp.request("POST", "/audit/digests", { token: await cp.token(role) });
      expect(refused.status).toBe(403);
    }
    const digest = await cp.request("POST", "/audit/digests", { token: await cp.token("admin") });
    expect(digest.status).toBe(201);
    const recorded = await cp.runtime.store.audit.eventAt("main", digest.body.head_seq);
    expect(recorded).toMatchObject({
      action: "audit.digest.create",
      actor: { type: "user", id: "token:test-admin" },
      outcome: "success",
    });
    expect(recorded!.hash).toBe(digest.body.head_hash);
  });

  it("is rate-limited per client", async () => {
    cp = await startTestControlPlane("digest-limit", { env: { HYBRID_CICD_RATE_LIMIT_DIGESTS: "2/1h" } });
    const admin = await cp.token("admin");
    const statuses: number[] = [];
    for (let n = 0; n < 3; n++)
      statuses.push((await cp.request("POST", "/audit/digests", { token: admin })).status);
    expect(statuses).toEqual([201, 201, 429]);
  });
});

describe("GET /audit/public-key", () => {
  it("serves many anonymous callers from memory, not from the secret store", async () => {
    cp = await startTestControlPlane("public-key-cache");
    const first = await cp.request("GET", "/audit/public-key");
    expect(first.status).toBe(200);
    const reads = vi.spyOn(cp.runtime.secretStore, "listVersions");
    const answers = await Promise.all(
      Array.from({ length: 40 }, () => cp!.request("GET", "/audit/public-key")),
    );
    expect(answers.every((answer) => answer.status === 200 && answer.body.key_id === first.body.key_id)).toBe(
      true,
    );
    expect(reads).toHaveBeenCalledTimes(0);
  });
});
