import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";

/** Role bindings (configuration + API, last admin protected) and the API tokens API. */
let cp: TestControlPlane;
let admin: string;

beforeAll(async () => {
  // No admin bound by configuration: the stored admin bindings are all there is.
  cp = await startTestControlPlane("identity-access", {
    env: { HYBRID_CICD_ROLE_BINDINGS: "domain:example.com=viewer, github-id:583231=operator" },
  });
  admin = await cp.token("admin");
});
afterAll(() => cp.close());

const put = (subject: string, role: string, token = admin) =>
  cp.request("PUT", "/access/bindings", { token, body: { subject, role } });
const remove = (subject: string, token = admin) =>
  cp.request("DELETE", `/access/bindings?subject=${encodeURIComponent(subject)}`, { token });

describe("role bindings", () => {
  it("lists bindings from configuration and from the API, with their source", async () => {
    expect((await put("Email:Ann@Example.NET", "operator")).body).toMatchObject({
      subject: "email:ann@example.net",
      role: "operator",
      source: "api",
      created_by: "token:test-admin",
    });
    const listed = await cp.request("GET", "/access/bindings", { token: await cp.token("auditor") });
    expect(listed.status).toBe(200);
    expect(listed.body.bindings).toEqual(
      expect.arrayContaining([
        { subject: "domain:example.com", role: "viewer", source: "configuration" },
        { subject: "github-id:583231", role: "operator", source: "configuration" },
        expect.objectContaining({ subject: "email:ann@example.net", role: "operator", source: "api" }),
      ]),
    );
  });

  it("resolves the most specific binding of an identity", async () => {
    await put("google:1234", "auditor");
    const subjects = ["google:1234", "email:zoe@example.com", "domain:example.com"];
    expect(await cp.runtime.bindings.resolve(subjects)).toBe("auditor");
    expect(await cp.runtime.bindings.resolve(subjects.slice(1))).toBe("viewer");
    expect(await cp.runtime.bindings.resolve(["google:other"])).toBeNull();
  });

  it("refuses changing a binding made by configuration", async () => {
    const response = await put("github-id:583231", "admin");
    expect(response.status).toBe(409);
    expect(response.body.detail).toMatch(/HYBRID_CICD_ROLE_BINDINGS/);
    expect((await remove("domain:example.com")).status).toBe(409);
  });

  it("validates subjects and roles", async () => {
    const response = await put("someone", "root");
    expect(response.status).toBe(400);
    expect(response.body.errors.map((error: { field: string }) => error.field)).toEqual(["body.role"]);
    const login = await put("github:octocat", "viewer");
    expect(login.status).toBe(400);
    expect(login.body.errors[0].message).toMatch(/github-id:<id>/);
    const subject = await put("twitter:someone", "viewer");
    expect(subject.status).toBe(400);
    expect(subject.body.errors[0].field).toBe("subject");
    expect((await remove("email:nobody@example.net")).status).toBe(404);
  });

  it("is admin-only to change, admin and auditor to read", async () => {
    expect((await put("email:x@example.net", "viewer", await cp.token("operator"))).status).toBe(403);
    expect((await remove("email:ann@example.net", await cp.token("auditor"))).status).toBe(403);
    expect((await cp.request("GET", "/access/bindings", { token: await cp.token("viewer") })).status).toBe(
      403,
    );
  });

  it("never removes or demotes the last admin", async () => {
    expect((await put("email:root1@example.net", "admin")).status).toBe(200);
    const last = await remove("email:root1@example.net");
    expect(last.status).toBe(409);
    expect(last.body.detail).toMatch(/last admin/);
    expect((await put("email:root1@example.net", "viewer")).status).toBe(409);

    expect((await put("email:root2@example.net", "admin")).status).toBe(200);
    expect((await remove("email:root1@example.net")).status).toBe(204);
    expect((await put("email:root2@example.net", "operator")).status).toBe(409);
    expect(await cp.runtime.bindings.resolve(["email:root2@example.net"])).toBe("admin");
  });

  it("lets only one of two admins removed at once go (the condition is in the write)", async () => {
    await put("email:root3@example.net", "admin");
    // Admins now: root2, root3. Removing both at the same time must leave one.
    const results = await Promise.all([remove("email:root2@example.net"), remove("email:root3@example.net")]);
    const statuses = results.map((result) => result.status).sort();
    expect(statuses).toEqual([204, 409]);
    const admins = (await cp.runtime.bindings.list()).filter((binding) => binding.role === "admin");
    expect(admins).toHaveLength(1);
  });
});

