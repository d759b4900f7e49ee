import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RequestContext } from "../../runtime/src/domain/principal";
import { csrfToken } from "../../runtime/src/identity/csrf";
import type { VerifiedIdentity } from "../../runtime/src/identity/oauth-providers";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";

/**
 * Session lifecycle: idle and absolute expiry, rotation when the role changes, active devices, sign out
 * everywhere, admin force sign-out, and CSRF on cookie-authenticated writes. Sessions are minted by the
 * same use case the OAuth callback calls once the provider's answer has verified (identity-oauth covers
 * the callback itself).
 */
let cp: TestControlPlane;
let offsetMs = 0;
let admin: string;
let seq = 0;

beforeAll(async () => {
  cp = await startTestControlPlane("identity-sessions", {
    clock: () => new Date(Date.now() + offsetMs),
    env: {
      HYBRID_CICD_SESSION_IDLE_TIMEOUT: "30m",
      HYBRID_CICD_SESSION_MAX_AGE: "2h",
      HYBRID_CICD_ROLE_BINDINGS: "domain:example.com=viewer",
    },
  });
  admin = await cp.token("admin");
});
afterAll(() => cp.close());

const context = (userAgent = "test-browser"): RequestContext => ({
  requestId: `test-${++seq}`,
  ip: "127.0.0.1",
  userAgent,
});

async function signIn(identity: Partial<VerifiedIdentity> & { subject: string }, userAgent?: string) {
  const { sessionId } = await cp.runtime.sessions.signInWithIdentity(
    { provider: "google", hostedDomain: identity.email?.split("@")[1], ...identity },
    context(userAgent),
  );
  return sessionId;
}

const withCookie = (sessionId: string, csrf = true) => ({
  headers: {
    cookie: `hcp_session=${sessionId}`,
    ...(csrf ? { "x-csrf-token": csrfToken(sessionId) } : {}),
  },
});

function newSessionFrom(headers: Headers): string | undefined {
  return headers
    .getSetCookie()
    .map((line) => /^hcp_session=([^;]+)/.exec(line)?.[1])
    .find(Boolean);
}

describe("expiry", () => {
  it("ends a session after the idle timeout", async () => {
    const session = await signIn({ subject: "idle", email: "idle@example.com" });
    offsetMs = 29 * 60 * 1000;
    try {
      expect((await cp.request("GET", "/jobs", withCookie(session))).status).toBe(200);
      offsetMs += 29 * 60 * 1000; // active 29 minutes ago: still within the idle timeout
      expect((await cp.request("GET", "/jobs", withCookie(session))).status).toBe(200);
      offsetMs += 31 * 60 * 1000;
      const expired = await cp.request("GET", "/jobs", withCookie(session));
      expect(expired.status).toBe(401);
      expect(expired.body.detail).toMatch(/expired or was signed out/);
      expect((await cp.request("POST", "/auth/validate", { body: { session_id: session } })).body).toEqual({
        valid: false,
      });
    } finally {
      offsetMs = 0;
    }
  });

  it("ends a session at its absolute lifetime, however active", async () => {
    const session = await signIn({ subject: "busy", email: "busy@example.com" });
    try {
      for (let minutes = 20; minutes < 120; minutes += 20) {
        offsetMs = minutes * 60 * 1000;
        expect((await cp.request("GET", "/jobs", withCookie(session))).status, `${minutes} min`).toBe(200);
      }
      offsetMs = 121 * 60 * 1000;
      expect((await cp.request("GET", "/jobs", withCookie(session))).status).toBe(401);
    } finally {
      offsetMs = 0;
    }
  });
});

