import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import yaml from "js-yaml";
import { describe, expect, test } from "vitest";
import { repositoryRoot } from "./support/pulumi-mocks";

/**
 * Pulumi.yaml is what `pulumi up` reads to start the program; no Pulumi CLI runs here, so this starts
 * plain node exactly as the Node.js language host would (no nodeargs, ts-node off), loads `main` the way
 * the host loads an ES module program, and runs it against Pulumi's mocks. `main` imports the built
 * package entry (platform/dist, built by the platform tests' global setup).
 */

interface ProjectFile {
  name: string;
  main: string;
  runtime: { name: string; options: { typescript: boolean; nodeargs?: string } };
}

const project = yaml.load(readFileSync(path.join(repositoryRoot, "Pulumi.yaml"), "utf8")) as ProjectFile;

describe("Pulumi.yaml", () => {
  test("runs a JavaScript program on the package's own entry, with no TypeScript loader", () => {
    expect(project.name).toBe("hybrid-cicd");
    expect(project.runtime.name).toBe("nodejs");
    expect(project.runtime.options.typescript).toBe(false);
    expect(project.runtime.options.nodeargs).toBeUndefined();
    expect(project.main).toBe("platform/stack.mjs");
    expect(readFileSync(path.join(repositoryRoot, project.main), "utf8")).toContain(
      'from "@hybrid-cicd/platform"',
    );
  });

  // One stack file is enough here: both stacks' resource graphs are checked in-process (stacks.test.ts).
  test.each([["Pulumi.production.yaml", "production"]])(
    "starts plain node and runs main for %s",
    (stackFile, stack) => {
      const result = spawnSync(
        process.execPath,
        [
          path.join(import.meta.dirname, "support/run-like-pulumi.mjs"),
          path.join(repositoryRoot, project.main),
          path.join(repositoryRoot, stackFile),
          stack,
        ],
        { cwd: repositoryRoot, encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" }, timeout: 60_000 },
      );
      expect(result.stderr).toBe("");
      expect(result.status).toBe(0);
      const report = JSON.parse(result.stdout.trim()) as { resources: number; outputs: string[] };
      expect(report.resources).toBeGreaterThan(50);
      expect(report.outputs).toEqual(
        expect.arrayContaining(["apiUrl", "consoleUrl", "tableNames", "functionNames"]),
      );
    },
  );
});

describe("the example CI workflow (.github/workflows/deploy.yml)", () => {
  interface Job {
    needs?: string | string[];
    environment?: { name: string };
    steps: { run?: string; uses?: string }[];
  }
  const workflow = yaml.load(
    readFileSync(path.join(repositoryRoot, ".github/workflows/deploy.yml"), "utf8"),
  ) as {
    on: Record<string, unknown>;
    jobs: Record<string, Job & { if?: string }>;
  };
  const runs = (job: string) => (workflow.jobs[job]?.steps ?? []).map((step) => step.run ?? "").join("\n");

  interface RoleStep {
    uses?: string;
    with?: { "role-to-assume"?: string };
  }
  const roleOf = (job: string) =>
    ((workflow.jobs[job]?.steps ?? []) as RoleStep[]).find((step) => step.uses?.startsWith("aws-actions/"))
      ?.with?.["role-to-assume"];

  test("goes test → staging preview → staging → production plan → approval → production", () => {
    expect(workflow.jobs["preview"]?.needs).toBe("test");
    expect(workflow.jobs["staging"]?.needs).toBe("preview");
    expect(workflow.jobs["production-plan"]?.needs).toBe("staging");
    expect(workflow.jobs["production"]?.needs).toBe("production-plan");
    expect(workflow.jobs["staging"]?.environment?.name).toBe("staging");
    expect(workflow.jobs["production"]?.environment?.name).toBe("production");
    expect(workflow.jobs["production-plan"]?.environment).toBeUndefined();
  });

  test("runs tests and a staging preview on pull requests, deploying nothing", () => {
    expect(Object.keys(workflow.on)).toEqual(expect.arrayContaining(["pull_request", "push"]));
    expect(workflow.jobs["preview"]?.if).toBeUndefined();
    expect(runs("preview")).toMatch(/pulumi preview --stack staging --policy-pack/);
    expect(workflow.jobs["staging"]?.if).toBe("github.event_name != 'pull_request'");
  });

  test("previews with a read-only role and deploys each environment with its own role", () => {
    // GitHub expressions, not template literals.
    const variable = (name: string) => `\${{ vars.${name} }}`;
    expect(roleOf("preview")).toBe(variable("AWS_PREVIEW_ROLE_ARN"));
    expect(roleOf("production-plan")).toBe(variable("AWS_PREVIEW_ROLE_ARN"));
    expect(roleOf("staging")).toBe(variable("AWS_STAGING_DEPLOY_ROLE_ARN"));
    expect(roleOf("production")).toBe(variable("AWS_PRODUCTION_DEPLOY_ROLE_ARN"));
  });

  test("applies in production exactly the plan the approver was shown, then releases gradually", () => {
    expect(runs("test")).toContain("npm test");
    expect(runs("production-plan")).toMatch(
      /pulumi preview --stack production --policy-pack .* --save-plan production\.plan\.json/s,
    );
    expect(runs("production-plan")).toContain("GITHUB_STEP_SUMMARY");
    expect(runs("production")).toMatch(
      /pulumi up --stack production --policy-pack "\$POLICY_PACK" --plan production\.plan\.json/,
    );
    expect(runs("production")).not.toContain("--skip-preview");
    expect(runs("staging")).not.toContain("--skip-preview");
    expect(runs("production")).toContain("platform/scripts/release.ts");
    for (const job of ["preview", "staging", "production-plan", "production"]) {
      expect(runs(job)).toContain("npm run build -w platform");
    }
  });
});
