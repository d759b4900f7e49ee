import { z } from "zod";

/**
 * Every setting the runtime reads from its environment, checked once at start-up. A wrong value stops
 * the process with a message naming the variable; nothing else in the runtime reads `process.env`.
 * The platform sets the same variables on the Lambda functions (see `lambdaEnvironment` below).
 */
const bool = z.enum(["true", "false", "1", "0"]).transform((value) => value === "true" || value === "1");

export const envSchema = z.object({
  HYBRID_CICD_ENVIRONMENT: z
    .string()
    .regex(/^[a-z][a-z0-9-]{1,30}$/, "lower-case letters, digits and dashes")
    .default("local"),
  /** Prefix of every DynamoDB table name, e.g. `hybrid-cicd-production-`. */
  HYBRID_CICD_TABLE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,200}$/, "DynamoDB table-name characters")
    .default("hybrid-cicd-local-"),
  /** Another DynamoDB (e.g. one you run yourself); unset locally = the embedded DynamoDB Local. */
  DYNAMODB_ENDPOINT: z.url().optional(),
  AWS_REGION: z.string().default("us-east-1"),
  /** `local`: AES-256-GCM file in the data dir. `aws`: AWS Secrets Manager. */
  HYBRID_CICD_SECRET_STORE: z.enum(["local", "aws"]).default("local"),
  /** Prefix of secret names in AWS Secrets Manager, e.g. `hybrid-cicd/production/`. */
  HYBRID_CICD_SECRET_PREFIX: z.string().default("hybrid-cicd/local/"),
  HYBRID_CICD_DATA_DIR: z.string().default(".data"),
  PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  HOST: z.string().default("127.0.0.1"),
  /** Public base URL of the API, used in sign-in links; defaults to http://HOST:PORT. */
  HYBRID_CICD_PUBLIC_URL: z.url().optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** Whether cookies get `Secure`; defaults to true unless the public URL is loopback http. */
  HYBRID_CICD_SECURE_COOKIES: bool.optional(),
});

export type Env = z.infer<typeof envSchema>;

export class ConfigurationError extends Error {
  override name = "ConfigurationError";
}

/** Parses the environment; throws a ConfigurationError naming each wrong variable. */
export function loadEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const parsed = envSchema.safeParse(source);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new ConfigurationError(`invalid configuration: ${problems.join("; ")}`);
  }
  return parsed.data;
}

/** The names of the variables the platform must set on the runtime's Lambda functions. */
export const lambdaEnvironmentVariables = [
  "HYBRID_CICD_ENVIRONMENT",
  "HYBRID_CICD_TABLE_PREFIX",
  "HYBRID_CICD_SECRET_STORE",
  "HYBRID_CICD_SECRET_PREFIX",
] as const satisfies readonly (keyof Env)[];
