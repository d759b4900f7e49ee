import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { version } from "../../runtime/src/version";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";

let cp: TestControlPlane;
beforeAll(async () => {
  cp = await startTestControlPlane("system");
});
afterAll(() => cp.close());

describe("health and info", () => {
  it("reports healthy with the product version", async () => {
    const response = await cp.request("GET", "/health");
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: "healthy", version });
  });

  it("names the product, version and environment", async () => {
    const response = await cp.request("GET", "/info");
    expect(response.body).toEqual({ name: "hybrid-cicd-control-plane", version, environment: "test" });
  });
});

describe("request ids", () => {
  it("echoes a sent X-Request-Id", async () => {
    const response = await cp.request("GET", "/health", { headers: { "x-request-id": "trace-123" } });
    expect(response.headers.get("x-request-id")).toBe("trace-123");
  });

  it("mints one when none (or an unsafe one) is sent", async () => {
    const plain = await cp.request("GET", "/health");
    const unsafe = await cp.request("GET", "/health", { headers: { "x-request-id": "bad id\twith spaces" } });
    expect(plain.headers.get("x-request-id")).toMatch(/^[0-9A-Z]{26}$/);
    expect(unsafe.headers.get("x-request-id")).toMatch(/^[0-9A-Z]{26}$/);
  });
});

describe("errors are RFC 9457 problem details", () => {
  it("answers an unknown route with 404", async () => {
    const response = await cp.request("GET", "/nope");
    expect(response.status).toBe(404);
    expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(response.body).toMatchObject({
      type: "/problems/not-found",
      status: 404,
      title: expect.any(String),
    });
    expect(response.body.request_id).toBe(response.headers.get("x-request-id"));
  });

  it("answers a known path with the wrong method with 405 and Allow", async () => {
    const response = await cp.request("DELETE", "/jobs");
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("POST, GET");
  });

  it("refuses malformed JSON with 400 and changes nothing", async () => {
    const token = await cp.token("operator");
    const before = (await cp.request("GET", "/jobs", { token })).body.total;
    const response = await cp.request("POST", "/jobs", {
      token,
      rawBody: '{"git_ref": "main"',
      headers: { "content-type": "application/json" },
    });
    expect(response.status).toBe(400);
    expect(response.body.type).toBe("/problems/malformed-body");
    expect((await cp.request("GET", "/jobs", { token })).body.total).toBe(before);
  });

  it("refuses a body over 64 KiB with 413", async () => {
    const response = await cp.request("POST", "/jobs", {
      token: await cp.token("operator"),
      body: { git_ref: "main", command: "x".repeat(70 * 1024) },
    });
    expect(response.status).toBe(413);
    expect(response.body.type).toBe("/problems/payload-too-large");
  });

  it("refuses a body that is not JSON with 415", async () => {
    const response = await cp.request("POST", "/jobs", {
      token: await cp.token("operator"),
      rawBody: "git_ref=main",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(response.status).toBe(415);
  });

  it("lists each offending field of an invalid body", async () => {
    const response = await cp.request("POST", "/jobs", {
      token: await cp.token("operator"),
      body: { git_ref: "../etc", priority: 1000, unexpected: true },
    });
    expect(response.status).toBe(400);
    const fields = response.body.errors.map((error: { field: string }) => error.field);
    expect(fields).toEqual(expect.arrayContaining(["body", "body.git_ref", "body.priority"]));
    expect(response.body.detail).toMatch(/unexpected/);
  });

  it("refuses missing credentials with 401 and a WWW-Authenticate challenge", async () => {
    const response = await cp.request("GET", "/jobs");
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
  });

  it("refuses an unknown bearer token with 401", async () => {
    const response = await cp.request("GET", "/jobs", { token: `hcp_${"A".repeat(43)}` });
    expect(response.status).toBe(401);
    expect(response.body.detail).toMatch(/not known/);
  });

  it("refuses an insufficient role with 403", async () => {
    const response = await cp.request("POST", "/jobs?git_ref=main", { token: await cp.token("viewer") });
    expect(response.status).toBe(403);
    expect(response.body.detail).toMatch(/jobs:create/);
  });
});
