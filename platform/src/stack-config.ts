import { roles } from "@hybrid-cicd/runtime/identity/permissions";
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import type { ControlPlaneArgs } from "./control-plane";

/**
 * The `hybrid-cicd:*` configuration of this repository's own stacks (Pulumi.staging.yaml,
 * Pulumi.production.yaml), checked before anything is created: a typo in a key or a wrong value stops
 * the program with a message naming it.
 */
const namespace = "hybrid-cicd";

const sizing = z
  .object({
    memory: z.number().int().optional(),
    timeout: z.number().int().optional(),
    reservedConcurrency: z.number().int().optional(),
    provisionedConcurrency: z.number().int().optional(),
  })
  .strict();

const stackConfigSchema = z
  .object({
    name: z.string().default("hybrid-cicd"),
    environment: z.string(),
    protect: z.boolean().optional(),
    kmsKey: z.string().optional(),
    capacity: z
      .discriminatedUnion("mode", [
        z.object({ mode: z.literal("on-demand") }).strict(),
        z
          .object({
            mode: z.literal("provisioned"),
            readUnits: z.number().int(),
            writeUnits: z.number().int(),
          })
          .strict(),
      ])
      .optional(),
    functions: z
      .object({ api: sizing, console: sizing, scheduled: sizing, rotation: sizing })
      .partial()
      .strict()
      .optional(),
    architecture: z.enum(["arm64", "x86_64"]).optional(),
    tracing: z.boolean().optional(),
    logRetentionDays: z.number().int().optional(),
    logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]).optional(),
    alarms: z
      .union([
        z.literal(false),
        z.object({ topicArn: z.string().optional(), latencyThresholdMs: z.number().optional() }).strict(),
      ])
      .optional(),
    domain: z.object({ name: z.string(), certificateArn: z.string() }).strict().optional(),
    throttling: z.object({ rateLimit: z.number(), burstLimit: z.number() }).partial().strict().optional(),
    oauth: z
      .object({
        github: z
          .object({ clientId: z.string(), url: z.string().optional(), apiUrl: z.string().optional() })
          .strict(),
        google: z.object({ clientId: z.string() }).strict(),
        oidc: z
          .object({
            issuer: z.string(),
            clientId: z.string(),
            name: z.string().optional(),
            scopes: z.string().optional(),
          })
          .strict(),
      })
      .partial()
      .strict()
      .optional(),
    roleBindings: z.partialRecord(z.enum(roles), z.array(z.string())).optional(),
    permissionsBoundary: z.string().optional(),
    tags: z.record(z.string(), z.string()).optional(),
    schedules: z.object({ sweep: z.string(), digest: z.string() }).partial().strict().optional(),
  })
  .strict();

/** Keys whose configured value is plain text (the others are YAML/JSON values). */
const textKeys = new Set([
  "name",
  "environment",
  "kmsKey",
  "architecture",
  "logLevel",
  "permissionsBoundary",
]);
/** Secret keys, read as Pulumi secrets and never parsed here. */
const secretKeys = new Set(["oauthClientSecrets"]);

export interface StackSettings {
  /** The ControlPlane's name. */
  readonly name: string;
  readonly args: ControlPlaneArgs;
}

/** Reads and checks the stack's `hybrid-cicd:*` configuration. */
export function readStackConfig(): StackSettings {
  const config = new pulumi.Config(namespace);
  const raw: Record<string, unknown> = {};
  for (const fullKey of Object.keys(pulumi.runtime.allConfig())) {
    if (!fullKey.startsWith(`${namespace}:`)) continue;
    const key = fullKey.slice(namespace.length + 1);
    if (secretKeys.has(key)) continue;
    raw[key] = textKeys.has(key) ? config.get(key) : config.getObject(key);
  }
  const parsed = stackConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const where = issue.path.length > 0 ? `${namespace}:${issue.path.join(".")}` : namespace;
      return `${where}: ${issue.message}`;
    });
    throw new Error(`invalid stack configuration: ${problems.join("; ")}`);
  }
  const { name, oauth, ...settings } = parsed.data;
  const clientSecrets = config.getSecret("oauthClientSecrets");
  return {
    name,
    args: {
      ...settings,
      oauth: oauth || clientSecrets ? { ...oauth, clientSecrets } : undefined,
    },
  };
}