describe("API tokens", () => {
  it("creates a token shown once, prefix-identifiable, usable as Bearer", async () => {
    const created = await cp.request("POST", "/access/tokens", {
      token: admin,
      body: { name: "ci deploys", role: "operator", ttl: "7d" },
    });
    expect(created.status).toBe(201);
    expect(created.headers.get("cache-control")).toBe("no-store");
    expect(created.body).toEqual({
      token: expect.stringMatching(/^hcp_[A-Za-z0-9_-]{43}$/),
      token_id: expect.stringMatching(/^[0-9a-f]{12}$/),
      name: "ci deploys",
      role: "operator",
      expires_at: expect.any(String),
    });
    const days = (Date.parse(created.body.expires_at) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.99);
    expect(days).toBeLessThan(7.01);
    const used = await cp.request("POST", "/jobs", { token: created.body.token, body: { git_ref: "main" } });
    expect(used.status).toBe(201);
  });

  it("lists tokens without their secrets, with when and from where they were last used", async () => {
    const created = await cp.request("POST", "/access/tokens", {
      token: admin,
      body: { name: "reporting", role: "auditor", ttl: 3600 },
    });
    await cp.request("GET", "/jobs", { token: created.body.token });
    const listed = await cp.request("GET", "/access/tokens", { token: await cp.token("auditor") });
    expect(listed.status).toBe(200);
    expect(JSON.stringify(listed.body)).not.toContain(created.body.token);
    expect(JSON.stringify(listed.body)).not.toMatch(/hcp_|token_hash/);
    const entry = listed.body.tokens.find(
      (token: { token_id: string }) => token.token_id === created.body.token_id,
    );
    expect(entry).toMatchObject({
      name: "reporting",
      role: "auditor",
      status: "active",
      created_by: "token:test-admin",
      last_used_at: expect.any(String),
      last_used_ip: expect.stringMatching(/127\.0\.0\.1/),
      revoked_at: null,
    });
  });

  it("revokes a token by id: refused from the next request on", async () => {
    const created = await cp.request("POST", "/access/tokens", {
      token: admin,
      body: { name: "short-lived", role: "viewer" },
    });
    expect((await cp.request("GET", "/jobs", { token: created.body.token })).status).toBe(200);
    const revoked = await cp.request("DELETE", `/access/tokens/${created.body.token_id}`, { token: admin });
    expect(revoked.status).toBe(204);
    const refused = await cp.request("GET", "/jobs", { token: created.body.token });
    expect(refused.status).toBe(401);
    expect(refused.body.detail).toMatch(/revoked/);
    expect(
      (await cp.request("DELETE", `/access/tokens/${created.body.token_id}`, { token: admin })).status,
    ).toBe(404);
    const listed = await cp.request("GET", "/access/tokens", { token: admin });
    const entry = listed.body.tokens.find(
      (token: { token_id: string }) => token.token_id === created.body.token_id,
    );
    expect(entry).toMatchObject({ status: "revoked", revoked_by: "token:test-admin" });
  });

  it("validates name, role and ttl, and is admin-only", async () => {
    const invalid = await cp.request("POST", "/access/tokens", {
      token: admin,
      body: { name: "", role: "root", ttl: "400d" },
    });
    expect(invalid.status).toBe(400);
    expect(new Set(invalid.body.errors.map((error: { field: string }) => error.field))).toEqual(
      new Set(["body.name", "body.role", "body.ttl"]),
    );
    const operator = await cp.request("POST", "/access/tokens", {
      token: await cp.token("operator"),
      body: { name: "sneaky", role: "admin" },
    });
    expect(operator.status).toBe(403);
  });
});
