import { randomBytes } from "node:crypto";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentIdentity } from "../../runtime/src/agent/signed-fetch";
import { type RequestContext, systemContext } from "../../runtime/src/domain/principal";
import { routes } from "../../runtime/src/http/app";
import type { Access, RouteDefinition } from "../../runtime/src/http/route";
import { csrfToken } from "../../runtime/src/identity/csrf";
import { signRequest } from "../../runtime/src/identity/http-signatures";
import { storeClientSecret } from "../../runtime/src/identity/oauth-providers";
import { can, type Role, roles } from "../../runtime/src/identity/permissions";
import { hashToken } from "../../runtime/src/identity/tokens";
import { type JsonResponse, startTestControlPlane, type TestControlPlane } from "../support/control-plane";

/**
 * The access matrix, walked cell by cell: every route of `routes` (app.ts) × every role (each as an API
 * token and as a browser session; plus a signed-in user without a role binding) × the bad credentials
 * (none, an expired session, a revoked token, an agent signature where a user is expected, user
 * credentials where an agent is expected). The expected status comes from the route's declared access
 * and the one permission matrix; each route's request comes from `fixtures` below, and a route without
 * a fixture fails the first test — so a new route cannot skip the matrix.
 */

type Caller =
  | { kind: "anonymous" }
  | { kind: "token"; role: Role }
  | { kind: "session"; role: Role | null }
  | { kind: "expired-session" }
  | { kind: "revoked-token" }
  | { kind: "agent" }
  | { kind: "other-agent" };

interface Prepared {
  path: string;
  body?: unknown;
}

interface FixtureContext {
  caller: Caller;
  /** The user id the caller acts as (for routes about "my" sessions). */
  userId?: string;
  /** Whether this call should pass the access check (fixtures skip costly setup when not). */
  passes: boolean;
}

interface Fixture {
  /** Statuses an authorized call may answer (the handler's own outcome). */
  ok: number[];
  prepare: (context: FixtureContext) => Promise<Prepared> | Prepared;
  /** The call ends the caller's own credential: use a fresh one for each call. */
  consumesCredential?: boolean;
}

let cp: TestControlPlane;
let agent: AgentIdentity;
let otherAgent: AgentIdentity;
let jobId: string;
const tokens = new Map<Role, string>();
const sessions = new Map<Role | null, string>();
let expiredSession: string;
let revokedToken: string;
const fixtureContext: RequestContext = systemContext("matrix-fixture");

const unique = () => randomBytes(5).toString("hex");
/** Shared callers are `matrix-<role>`; callers a route consumes (sign out everywhere) are other users. */
const identityOf = (role: Role | null, fresh = false) => ({
  provider: "google" as const,
  subject: `matrix-${fresh ? "fresh-" : ""}${role ?? "nobody"}`,
});

async function mintSession(role: Role | null, fresh = false): Promise<string> {
  return (await cp.runtime.sessions.signInWithIdentity(identityOf(role, fresh), fixtureContext)).sessionId;
}

async function mintToken(role: Role): Promise<string> {
  return (await cp.runtime.credentials.createApiToken({ role, name: `matrix-${role}` }, fixtureContext))
    .token;
}

async function newJob(environment?: string): Promise<string> {
  const { job } = await cp.runtime.jobs.create(
    { git_ref: "main", tags: [], priority: 50, ...(environment ? { environment } : {}) },
    fixtureContext,
  );
  return job.job_id;
}

async function claimedJob(): Promise<{
  jobId: string;
  attempt: number;
  logOffset: number;
  agent: AgentIdentity;
}> {
  const worker = await cp.registerAgent({ name: `worker-${unique()}` });
  await newJob();
  const claim = await cp.agentRequest(worker, "POST", `/agents/${worker.agentId}/jobs/claim`, {});
  if (claim.status !== 200) throw new Error(`claim answered ${claim.status}`);
  return {
    jobId: claim.body.job.job_id,
    attempt: claim.body.attempt,
    logOffset: claim.body.log_offset,
    agent: worker,
  };
}

