import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadEnv } from "../../runtime/src/config/env";
import { systemContext } from "../../runtime/src/domain/principal";
import type { Role } from "../../runtime/src/identity/permissions";
import { openLocalRuntime } from "../../runtime/src/local/control-plane";
import { createLogger } from "../../runtime/src/logger";
import { type AgentProcess, startAgent } from "../support/agent-process";
import { runCli, startCli, waitForExit } from "../support/cli";
import {
  accessibilityViolations,
  ensureConsoleBuilt,
  launchBrowser,
  screenshot,
} from "../support/console-browser";
import { type FreshTables, freshTables } from "../support/dynamodb";

/**
 * The console as people use it, in Debian's headless Chromium against `hybrid-cicd start` (the built
 * console mounted at /console): sign in with the one-time link, queue a job and watch a real reference
 * agent run it, every page checked with axe and photographed at 1280 and 390 px, and the same pages seen
 * by a viewer and an auditor.
 */
const timings = {
  HYBRID_CICD_HEARTBEAT_INTERVAL_SECONDS: "1",
  HYBRID_CICD_CLAIM_INTERVAL_SECONDS: "1",
  HYBRID_CICD_LEASE_SECONDS: "10",
  HYBRID_CICD_SWEEP_INTERVAL_SECONDS: "2",
};

let tables: FreshTables;
let dir: string;
let controlPlane: { child: ChildProcess; url: string; output: () => string };
let env: NodeJS.ProcessEnv;
let browser: BrowserContext;
let page: Page;
let agent: AgentProcess | undefined;
let jobPath: string;
let agentPath: string;
const pageErrors: string[] = [];

/** A one-time sign-in link for someone with `role`, minted as `hybrid-cicd signin-link` does. */
async function signinLinkFor(userId: string, role: Role): Promise<string> {
  const local = await openLocalRuntime(
    loadEnv({ ...process.env, ...env, HYBRID_CICD_DATA_DIR: join(dir, "data") } as NodeJS.ProcessEnv),
    createLogger({ level: "silent" }),
    { reuseRunning: true },
  );
  try {
    const link = await local.runtime.sessions.createSigninLink({ userId, role }, systemContext("e2e"));
    return `${controlPlane.url}/auth/signin-link?token=${link.token}`;
  } finally {
    await local.close();
  }
}

async function signInAs(userId: string, role: Role): Promise<void> {
  await browser.clearCookies();
  await page.goto(await signinLinkFor(userId, role));
  await page.waitForURL(/\/console\/$/);
}

async function expectAccessible(name: string): Promise<void> {
  expect(await accessibilityViolations(page), name).toEqual([]);
}

