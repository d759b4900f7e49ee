import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadEnv } from "../../runtime/src/config/env";
import { systemContext } from "../../runtime/src/domain/principal";
import { csrfToken } from "../../runtime/src/identity/csrf";
import { createLogger } from "../../runtime/src/logger";
import { createRuntime } from "../../runtime/src/runtime";
import { LocalSecretStore } from "../../runtime/src/secrets/local-secret-store";
import { startTestControlPlane, type TestControlPlane } from "../support/control-plane";
import { claim, queueJob, recordAuditDrafts } from "../support/jobs";

// Production only through approval (issue 10, decision 010): an admin grants an agent its environment,
// agents only receive their environment's jobs, tags cannot name one, and approval compares people.
let cp: TestControlPlane;
let operator: string;
let admin: string;
let counter = 0;

beforeAll(async () => {
  cp = await startTestControlPlane("jobs-environments");
  operator = await cp.token("operator");
  admin = await cp.token("admin");
});
afterAll(() => cp.close());

const unique = (name: string) => `${name}-${counter++}`;

async function registrationToken(body: Record<string, unknown>) {
  return cp.request("POST", "/agents/registration-tokens", { token: admin, body });
}

async function signedInAs(userId: string, role: "admin" | "operator") {
  const context = systemContext("test");
  const link = await cp.runtime.sessions.createSigninLink({ userId, role }, context);
  const { sessionId } = await cp.runtime.sessions.signInWithLink(link.token, { requestId: "test" });
  return {
    headers: { cookie: `hcp_session=${sessionId}`, "x-csrf-token": csrfToken(sessionId) },
  };
}

describe("registration tokens grant the environment", () => {
  it("defaults to the environment that needs no approval, and takes a known one from the admin", async () => {
    const plain = await registrationToken({});
    expect(plain.status).toBe(201);
    expect(plain.body.environment).toBe("staging");
    const production = await registrationToken({ environment: "production" });
    expect(production.status).toBe(201);
    expect(production.body.environment).toBe("production");

    const agent = await cp.registerAgent({ environment: "production", tags: ["linux"] });
    const view = await cp.request("GET", `/agents/${agent.agentId}`, { token: operator });
    expect(view.body).toMatchObject({ environment: "production", tags: ["linux"] });
    const config = await cp.agentRequest(agent, "GET", `/agents/${agent.agentId}/config`);
    expect(config.body).toMatchObject({ environment: "production", deployment_targets: ["production"] });
  });

  it("refuses an environment the deployment does not know (400, no token)", async () => {
    for (const environment of ["prod", "Production", "", "x".repeat(40)]) {
      const response = await registrationToken({ environment });
      expect(response.status, environment).toBe(400);
      expect(response.headers.get("content-type")).toMatch(/application\/problem\+json/);
    }
  });

  it("refuses agent tags that name an environment, and the token stays usable", async () => {
    const token = (await registrationToken({})).body.token;
    const register = (tags: string[]) =>
      cp.request("POST", "/agents/register", {
        body: { registration_token: token, name: "sneaky", region: "eu-west-1", tags },
      });
    for (const tags of [["env:production"], ["linux", "env:staging"], ["env:"]]) {
      const refused = await register(tags);
      expect(refused.status, tags.join()).toBe(400);
      expect(refused.body.errors[0].field).toBe("tags");
    }
    const registered = await register(["linux"]);
    expect(registered.status).toBe(201);
    expect(registered.body.environment).toBe("staging");
  });
});