/** Agents that signed a fixture's request (jobs are bound to the agent that claimed them). */
const signers = new Map<string, AgentIdentity>();

const fixtures: Record<string, Fixture> = {
  "GET /health": { ok: [200], prepare: () => ({ path: "/health" }) },
  "GET /info": { ok: [200], prepare: () => ({ path: "/info" }) },
  "POST /auth/validate": {
    ok: [200],
    prepare: () => ({ path: "/auth/validate", body: { session_id: sessions.get("viewer")! } }),
  },
  "POST /auth/logout": { ok: [200], consumesCredential: true, prepare: () => ({ path: "/auth/logout" }) },
  "POST /auth/logout-all": {
    ok: [200],
    consumesCredential: true,
    prepare: () => ({ path: "/auth/logout-all" }),
  },
  "GET /auth/signin-link": {
    ok: [303],
    prepare: async () => {
      const link = await cp.runtime.sessions.createSigninLink(
        { userId: "local-admin", role: "admin" },
        fixtureContext,
      );
      return { path: `/auth/signin-link?token=${link.token}` };
    },
  },
  "GET /auth/providers": { ok: [200], prepare: () => ({ path: "/auth/providers" }) },
  "GET /auth/login/:provider": { ok: [303], prepare: () => ({ path: "/auth/login/github" }) },
  // A callback without the provider's answer is refused by the sign-in itself (not by access): 400.
  "GET /auth/callback/:provider": { ok: [400], prepare: () => ({ path: "/auth/callback/github" }) },
  "GET /auth/me": { ok: [200], prepare: () => ({ path: "/auth/me" }) },
  "GET /auth/sessions": { ok: [200], prepare: () => ({ path: "/auth/sessions" }) },
  "DELETE /auth/sessions/:session_id": {
    ok: [200],
    prepare: async ({ userId, passes }) => {
      if (!passes || !userId) return { path: "/auth/sessions/000000000000" };
      // Another device of the caller's own user (a sign-in link can name any user, API-token users too).
      const link = await cp.runtime.sessions.createSigninLink({ userId, role: "viewer" }, fixtureContext);
      const { session } = await cp.runtime.sessions.signInWithLink(link.token, fixtureContext);
      return { path: `/auth/sessions/${session.session_hash.slice(0, 12)}` };
    },
  },
  "GET /access/permissions": { ok: [200], prepare: () => ({ path: "/access/permissions" }) },
  "GET /access/bindings": { ok: [200], prepare: () => ({ path: "/access/bindings" }) },
  "PUT /access/bindings": {
    ok: [200],
    prepare: () => ({
      path: "/access/bindings",
      body: { subject: `email:m-${unique()}@example.net`, role: "viewer" },
    }),
  },
  "DELETE /access/bindings": {
    ok: [204],
    prepare: async ({ passes }) => {
      const subject = `email:m-${unique()}@example.net`;
      if (passes) await cp.runtime.bindings.put(subject, "viewer", fixtureContext);
      return { path: `/access/bindings?subject=${encodeURIComponent(subject)}` };
    },
  },
  "GET /access/tokens": { ok: [200], prepare: () => ({ path: "/access/tokens" }) },
  "POST /access/tokens": {
    ok: [201],
    prepare: () => ({ path: "/access/tokens", body: { name: "matrix", role: "viewer", ttl: 3600 } }),
  },
  "DELETE /access/tokens/:token_id": {
    ok: [204],
    prepare: async ({ passes }) => {
      if (!passes) return { path: "/access/tokens/000000000000" };
      const created = await cp.runtime.credentials.createApiToken(
        { role: "viewer", name: "doomed" },
        fixtureContext,
      );
      return { path: `/access/tokens/${created.token_id}` };
    },
  },
  "GET /access/users/:user_id/sessions": {
    ok: [200],
    prepare: () => ({ path: "/access/users/google:matrix-viewer/sessions" }),
  },
  "POST /access/users/:user_id/sign-out": {
    ok: [200],
    prepare: () => ({ path: `/access/users/google:victim-${unique()}/sign-out` }),
  },
  "POST /agents/registration-tokens": {
    ok: [201],
    prepare: () => ({ path: "/agents/registration-tokens", body: {} }),
  },
  "POST /agents/register": {
    ok: [201],
    prepare: async () => {
      const { token } = await cp.runtime.agents.createRegistrationToken(fixtureContext, 600);
      return {
        path: "/agents/register",
        body: { registration_token: token, name: "matrix", region: "eu-west-1" },
      };
    },
  },
  "GET /agents/:agent_id/config": { ok: [200], prepare: () => ({ path: `/agents/${agent.agentId}/config` }) },
  "POST /agents/:agent_id/heartbeat": {
    ok: [200],
    prepare: () => ({
      path: `/agents/${agent.agentId}/heartbeat`,
      body: {
        cpu_percent: 1,
        memory_percent: 1,
        disk_percent: 1,
        jobs_queued: 0,
        jobs_completed: 0,
        uptime_seconds: 1,
      },
    }),
  },
  "GET /agents": { ok: [200], prepare: () => ({ path: "/agents" }) },
  "GET /agents/:agent_id": { ok: [200], prepare: () => ({ path: `/agents/${agent.agentId}` }) },
  "POST /agents/:agent_id/revoke": {
    ok: [200],
    prepare: async ({ passes }) => {
      if (!passes) return { path: `/agents/${agent.agentId}/revoke` };
      const doomed = await cp.registerAgent({ name: `doomed-${unique()}` });
      return { path: `/agents/${doomed.agentId}/revoke` };
    },
  },
  "POST /jobs": { ok: [201], prepare: () => ({ path: "/jobs", body: { git_ref: "main" } }) },
  "GET /jobs": { ok: [200], prepare: () => ({ path: "/jobs" }) },
  "GET /jobs/:job_id": { ok: [200], prepare: () => ({ path: `/jobs/${jobId}` }) },
  "GET /jobs/:job_id/logs": { ok: [200], prepare: () => ({ path: `/jobs/${jobId}/logs` }) },
  "POST /jobs/:job_id/cancel": {
    ok: [200],
    prepare: async ({ passes }) => ({ path: `/jobs/${passes ? await newJob() : jobId}/cancel` }),
  },
  "POST /jobs/:job_id/approve": {
    ok: [200],
    prepare: async ({ passes }) => ({ path: `/jobs/${passes ? await newJob("production") : jobId}/approve` }),
  },
  "POST /jobs/:job_id/reject": {
    ok: [200],
    prepare: async ({ passes }) => ({ path: `/jobs/${passes ? await newJob("production") : jobId}/reject` }),
  },
  "GET /metrics/queue": { ok: [200], prepare: () => ({ path: "/metrics/queue" }) },
  "GET /audit/events": { ok: [200], prepare: () => ({ path: "/audit/events" }) },
  "GET /audit/export": { ok: [200], prepare: () => ({ path: "/audit/export" }) },
  "GET /audit/verify": { ok: [200], prepare: () => ({ path: "/audit/verify" }) },
  "POST /audit/digests": { ok: [201], prepare: () => ({ path: "/audit/digests" }) },
  "GET /audit/public-key": { ok: [200], prepare: () => ({ path: "/audit/public-key" }) },
  "POST /agents/:agent_id/jobs/claim": {
    ok: [200, 204],
    prepare: () => ({ path: `/agents/${agent.agentId}/jobs/claim`, body: {} }),
  },
  "POST /jobs/:job_id/logs": {
    ok: [200],
    prepare: async ({ passes }) => {
      if (!passes) return { path: `/jobs/${jobId}/logs`, body: { attempt: 1, offset: 0, data: "x" } };
      const claimed = await claimedJob();
      const path = `/jobs/${claimed.jobId}/logs`;
      signers.set(path, claimed.agent);
      return { path, body: { attempt: claimed.attempt, offset: claimed.logOffset, data: "hello\n" } };
    },
  },
  "POST /jobs/:job_id/complete": {
    ok: [200],
    prepare: async ({ passes }) => {
      if (!passes)
        return { path: `/jobs/${jobId}/complete`, body: { attempt: 1, status: "completed", exit_code: 0 } };
      const claimed = await claimedJob();
      const path = `/jobs/${claimed.jobId}/complete`;
      signers.set(path, claimed.agent);
      return { path, body: { attempt: claimed.attempt, status: "completed", exit_code: 0 } };
    },
  },
};

