import { createServer } from "node:net";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { storeClientSecret } from "../../runtime/src/identity/oauth-providers";
import { hashToken } from "../../runtime/src/identity/tokens";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";
import {
  startAuthorizationServer,
  type TestAuthorizationServer,
  TestBrowser,
} from "../support/oidc-provider";

/**
 * Sign-in end to end: the control plane (openid-client) against a real authorization server
 * (oidc-provider) on loopback, through a browser that keeps cookies and follows redirects.
 */
let op: TestAuthorizationServer;
let cp: TestControlPlane;
let clockOffsetMs = 0;

const secrets = { google: "google-client-secret", github: "github-client-secret" };

beforeAll(async () => {
  op = await startAuthorizationServer([
    { id: "alice-sub", email: "alice@example.com", name: "Alice", hostedDomain: "example.com" },
    // A consumer Google account whose verified address happens to be at example.com: no `hd`.
    { id: "carol-sub", email: "carol@example.com", name: "Carol" },
    { id: "mallory-sub", email: "mallory@elsewhere.test", name: "Mallory" },
    { id: "unverified-sub", email: "bob@example.com", emailVerified: false },
    {
      id: "octocat-account",
      githubLogin: "Octocat",
      githubId: 583231,
      email: "octo@elsewhere.test",
      name: "The Octocat",
    },
    // Someone who registered the login after the original owner renamed theirs: same login, new id.
    { id: "new-octocat-account", githubLogin: "octocat", githubId: 99_000_001 },
  ]);
  cp = await startTestControlPlane("identity-oauth", {
    clock: () => new Date(Date.now() + clockOffsetMs),
    env: {
      HYBRID_CICD_OAUTH_GOOGLE_CLIENT_ID: "google-client",
      HYBRID_CICD_OAUTH_GOOGLE_ISSUER: op.issuer,
      HYBRID_CICD_OAUTH_GITHUB_CLIENT_ID: "github-client",
      HYBRID_CICD_OAUTH_GITHUB_URL: op.issuer,
      HYBRID_CICD_OAUTH_GITHUB_API_URL: op.githubApiUrl,
      HYBRID_CICD_ROLE_BINDINGS:
        "email:alice@example.com=admin,github-id:583231=operator,domain:example.com=viewer",
    },
  });
  await op.start([
    {
      client_id: "google-client",
      client_secret: secrets.google,
      redirect_uris: [`${cp.url}/auth/callback/google`],
    },
    {
      client_id: "github-client",
      client_secret: secrets.github,
      redirect_uris: [`${cp.url}/auth/callback/github`],
    },
  ]);
  const prefix = cp.runtime.env.HYBRID_CICD_SECRET_PREFIX;
  await storeClientSecret(cp.runtime.secretStore, prefix, "google", secrets.google);
  await storeClientSecret(cp.runtime.secretStore, prefix, "github", secrets.github);
});

afterAll(async () => {
  await cp?.close();
  await op?.close();
});

const isCallback = (url: URL) => url.pathname.startsWith("/auth/callback/");

/** Runs the sign-in up to the provider's redirect back to us, and returns that callback URL. */
async function authorize(browser: TestBrowser, provider: string, account: string): Promise<URL> {
  op.signInAs(account);
  const { url } = await browser.follow(`${cp.url}/auth/login/${provider}`, isCallback);
  expect(url.origin).toBe(cp.url);
  return url;
}

async function sessionCount(userId: string): Promise<number> {
  return (await cp.runtime.store.sessions.listByUser(userId)).length;
}

function sessionFrom(response: Response): string | undefined {
  return response.headers
    .getSetCookie()
    .map((line) => /^hcp_session=([^;]+)/.exec(line)?.[1])
    .find(Boolean);
}

