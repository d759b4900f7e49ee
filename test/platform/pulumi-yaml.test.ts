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
    jobs: Record<string, Job>;
  };
  const runs = (job: string) => (workflow.jobs[job]?.steps ?? []).map((step) => step.run ?? "").join("\n");

  test("goes test → preview → staging → production, production behind its own environment", () => {
    expect(workflow.jobs["preview"]?.needs).toBe("test");
    expect(workflow.jobs["staging"]?.needs).toBe("preview");
    expect(workflow.jobs["production"]?.needs).toBe("staging");
    expect(workflow.jobs["staging"]?.environment?.name).toBe("staging");
    expect(workflow.jobs["production"]?.environment?.name).toBe("production");
  });

  test("tests with the repository's test command and deploys with the policy pack", () => {
    expect(runs("test")).toContain("npm test");
    expect(runs("preview")).toMatch(/pulumi preview --stack \$\{\{ matrix\.stack \}\} --policy-pack/);
    expect(runs("staging")).toMatch(/pulumi up --stack staging --policy-pack/);
    expect(runs("production")).toMatch(/pulumi up --stack production --policy-pack/);
  });
});