describe("rotation on privilege change", () => {
  it("rotates the session id when the role changes, and the old id stops working", async () => {
    const session = await signIn({ subject: "carol", email: "carol@elsewhere.test" });
    expect((await cp.request("GET", "/jobs", withCookie(session))).status).toBe(403);

    const granted = await cp.request("PUT", "/access/bindings", {
      token: admin,
      body: { subject: "email:carol@elsewhere.test", role: "operator" },
    });
    expect(granted.status).toBe(200);

    const next = await cp.request("GET", "/auth/me", withCookie(session));
    expect(next.status).toBe(200);
    expect(next.body.role).toBe("operator");
    const rotated = newSessionFrom(next.headers);
    expect(rotated).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(rotated).not.toBe(session);
    expect(next.headers.getSetCookie().join()).toContain(`hcp_csrf=${csrfToken(rotated!)}`);
    expect(next.body.csrf_token).toBe(csrfToken(rotated!));

    expect((await cp.request("GET", "/jobs", withCookie(session))).status).toBe(401);
    const created = await cp.request("POST", "/jobs", { ...withCookie(rotated!), body: { git_ref: "main" } });
    expect(created.status).toBe(201);

    // Taking the role away rotates again, into a session that can only sign out.
    await cp.request("DELETE", "/access/bindings?subject=email:carol@elsewhere.test", { token: admin });
    const demoted = await cp.request("GET", "/jobs", withCookie(rotated!));
    expect(demoted.status).toBe(403);
    const third = newSessionFrom(demoted.headers)!;
    expect(third).toBeDefined();
    expect((await cp.request("GET", "/jobs", withCookie(rotated!))).status).toBe(401);
    expect((await cp.request("POST", "/auth/logout-all", withCookie(third))).status).toBe(200);
  });

  it("keeps the fixed role of a sign-in-link session", async () => {
    const link = await cp.runtime.sessions.createSigninLink(
      { userId: "local-admin", role: "admin" },
      context(),
    );
    const { sessionId } = await cp.runtime.sessions.signInWithLink(link.token, context());
    const me = await cp.request("GET", "/auth/me", withCookie(sessionId));
    expect(me.body.role).toBe("admin");
    expect(newSessionFrom(me.headers)).toBeUndefined();
  });
});

describe("active devices", () => {
  it("lists my sessions with provider, times, user agent and address, marking this one", async () => {
    const laptop = await signIn({ subject: "dana", email: "dana@example.com" }, "Laptop/1.0");
    await signIn({ subject: "dana", email: "dana@example.com" }, "Phone/2.0");
    const response = await cp.request("GET", "/auth/sessions", withCookie(laptop));
    expect(response.status).toBe(200);
    expect(response.body.sessions).toHaveLength(2);
    const current = response.body.sessions.find((session: { current: boolean }) => session.current);
    expect(current).toMatchObject({
      id: expect.stringMatching(/^[0-9a-f]{12}$/),
      provider: "google",
      user_agent: "Laptop/1.0",
      ip: "127.0.0.1",
      created_at: expect.any(String),
      last_seen_at: expect.any(String),
      expires_at: expect.any(String),
    });
    expect(JSON.stringify(response.body)).not.toContain(laptop);
  });

  it("signs out one device by its id, and only my own", async () => {
    const laptop = await signIn({ subject: "erin", email: "erin@example.com" }, "Laptop/1.0");
    const phone = await signIn({ subject: "erin", email: "erin@example.com" }, "Phone/2.0");
    const other = await signIn({ subject: "frank", email: "frank@example.com" });
    const listed = (await cp.request("GET", "/auth/sessions", withCookie(laptop))).body.sessions;
    const phoneId = listed.find((session: { user_agent: string }) => session.user_agent === "Phone/2.0").id;
    const frankId = (await cp.request("GET", "/auth/sessions", withCookie(other))).body.sessions[0].id;

    expect((await cp.request("DELETE", `/auth/sessions/${frankId}`, withCookie(laptop))).status).toBe(404);
    expect((await cp.request("DELETE", `/auth/sessions/${phoneId}`, withCookie(laptop, false))).status).toBe(
      403,
    );
    const ended = await cp.request("DELETE", `/auth/sessions/${phoneId}`, withCookie(laptop));
    expect(ended.status).toBe(200);
    expect((await cp.request("GET", "/jobs", withCookie(phone))).status).toBe(401);
    expect((await cp.request("GET", "/jobs", withCookie(laptop))).status).toBe(200);
    expect((await cp.request("GET", "/jobs", withCookie(other))).status).toBe(200);
  });

  it("signs out everywhere", async () => {
    const sessions = [
      await signIn({ subject: "gina", email: "gina@example.com" }, "A"),
      await signIn({ subject: "gina", email: "gina@example.com" }, "B"),
      await signIn({ subject: "gina", email: "gina@example.com" }, "C"),
    ];
    const response = await cp.request("POST", "/auth/logout-all", withCookie(sessions[1]!));
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: "logged out", sessions_ended: 3 });
    expect(response.headers.getSetCookie().join()).toMatch(/hcp_session=;/);
    for (const session of sessions) {
      expect((await cp.request("GET", "/jobs", withCookie(session))).status).toBe(401);
    }
  });
});

