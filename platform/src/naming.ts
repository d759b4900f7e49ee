import { envSchema } from "@hybrid-cicd/runtime/config/env";

/**
 * Physical names of everything a ControlPlane creates, derived from the component's name and its
 * environment: two control planes in one account differ in at least one of the two, so nothing collides.
 * The runtime finds its tables and secrets through the two prefixes it receives as environment variables.
 */
export interface ControlPlaneNames {
  /** `${name}-${environment}`: the stem of every physical name, e.g. `hybrid-cicd-production`. */
  readonly stem: string;
  /** DynamoDB table-name prefix (HYBRID_CICD_TABLE_PREFIX), e.g. `hybrid-cicd-production-`. */
  readonly tablePrefix: string;
  /** Secrets Manager name prefix (HYBRID_CICD_SECRET_PREFIX), e.g. `hybrid-cicd/production/`. */
  readonly secretPrefix: string;
  /** A physical name for one part, e.g. `physical("api")` = `hybrid-cicd-production-api`. */
  physical(part: string): string;
}

const componentNamePattern = /^[a-z][a-z0-9-]*[a-z0-9]$/;
/**
 * Lambda function and IAM role names are limited to 64 characters; the longest suffix used is
 * `-scheduled-role` (15), so the stem may take 48.
 */
const maxStemLength = 48;

export function controlPlaneNames(name: string, environment: string): ControlPlaneNames {
  if (!componentNamePattern.test(name)) {
    throw new Error(
      `ControlPlane name "${name}": use lower-case letters, digits and dashes, starting with a letter (it prefixes physical names)`,
    );
  }
  const environmentCheck = envSchema.shape.HYBRID_CICD_ENVIRONMENT.safeParse(environment);
  if (!environmentCheck.success || environment === "local") {
    throw new Error(
      `ControlPlane environment "${environment}": lower-case letters, digits and dashes, 2 to 31 characters, not "local"`,
    );
  }
  const stem = `${name}-${environment}`;
  if (stem.length > maxStemLength) {
    throw new Error(
      `"${stem}" is longer than ${maxStemLength} characters; Lambda and IAM names would not fit`,
    );
  }
  return {
    stem,
    tablePrefix: `${stem}-`,
    secretPrefix: `${name}/${environment}/`,
    physical: (part) => `${stem}-${part}`,
  };
}
