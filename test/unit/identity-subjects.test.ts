import { describe, expect, it } from "vitest";
import { ConfigurationError } from "../../runtime/src/config/env";
import {
  normalizeSubject,
  parseConfiguredBindings,
  subjectsOf,
} from "../../runtime/src/domain/access/role-bindings";
import { safeReturnTo } from "../../runtime/src/domain/sessions/oauth-sign-in";
import { csrfToken, verifyCsrfToken } from "../../runtime/src/identity/csrf";

describe("binding subjects", () => {
  it("normalises e-mail and domain subjects to lower case, keeping ids as they are", () => {
    expect(normalizeSubject("Email:Alice@Example.COM")).toBe("email:alice@example.com");
    expect(normalizeSubject("domain:Example.com")).toBe("domain:example.com");
    expect(normalizeSubject("GitHub-Id:583231")).toBe("github-id:583231");
    expect(normalizeSubject("google:AbC123")).toBe("google:AbC123");
    expect(normalizeSubject("oidc:00u1A/x")).toBe("oidc:00u1A/x");
  });

  it("refuses what is not a subject", () => {
    for (const text of [
      "alice",
      "email:alice",
      "twitter:alice",
      "github:octocat",
      "github-id:octocat",
      "github-id:0123",
      "domain:localhost",
      ":x",
    ]) {
      expect(normalizeSubject(text), text).toBeUndefined();
    }
  });

  it("lists an identity's subjects most specific first", () => {
    expect(
      subjectsOf({ provider: "github", subject: "583231", login: "octocat", email: "octo@example.com" }),
    ).toEqual(["github-id:583231", "email:octo@example.com", "domain:example.com"]);
    expect(subjectsOf({ provider: "google", subject: "123" })).toEqual(["google:123"]);
  });

  it("gives a Google account a domain subject only for the Workspace domain of its hd claim", () => {
    const consumer = { provider: "google" as const, subject: "1", email: "a@example.com" };
    expect(subjectsOf(consumer)).toEqual(["google:1", "email:a@example.com"]);
    expect(subjectsOf({ ...consumer, hostedDomain: "other.example" })).toEqual([
      "google:1",
      "email:a@example.com",
    ]);
    expect(subjectsOf({ ...consumer, hostedDomain: "example.com" })).toEqual([
      "google:1",
      "email:a@example.com",
      "domain:example.com",
    ]);
  });

  it("parses configured bindings and stops start-up on a wrong one", () => {
    expect(parseConfiguredBindings(" email:a@example.com=admin,\n github-id:583231=viewer ")).toEqual(
      new Map([
        ["email:a@example.com", "admin"],
        ["github-id:583231", "viewer"],
      ]),
    );
    expect(parseConfiguredBindings("")).toEqual(new Map());
    expect(() => parseConfiguredBindings("email:a@example.com=root")).toThrow(ConfigurationError);
    expect(() => parseConfiguredBindings("alice=admin")).toThrow(/not <subject>=<role>/);
    expect(() => parseConfiguredBindings("email:x@example.com=admin,EMAIL:X@example.com=viewer")).toThrow(
      /twice/,
    );
    // A login binding stops start-up with the way to the numeric id.
    expect(() => parseConfiguredBindings("github:octocat=admin")).toThrow(
      /github-id:<id>.*api\.github\.com\/users/,
    );
  });
});

describe("return paths after sign-in", () => {
  it("keeps local paths and replaces anything that could leave the site", () => {
    expect(safeReturnTo("/console/jobs?status=failed")).toBe("/console/jobs?status=failed");
    for (const away of [
      undefined,
      "https://evil.test/",
      "//evil.test",
      "/\\evil.test",
      "javascript:alert(1)",
    ]) {
      expect(safeReturnTo(away), String(away)).toBe("/console/");
    }
  });
});

describe("CSRF tokens", () => {
  it("are bound to the session id and compared in constant time", () => {
    const session = "A".repeat(43);
    const token = csrfToken(session);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(verifyCsrfToken(session, token)).toBe(true);
    expect(verifyCsrfToken("B".repeat(43), token)).toBe(false);
    expect(verifyCsrfToken(session, undefined)).toBe(false);
    expect(verifyCsrfToken(session, token.slice(1))).toBe(false);
  });
});
