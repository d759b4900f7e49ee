import * as pulumi from "@pulumi/pulumi";
import { type ResourceRecorder, resolved, settle, stackConfig, useMocks } from "./pulumi-mocks";

export interface StackRun {
  readonly recorder: ResourceRecorder;
  // biome-ignore lint/suspicious/noExplicitAny: the stack's outputs, read by tests
  readonly outputs: Record<string, any>;
}

/** A sentinel secret: it must never show up outside the secret it is stored in. */
export const oauthClientSecretsSentinel = '{"github":"SENTINEL-github-client-secret-3f9a"}';

/**
 * Runs this repository's stack program (platform/src/stack.ts) with one stack file's configuration,
 * plus what the README tells operators to set with `pulumi config set`.
 */
export async function runStackFile(
  stackFile: string,
  extraConfig: Record<string, string> = {},
): Promise<StackRun> {
  const stack = /^Pulumi\.(.+)\.yaml$/.exec(stackFile)?.[1];
  if (!stack) throw new Error(`${stackFile} is not a stack file`);
  const config = {
    ...stackConfig(stackFile),
    "hybrid-cicd:oauthClientSecrets": oauthClientSecretsSentinel,
    ...extraConfig,
  };
  const recorder = await useMocks(stack, config, ["hybrid-cicd:oauthClientSecrets"]);
  const { controlPlaneStack: program } = await import("../../../platform/src/control-plane-stack");
  const outputs = await runProgram(recorder, program);
  return { recorder, outputs: outputs as Record<string, unknown> };
}

/**
 * Runs a Pulumi program under the mocks and waits for every registration. A failure inside the program's
 * outputs (which Pulumi reports as an unhandled rejection, leaving the outputs unresolved) fails the run
 * at once instead of leaving the test waiting for its timeout.
 */
export async function runProgram<T>(
  recorder: ResourceRecorder,
  program: () => T | Promise<T>,
): Promise<pulumi.Unwrap<T>> {
  // Pulumi records a stack trace for every promise and resource it creates; mapping each one through
  // source maps costs seconds per program. V8's own formatting is enough for those.
  const prepareStackTrace = Error.prepareStackTrace;
  Error.prepareStackTrace = (error, frames) =>
    `${error}\n${frames.map((frame) => `    at ${frame}`).join("\n")}`;
  let onFailure: (error: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    onFailure = reject;
  });
  process.on("unhandledRejection", onFailure);
  try {
    const outputs = await Promise.race([
      Promise.resolve(program()).then((value) => resolved(pulumi.output(value))),
      failed,
    ]);
    await Promise.race([settle(recorder), failed]);
    return outputs as pulumi.Unwrap<T>;
  } finally {
    process.off("unhandledRejection", onFailure);
    Error.prepareStackTrace = prepareStackTrace;
  }
}

/** A DynamoDB item (wire format) as plain JSON. */
export function unmarshall(attributes: Record<string, unknown>): Record<string, unknown> {
  const value = (attribute: Record<string, unknown>): unknown => {
    if ("S" in attribute) return attribute["S"];
    if ("N" in attribute) return Number(attribute["N"]);
    if ("BOOL" in attribute) return attribute["BOOL"];
    if ("NULL" in attribute) return null;
    if ("L" in attribute) return (attribute["L"] as Record<string, unknown>[]).map(value);
    if ("M" in attribute) return unmarshall(attribute["M"] as Record<string, unknown>);
    throw new Error(`unexpected attribute ${JSON.stringify(attribute)}`);
  };
  return Object.fromEntries(
    Object.entries(attributes).map(([key, attribute]) => [key, value(attribute as Record<string, unknown>)]),
  );
}