const routeKey = (route: RouteDefinition) => `${route.method} ${route.path}`;

/** The callers every route is tried with, and what each must get given the route's access. */
interface Case {
  caller: Caller;
  expect: "ok" | 401 | 403;
  badCredential: boolean;
}

function callersFor(access: Access): Case[] {
  const userCallers: Caller[] = [
    ...roles.map((role): Caller => ({ kind: "token", role })),
    ...[...roles, null].map((role): Caller => ({ kind: "session", role })),
  ];
  const bad: Caller[] = [{ kind: "anonymous" }, { kind: "expired-session" }, { kind: "revoked-token" }];
  const agentCaller: Caller = { kind: "agent" };
  switch (access.kind) {
    case "public":
      return [...userCallers, ...bad, agentCaller].map(
        (caller): Case => ({
          caller,
          expect: "ok",
          badCredential: !["token", "session"].includes(caller.kind),
        }),
      );
    case "user":
    case "anyUser":
      return [
        ...userCallers.map((caller) => ({
          caller,
          expect:
            access.kind === "anyUser" || can((caller as { role: Role | null }).role, access.permission)
              ? ("ok" as const)
              : (403 as const),
          badCredential: false,
        })),
        ...[...bad, agentCaller].map((caller): Case => ({ caller, expect: 401, badCredential: true })),
      ];
    case "agent":
      return [
        { caller: agentCaller, expect: "ok", badCredential: false },
        // User credentials of every role where an agent is expected, and the usual bad ones.
        ...[...userCallers, ...bad].map((caller): Case => ({ caller, expect: 401, badCredential: true })),
      ];
  }
}