describe("jobs target one known environment", () => {
  it("refuses an unknown environment and env: tags with 400, leaving no job behind", async () => {
    const before = (await cp.request("GET", "/jobs", { token: operator })).body.total;
    for (const body of [
      { environment: "prod" },
      { environment: "prod-eu" },
      { tags: ["env:production"] },
      { tags: ["linux", "env:staging"], environment: "staging" },
    ]) {
      const response = await cp.request("POST", "/jobs", {
        token: operator,
        body: { git_ref: "main", ...body },
      });
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.headers.get("content-type")).toMatch(/application\/problem\+json/);
    }
    expect((await cp.request("GET", "/jobs", { token: operator })).body.total).toBe(before);
  });

  it("gives a job without an environment the default one", async () => {
    const jobId = await queueJob(cp, operator, { tags: [unique("default")] });
    expect(await cp.runtime.jobs.get(jobId)).toMatchObject({ environment: "staging", status: "queued" });
  });

  it("hands an agent only the jobs of its own environment", async () => {
    const tag = unique("split");
    const staging = await cp.registerAgent({ tags: [tag] });
    const production = await cp.registerAgent({ tags: [tag], environment: "production" });
    const productionJob = await queueJob(cp, operator, { tags: [tag], environment: "production" });
    const approved = await cp.request("POST", `/jobs/${productionJob}/approve`, { token: admin });
    expect(approved.status).toBe(200);
    const stagingJob = await queueJob(cp, operator, { tags: [tag] });

    const first = await claim(cp, staging);
    expect(first.body.job.job_id).toBe(stagingJob);
    expect((await claim(cp, staging)).status).toBe(204);
    const second = await claim(cp, production);
    expect(second.body.job.job_id).toBe(productionJob);
    expect((await claim(cp, production)).status).toBe(204);
  });

  it("never runs a production job without approval, whatever its tags", async () => {
    const tag = unique("prod-only");
    const production = await cp.registerAgent({ tags: [tag], environment: "production" });
    const jobId = await queueJob(cp, operator, { tags: [tag], environment: "production" });
    expect((await cp.runtime.jobs.get(jobId)).status).toBe("awaiting_approval");
    expect((await claim(cp, production)).status).toBe(204);
    // A staging job with the same tags never reaches the production agent either.
    await queueJob(cp, operator, { tags: [tag] });
    expect((await claim(cp, production)).status).toBe(204);
  });
});

describe("hostile environments and tags", () => {
  it("answer 4xx problem+json, never 5xx, and never create a job, token or agent", async () => {
    const known = new Set(["staging", "production"]);
    const environment = fc
      .oneof(
        fc.string({ maxLength: 64 }),
        fc.string({ unit: "grapheme", maxLength: 40 }),
        fc.constantFrom("prod", "PRODUCTION", "production ", " staging", "staging\u0000", "env:production"),
      )
      .filter((value) => !known.has(value));
    const envTag = fc.string({ minLength: 0, maxLength: 40 }).map((rest) => `env:${rest}`);
    const figures = {
      job_environment: 0,
      job_tags: 0,
      token_environment: 0,
      agent_tags: 0,
      server_errors: 0,
    };
    const before = (await cp.request("GET", "/jobs", { token: operator })).body.total;
    const refused = (response: { status: number; headers: Headers }) => {
      if (response.status >= 500) figures.server_errors++;
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(response.status).toBeLessThan(500);
      expect(response.headers.get("content-type")).toMatch(/application\/problem\+json/);
    };
    await fc.assert(
      fc.asyncProperty(environment, async (value) => {
        figures.job_environment++;
        refused(
          await cp.request("POST", "/jobs", {
            token: operator,
            body: { git_ref: "main", environment: value },
          }),
        );
        figures.token_environment++;
        refused(await registrationToken({ environment: value }));
      }),
      { numRuns: 60 },
    );
    const token = (await registrationToken({})).body.token;
    await fc.assert(
      fc.asyncProperty(
        fc.array(envTag, { minLength: 1, maxLength: 3 }),
        fc.array(fc.constantFrom("linux", "arm64"), { maxLength: 2 }),
        async (reserved, plain) => {
          const tags = [...plain, ...reserved];
          figures.job_tags++;
          refused(await cp.request("POST", "/jobs", { token: operator, body: { git_ref: "main", tags } }));
          figures.agent_tags++;
          refused(
            await cp.request("POST", "/agents/register", {
              body: { registration_token: token, name: "hostile", region: "eu-west-1", tags },
            }),
          );
        },
      ),
      { numRuns: 60 },
    );
    // Nothing was created: the job total is unchanged and the token is still unused.
    expect((await cp.request("GET", "/jobs", { token: operator })).body.total).toBe(before);
    const registered = await cp.request("POST", "/agents/register", {
      body: { registration_token: token, name: "fine", region: "eu-west-1", tags: ["linux"] },
    });
    expect(registered.status).toBe(201);
    console.info(`hostile environment/tag inputs: ${JSON.stringify(figures)}`);
    expect(figures.server_errors).toBe(0);
  }, 120_000);
});

