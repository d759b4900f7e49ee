/**
 * Entry of the Secrets Manager rotation function. The platform deploys it and schedules it for every
 * secret with a rotation period (runtime/src/secrets/catalog.ts).
 *
 * PLACEHOLDER until the secret-rotation issue lands: every invocation fails on purpose, so Secrets
 * Manager records the rotation as failed, the function's error alarm fires, and nobody mistakes a
 * deployed control plane for one whose secrets rotate. It never reads or writes a secret.
 */

/** The event Secrets Manager sends for each step of a rotation. */
export interface RotationEvent {
  readonly Step: "createSecret" | "setSecret" | "testSecret" | "finishSecret";
  readonly SecretId: string;
  readonly ClientRequestToken: string;
  readonly RotationToken?: string;
}

export class RotationNotDeployedError extends Error {
  override name = "RotationNotDeployedError";
}

export async function handler(event: RotationEvent): Promise<never> {
  throw new RotationNotDeployedError(
    `secret rotation is not deployed yet: refused step ${String(event?.Step)} for ${String(event?.SecretId)} ` +
      "(this is the placeholder rotation handler; the secret is unchanged)",
  );
}
