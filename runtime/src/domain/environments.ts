import { ValidationError } from "./errors";

/**
 * The target environments agents belong to and jobs run in (decision 010). Known environments and the
 * ones that need a second person's approval are configuration; the default is the first one that needs
 * no approval, so a job or registration token that names none never lands in production.
 */
export interface TargetEnvironments {
  readonly known: readonly string[];
  readonly approval: readonly string[];
  readonly default: string;
}

export const environmentPattern = /^[a-z][a-z0-9-]{0,31}$/;

/** Tags cannot name an environment: `env:` is reserved (only an admin grants an environment). */
export const reservedTagPrefix = "env:";

export class InvalidEnvironmentsError extends Error {
  override name = "InvalidEnvironmentsError";
}

export function targetEnvironments(
  known: readonly string[] = ["staging", "production"],
  approval: readonly string[] = ["production"],
): TargetEnvironments {
  const unique = [...new Set(known)];
  if (unique.length === 0) throw new InvalidEnvironmentsError("at least one target environment is needed");
  for (const name of [...unique, ...approval]) {
    if (!environmentPattern.test(name)) {
      throw new InvalidEnvironmentsError(
        `"${name}" is not an environment name (lower-case letters, digits, -)`,
      );
    }
  }
  const unknown = approval.filter((name) => !unique.includes(name));
  if (unknown.length > 0) {
    throw new InvalidEnvironmentsError(
      `approval is required for unknown environments: ${unknown.join(", ")}`,
    );
  }
  const open = unique.find((name) => !approval.includes(name));
  return { known: unique, approval: [...new Set(approval)], default: open ?? unique[0]! };
}

export const defaultTargetEnvironments = targetEnvironments();

/** The environment a request names, or the default; 400 for one this deployment does not know. */
export function resolveEnvironment(environments: TargetEnvironments, requested: string | undefined): string {
  if (requested === undefined) return environments.default;
  if (!environments.known.includes(requested)) {
    throw new ValidationError("unknown environment", [
      { field: "environment", message: `one of ${environments.known.join(", ")}` },
    ]);
  }
  return requested;
}

export function needsApproval(environments: TargetEnvironments, environment: string): boolean {
  return environments.approval.includes(environment);
}

/** 400 when a tag tries to name an environment. */
export function assertNoEnvironmentTags(tags: readonly string[]): void {
  const reserved = tags.filter((tag) => tag.startsWith(reservedTagPrefix));
  if (reserved.length > 0) {
    throw new ValidationError("tags cannot name an environment", [
      {
        field: "tags",
        message: `"${reservedTagPrefix}" is reserved (${reserved.join(", ")}): the environment is set by the registration token (agents) or the environment field (jobs)`,
      },
    ]);
  }
}