describe("OpenID Connect sign-in (Google)", () => {
  it("redirects with PKCE (S256), state and nonce, and binds the flow to the browser", async () => {
    const browser = new TestBrowser();
    const response = await browser.get(`${cp.url}/auth/login/google`);
    expect(response.status).toBe(303);
    const location = new URL(response.headers.get("location")!);
    expect(location.origin).toBe(op.issuer);
    expect(location.searchParams.get("code_challenge_method")).toBe("S256");
    expect(location.searchParams.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(location.searchParams.get("state")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(location.searchParams.get("nonce")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(location.searchParams.get("redirect_uri")).toBe(`${cp.url}/auth/callback/google`);
    expect(response.headers.getSetCookie().join("\n")).toMatch(
      /hcp_oauth=[^;]+;.*Path=\/auth\/callback;.*HttpOnly/,
    );
    const flow = await cp.runtime.store.oauthFlows.take(hashToken(location.searchParams.get("state")!));
    expect(flow).toMatchObject({ provider: "google", redirect_uri: `${cp.url}/auth/callback/google` });
    expect(JSON.stringify(flow)).not.toContain(location.searchParams.get("state"));
  });

  it("signs a bound user in with a session cookie, then redirects to the console", async () => {
    const browser = new TestBrowser();
    const callback = await authorize(browser, "google", "alice-sub");
    const response = await browser.get(callback);
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("/console/");
    const sessionId = sessionFrom(response);
    expect(sessionId).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const me = await cp.request("GET", "/auth/me", { headers: { cookie: `hcp_session=${sessionId}` } });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({
      user_id: "google:alice-sub",
      role: "admin",
      provider: "google",
      via: "session",
      email: "alice@example.com",
      name: "Alice",
      csrf_token: browser.cookie("hcp_csrf"),
    });
    expect(me.body.permissions).toContain("access:manage");
    const stored = await cp.runtime.store.sessions.get(hashToken(sessionId!));
    expect(stored?.subjects).toEqual(["google:alice-sub", "email:alice@example.com", "domain:example.com"]);
    // No provider token is kept.
    expect(JSON.stringify(stored)).not.toMatch(/access_token|id_token|refresh_token/);
  });

  it("returns to the local path asked for, never to another site", async () => {
    const browser = new TestBrowser();
    op.signInAs("alice-sub");
    const local = await browser.follow(`${cp.url}/auth/login/google?return_to=/console/jobs`, isCallback);
    expect((await browser.get(local.url)).headers.get("location")).toBe("/console/jobs");
    const away = await browser.follow(`${cp.url}/auth/login/google?return_to=//evil.test/x`, isCallback);
    expect((await browser.get(away.url)).headers.get("location")).toBe("/console/");
  });

  it("refuses a callback whose state was altered, with an error page and no session", async () => {
    const browser = new TestBrowser();
    const callback = await authorize(browser, "google", "alice-sub");
    callback.searchParams.set("state", "A".repeat(43));
    const response = await browser.get(callback);
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toMatch(/text\/html/);
    expect(await response.text()).toMatch(/unknown or already used sign-in/);
    expect(sessionFrom(response)).toBeUndefined();
  });

  it("refuses a replayed callback (the code and its flow are used once)", async () => {
    const browser = new TestBrowser();
    const callback = await authorize(browser, "google", "alice-sub");
    expect((await browser.get(callback)).status).toBe(303);
    const before = await sessionCount("google:alice-sub");
    const replay = await browser.get(callback);
    expect(replay.status).toBe(400);
    expect(sessionFrom(replay)).toBeUndefined();
    expect(await sessionCount("google:alice-sub")).toBe(before);
  });

  it("refuses a code redeemed with another flow's PKCE verifier (code injection)", async () => {
    const browser = new TestBrowser();
    const first = await authorize(browser, "google", "alice-sub");
    const second = await authorize(browser, "google", "alice-sub");
    const injected = new URL(second);
    injected.searchParams.set("code", first.searchParams.get("code")!);
    const response = await browser.get(injected);
    expect(response.status).toBe(400);
    expect(await response.text()).toMatch(/refused the authorization code: invalid_grant/);
    expect(sessionFrom(response)).toBeUndefined();
  });

  it("refuses an ID Token whose nonce is not the flow's", async () => {
    const browser = new TestBrowser();
    const callback = await authorize(browser, "google", "alice-sub");
    await cp.runtime.store.doc.send(
      new UpdateCommand({
        TableName: cp.runtime.store.tables.oauth_flows,
        Key: { state_hash: hashToken(callback.searchParams.get("state")!) },
        UpdateExpression: "SET nonce = :other",
        ExpressionAttributeValues: { ":other": "another-nonce" },
      }),
    );
    const response = await browser.get(callback);
    expect(response.status).toBe(400);
    expect(await response.text()).toMatch(/did not verify: unexpected JWT claim value encountered \(nonce\)/);
    expect(sessionFrom(response)).toBeUndefined();
  });

  it("refuses a flow finished after ten minutes", async () => {
    const browser = new TestBrowser();
    const callback = await authorize(browser, "google", "alice-sub");
    clockOffsetMs = 11 * 60 * 1000;
    try {
      const response = await browser.get(callback);
      expect(response.status).toBe(400);
      expect(await response.text()).toMatch(/took too long/);
      expect(sessionFrom(response)).toBeUndefined();
    } finally {
      clockOffsetMs = 0;
    }
  });

  it("refuses a callback in a browser that did not start the flow (login CSRF)", async () => {
    const callback = await authorize(new TestBrowser(), "google", "alice-sub");
    const response = await new TestBrowser().get(callback);
    expect(response.status).toBe(400);
    expect(await response.text()).toMatch(/started in another browser/);
  });

  it("refuses a sign-in the user declined at the provider", async () => {
    const browser = new TestBrowser();
    const callback = await authorize(browser, "google", "alice-sub");
    const declined = new URL(callback);
    declined.search = new URLSearchParams({
      error: "access_denied",
      state: callback.searchParams.get("state")!,
      iss: op.issuer,
    }).toString();
    const response = await browser.get(declined);
    expect(response.status).toBe(400);
    expect(await response.text()).toMatch(/access_denied/);
  });

  it("answers API clients with problem+json instead of a page", async () => {
    const response = await cp.request("GET", "/auth/callback/google?state=x&code=y", {
      headers: { accept: "application/json" },
    });
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toMatch(/application\/problem\+json/);
    expect(response.body.type).toBe("/problems/sign-in-failed");
  });

  it("signs in a user without a role binding, who is refused everywhere except sign-out", async () => {
    const browser = new TestBrowser();
    const response = await browser.get(await authorize(browser, "google", "mallory-sub"));
    expect(response.status).toBe(303);
    const sessionId = sessionFrom(response)!;
    const cookie = { cookie: `hcp_session=${sessionId}`, "x-csrf-token": browser.cookie("hcp_csrf")! };
    for (const [method, path] of [
      ["GET", "/jobs"],
      ["GET", "/auth/me"],
      ["GET", "/auth/sessions"],
      ["GET", "/agents"],
      ["POST", "/jobs"],
    ] as const) {
      const refused = await cp.request(method, path, { headers: cookie });
      expect(refused.status, `${method} ${path}`).toBe(403);
      expect(refused.body.detail).toMatch(/no role is bound/);
    }
    const out = await cp.request("POST", "/auth/logout-all", { headers: cookie });
    expect(out.status).toBe(200);
    expect(out.body.sessions_ended).toBeGreaterThanOrEqual(1);
    expect((await cp.request("GET", "/jobs", { headers: cookie })).status).toBe(401);
  });

  it("binds a Google account by domain only for the Workspace domain of its hd claim", async () => {
    const browser = new TestBrowser();
    const response = await browser.get(await authorize(browser, "google", "carol-sub"));
    const stored = await cp.runtime.store.sessions.get(hashToken(sessionFrom(response)!));
    // Verified address at example.com, but no `hd`: not the organisation's account, no domain binding.
    expect(stored).toMatchObject({
      user_id: "google:carol-sub",
      subjects: ["google:carol-sub", "email:carol@example.com"],
    });
    expect(stored?.role).toBeUndefined();
  });

  it("does not bind a role by an e-mail address the provider has not verified", async () => {
    const browser = new TestBrowser();
    const response = await browser.get(await authorize(browser, "google", "unverified-sub"));
    const stored = await cp.runtime.store.sessions.get(hashToken(sessionFrom(response)!));
    expect(stored).toMatchObject({ user_id: "google:unverified-sub", subjects: ["google:unverified-sub"] });
    expect(stored?.role).toBeUndefined();
    expect(stored?.email).toBeUndefined();
  });
});

describe("GitHub sign-in", () => {
  it("signs in by GitHub user id with PKCE and state (no nonce: OAuth 2.0)", async () => {
    const browser = new TestBrowser();
    const start = await browser.get(`${cp.url}/auth/login/github`);
    const location = new URL(start.headers.get("location")!);
    expect(location.pathname).toBe("/login/oauth/authorize");
    expect(location.searchParams.get("code_challenge_method")).toBe("S256");
    expect(location.searchParams.get("nonce")).toBeNull();
    expect(location.searchParams.get("scope")).toBe("read:user user:email");
    op.signInAs("octocat-account");
    const { url } = await browser.follow(location, isCallback);
    const response = await browser.get(url);
    expect(response.status).toBe(303);
    const sessionId = sessionFrom(response)!;
    const me = await cp.request("GET", "/auth/me", { headers: { cookie: `hcp_session=${sessionId}` } });
    expect(me.body).toMatchObject({
      user_id: "github-id:583231",
      role: "operator",
      provider: "github",
      email: "octo@elsewhere.test",
    });
    const csrf = { cookie: `hcp_session=${sessionId}`, "x-csrf-token": browser.cookie("hcp_csrf")! };
    expect((await cp.request("POST", "/jobs", { headers: csrf, body: { git_ref: "main" } })).status).toBe(
      201,
    );
    expect((await cp.request("GET", "/access/bindings", { headers: csrf })).status).toBe(403);
  });

  it("binds by the numeric id: whoever holds the login now does not inherit its role", async () => {
    const browser = new TestBrowser();
    const response = await browser.get(await authorize(browser, "github", "new-octocat-account"));
    expect(response.status).toBe(303);
    const stored = await cp.runtime.store.sessions.get(hashToken(sessionFrom(response)!));
    expect(stored).toMatchObject({ user_id: "github-id:99000001", subjects: ["github-id:99000001"] });
    expect(stored?.role).toBeUndefined();
    const signIn = await cp.runtime.store.audit.list({
      chain: "main",
      actor: "user:github-id:99000001",
      order: "desc",
      limit: 5,
    });
    // The login at sign-in time is in the audit trail, beside the id.
    expect(signIn.items.find((event) => event.action === "session.create")?.details).toMatchObject({
      login: "octocat",
    });
  });

  it("refuses a replayed GitHub callback", async () => {
    const browser = new TestBrowser();
    const callback = await authorize(browser, "github", "octocat-account");
    expect((await browser.get(callback)).status).toBe(303);
    expect((await browser.get(callback)).status).toBe(400);
  });
});

describe("providers", () => {
  it("lists the configured providers for the console's sign-in page", async () => {
    const response = await cp.request("GET", "/auth/providers");
    expect(response.body.providers).toEqual([
      { id: "google", name: "Google", login_url: "/auth/login/google" },
      { id: "github", name: "GitHub", login_url: "/auth/login/github" },
    ]);
  });

  it("answers 404 for a provider that is not configured", async () => {
    expect((await new TestBrowser().get(`${cp.url}/auth/login/oidc`)).status).toBe(404);
  });

  it("shows an error page, and signs nobody in, when the provider is down", async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const down = await startTestControlPlane("identity-down", {
      env: {
        HYBRID_CICD_OAUTH_OIDC_ISSUER: `http://127.0.0.1:${closedPort}`,
        HYBRID_CICD_OAUTH_OIDC_CLIENT_ID: "client",
        HYBRID_CICD_OAUTH_OIDC_NAME: "Corporate SSO",
      },
    });
    try {
      await storeClientSecret(
        down.runtime.secretStore,
        down.runtime.env.HYBRID_CICD_SECRET_PREFIX,
        "oidc",
        "s",
      );
      const response = await new TestBrowser().get(`${down.url}/auth/login/oidc`);
      expect(response.status).toBe(503);
      expect(response.headers.get("retry-after")).toBe("30");
      expect(await response.text()).toMatch(
        /sign-in is unavailable right now: Corporate SSO could not be reached/,
      );
      expect(response.headers.getSetCookie().join()).not.toMatch(/hcp_session|hcp_oauth/);
    } finally {
      await down.close();
    }
  });
});
