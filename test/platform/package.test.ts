import { execFileSync, spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { repositoryRoot } from "./support/pulumi-mocks";

/**
 * The platform package the way another team gets it: `npm pack` in platform/ (built by the global
 * setup), installed alone into an empty project outside this repository next to its peer dependencies,
 * and used from a CommonJS and an ES module program run by plain node (no TypeScript loader).
 */

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: { path: string }[];
}

interface ProgramReport {
  controlPlanes: string[];
  resources: number;
  runtimes: string[];
  sourceCodeHashes: Record<string, string>;
  urls: { staging: string; production: string };
  componentClass: string;
}

const npm = (args: string[], cwd: string) =>
  execFileSync("npm", args, {
    cwd,
    encoding: "utf8",
    env: { ...process.env, npm_config_update_notifier: "false", NODE_OPTIONS: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });

describe("the installed @hybrid-cicd/platform package", () => {
  let work: string;
  let project: string;
  let pack: PackResult;
  let installSeconds: number;

  beforeAll(() => {
    work = mkdtempSync(path.join(tmpdir(), "hybrid-cicd-consumer-"));
    // The build is the global setup's; packing again must not rebuild with another clock.
    pack = (
      JSON.parse(
        npm(
          ["pack", "--json", "--ignore-scripts", "--pack-destination", work],
          path.join(repositoryRoot, "platform"),
        ),
      ) as PackResult[]
    )[0] as PackResult;
    project = path.join(work, "project");
    execFileSync("mkdir", ["-p", project]);
    writeFileSync(
      path.join(project, "package.json"),
      JSON.stringify({ name: "other-team-infra", version: "1.0.0", private: true }),
    );
    const started = process.hrtime.bigint();
    // Peer dependencies (@pulumi/pulumi, @pulumi/aws, @pulumiverse/time) are installed by npm with it.
    npm(["install", "--prefer-offline", "--no-audit", "--no-fund", path.join(work, pack.filename)], project);
    installSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    for (const file of ["program.cjs", "program.mjs", "mocks.cjs"]) {
      copyFileSync(path.join(import.meta.dirname, "fixtures/consumer", file), path.join(project, file));
    }
    console.info(
      `platform tarball: ${pack.size} bytes, ${pack.entryCount} files (unpacked ${pack.unpackedSize}); install into an empty project: ${installSeconds.toFixed(1)} s`,
    );
  }, 600_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("is one tarball of compiled JavaScript, declarations, the Lambda zips and the policy pack; no TypeScript sources", () => {
    const files = pack.files.map((file) => file.path);
    expect(files).toEqual(
      expect.arrayContaining([
        "package.json",
        "dist/index.cjs",
        "dist/index.mjs",
        "dist/index.d.ts",
        "dist/lambda/api.zip",
        "dist/lambda/console.zip",
        "dist/lambda/scheduled.zip",
        "dist/lambda/rotation.zip",
        "dist/lambda/manifest.json",
        "policy/index.js",
        "policy/dist/pack.cjs",
        "policy/PulumiPolicy.yaml",
      ]),
    );
    expect(files.filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts"))).toEqual([]);
  });

  test("brings one copy of the Pulumi SDK (peer dependency) and none of this repository's other packages", () => {
    const manifest = JSON.parse(
      readFileSync(path.join(project, "node_modules/@hybrid-cicd/platform/package.json"), "utf8"),
    ) as { dependencies: Record<string, string>; peerDependencies: Record<string, string> };
    expect(Object.keys(manifest.peerDependencies)).toEqual(
      expect.arrayContaining(["@pulumi/pulumi", "@pulumi/aws"]),
    );
    expect(Object.keys(manifest.dependencies).filter((name) => name.startsWith("@pulumi/"))).toEqual([]);
    expect(readdirSync(path.join(project, "node_modules/@hybrid-cicd"))).toEqual(["platform"]);
    const sdkCopies = spawnSync("npm", ["ls", "@pulumi/pulumi", "--all", "--parseable"], {
      cwd: project,
      encoding: "utf8",
    })
      .stdout.trim()
      .split("\n")
      .filter(Boolean);
    expect(new Set(sdkCopies).size).toBe(1);
  });

  test.each(["program.cjs", "program.mjs"])(
    "%s constructs two control planes (one name, two environments) with plain node",
    (program) => {
      const result = spawnSync(process.execPath, [program], {
        cwd: project,
        encoding: "utf8",
        env: { ...process.env, NODE_OPTIONS: "" },
        timeout: 120_000,
      });
      expect(result.stderr).toBe("");
      expect(result.status).toBe(0);
      const report = JSON.parse(result.stdout.trim()) as ProgramReport;
      expect(report.componentClass).toBe("function");
      expect(report.controlPlanes.sort()).toEqual(["cicd-production", "cicd-staging"]);
      expect(report.resources).toBeGreaterThan(150);
      expect(report.runtimes).toEqual(["nodejs22.x"]);
      // The deployed code is the package's prebuilt zips, byte for byte.
      const manifest = JSON.parse(
        readFileSync(
          path.join(project, "node_modules/@hybrid-cicd/platform/dist/lambda/manifest.json"),
          "utf8",
        ),
      ) as Record<string, { sha256: string }>;
      const expectedHash = Buffer.from(manifest["api"]?.sha256 ?? "", "hex").toString("base64");
      expect(report.sourceCodeHashes["cicd-staging-api"]).toBe(expectedHash);
      expect(report.sourceCodeHashes["cicd-production-api"]).toBe(expectedHash);
      expect(existsSync(path.join(project, "node_modules/typescript"))).toBe(false);
    },
  );
});