describe("admin force sign-out", () => {
  it("ends every session of a user; only admins may", async () => {
    const first = await signIn({ subject: "hank", email: "hank@example.com" });
    const second = await signIn({ subject: "hank", email: "hank@example.com" });
    const listed = await cp.request("GET", "/access/users/google:hank/sessions", {
      token: await cp.token("auditor"),
    });
    expect(listed.status).toBe(200);
    expect(listed.body.sessions).toHaveLength(2);
    const refused = await cp.request("POST", "/access/users/google:hank/sign-out", {
      token: await cp.token("operator"),
    });
    expect(refused.status).toBe(403);
    const forced = await cp.request("POST", "/access/users/google:hank/sign-out", { token: admin });
    expect(forced.status).toBe(200);
    expect(forced.body).toEqual({ status: "signed out", user_id: "google:hank", sessions_ended: 2 });
    for (const session of [first, second]) {
      expect((await cp.request("GET", "/jobs", withCookie(session))).status).toBe(401);
    }
  });
});

describe("CSRF", () => {
  it("refuses a cookie-authenticated write without the session's CSRF token", async () => {
    const operator = await cp.request("PUT", "/access/bindings", {
      token: admin,
      body: { subject: "email:ivan@elsewhere.test", role: "operator" },
    });
    expect(operator.status).toBe(200);
    const session = await signIn({ subject: "ivan", email: "ivan@elsewhere.test" });
    const body = { git_ref: "main" };
    const missing = await cp.request("POST", "/jobs", { ...withCookie(session, false), body });
    expect(missing.status).toBe(403);
    expect(missing.body.detail).toMatch(/X-CSRF-Token/);
    const other = await signIn({ subject: "ivan", email: "ivan@elsewhere.test" });
    const wrong = await cp.request("POST", "/jobs", {
      headers: { cookie: `hcp_session=${session}`, "x-csrf-token": csrfToken(other) },
      body,
    });
    expect(wrong.status).toBe(403);
    expect((await cp.request("POST", "/jobs", { ...withCookie(session), body })).status).toBe(201);
    // Reads need no token; bearer tokens are not sent by browsers on their own and need none either.
    expect((await cp.request("GET", "/jobs", withCookie(session, false))).status).toBe(200);
    expect((await cp.request("POST", "/jobs", { token: await cp.token("operator"), body })).status).toBe(201);
  });

  it("refuses a cookie logout without the token (but not one naming the session id)", async () => {
    const session = await signIn({ subject: "jane", email: "jane@example.com" });
    expect((await cp.request("POST", "/auth/logout", withCookie(session, false))).status).toBe(403);
    expect((await cp.request("GET", "/jobs", withCookie(session))).status).toBe(200);
    expect((await cp.request("POST", `/auth/logout?session_id=${session}`)).status).toBe(200);
    expect((await cp.request("GET", "/jobs", withCookie(session))).status).toBe(401);
  });
});
