import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemContext } from "../../runtime/src/domain/principal";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";

/** Security headers, per-address rate limits with Retry-After, and request size limits. */
let cp: TestControlPlane;

beforeAll(async () => {
  cp = await startTestControlPlane("identity-security", {
    env: { HYBRID_CICD_RATE_LIMIT_SIGNIN: "3/1m", HYBRID_CICD_RATE_LIMIT_TOKENS: "2/1h" },
  });
});
afterAll(() => cp.close());

describe("security headers", () => {
  it("sends a CSP with frame-ancestors none and a per-response script nonce, and no HSTS on loopback http", async () => {
    const first = await cp.request("GET", "/health");
    const second = await cp.request("GET", "/health");
    const csp = first.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("object-src 'none'");
    expect(csp).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9+/=]{24}'/);
    expect(second.headers.get("content-security-policy")).not.toBe(csp);
    expect(first.headers.get("x-frame-options")).toBe("DENY");
    expect(first.headers.get("x-content-type-options")).toBe("nosniff");
    expect(first.headers.get("referrer-policy")).toBe("no-referrer");
    expect(first.headers.get("strict-transport-security")).toBeNull();
    expect(first.headers.get("x-powered-by")).toBeNull();
  });

  it("sends HSTS when served over https", async () => {
    const { createApp } = await import("../../runtime/src/http/app");
    const { createServer } = await import("node:http");
    const server = createServer(createApp(cp.runtime, { secureCookies: true }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as { port: number };
      const response = await fetch(`http://127.0.0.1:${port}/health`);
      expect(response.headers.get("strict-transport-security")).toBe("max-age=31536000; includeSubDomains");
      expect(response.headers.get("content-security-policy")).toContain("upgrade-insecure-requests");
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe("rate limits", () => {
  it("limits sign-in attempts per address, with Retry-After", async () => {
    const statuses: number[] = [];
    let last: Awaited<ReturnType<TestControlPlane["request"]>> | undefined;
    for (let attempt = 0; attempt < 4; attempt++) {
      last = await cp.request("GET", `/auth/signin-link?token=hcs_${"x".repeat(43)}`);
      statuses.push(last.status);
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
    expect(last!.headers.get("content-type")).toMatch(/application\/problem\+json/);
    expect(last!.body.type).toBe("/problems/too-many-requests");
    const retryAfter = Number(last!.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Even a valid link is refused while the address is limited.
    const link = await cp.runtime.sessions.createSigninLink(
      { userId: "local-admin", role: "admin" },
      systemContext("t"),
    );
    expect((await cp.request("GET", `/auth/signin-link?token=${link.token}`)).status).toBe(429);
    // Other endpoints are not counted against it.
    expect((await cp.request("GET", "/health")).status).toBe(200);
  });

  it("limits token creation per address", async () => {
    const admin = await cp.token("admin");
    const create = () =>
      cp.request("POST", "/access/tokens", { token: admin, body: { name: "burst", role: "viewer" } });
    expect((await create()).status).toBe(201);
    expect((await create()).status).toBe(201);
    const limited = await create();
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(60);
  });
});

describe("size limits", () => {
  it("refuses a body over 64 KiB with 413 before authenticating anything", async () => {
    const response = await cp.request("POST", "/access/tokens", {
      token: await cp.token("admin"),
      rawBody: JSON.stringify({ name: "x".repeat(70 * 1024), role: "viewer" }),
      headers: { "content-type": "application/json" },
    });
    expect(response.status).toBe(413);
    expect(response.body.type).toBe("/problems/payload-too-large");
  });

  it("refuses a body that is not JSON with 415", async () => {
    const response = await cp.request("PUT", "/access/bindings", {
      token: await cp.token("admin"),
      rawBody: "subject=email:a@b.c&role=admin",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(response.status).toBe(415);
  });
});
