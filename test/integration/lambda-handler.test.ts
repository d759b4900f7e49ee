import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemContext } from "../../runtime/src/domain/principal";
import { type ApiHandler, createApiHandler } from "../../runtime/src/lambda/api";
import { httpApiEvent, lambdaContext } from "../support/apigateway-event";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";

let cp: TestControlPlane;
let handler: ApiHandler;
let operator: string;

beforeAll(async () => {
  cp = await startTestControlPlane("lambda");
  handler = createApiHandler(cp.runtime);
  operator = await cp.token("operator");
});
afterAll(() => cp.close());

const json = (body: string | undefined) => JSON.parse(body ?? "null");

describe("the API Lambda handler (API Gateway HTTP API, payload 2.0)", () => {
  it("answers GET /health", async () => {
    const result = await handler(httpApiEvent("GET", "/health"), lambdaContext);
    expect(result.statusCode).toBe(200);
    expect(result.headers?.["content-type"]).toMatch(/application\/json/);
    expect(json(result.body)).toMatchObject({ status: "healthy" });
    expect(result.headers?.["x-request-id"]).toBeTruthy();
  });

  it("queues a job from a JSON body with a bearer token", async () => {
    const result = await handler(
      httpApiEvent("POST", "/jobs", {
        headers: { authorization: `Bearer ${operator}`, "content-type": "application/json" },
        body: JSON.stringify({ git_ref: "main", command: "make" }),
      }),
      lambdaContext,
    );
    expect(result.statusCode).toBe(201);
    const job = json(result.body);
    expect(job).toMatchObject({ status: "queued", git_ref: "main" });
    expect((await cp.runtime.jobs.get(job.job_id)).command).toBe("make");
  });

  it("decodes a base64-encoded body", async () => {
    const result = await handler(
      httpApiEvent("POST", "/jobs?git_ref=ignored", {
        headers: { authorization: `Bearer ${operator}`, "content-type": "application/json" },
        body: JSON.stringify({ git_ref: "release/2.0" }),
        base64: true,
      }),
      lambdaContext,
    );
    expect(result.statusCode).toBe(201);
    expect(json(result.body).git_ref).toBe("release/2.0");
  });

  it("answers an unknown route with 404 problem+json", async () => {
    const result = await handler(httpApiEvent("GET", "/missing"), lambdaContext);
    expect(result.statusCode).toBe(404);
    expect(result.headers?.["content-type"]).toMatch(/application\/problem\+json/);
    expect(json(result.body)).toMatchObject({ status: 404, type: "/problems/not-found" });
  });

  it("answers a malformed body with 400 problem+json", async () => {
    const result = await handler(
      httpApiEvent("POST", "/jobs", {
        headers: { authorization: `Bearer ${operator}`, "content-type": "application/json" },
        body: "{not json",
      }),
      lambdaContext,
    );
    expect(result.statusCode).toBe(400);
    expect(json(result.body).type).toBe("/problems/malformed-body");
  });

  it("refuses a sign-in link through API Gateway (not loopback)", async () => {
    const link = await cp.runtime.sessions.createSigninLink(
      {
        userId: "x",
        role: "admin",
      },
      systemContext("test"),
    );
    const result = await handler(httpApiEvent("GET", `/auth/signin-link?token=${link.token}`), lambdaContext);
    expect(result.statusCode).toBe(403);
  });
});
