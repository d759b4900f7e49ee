import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemContext } from "../../runtime/src/domain/principal";
import { HTTPS_SESSION_COOKIE } from "../../runtime/src/http/authenticate";
import { csrfToken } from "../../runtime/src/identity/csrf";
import type { Runtime } from "../../runtime/src/runtime";
import { httpApiEvent, lambdaContext } from "../support/apigateway-event";
import { ensureConsoleBuilt } from "../support/console-browser";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";

type Handler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyStructuredResultV2>;

/** Named through a constant: the console's types are checked by console/tsconfig.json, not the root one. */
const LAMBDA_MODULE: string = "../../console/server/lambda.ts";

let cp: TestControlPlane;
let handler: Handler;

beforeAll(async () => {
  ensureConsoleBuilt();
  cp = await startTestControlPlane("console-lambda");
  const { createConsoleHandler } = (await import(LAMBDA_MODULE)) as {
    createConsoleHandler(runtime: Runtime): Promise<Handler>;
  };
  handler = await createConsoleHandler(cp.runtime);
});

afterAll(async () => {
  await cp?.close();
});

async function signedInCookies(): Promise<{ cookie: string; csrf: string }> {
  const link = await cp.runtime.sessions.createSigninLink(
    { userId: "lambda-op", role: "operator" },
    systemContext("t"),
  );
  const { sessionId } = await cp.runtime.sessions.signInWithLink(link.token, systemContext("t"));
  // The Lambda serves HTTPS: the session cookie is `__Host-` prefixed.
  return { cookie: `${HTTPS_SESSION_COOKIE}=${sessionId}`, csrf: csrfToken(sessionId) };
}

const header = (result: APIGatewayProxyStructuredResultV2, name: string) =>
  Object.entries(result.headers ?? {}).find(([key]) => key.toLowerCase() === name)?.[1];

describe("the console Lambda (API Gateway v2 events)", () => {
  it("renders the sign-in page with the CSP nonce on every inline script", async () => {
    const result = await handler(
      httpApiEvent("GET", "/console/sign-in"),
      lambdaContext as unknown as Context,
    );
    expect(result.statusCode).toBe(200);
    const csp = String(header(result, "content-security-policy"));
    const nonce = /'nonce-([^']+)'/.exec(csp)![1]!;
    const body = String(result.body);
    expect(body).toContain('<h1 id="sign-in-title">Sign in</h1>');
    const scripts = [...body.matchAll(/<script\b[^>]*>/g)].map((match) => match[0]);
    expect(scripts.length).toBeGreaterThan(0);
    for (const tag of scripts.filter((tag) => !tag.includes(" src=")))
      expect(tag).toContain(`nonce="${nonce}"`);
    expect(header(result, "strict-transport-security")).toBeDefined();
  });

  it("sends an anonymous visitor to sign-in, keeping where they were going", async () => {
    const result = await handler(
      httpApiEvent("GET", "/console/jobs?status=failed"),
      lambdaContext as unknown as Context,
    );
    expect(result.statusCode).toBe(302);
    expect(header(result, "location")).toBe("/console/sign-in?return_to=%2Fconsole%2Fjobs%3Fstatus%3Dfailed");
  });

  it("serves the browser assets the page links to", async () => {
    const page = await handler(httpApiEvent("GET", "/console/sign-in"), lambdaContext as unknown as Context);
    const stylesheet = /href="(\/console\/assets\/[^"]+\.css)"/.exec(String(page.body))![1]!;
    const result = await handler(httpApiEvent("GET", stylesheet), lambdaContext as unknown as Context);
    expect(result.statusCode).toBe(200);
    expect(String(header(result, "cache-control"))).toContain("immutable");
  });

  it("queues a job from a form post with the session's CSRF token, and refuses one without it", async () => {
    const { cookie, csrf } = await signedInCookies();
    const post = (form: Record<string, string>) =>
      handler(
        httpApiEvent("POST", "/console/jobs/new", {
          headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams(form).toString(),
        }),
        lambdaContext as unknown as Context,
      );
    const refused = await post({ git_ref: "main" });
    expect(refused.statusCode).toBe(403);
    const queued = await post({ _csrf: csrf, git_ref: "main", tags: "linux, docker linux" });
    expect(queued.statusCode).toBe(302);
    const jobId = /\/console\/jobs\/(job_\w+)$/.exec(String(header(queued, "location")))![1]!;
    const job = await cp.runtime.jobs.get(jobId);
    expect(job).toMatchObject({
      git_ref: "main",
      tags: ["docker", "linux"],
      created_by: "lambda-op",
      status: "queued",
    });
    const page = await handler(
      httpApiEvent("GET", `/console/jobs/${jobId}`, { headers: { cookie } }),
      lambdaContext as unknown as Context,
    );
    expect(page.statusCode).toBe(200);
    expect(String(page.body)).toContain(jobId);
  });

  it("answers the overview's data URL (/console.data), which the page refreshes from", async () => {
    const { cookie } = await signedInCookies();
    const result = await handler(
      httpApiEvent("GET", "/console.data", { headers: { cookie } }),
      lambdaContext as unknown as Context,
    );
    expect(result.statusCode).toBe(200);
    expect(String(header(result, "content-type"))).toContain("text/x-script");
    expect(String(result.body)).toContain("routes/_index");
  });

  it("answers a missing job with a readable 404 page, not a stack trace", async () => {
    const { cookie } = await signedInCookies();
    const result = await handler(
      httpApiEvent("GET", "/console/jobs/job_00000000000000000000000000", { headers: { cookie } }),
      lambdaContext as unknown as Context,
    );
    expect(result.statusCode).toBe(404);
    expect(String(result.body)).toContain("There is no job job_00000000000000000000000000.");
    expect(String(result.body)).not.toMatch(/at .*\.ts:\d+/);
  });
});
