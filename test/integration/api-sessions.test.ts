import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemContext } from "../../runtime/src/domain/principal";
import { hashToken } from "../../runtime/src/identity/tokens";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";

let cp: TestControlPlane;
beforeAll(async () => {
  cp = await startTestControlPlane("sessions");
});
afterAll(() => cp.close());

async function signIn(): Promise<{ sessionId: string; setCookie: string }> {
  const link = await cp.runtime.sessions.createSigninLink(
    {
      userId: "local-admin",
      role: "admin",
    },
    systemContext("test"),
  );
  const response = await cp.request("GET", `/auth/signin-link?token=${link.token}`);
  expect(response.status).toBe(303);
  expect(response.headers.get("location")).toBe("/console/");
  const setCookie = response.headers.get("set-cookie") ?? "";
  const sessionId = /hcp_session=([^;]+)/.exec(setCookie)?.[1];
  if (!sessionId) throw new Error("no session cookie");
  return { sessionId, setCookie };
}

describe("sign-in link", () => {
  it("mints a session cookie that is HttpOnly and SameSite=Lax (not Secure on loopback http)", async () => {
    const { sessionId, setCookie } = await signIn();
    expect(sessionId).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Lax/);
    expect(setCookie).not.toMatch(/Secure/);
  });

  it("stores the session only by its hash, with a TTL", async () => {
    const { sessionId } = await signIn();
    const stored = await cp.runtime.store.sessions.get(hashToken(sessionId));
    expect(stored).toMatchObject({ user_id: "local-admin", provider: "signin-link", role: "admin" });
    expect(stored!.expires_at).toBeGreaterThan(Date.now() / 1000);
    expect(JSON.stringify(stored)).not.toContain(sessionId);
  });

  it("works once", async () => {
    const link = await cp.runtime.sessions.createSigninLink(
      {
        userId: "local-admin",
        role: "admin",
      },
      systemContext("test"),
    );
    expect((await cp.request("GET", `/auth/signin-link?token=${link.token}`)).status).toBe(303);
    const again = await cp.request("GET", `/auth/signin-link?token=${link.token}`);
    expect(again.status).toBe(401);
    expect(again.headers.get("set-cookie")).toBeNull();
  });

  it("is refused through a proxy (loopback only)", async () => {
    const link = await cp.runtime.sessions.createSigninLink(
      {
        userId: "local-admin",
        role: "admin",
      },
      systemContext("test"),
    );
    const proxied = await cp.request("GET", `/auth/signin-link?token=${link.token}`, {
      headers: { "x-forwarded-for": "203.0.113.9" },
    });
    expect(proxied.status).toBe(403);
  });

  it("lets the session cookie authenticate API calls", async () => {
    const { sessionId } = await signIn();
    const response = await cp.request("GET", "/jobs", { headers: { cookie: `hcp_session=${sessionId}` } });
    expect(response.status).toBe(200);
  });
});

describe("POST /auth/validate", () => {
  it("reports a live session", async () => {
    const { sessionId } = await signIn();
    const response = await cp.request("POST", "/auth/validate", { body: { session_id: sessionId } });
    expect(response.body).toEqual({
      valid: true,
      user_id: "local-admin",
      provider: "signin-link",
      expires_at: expect.any(String),
    });
  });

  it("reports an unknown session as invalid", async () => {
    const response = await cp.request("POST", "/auth/validate", { body: { session_id: "A".repeat(43) } });
    expect(response.body).toEqual({ valid: false });
  });

  it("refuses a body without session_id", async () => {
    const response = await cp.request("POST", "/auth/validate", { body: { user_id: "admin" } });
    expect(response.status).toBe(400);
  });
});

describe("POST /auth/logout", () => {
  it("ends the session named in the query", async () => {
    const { sessionId } = await signIn();
    const response = await cp.request("POST", `/auth/logout?session_id=${sessionId}`);
    expect(response.body).toEqual({ status: "logged out" });
    expect((await cp.request("POST", "/auth/validate", { body: { session_id: sessionId } })).body.valid).toBe(
      false,
    );
    expect(
      (await cp.request("GET", "/jobs", { headers: { cookie: `hcp_session=${sessionId}` } })).status,
    ).toBe(401);
  });

  it("ends the session of the cookie and clears it", async () => {
    const { sessionId, setCookie } = await signIn();
    // A cookie-authenticated POST carries the session's CSRF token (the hcp_csrf cookie's value).
    const csrf = /hcp_csrf=([^;]+)/.exec(setCookie)?.[1] ?? "";
    const response = await cp.request("POST", "/auth/logout", {
      headers: { cookie: `hcp_session=${sessionId}`, "x-csrf-token": csrf },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("set-cookie")).toMatch(/hcp_session=;/);
    expect((await cp.request("POST", "/auth/validate", { body: { session_id: sessionId } })).body.valid).toBe(
      false,
    );
  });
});

describe("no caller-asserted sessions", () => {
  it("has no POST /auth/session that mints a session for a claimed user_id", async () => {
    const response = await cp.request("POST", "/auth/session", {
      body: { user_id: "admin", provider: "github" },
    });
    expect(response.status).toBe(404);
  });
});
