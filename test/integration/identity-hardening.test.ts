import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { systemContext } from "../../runtime/src/domain/principal";
import { createApp } from "../../runtime/src/http/app";
import { signRequest } from "../../runtime/src/identity/http-signatures";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";

/**
 * Identity and input hardening from the security review: keyids checked before any lookup, forged
 * cursors refused, the `__Host-` session cookie over HTTPS, expired API tokens, failed sign-ins recorded.
 */

let now = Date.now();
let cp: TestControlPlane;
beforeAll(async () => {
  cp = await startTestControlPlane("identity-hardening", { clock: () => new Date(now) });
});
afterAll(() => cp.close());

const problemType = /application\/problem\+json/;

function encode(key: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(key), "utf8").toString("base64url");
}

describe("signature keyids", () => {
  async function signedAs(keyId: string) {
    const path = "/agents/agt_01jz0000000000000000000000/config";
    const headers = await signRequest(
      { method: "GET", url: path, headers: {} },
      { keyId: "placeholder", key: Buffer.alloc(32, 7), created: Math.floor(now / 1000) },
    );
    // Put the hostile keyid in the signature parameters, as an attacker would.
    headers["signature-input"] = headers["signature-input"]!.replace(
      'keyid="placeholder"',
      `keyid="${keyId}"`,
    );
    const response = await fetch(cp.url + path, { headers });
    return {
      status: response.status,
      type: response.headers.get("content-type") ?? "",
      body: await response.text(),
    };
  }

  it("refuses a 5,000-character keyid with 401 problem+json, before any lookup", async () => {
    const response = await signedAs("a".repeat(5000));
    expect(response.status).toBe(401);
    expect(response.type).toMatch(problemType);
    expect(response.body).not.toContain("a".repeat(200));
  });

  it("refuses a non-ASCII keyid with 401 problem+json", async () => {
    const response = await signedAs("agt_\u00e9\u00e9\u00e9");
    expect(response.status).toBe(401);
    expect(response.type).toMatch(problemType);
  });

  it("refuses a keyid that is not an agent id without asking the store", async () => {
    const lookups = vi.spyOn(cp.runtime.store.agents, "get");
    try {
      for (const keyId of ["not-an-agent", "a".repeat(128), "agt_../../x"]) {
        const response = await signedAs(keyId);
        expect(response.status).toBe(401);
        expect(JSON.parse(response.body).detail).toMatch(/unknown keyid/);
      }
      expect(lookups).not.toHaveBeenCalled();
    } finally {
      lookups.mockRestore();
    }
  });
});

describe("pagination cursors", () => {
  let admin: string;
  beforeAll(async () => {
    admin = await cp.token("admin");
    for (let n = 0; n < 3; n++) {
      await cp.request("POST", "/jobs", { token: admin, body: { git_ref: `main-${n}` } });
    }
  });

  it("refuses a jobs cursor forged with another status partition", async () => {
    const page = await cp.request("GET", "/jobs?status=queued&limit=1", { token: admin });
    expect(page.status).toBe(200);
    const issued = JSON.parse(Buffer.from(page.body.next_cursor, "base64url").toString("utf8"));
    const forged = encode({ ...issued, status: "running" });
    const response = await cp.request("GET", `/jobs?status=queued&limit=1&cursor=${forged}`, {
      token: admin,
    });
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toMatch(problemType);
    // The cursor issued for the listing itself still works.
    const next = await cp.request("GET", `/jobs?status=queued&limit=1&cursor=${page.body.next_cursor}`, {
      token: admin,
    });
    expect(next.status).toBe(200);
  });

  it("refuses cursors with the wrong key types, extra keys or garbage, on every listing", async () => {
    const forgeries = [
      "garbage!",
      "bm90IGpzb24",
      encode({ job_id: 1, listing: "jobs", created_at: "x" }),
      encode({ job_id: "job_x", listing: "all", created_at: "x", extra: 1 }),
      encode({ job_id: "job_x", listing: "other", created_at: "x" }),
      encode({ chain: "main", seq: "1" }),
      encode({ chain: "other", seq: 1 }),
      encode({ agent_id: "agt_x", listing: "x".repeat(5000) }),
      encode({ credential_id: "c", kind: "signin", created_at: "x" }),
    ];
    const auditor = await cp.token("auditor");
    for (const path of [
      "/jobs",
      "/jobs?status=failed",
      "/agents",
      "/agents?region=eu-west-1",
      "/access/tokens",
    ]) {
      for (const cursor of forgeries) {
        const joiner = path.includes("?") ? "&" : "?";
        const response = await cp.request("GET", `${path}${joiner}cursor=${cursor}`, { token: admin });
        expect(response.status, `${path} ${cursor}`).toBe(400);
        expect(response.headers.get("content-type")).toMatch(problemType);
      }
    }
    for (const query of ["", "actor=user:x&", "target=job:x&", "from=2020-01-01T00:00:00Z&"]) {
      for (const cursor of forgeries) {
        const response = await cp.request("GET", `/audit/events?${query}cursor=${cursor}`, {
          token: auditor,
        });
        expect(response.status, `${query} ${cursor}`).toBe(400);
        expect(response.headers.get("content-type")).toMatch(problemType);
      }
    }
  });

  it("refuses an audit cursor whose seq lies outside the period asked for", async () => {
    const auditor = await cp.token("auditor");
    const head = (await cp.runtime.store.audit.head("main"))!;
    const to = (await cp.runtime.store.audit.eventAt("main", 2))!.time;
    const response = await cp.request(
      "GET",
      `/audit/events?order=asc&to=${encodeURIComponent(to)}&cursor=${encode({ chain: "main", seq: head.seq + 50 })}`,
      { token: auditor },
    );
    expect(response.status).toBe(400);
  });
});

