import { describe, expect, test } from "vitest";
import { identityVariables, normalizeArgs } from "../../platform/src/control-plane";
import { normalizeSizing } from "../../platform/src/control-plane-function";
import { routeSourceArnSuffix } from "../../platform/src/control-plane-http-api";
import { controlPlaneNames } from "../../platform/src/naming";

/** Mistakes in the component's arguments stop the program before anything is created, saying what is wrong. */

describe("the ControlPlane's arguments", () => {
  test("derive every physical name from the component's name and environment", () => {
    const names = controlPlaneNames("hybrid-cicd", "production");
    expect(names).toMatchObject({
      stem: "hybrid-cicd-production",
      tablePrefix: "hybrid-cicd-production-",
      secretPrefix: "hybrid-cicd/production/",
    });
    expect(names.physical("api")).toBe("hybrid-cicd-production-api");
  });

  test("refuse names that would not fit Lambda and IAM names, or are not lower-case", () => {
    expect(() => controlPlaneNames("Hybrid_CICD", "staging")).toThrow(/lower-case letters/);
    expect(() => controlPlaneNames("a".repeat(30), "b".repeat(25))).toThrow(/longer than 48/);
    expect(() => controlPlaneNames("cicd", "local")).toThrow(/not "local"/);
    expect(() => controlPlaneNames("cicd", "Prod")).toThrow(/environment "Prod"/);
  });

  test("default to production safety in production only, and check retention values", () => {
    expect(normalizeArgs("cicd", { environment: "production" })).toMatchObject({
      protect: true,
      logRetentionDays: 365,
    });
    expect(normalizeArgs("cicd", { environment: "staging" })).toMatchObject({
      protect: false,
      logRetentionDays: 30,
    });
    expect(() => normalizeArgs("cicd", { environment: "staging", logRetentionDays: 100 })).toThrow(
      /not a CloudWatch Logs retention value/,
    );
    expect(() => normalizeArgs("cicd", { environment: "staging", kmsKey: "my-key" })).toThrow(
      /"create" or a KMS key ARN/,
    );
    expect(() =>
      normalizeArgs("cicd", {
        environment: "staging",
        domain: { name: "Not A Domain", certificateArn: "arn:x" },
      }),
    ).toThrow(/not a lower-case DNS name/);
  });

  test("size functions within Lambda's limits, provisioned concurrency within the reservation", () => {
    expect(normalizeSizing("api", {})).toEqual({
      memory: 512,
      timeout: 20,
      reservedConcurrency: 10,
      provisionedConcurrency: 0,
    });
    expect(normalizeSizing("scheduled", { memory: 1024 })).toMatchObject({
      memory: 1024,
      timeout: 60,
      reservedConcurrency: 2,
    });
    expect(() => normalizeSizing("api", { reservedConcurrency: 2, provisionedConcurrency: 3 })).toThrow(
      /provisioned concurrency 3 exceeds reserved concurrency 2/,
    );
    expect(() => normalizeSizing("scheduled", { provisionedConcurrency: 1 })).toThrow(
      /only offered for the API/,
    );
    expect(() => normalizeSizing("api", { timeout: 40 })).toThrow(/longer than the HTTP API waits/);
    expect(() => normalizeSizing("rotation", { memory: 64 })).toThrow(/outside Lambda's 128 to 10240/);
  });

  test("turn sign-in providers and role bindings into the runtime's variables, checked by its parser", () => {
    expect(
      identityVariables(
        {
          github: { clientId: "Iv1.abc" },
          google: { clientId: "123.apps.googleusercontent.com" },
          oidc: { issuer: "https://login.example.com", clientId: "cicd", name: "Example SSO" },
        },
        { admin: ["github-id:583231"], viewer: ["domain:example.com"] },
      ),
    ).toEqual({
      HYBRID_CICD_OAUTH_GITHUB_CLIENT_ID: "Iv1.abc",
      HYBRID_CICD_OAUTH_GOOGLE_CLIENT_ID: "123.apps.googleusercontent.com",
      HYBRID_CICD_OAUTH_OIDC_ISSUER: "https://login.example.com",
      HYBRID_CICD_OAUTH_OIDC_CLIENT_ID: "cicd",
      HYBRID_CICD_OAUTH_OIDC_NAME: "Example SSO",
      HYBRID_CICD_ROLE_BINDINGS: "github-id:583231=admin,domain:example.com=viewer",
    });
    expect(() => identityVariables(undefined, { admin: ["octocat"] })).toThrow(
      /HYBRID_CICD_ROLE_BINDINGS entry "octocat=admin"/,
    );
    expect(() =>
      identityVariables({ oidc: { issuer: "http://login.example.com", clientId: "x" } }, undefined),
    ).toThrow(/https URL/);
  });

  test("scope each route's invoke permission to that route's execute-api source ARN", () => {
    expect(routeSourceArnSuffix("$default")).toBe("*/$default");
    expect(routeSourceArnSuffix("ANY /console/{proxy+}")).toBe("*/*/console/{proxy+}");
    expect(routeSourceArnSuffix("GET /health")).toBe("*/GET/health");
    expect(() => routeSourceArnSuffix("/health")).toThrow(/not "\$default" or "METHOD \/path"/);
  });
});