async function call(route: RouteDefinition, caller: Caller, prepared: Prepared): Promise<JsonResponse> {
  const headers: Record<string, string> = {};
  let credential: string | undefined;
  const fresh = fixtures[routeKey(route)]?.consumesCredential === true;
  switch (caller.kind) {
    case "token":
      credential = fresh ? await mintToken(caller.role) : tokens.get(caller.role)!;
      headers.authorization = `Bearer ${credential}`;
      break;
    case "session":
      credential = fresh ? await mintSession(caller.role, true) : sessions.get(caller.role)!;
      headers.cookie = `hcp_session=${credential}`;
      headers["x-csrf-token"] = csrfToken(credential);
      break;
    case "expired-session":
      headers.cookie = `hcp_session=${expiredSession}`;
      headers["x-csrf-token"] = csrfToken(expiredSession);
      break;
    case "revoked-token":
      headers.authorization = `Bearer ${revokedToken}`;
      break;
    case "agent":
    case "other-agent": {
      // Signed here rather than with signedFetch, so redirects (sign-in routes) are not followed.
      const signer = caller.kind === "other-agent" ? otherAgent : (signers.get(prepared.path) ?? agent);
      const payload = prepared.body === undefined ? undefined : JSON.stringify(prepared.body);
      const signed = await signRequest(
        {
          method: route.method,
          url: prepared.path,
          headers: payload === undefined ? {} : { "content-type": "application/json" },
          body: payload,
        },
        { keyId: signer.agentId, key: signer.key },
      );
      return cp.request(route.method, prepared.path, { headers: signed, rawBody: payload });
    }
  }
  return cp.request(route.method, prepared.path, { headers, body: prepared.body });
}

const tally = { cells: 0, badCredentialCases: 0, roleCells: 0 };