describe("the session cookie over HTTPS", () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    server = createServer(createApp(cp.runtime, { secureCookies: true }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );

  it("is named with the __Host- prefix (Secure, Path=/, no Domain), and only that name is accepted", async () => {
    const link = await cp.runtime.sessions.createSigninLink(
      { userId: "alice", role: "viewer" },
      systemContext("test"),
    );
    const response = await fetch(`${url}/auth/signin-link?token=${link.token}`, { redirect: "manual" });
    const cookies = response.headers.getSetCookie();
    const session = cookies.find((cookie) => cookie.startsWith("__Host-hcp_session="));
    expect(session, cookies.join("\n")).toBeDefined();
    expect(session).toMatch(/; Path=\//);
    expect(session).toMatch(/; Secure/);
    expect(session).toMatch(/; HttpOnly/);
    expect(session).not.toMatch(/Domain=/i);
    expect(cookies.some((cookie) => cookie.startsWith("hcp_session="))).toBe(false);

    const sessionId = /^__Host-hcp_session=([^;]+)/.exec(session!)![1]!;
    expect(
      (await fetch(`${url}/auth/me`, { headers: { cookie: `__Host-hcp_session=${sessionId}` } })).status,
    ).toBe(200);
    // The unprefixed name could be planted by a sibling domain: not read over HTTPS.
    expect((await fetch(`${url}/auth/me`, { headers: { cookie: `hcp_session=${sessionId}` } })).status).toBe(
      401,
    );
  });

  it("keeps the plain name on loopback http, where __Host- cookies cannot be set", async () => {
    const link = await cp.runtime.sessions.createSigninLink(
      { userId: "bob", role: "viewer" },
      systemContext("test"),
    );
    const response = await fetch(`${cp.url}/auth/signin-link?token=${link.token}`, { redirect: "manual" });
    expect(response.headers.getSetCookie().some((cookie) => cookie.startsWith("hcp_session="))).toBe(true);
  });
});

describe("API tokens", () => {
  it("stop working once expired, with 401 saying so", async () => {
    const issued = await cp.runtime.credentials.createApiToken(
      { role: "viewer", name: "short-lived", ttlSeconds: 60 },
      systemContext("test"),
    );
    expect((await cp.request("GET", "/jobs", { token: issued.token })).status).toBe(200);
    const before = now;
    now += 59 * 1000;
    expect((await cp.request("GET", "/jobs", { token: issued.token })).status).toBe(200);
    now += 2 * 1000;
    const expired = await cp.request("GET", "/jobs", { token: issued.token });
    now = before;
    expect(expired.status).toBe(401);
    expect(expired.headers.get("content-type")).toMatch(problemType);
    expect(expired.body.detail).toMatch(/expired/);
    const listed = await cp.request("GET", "/access/tokens", { token: await cp.token("admin") });
    expect(
      listed.body.tokens.find((token: { token_id: string }) => token.token_id === issued.token_id),
    ).toBeDefined();
  });
});

describe("failed sign-ins", () => {
  it("are in the audit trail as denied session.create events with the reason", async () => {
    const unknown = await fetch(`${cp.url}/auth/signin-link?token=hcp_signin_${"x".repeat(43)}`, {
      redirect: "manual",
    });
    expect(unknown.status).toBe(401);
    const link = await cp.runtime.sessions.createSigninLink(
      { userId: "carol", role: "viewer" },
      systemContext("test"),
    );
    expect(
      (await fetch(`${cp.url}/auth/signin-link?token=${link.token}`, { redirect: "manual" })).status,
    ).toBe(303);
    const reused = await fetch(`${cp.url}/auth/signin-link?token=${link.token}`, { redirect: "manual" });
    expect(reused.status).toBe(401);

    const auditor = await cp.token("auditor");
    await cp.runtime.audit.flush();
    const events = await cp.request("GET", "/audit/events?action=session.create&outcome=denied&limit=20", {
      token: auditor,
    });
    const reasons = events.body.events.map((event: { details: { reason: string } }) => event.details.reason);
    expect(reasons).toEqual(
      expect.arrayContaining(["unknown sign-in link", "sign-in link expired or already used"]),
    );
    for (const event of events.body.events) {
      expect(event).toMatchObject({
        outcome: "denied",
        actor: { type: "anonymous", ip: expect.any(String) },
      });
    }
  });
});