/** Visits a console page, checks it with axe and photographs it wide and narrow. */
async function visit(path: string, name: string): Promise<void> {
  // Leave the previous page between two refreshes: a navigation that cuts a refresh short is not an error.
  await page.waitForLoadState("networkidle");
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${controlPlane.url}/console${path}`);
  await page.locator("h1").first().waitFor();
  await expectAccessible(name);
  await screenshot(page, `${name}-1280`);
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow, `${name} scrolls sideways at 390 px`).toBeLessThanOrEqual(1);
  await screenshot(page, `${name}-390`);
  await page.setViewportSize({ width: 1280, height: 900 });
}

beforeAll(async () => {
  ensureConsoleBuilt();
  tables = await freshTables("console-e2e");
  dir = await mkdtemp(join(tmpdir(), "hcp-e2e-console-"));
  env = { DYNAMODB_ENDPOINT: tables.endpoint, HYBRID_CICD_TABLE_PREFIX: tables.prefix, ...timings };
  controlPlane = await startCli(["--port", "0", "--data-dir", join(dir, "data")], env);
  browser = await launchBrowser();
  page = browser.pages()[0] ?? (await browser.newPage());
  // A script error or a console error in the page (a CSP refusal, a hydration mismatch) fails the test.
  page.on("pageerror", (error) => pageErrors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
      pageErrors.push(message.text());
    }
  });
});

afterAll(async () => {
  await browser?.close();
  if (agent && agent.child.exitCode === null) agent.child.kill("SIGKILL");
  if (controlPlane && controlPlane.child.exitCode === null) {
    controlPlane.child.kill("SIGTERM");
    await waitForExit(controlPlane.child);
  }
  await tables?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

afterEach(() => {
  expect(pageErrors.splice(0)).toEqual([]);
});

describe("the console in a browser", () => {
  it("sends an anonymous visitor to sign-in and a browser at / to the console", async () => {
    await page.goto(`${controlPlane.url}/`);
    await page.waitForURL(/\/console\/sign-in\?return_to=%2Fconsole%2F$/);
    await expect(page.locator("h1").textContent()).resolves.toBe("Sign in");
    await expectAccessible("sign-in");
    await screenshot(page, "sign-in-1280");
    const index = await fetch(`${controlPlane.url}/`, { headers: { accept: "application/json" } });
    expect(await index.json()).toMatchObject({ links: { console: "/console/", jobs: "/jobs" } });
  });

  it("signs in with the one-time link printed at start and shows the overview", async () => {
    const link = /Sign in \(one use, 10 minutes\): (\S+)/.exec(controlPlane.output())![1]!;
    await page.goto(link);
    await page.waitForURL(/\/console\/$/);
    await expect(page.locator("h1").textContent()).resolves.toBe("Overview");
    await expect(
      page.getByRole("navigation", { name: "Main" }).getByRole("link").allTextContents(),
    ).resolves.toEqual(["Overview", "Jobs", "Agents", "Secrets", "Audit", "Compliance", "Access"]);
    await expect(page.locator("#card-api + .figure").textContent()).resolves.toBe("ok");
    // The overview refreshes itself (revalidation through /console.data), without a reload.
    const stamp = page.locator(".page-header .hint");
    const first = await stamp.textContent();
    await page.evaluate(() => {
      (window as unknown as { notReloaded: boolean }).notReloaded = true;
    });
    await expect.poll(() => stamp.textContent(), { timeout: 30_000 }).not.toBe(first);
    await expect(
      page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded),
    ).resolves.toBe(true);
  });

  it("queues a job from the form and shows a real agent running it to the end, live", async () => {
    await visit("/jobs/new", "job-new");
    // The form's own validation speaks before anything is sent.
    await page.getByLabel("Git ref").fill("bad..ref");
    await page.getByRole("button", { name: "Queue job" }).click();
    await expect(
      page.locator("#queue-job-git_ref-error, [id$='git_ref-error']").first().textContent(),
    ).resolves.toMatch(/not a valid git ref/);
    await page.getByLabel("Git ref").fill("main");
    await page.getByLabel("Command").fill("echo hello-from-the-console; sleep 1; echo done");
    await page.getByLabel(/^Tags/).fill("console-e2e");
    await page.getByRole("button", { name: "Queue job" }).click();
    await page.waitForURL(/\/console\/jobs\/job_/);
    jobPath = new URL(page.url()).pathname.replace("/console", "");
    await expect(page.locator(".page-header .badge").textContent()).resolves.toBe("queued");

    // An agent registered with a token from the Agents page (shown once), run by the CLI.
    await page.goto(`${controlPlane.url}/console/agents`);
    await page.getByRole("button", { name: "Create registration token" }).click();
    const token = (await page.getByTestId("shown-once").textContent())!;
    expect(token).toMatch(/^\S{20,}$/);
    await screenshot(page, "agents-token-1280");
    const identity = join(dir, "agent.json");
    const registered = await runCli([
      "agent",
      "register",
      "--url",
      controlPlane.url,
      "--token",
      token,
      "--name",
      "console-agent",
      "--region",
      "eu-local",
      "--tags",
      "console-e2e",
      "--identity",
      identity,
    ]);
    expect(registered.code, registered.stderr).toBe(0);
    agent = startAgent(identity, join(dir, "work"));

    // The job page updates itself (no reload) until the job has finished.
    await page.goto(`${controlPlane.url}/console${jobPath}`);
    await page
      .getByTestId("job-log")
      .filter({ hasText: "hello-from-the-console" })
      .waitFor({ timeout: 60_000 });
    await page.locator(".page-header .badge", { hasText: "completed" }).waitFor({ timeout: 60_000 });
    await expect(page.getByTestId("job-log").textContent()).resolves.toContain("done");
    await expect(page.locator(".timeline").textContent()).resolves.toMatch(/claimed by agt_/);
    await expectAccessible("job");
    await screenshot(page, "job-1280");
    await page.getByRole("link", { name: /agt_/ }).first().click();
    await page.waitForURL(/\/console\/agents\/agt_/);
    agentPath = new URL(page.url()).pathname.replace("/console", "");
  });

  it("renders every page for an admin, accessibly, at 1280 and 390 px", async () => {
    await page.locator(".meters meter").first().waitFor();
    for (const [path, name] of [
      ["/", "overview"],
      ["/jobs", "jobs"],
      [jobPath, "job"],
      ["/agents", "agents"],
      [agentPath, "agent"],
      ["/audit", "audit"],
      ["/access", "access"],
      ["/secrets", "secrets"],
      ["/compliance", "compliance"],
    ] as const) {
      await visit(path, name);
    }
    await page.goto(`${controlPlane.url}/console/audit`);
    await page.getByRole("button", { name: "Verify chain" }).click();
    await expect(page.getByTestId("verify-result").textContent()).resolves.toMatch(/The chain verifies\./);
    await screenshot(page, "audit-verified-1280");
    await page.goto(`${controlPlane.url}/console/jobs/job_00000000000000000000000000`);
    await expect(page.locator("h1").textContent()).resolves.toBe("Not found");
  });

  it("rotates the root key while the agent runs, showing the four steps and the agent's acknowledgement, live", async () => {
    await page.goto(`${controlPlane.url}/console/secrets`);
    await page.getByRole("link", { name: "Rotate workload-identity-root-key" }).click();
    // The confirmation step: nothing rotates until "Rotate now".
    await page.getByRole("heading", { name: "Rotate workload-identity-root-key?" }).waitFor();
    await expect(page.getByTestId("rotation-history").textContent()).resolves.toContain("No rotations yet.");
    await expectAccessible("secrets-confirm");
    await screenshot(page, "secrets-confirm-1280");
    await page.getByRole("button", { name: "Rotate now" }).click();
    const progress = page.getByTestId("rotation-workload-identity-root-key");
    // createSecret and setSecret run at once; testSecret waits for the running agent to sign with its
    // new derived key (its next heartbeat), which the page shows without a reload.
    await progress.locator('li[data-state="done"]', { hasText: "setSecret" }).waitFor();
    await expectAccessible("secrets-rotating");
    await screenshot(page, "secrets-rotating-1280");
    // The agent's next heartbeat acknowledges the new key; the rotation can finish before the next
    // refresh shows "1 of 1", so the line is only checked while the rotation is still under way.
    const acks = page.getByTestId("acks-workload-identity-root-key");
    const acknowledged = await acks.textContent({ timeout: 1_000 }).catch(() => null);
    if (acknowledged !== null) expect(acknowledged).toMatch(/Agents acknowledged the new key: \d of 1/);
    // The maintenance timer finishes it (finishSecret): the progress panel goes, the history says so.
    await progress.waitFor({ state: "detached", timeout: 60_000 });
    const history = page.getByTestId("rotation-history");
    await history
      .locator("tr", { hasText: "workload-identity-root-key" })
      .filter({ hasText: "finished" })
      .waitFor();
    await expect(history.textContent()).resolves.toContain("finishSecret");
    await screenshot(page, "secrets-rotated-1280");
    // The agent kept working with its new key: it still heartbeats (healthy) after the rotation.
    await page.goto(`${controlPlane.url}/console${agentPath}`);
    await expect(page.locator(".badge").first().textContent()).resolves.toBe("healthy");
  });

  it("shows a viewer only what a viewer may do, and refuses the rest with a readable 403 page", async () => {
    await signInAs("vera-viewer", "viewer");
    await expect(
      page.getByRole("navigation", { name: "Main" }).getByRole("link").allTextContents(),
    ).resolves.toEqual(["Overview", "Jobs", "Agents", "Access"]);
    await visit("/jobs", "viewer-jobs");
    await expect(page.getByRole("link", { name: "Queue a job" }).count()).resolves.toBe(0);
    await page.goto(`${controlPlane.url}/console${jobPath}`);
    await expect(page.getByRole("button", { name: "Cancel job" }).count()).resolves.toBe(0);
    await visit("/agents", "viewer-agents");
    await expect(page.getByRole("button", { name: "Create registration token" }).count()).resolves.toBe(0);
    await page.goto(`${controlPlane.url}/console${agentPath}`);
    await expect(page.getByRole("button", { name: "Revoke agent" }).count()).resolves.toBe(0);
    for (const path of ["/jobs/new", "/audit", "/secrets"]) {
      const response = await page.goto(`${controlPlane.url}/console${path}`);
      expect(response?.status(), path).toBe(403);
      await expect(page.locator("h1").textContent()).resolves.toBe("You do not have access to this page");
      await expect(page.locator(".error-page").textContent()).resolves.toMatch(
        /The viewer role does not have the/,
      );
    }
    await screenshot(page, "viewer-403-1280");
    await visit("/access", "viewer-access");
    await expect(page.getByRole("heading", { name: "API tokens" }).count()).resolves.toBe(0);
  });

  it("shows an auditor the audit trail and access, read-only, and no operator buttons", async () => {
    await signInAs("ada-auditor", "auditor");
    await expect(
      page.getByRole("navigation", { name: "Main" }).getByRole("link").allTextContents(),
    ).resolves.toEqual(["Overview", "Jobs", "Agents", "Secrets", "Audit", "Compliance", "Access"]);
    await visit("/audit", "auditor-audit");
    await page.getByLabel(/^Action/).fill("job.");
    await page.getByRole("button", { name: "Search" }).click();
    await page.waitForURL(/action=job\./);
    const actions = await page.locator("tbody summary code").allTextContents();
    expect(actions.length).toBeGreaterThan(0);
    expect(actions.every((action) => action.startsWith("job."))).toBe(true);
    await visit("/access", "auditor-access");
    await expect(page.getByRole("heading", { name: "Users and roles" }).count()).resolves.toBe(1);
    await expect(page.getByRole("button", { name: "Bind role" }).count()).resolves.toBe(0);
    await expect(page.getByRole("button", { name: "Create API token" }).count()).resolves.toBe(0);
    await page.goto(`${controlPlane.url}/console${jobPath}`);
    await expect(page.getByRole("button", { name: "Cancel job" }).count()).resolves.toBe(0);
    const response = await page.goto(`${controlPlane.url}/console/jobs/new`);
    expect(response?.status()).toBe(403);
  });

  it("shows an auditor the secrets read-only, and lets them preview a report and export a bundle the CLI verifies", async () => {
    await signInAs("ada-auditor", "auditor");
    await visit("/secrets", "auditor-secrets");
    await expect(page.getByRole("link", { name: /^Rotate / }).count()).resolves.toBe(0);
    await expect(page.getByTestId("rotation-history").textContent()).resolves.toContain("finished");
    // A direct post with a valid CSRF token is refused anyway: only an admin rotates.
    const csrf = (await browser.cookies(controlPlane.url)).find(
      (cookie) => cookie.name === "hcp_csrf",
    )!.value;
    const refused = await page.request.post(`${controlPlane.url}/console/secrets`, {
      form: { _csrf: csrf, intent: "rotate", name: "audit-signing-key" },
    });
    expect(refused.status()).toBe(403);
    expect(await refused.text()).toMatch(/auditor role does not have/);

    await visit("/compliance", "compliance");
    await page.getByRole("button", { name: "Preview" }).click();
    const preview = page.getByTestId("report-preview");
    await preview.waitFor();
    await expect(preview.textContent()).resolves.toMatch(/Report rpt_/);
    await expect(preview.getByRole("heading", { name: "Controls" }).count()).resolves.toBe(1);
    await expect(preview.locator("dd").first().textContent()).resolves.toMatch(/users/);
    await expectAccessible("compliance-preview");
    await screenshot(page, "compliance-preview-1280");
    await expect(page.getByTestId("verify-command").textContent()).resolves.toContain("hybrid-cicd verify");

    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("link", { name: "Evidence bundle" }).click(),
    ]);
    expect(download.suggestedFilename()).toMatch(/^compliance-.*\.zip$/);
    const bundle = join(dir, download.suggestedFilename());
    await download.saveAs(bundle);
    const key = join(dir, "audit-key.json");
    await writeFile(key, await (await fetch(`${controlPlane.url}/audit/public-key`)).text());
    const verified = await runCli(["verify", bundle, "--public-key", key]);
    expect(verified.stderr + verified.stdout).not.toMatch(/FAIL/);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);

    const bad = await page.request.get(
      `${controlPlane.url}/console/compliance/export?from=2026-13-01&format=pdf`,
    );
    expect(bad.status()).toBe(400);
    expect(bad.headers()["content-type"]).toContain("application/problem+json");
  });

  it("works without JavaScript: a plain form post queues a job; a post without the CSRF token is refused", async () => {
    await signInAs("otto-operator", "operator");
    const cookies = await browser.cookies(controlPlane.url);
    const cookieHeader = cookies.map((cookie) => `${cookie.name}=${cookie.value}`).join("; ");
    const csrf = cookies.find((cookie) => cookie.name === "hcp_csrf")!.value;
    const post = (form: Record<string, string>) =>
      fetch(`${controlPlane.url}/console/jobs/new`, {
        method: "POST",
        redirect: "manual",
        headers: { cookie: cookieHeader, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(form),
      });
    const queued = await post({ _csrf: csrf, git_ref: "release/1.2", command: "true" });
    expect(queued.status).toBe(302);
    expect(queued.headers.get("location")).toMatch(/^\/console\/jobs\/job_/);
    const invalid = await post({ _csrf: csrf, git_ref: "" });
    expect(invalid.status).toBe(400);
    expect(await invalid.text()).toContain("a git ref is required");
    const forged = await post({ git_ref: "main" });
    expect(forged.status).toBe(403);
  });

  it("signs out everywhere from the Access page", async () => {
    await page.goto(`${controlPlane.url}/console/access`);
    await page.getByRole("button", { name: "Sign out everywhere" }).click();
    await page.waitForURL(/\/console\/sign-in/);
    await page.goto(`${controlPlane.url}/console/jobs`);
    await page.waitForURL(/\/console\/sign-in\?return_to=%2Fconsole%2Fjobs$/);
  });
});