beforeAll(async () => {
  cp = await startTestControlPlane("access-matrix", {
    env: {
      HYBRID_CICD_ROLE_BINDINGS: roles
        .flatMap((role) => [`google:matrix-${role}=${role}`, `google:matrix-fresh-${role}=${role}`])
        .join(","),
      HYBRID_CICD_OAUTH_GITHUB_CLIENT_ID: "matrix-client",
      // Never followed (redirects are not), and loopback all the same: tests do not leave the machine.
      HYBRID_CICD_OAUTH_GITHUB_URL: "http://127.0.0.1:9",
    },
  });
  await storeClientSecret(cp.runtime.secretStore, cp.runtime.env.HYBRID_CICD_SECRET_PREFIX, "github", "s");
  for (const role of roles) tokens.set(role, await mintToken(role));
  for (const role of [...roles, null]) sessions.set(role, await mintSession(role));
  expiredSession = await mintSession("admin");
  await cp.runtime.store.doc.send(
    new UpdateCommand({
      TableName: cp.runtime.store.tables.sessions,
      Key: { session_hash: hashToken(expiredSession) },
      UpdateExpression: "SET expires_at = :past",
      ExpressionAttributeValues: { ":past": Math.floor(Date.now() / 1000) - 1 },
    }),
  );
  const doomed = await cp.runtime.credentials.createApiToken(
    { role: "admin", name: "revoked" },
    fixtureContext,
  );
  await cp.runtime.credentials.revokeApiToken(doomed.token_id, fixtureContext);
  revokedToken = doomed.token;
  agent = await cp.registerAgent({ name: "matrix-agent" });
  otherAgent = await cp.registerAgent({ name: "matrix-other-agent" });
  jobId = await newJob();
});

afterAll(async () => {
  await cp?.close();
  if (tally.cells > 0) {
    console.log(
      `access matrix: ${routes.length} routes × ${roles.length + 1} roles; ${tally.cells} cells checked ` +
        `(${tally.roleCells} role cells, ${tally.badCredentialCases} bad-credential cases)`,
    );
  }
});

describe("access matrix", () => {
  it("has a request fixture for every route, and no fixture for a route that does not exist", () => {
    const declared = routes.map(routeKey).sort();
    const missing = declared.filter((key) => !(key in fixtures));
    expect(missing, "add these routes to the fixtures of access-matrix.test.ts").toEqual([]);
    expect(Object.keys(fixtures).sort()).toEqual(declared);
  });

  it("answers every route × role × credential with the status the matrix declares", async () => {
    const failures: string[] = [];
    for (const route of routes) {
      const fixture = fixtures[routeKey(route)];
      if (!fixture) continue;
      const cases = callersFor(route.access);
      if (route.access.kind === "agent" && route.path.includes(":agent_id")) {
        cases.push({ caller: { kind: "other-agent" }, expect: 403, badCredential: true });
      }
      await Promise.all(
        cases.map(async ({ caller, expect: expected, badCredential }) => {
          const userId =
            caller.kind === "token"
              ? `token:matrix-${caller.role}`
              : caller.kind === "session"
                ? `google:${identityOf(caller.role).subject}`
                : undefined;
          const prepared = await fixture.prepare({ caller, userId, passes: expected === "ok" });
          const response = await call(route, caller, prepared);
          const allowed = expected === "ok" ? fixture.ok : [expected];
          tally.cells++;
          if (badCredential) tally.badCredentialCases++;
          else tally.roleCells++;
          if (!allowed.includes(response.status)) {
            failures.push(
              `${routeKey(route)} as ${JSON.stringify(caller)}: expected ${allowed.join("|")}, got ${response.status} ${
                typeof response.body === "object" ? (response.body?.detail ?? "") : ""
              }`,
            );
          }
        }),
      );
    }
    expect(failures).toEqual([]);
    expect(tally.cells).toBeGreaterThan(routes.length * 12);
  });
});

/**
 * What the README promises each role, written out by hand from its tables ("who" columns of the API
 * reference, the Job API, Sessions and the audit section) — deliberately not derived from
 * `route.access` or `can()`, so a permission declared wrongly on a route, or a matrix cell changed by
 * mistake, fails here even though the walk above (which trusts the declarations) still passes.
 */
