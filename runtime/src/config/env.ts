import { z } from "zod";
import { parseDuration } from "../cli/duration";

/**
 * Every setting the runtime reads from its environment, checked once at start-up. A wrong value stops
 * the process with a message naming the variable; nothing else in the runtime reads `process.env`.
 * The platform sets the same variables on the Lambda functions (see `lambdaEnvironment` below).
 */
const bool = z.enum(["true", "false", "1", "0"]).transform((value) => value === "true" || value === "1");
/** A duration such as `12h`, `7d`, `90m` or plain seconds, as seconds. */
const duration = (min: number, max: number) =>
  z
    .union([z.number(), z.string()])
    .transform((value, context) => {
      try {
        return typeof value === "number" ? value : parseDuration(value);
      } catch (error) {
        context.addIssue({ code: "custom", message: (error as Error).message });
        return z.NEVER;
      }
    })
    .pipe(z.number().int().min(min).max(max));
/** A rate limit such as `30/1m`: at most 30 requests per client per minute. */
const rate = z.union([
  z.object({ limit: z.number(), windowSeconds: z.number() }),
  z
    .string()
    .regex(/^\d{1,6}\/\d{1,9}[smhd]?$/, "<count>/<window>, e.g. 30/1m")
    .transform((value) => {
      const [limit, window] = value.split("/") as [string, string];
      return { limit: Number(limit), windowSeconds: parseDuration(window) };
    }),
]);
const seconds = (min: number, max: number) => z.coerce.number().int().min(min).max(max).optional();

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
  // Job lifecycle timings (runtime/src/domain/settings.ts has the defaults). Agents learn the intervals
  // from the server's replies; short values make lost-agent and drain behaviour testable in seconds.
  HYBRID_CICD_HEARTBEAT_INTERVAL_SECONDS: seconds(1, 3600),
  /** Heartbeat period of an agent running a job: how quickly a cancel reaches it. */
  HYBRID_CICD_JOB_HEARTBEAT_INTERVAL_SECONDS: seconds(1, 3600),
  HYBRID_CICD_CLAIM_INTERVAL_SECONDS: seconds(1, 3600),
  /** A running job's lease; must exceed the heartbeat interval. */
  HYBRID_CICD_LEASE_SECONDS: seconds(2, 24 * 3600),
  /** How often the local control plane's in-process sweeper runs (EventBridge's schedule on AWS). */
  HYBRID_CICD_SWEEP_INTERVAL_SECONDS: seconds(1, 3600),
  HYBRID_CICD_AGENT_UNHEALTHY_AFTER_SECONDS: seconds(1, 24 * 3600),
  HYBRID_CICD_AGENT_DEAD_AFTER_SECONDS: seconds(1, 7 * 24 * 3600),
  /** SIGTERM → SIGKILL grace an agent gives a cancelled job. */
  HYBRID_CICD_CANCEL_GRACE_SECONDS: seconds(1, 3600),
  /** Total log bytes kept per job; the rest is dropped and the truncation recorded on the job. */
  HYBRID_CICD_JOB_LOG_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(1024 ** 3)
    .optional(),
  // Identity (README.md, "Sign-in, roles, tokens and sessions"). A provider is enabled by its client id; client secrets live in the secret
  // store (`oauth-client-secrets`, a JSON object by provider id), never in the environment.
  /** Session lifetimes as durations (`12h`, `7d`, or seconds). */
  HYBRID_CICD_SESSION_IDLE_TIMEOUT: duration(60, 30 * 86400).default(12 * 3600),
  HYBRID_CICD_SESSION_MAX_AGE: duration(60, 90 * 86400).default(7 * 86400),
  /** Role bindings by configuration: `email:alice@example.com=admin,github-id:583231=operator,domain:example.com=viewer`. */
  HYBRID_CICD_ROLE_BINDINGS: z
    .string()
    .max(16 * 1024)
    .default(""),
  HYBRID_CICD_OAUTH_GOOGLE_CLIENT_ID: z.string().min(1).optional(),
  /** Google's issuer; only changed to point at a test authorization server. */
  HYBRID_CICD_OAUTH_GOOGLE_ISSUER: z.url().default("https://accounts.google.com"),
  HYBRID_CICD_OAUTH_GITHUB_CLIENT_ID: z.string().min(1).optional(),
  /** GitHub (or GitHub Enterprise Server) web and API base URLs. */
  HYBRID_CICD_OAUTH_GITHUB_URL: z.url().default("https://github.com"),
  HYBRID_CICD_OAUTH_GITHUB_API_URL: z.url().default("https://api.github.com"),
  /** Any OpenID Connect issuer (Okta, Entra ID, Keycloak, ...), found by discovery. */
  HYBRID_CICD_OAUTH_OIDC_ISSUER: z.url().optional(),
  HYBRID_CICD_OAUTH_OIDC_CLIENT_ID: z.string().min(1).optional(),
  HYBRID_CICD_OAUTH_OIDC_NAME: z.string().min(1).max(64).default("Single sign-on"),
  HYBRID_CICD_OAUTH_OIDC_SCOPES: z.string().min(1).default("openid email profile"),
  /** Per client IP: `<count>/<window>`, e.g. `30/1m`. */
  HYBRID_CICD_RATE_LIMIT_SIGNIN: rate.default({ limit: 30, windowSeconds: 60 }),
  HYBRID_CICD_RATE_LIMIT_TOKENS: rate.default({ limit: 30, windowSeconds: 60 }),
  /** On-demand audit digests (`POST /audit/digests`): each is a signature and a stored item. */
  HYBRID_CICD_RATE_LIMIT_DIGESTS: rate.default({ limit: 10, windowSeconds: 60 }),
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
