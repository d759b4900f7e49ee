/**
 * Starts the gradual releases `pulumi up` prepared and waits for them (README, "Releases"):
 *
 *   pulumi stack output releaseTargets --json | npx tsx platform/scripts/release.ts
 *
 * Needs the AWS CLI with the deploy role's credentials. Exit code 0 when every function is released (or
 * already was), 1 when one was rolled back or failed: CodeDeploy has then put `live` back on the previous
 * version by itself.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import type { ReleaseTarget } from "../src/control-plane-releases";
import { type DeploymentStatus, planRelease, releaseOutcome } from "../src/release-plan";

const aws = (...args: string[]) => execFileSync("aws", [...args, "--output", "json"], { encoding: "utf8" });

const targets = JSON.parse(readFileSync(0, "utf8") || "null") as Record<string, ReleaseTarget> | null;
if (!targets) {
  console.log("no gradual releases in this stack (staging switches at once)");
  process.exit(0);
}
let failed = false;
for (const [short, target] of Object.entries(targets)) {
  const alias = JSON.parse(
    aws("lambda", "get-alias", "--function-name", target.functionName, "--name", target.alias),
  );
  const currentVersion = String(alias.FunctionVersion);
  const step = planRelease(target, currentVersion);
  if (step.action === "skip") {
    console.log(`${short}: ${step.reason}`);
    continue;
  }
  const { deploymentId } = JSON.parse(
    aws("deploy", "create-deployment", "--cli-input-json", JSON.stringify(step.createDeployment)),
  ) as { deploymentId: string };
  console.log(`${short}: ${step.createDeployment.description} (deployment ${deploymentId})`);
  for (;;) {
    const { deploymentInfo } = JSON.parse(
      aws("deploy", "get-deployment", "--deployment-id", deploymentId),
    ) as {
      deploymentInfo: { status: DeploymentStatus; errorInformation?: { code?: string; message?: string } };
    };
    const outcome = releaseOutcome({ target, currentVersion }, deploymentInfo);
    if (outcome.state === "in-progress") {
      await new Promise((resolve) => setTimeout(resolve, 15_000));
      continue;
    }
    console.log(`${short}: ${JSON.stringify(outcome)}`);
    if (outcome.state !== "released") failed = true;
    break;
  }
}
process.exit(failed ? 1 : 0);