const ALL: readonly Role[] = ["admin", "operator", "auditor", "viewer"];
const promised: Record<string, "public" | "agent" | "anyUser" | readonly Role[]> = {
  "GET /health": "public",
  "GET /info": "public",
  "POST /auth/validate": "public",
  "POST /auth/logout": "public",
  "POST /auth/logout-all": "anyUser",
  "GET /auth/signin-link": "public",
  "GET /auth/providers": "public",
  "GET /auth/login/:provider": "public",
  "GET /auth/callback/:provider": "public",
  "GET /auth/me": ALL,
  "GET /auth/sessions": ALL,
  "DELETE /auth/sessions/:session_id": ALL,
  "GET /access/permissions": ["admin", "auditor"],
  "GET /access/bindings": ["admin", "auditor"],
  "PUT /access/bindings": ["admin"],
  "DELETE /access/bindings": ["admin"],
  "GET /access/tokens": ["admin", "auditor"],
  "POST /access/tokens": ["admin"],
  "DELETE /access/tokens/:token_id": ["admin"],
  "GET /access/users/:user_id/sessions": ["admin", "auditor"],
  "POST /access/users/:user_id/sign-out": ["admin"],
  "POST /agents/registration-tokens": ["admin"],
  "POST /agents/register": "public",
  "GET /agents/:agent_id/config": "agent",
  "POST /agents/:agent_id/heartbeat": "agent",
  "GET /agents": ALL,
  "GET /agents/:agent_id": ALL,
  "POST /agents/:agent_id/revoke": ["admin"],
  "POST /jobs": ["admin", "operator"],
  "GET /jobs": ALL,
  "GET /jobs/:job_id": ALL,
  "GET /jobs/:job_id/logs": ALL,
  "POST /jobs/:job_id/cancel": ["admin", "operator"],
  "POST /jobs/:job_id/approve": ["admin", "operator"],
  "POST /jobs/:job_id/reject": ["admin", "operator"],
  "GET /metrics/queue": ALL,
  "GET /audit/events": ["admin", "auditor"],
  "GET /audit/export": ["admin", "auditor"],
  "GET /audit/verify": ["admin", "auditor"],
  "POST /audit/digests": ["admin"],
  "GET /audit/public-key": "public",
  "POST /agents/:agent_id/jobs/claim": "agent",
  "POST /jobs/:job_id/logs": "agent",
  "POST /jobs/:job_id/complete": "agent",
};

describe("the README's promises, written by hand", () => {
  it("name every route, and only routes that exist", () => {
    expect(Object.keys(promised).sort()).toEqual(routes.map(routeKey).sort());
  });

  it("are what the app answers for every role, anonymous callers and agents", async () => {
    const failures: string[] = [];
    for (const route of routes) {
      const key = routeKey(route);
      const promise = promised[key];
      const fixture = fixtures[key];
      if (promise === undefined || !fixture) continue;
      const cases: { caller: Caller; allowed: boolean; refusal: number }[] = [
        ...roles.map((role) => ({
          caller: { kind: "token", role } as Caller,
          allowed:
            promise === "public" ||
            promise === "anyUser" ||
            (Array.isArray(promise) && promise.includes(role)),
          refusal: promise === "agent" ? 401 : 403,
        })),
        { caller: { kind: "anonymous" }, allowed: promise === "public", refusal: 401 },
        { caller: { kind: "agent" }, allowed: promise === "public" || promise === "agent", refusal: 401 },
      ];
      await Promise.all(
        cases.map(async ({ caller, allowed, refusal }) => {
          const userId = caller.kind === "token" ? `token:matrix-${caller.role}` : undefined;
          const prepared = await fixture.prepare({ caller, userId, passes: allowed });
          const response = await call(route, caller, prepared);
          const expected = allowed ? fixture.ok : [refusal];
          if (!expected.includes(response.status)) {
            failures.push(
              `${key} as ${JSON.stringify(caller)}: README promises ${expected.join("|")}, got ${response.status}`,
            );
          }
        }),
      );
    }
    expect(failures).toEqual([]);
  });
});