describe("the two-person rule compares people", () => {
  it("treats an admin's API token and session as one person, and records the credential", async () => {
    const alice = await signedInAs(`alice-${counter++}@example.com`, "admin");
    const bob = await signedInAs(`bob-${counter++}@example.com`, "admin");
    const minted = await cp.request("POST", "/access/tokens", {
      ...alice,
      body: { name: unique("alice-bot"), role: "operator" },
    });
    expect(minted.status).toBe(201);
    const aliceToken = minted.body.token as string;
    const audit = recordAuditDrafts(cp);

    const jobId = await queueJob(cp, aliceToken, { environment: "production", command: "deploy" });
    const selfBySession = await cp.request("POST", `/jobs/${jobId}/approve`, alice);
    expect(selfBySession.status).toBe(403);
    expect(selfBySession.body.type).toBe("/problems/self-approval");

    // And the other way round: requested with the session, approved with her token (made admin).
    const adminToken = (
      await cp.request("POST", "/access/tokens", {
        ...alice,
        body: { name: unique("alice-admin"), role: "admin" },
      })
    ).body.token as string;
    const second = (
      await cp.request("POST", "/jobs", { ...alice, body: { git_ref: "main", environment: "production" } })
    ).body.job_id as string;
    const selfByToken = await cp.request("POST", `/jobs/${second}/approve`, { token: adminToken });
    expect(selfByToken.status).toBe(403);

    const byBob = await cp.request("POST", `/jobs/${jobId}/approve`, bob);
    audit.stop();
    expect(byBob.status).toBe(200);
    expect(byBob.body.status).toBe("queued");

    const create = audit.drafts.find((draft) => draft.action === "job.create" && draft.target.id === jobId)!;
    expect(create.actor).toMatchObject({
      type: "user",
      id: expect.stringMatching(/^token:alice-bot-/),
      credential: `api_token:${minted.body.token_id}`,
      on_behalf_of: expect.stringMatching(/^alice-/),
    });
    const approval = audit.drafts.find(
      (draft) => draft.action === "job.approve" && draft.outcome === "success",
    )!;
    expect(approval.actor).toMatchObject({
      id: expect.stringMatching(/^bob-/),
      credential: expect.stringMatching(/^session:[0-9a-f]{12}$/),
    });
    expect(approval.actor).not.toHaveProperty("on_behalf_of");
    const denied = audit.drafts.filter(
      (draft) => draft.action === "job.approve" && draft.outcome === "denied",
    );
    expect(denied).toHaveLength(2);
  });

  it("still lets two different tokens' people approve each other's jobs", async () => {
    const jobId = await queueJob(cp, operator, { environment: "production" });
    const approved = await cp.request("POST", `/jobs/${jobId}/approve`, { token: admin });
    expect(approved.status).toBe(200);
  });
});

describe("configured environments", () => {
  it("holds jobs of every environment configured to need approval", async () => {
    const local = await startTestControlPlane("jobs-environments-config", {
      env: {
        HYBRID_CICD_TARGET_ENVIRONMENTS: "dev,staging,production,eu-prod",
        HYBRID_CICD_APPROVAL_ENVIRONMENTS: "production,eu-prod",
      },
    });
    try {
      const token = await local.token("operator");
      const status = async (environment?: string) => {
        const response = await local.request("POST", "/jobs", {
          token,
          body: { git_ref: "main", ...(environment ? { environment } : {}) },
        });
        return [response.status, response.body.status, response.body.environment];
      };
      expect(await status()).toEqual([201, "queued", "dev"]);
      expect(await status("staging")).toEqual([201, "queued", "staging"]);
      expect(await status("eu-prod")).toEqual([201, "awaiting_approval", "eu-prod"]);
      expect(await status("production")).toEqual([201, "awaiting_approval", "production"]);
      expect((await status("qa"))[0]).toBe(400);
    } finally {
      await local.close();
    }
  });

  it("refuses to start when approval names an environment that is not configured", async () => {
    const env = loadEnv({
      HYBRID_CICD_TARGET_ENVIRONMENTS: "staging,production",
      HYBRID_CICD_APPROVAL_ENVIRONMENTS: "prod",
    });
    const secretStore = await LocalSecretStore.open(cp.dataDir);
    expect(() =>
      createRuntime({
        env,
        doc: cp.runtime.store.doc,
        secretStore,
        logger: createLogger({ level: "silent" }),
      }),
    ).toThrow(/approval is required for unknown environments: prod/);
    expect(() => loadEnv({ HYBRID_CICD_TARGET_ENVIRONMENTS: "staging,Prod!" })).toThrow(
      /HYBRID_CICD_TARGET_ENVIRONMENTS/,
    );
  });
});
