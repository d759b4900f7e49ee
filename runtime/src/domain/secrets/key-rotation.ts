import { Buffer } from "node:buffer";
import type { SecretKey } from "../../secrets/catalog";
import type { SecretStore } from "../../secrets/secret-store";
import type { WriteTransaction } from "../../store/transaction";
import { generateRootKey } from "../agents/workload-keys";
import { generateSigningKeySecret, signerFromSecret } from "../audit/audit-signing";
import { ConflictError, ValidationError } from "../errors";
import type { RequestContext } from "../principal";

export type RotationStep = "createSecret" | "setSecret" | "testSecret" | "finishSecret";

/** How each rotated key is made and checked. */
export const keyMaterial: Partial<Record<SecretKey, { generate(): string; check(value: string): void }>> = {
  workloadIdentityRootKey: {
    generate: generateRootKey,
    check: (value) => {
      if (Buffer.from(value, "base64url").length !== 32) throw new Error("the root key is not 32 bytes");
    },
  },
  auditSigningKey: { generate: generateSigningKeySecret, check: (value) => void signerFromSecret(value) },
};

/** Thrown for a rotation this release cannot do yet; the secret is left unchanged. */
export class RotationNotSupportedError extends ConflictError {
  override name = "RotationNotSupportedError";
}

/**
 * The Secrets Manager rotation protocol (createSecret → setSecret → testSecret → finishSecret) for the
 * keys the control plane owns. This release performs the FIRST rotation of each key, the one
 * `pulumi up` starts, which creates its initial version: nothing depends on a key that does not exist
 * yet, so setSecret has nobody to tell and testSecret checks the material itself. Rotating a key that
 * already has a current version (agents must learn and acknowledge the new one first) is refused
 * without changing anything, until the secret-rotation work lands. Every step is idempotent.
 */
export class KeyRotation {
  constructor(
    private readonly secretStore: SecretStore,
    private readonly audit: (tx: WriteTransaction) => Promise<void>,
    private readonly newTransaction: () => WriteTransaction,
  ) {}

  async step(
    input: { secretId: string; key: SecretKey; token: string; step: RotationStep },
    context: RequestContext,
  ) {
    const material = keyMaterial[input.key];
    if (!material) throw new ValidationError(`${input.key} is not rotated by the control plane`);
    const versions = await this.secretStore.listVersions(input.secretId);
    const current = versions.find((version) => version.stages.includes("AWSCURRENT"));
    const target = versions.find((version) => version.versionId === input.token);
    if (target?.stages.includes("AWSCURRENT")) return { step: input.step, outcome: "already current" };
    if (current) {
      throw new RotationNotSupportedError(
        `${input.key} already has a current version; rotating it (with agents acknowledging the new key) is not deployed yet, nothing was changed`,
      );
    }
    let outcome: string;
    switch (input.step) {
      case "createSecret":
        if (!target) {
          await this.secretStore.putSecretValue(input.secretId, input.token, material.generate(), [
            "AWSPENDING",
          ]);
          outcome = "created";
        } else {
          outcome = "already created";
        }
        break;
      case "setSecret":
        outcome = "no dependants of a first key";
        break;
      case "testSecret": {
        const pending = target ?? (await this.secretStore.getSecretVersion(input.secretId, input.token));
        if (!pending)
          throw new ConflictError(`version ${input.token} does not exist; run createSecret first`);
        material.check(pending.value);
        outcome = "tested";
        break;
      }
      case "finishSecret":
        if (!target) throw new ConflictError(`version ${input.token} does not exist; run createSecret first`);
        await this.secretStore.updateSecretVersionStage(input.secretId, "AWSCURRENT", input.token);
        await this.secretStore.removeSecretVersionStage(input.secretId, "AWSPENDING");
        outcome = "current";
        break;
    }
    const tx = this.newTransaction();
    tx.audit({
      action: `secret.rotate.${input.step.replace("Secret", "")}`,
      actor: { type: "system", id: "rotation" },
      target: { type: "secret", id: input.key },
      outcome: "success",
      request_id: context.requestId,
      details: { version_id: input.token, result: outcome, first_version: true },
    });
    await this.audit(tx);
    return { step: input.step, outcome };
  }
}
