import { createRequire } from "node:module";
import type { Env, lambdaEnvironmentVariables } from "@hybrid-cicd/runtime/config/env";
import { parseConfiguredBindings } from "@hybrid-cicd/runtime/domain/access/role-bindings";
import type { Role } from "@hybrid-cicd/runtime/identity/permissions";
import type { SecretKey } from "@hybrid-cicd/runtime/secrets/catalog";
import { type TableKey, tables as tableDeclarations } from "@hybrid-cicd/runtime/store/schema";
import { version as productVersion } from "@hybrid-cicd/runtime/version";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import {
  ControlPlaneFunction,
  type ControlPlaneFunction as FunctionPart,
  type FunctionSizing,
  normalizeSizing,
} from "./control-plane-function";
import { type ApiThrottling, ControlPlaneHttpApi, type CustomDomain } from "./control-plane-http-api";
import { ControlPlaneKey } from "./control-plane-key";
import { ControlPlaneMonitoring } from "./control-plane-monitoring";
import { accountContext } from "./control-plane-part";
import { ControlPlaneSchedules, type ScheduledTask } from "./control-plane-schedules";
import { ControlPlaneSecrets } from "./control-plane-secrets";
import { ControlPlaneTables, type TableCapacity } from "./control-plane-tables";
import { deploymentRecord, deploymentRecordItem } from "./deployment-record";
import { type FunctionKind, functionGrants, functionKinds } from "./grants";
import { createChild, Inventory } from "./inventory";
import { type LambdaArtifact, type LambdaArtifactOptions, lambdaArtifact } from "./lambda-artifact";
import { controlPlaneNames } from "./naming";
import { defaultRuleContext } from "./policy/rules";
import type { Transform } from "./transform";

/** A `transform` per kind of child; each applies to every child of that kind. */
export interface ControlPlaneTransforms {
  kmsKey?: Transform<aws.kms.KeyArgs>;
  kmsAlias?: Transform<aws.kms.AliasArgs>;
  table?: Transform<aws.dynamodb.TableArgs>;
  secret?: Transform<aws.secretsmanager.SecretArgs>;
  secretVersion?: Transform<aws.secretsmanager.SecretVersionArgs>;
  secretRotation?: Transform<aws.secretsmanager.SecretRotationArgs>;
  role?: Transform<aws.iam.RoleArgs>;
  rolePolicy?: Transform<aws.iam.RolePolicyArgs>;
  /** Every log group: the functions' and the API's access logs. */
  logGroup?: Transform<aws.cloudwatch.LogGroupArgs>;
  function?: Transform<aws.lambda.FunctionArgs>;
  alias?: Transform<aws.lambda.AliasArgs>;
  provisionedConcurrency?: Transform<aws.lambda.ProvisionedConcurrencyConfigArgs>;
  deadLetterQueue?: Transform<aws.sqs.QueueArgs>;
  /** Every Lambda invoke permission (API routes, schedules, secret rotation). */
  permission?: Transform<aws.lambda.PermissionArgs>;
  api?: Transform<aws.apigatewayv2.ApiArgs>;
  stage?: Transform<aws.apigatewayv2.StageArgs>;
  integration?: Transform<aws.apigatewayv2.IntegrationArgs>;
  route?: Transform<aws.apigatewayv2.RouteArgs>;
  domainName?: Transform<aws.apigatewayv2.DomainNameArgs>;
  apiMapping?: Transform<aws.apigatewayv2.ApiMappingArgs>;
  scheduleRule?: Transform<aws.cloudwatch.EventRuleArgs>;
  scheduleTarget?: Transform<aws.cloudwatch.EventTargetArgs>;
  alarm?: Transform<aws.cloudwatch.MetricAlarmArgs>;
  topic?: Transform<aws.sns.TopicArgs>;
  deploymentRecord?: Transform<aws.dynamodb.TableItemArgs>;
}

/** Sign-in providers. Client ids are configuration; client secrets go to Secrets Manager. */
export interface OAuthSettings {
  /**
   * GitHub (or GitHub Enterprise Server: give its `url` and `apiUrl`).
   * @example { clientId: "Iv1.0123456789abcdef" }
   */
  github?: { clientId: string; url?: string; apiUrl?: string };
  /** @example { clientId: "1234-abc.apps.googleusercontent.com" } */
  google?: { clientId: string };
  /**
   * Any OpenID Connect issuer, found by discovery.
   * @example { issuer: "https://login.example.com", clientId: "cicd", name: "Example SSO" }
   */
  oidc?: { issuer: string; clientId: string; name?: string; scopes?: string };
  /**
   * Client secrets as a JSON object by provider id, e.g. `{"github":"…","google":"…"}`. Pass a Pulumi
   * secret (`config.requireSecret`). Without it the secret exists but is filled by hand.
   */
  clientSecrets?: pulumi.Input<string>;
}

/**
 * Roles granted to verified identities by configuration, as the runtime reads them: subjects
 * `email:<address>`, `domain:<domain>`, `github-id:<numeric user id>`, `google:<sub>` or `oidc:<sub>`.
 * @example { admin: ["github-id:583231"], auditor: ["email:audit@example.com"], viewer: ["domain:example.com"] }
 */
export type RoleBindings = Partial<Record<Role, string[]>>;

export interface AlarmSettings {
  /** An existing SNS topic ARN. Without one, the control plane creates a topic (see `alarmTopicArn`). */
  topicArn?: pulumi.Input<string>;
  /** HTTP API p99 latency alarm threshold. @default 3000 */
  latencyThresholdMs?: number;
}

export interface ControlPlaneArgs {
  /**
   * The environment this control plane serves. With the component's name it makes every physical name
   * (`${name}-${environment}-…`), tags every resource and is the runtime's HYBRID_CICD_ENVIRONMENT.
   * `production` (or `prod`) is held to the production compliance rules.
   * @example "staging"
   */
  environment: string;
  /**
   * Extra tags for every taggable child.
   * @default {}
   * @example { "cost-center": "platform", owner: "ci-team" }
   */
  tags?: Record<string, string>;
  /**
   * Production safety: table deletion protection; `protect` and `retainOnDelete` on tables, secrets
   * and the KMS key; secrets kept 30 days after deletion; logs kept after `pulumi destroy`.
   * @default true in production, false elsewhere
   */
  protect?: boolean;
  /**
   * Customer-managed KMS key for tables, secrets, log groups and the alarm topic: `"create"` makes one
   * per control plane (with yearly rotation), or pass an existing key's ARN (its key policy must let
   * CloudWatch Logs use it). Without one, AWS-managed keys are used and the CMK rules fail.
   * @default undefined
   * @example "create"
   */
  kmsKey?: "create" | pulumi.Input<string>;
  /**
   * DynamoDB capacity of every table and index.
   * @default { mode: "on-demand" }
   * @example { mode: "provisioned", readUnits: 20, writeUnits: 20 }
   */
  capacity?: TableCapacity;
  /**
   * Memory, timeout and concurrency per function (`api`, `console`, `scheduled`, `rotation`).
   * @default see FunctionSizing
   * @example { api: { memory: 1024, reservedConcurrency: 100, provisionedConcurrency: 5 } }
   */
  functions?: Partial<Record<FunctionKind, FunctionSizing>>;
  /**
   * Instruction set of every function.
   * @default "arm64"
   */
  architecture?: "arm64" | "x86_64";
  /**
   * X-Ray active tracing on every function.
   * @default true
   */
  tracing?: boolean;
  /**
   * Days every log group keeps logs (a CloudWatch Logs retention value).
   * @default 365 in production, 30 elsewhere
   * @example 731
   */
  logRetentionDays?: number;
  /**
   * CloudWatch alarms to an SNS topic, or `false` for none.
   * @default {} (alarms on, topic created)
   */
  alarms?: false | AlarmSettings;
  /**
   * Serve the API and console on your own domain, with an existing ACM certificate.
   * @example { name: "cicd.example.com", certificateArn: "arn:aws:acm:eu-west-1:123456789012:certificate/…" }
   */
  domain?: CustomDomain;
  /**
   * HTTP API stage throttling.
   * @default { rateLimit: 100, burstLimit: 200 }
   */
  throttling?: ApiThrottling;
  /** OAuth sign-in providers (the API's and console's HYBRID_CICD_OAUTH_* settings). */
  oauth?: OAuthSettings;
  /** Role bindings by identity (the API's and console's HYBRID_CICD_ROLE_BINDINGS). */
  roleBindings?: RoleBindings;
  /**
   * IAM permissions boundary ARN applied to every role the control plane creates.
   * @example "arn:aws:iam::123456789012:policy/ci-boundary"
   */
  permissionsBoundary?: pulumi.Input<string>;
  /**
   * Schedule expressions of the scheduled function's tasks.
   * @default { sweep: "rate(1 minute)", digest: "rate(1 hour)" }
   */
  schedules?: Partial<Record<ScheduledTask, string>>;
  /**
   * Runtime log level of every function (LOG_LEVEL).
   * @default "info"
   */
  logLevel?: "fatal" | "error" | "warn" | "info" | "debug" | "trace";
  /**
   * How the functions are bundled from the runtime and console packages.
   * @default { format: "esm", externalAwsSdk: false }
   */
  bundle?: LambdaArtifactOptions;
  /** Prebuilt code per function (e.g. built once in CI); the others are bundled at `pulumi up`. */
  artifacts?: Partial<Record<FunctionKind, LambdaArtifact | Promise<LambdaArtifact>>>;
  /**
   * Write the deployment record (settings and policy verdicts) into the `deployments` table.
   * @default true
   */
  deploymentRecord?: boolean;
  /** Adjust any child before it is created. */
  transform?: ControlPlaneTransforms;
}

const platformVersion = (createRequire(import.meta.url)("../package.json") as { version: string }).version;

/** Every CloudWatch Logs retention value. */
const logRetentionValues = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

type LambdaVariable = (typeof lambdaEnvironmentVariables)[number];

/**
 * The hybrid CI/CD control plane on AWS: DynamoDB tables from the runtime's schema, Secrets Manager
 * secrets from its catalog (rotated by the rotation function), the API, console, scheduled and rotation
 * functions (the runtime's own handlers, bundled at `pulumi up`), an HTTP API in front of them, the
 * EventBridge schedules, CloudWatch alarms, least-privilege IAM generated from declared grants, and a
 * record of what was deployed with its compliance verdicts in the control plane's own store.
 *
 * @example
 * ```ts
 * import { ControlPlane } from "@hybrid-cicd/platform";
 *
 * const cicd = new ControlPlane("cicd", {
 *   environment: "staging",
 *   kmsKey: "create",
 *   tags: { team: "platform" },
 *   transform: { function: (args) => { args.memorySize = 1024; } },
 * });
 * export const apiUrl = cicd.apiUrl;
 * ```
 */
export class ControlPlane extends pulumi.ComponentResource {
  /** Base URL of the API. */
  readonly apiUrl: pulumi.Output<string>;
  /** URL of the web console. */
  readonly consoleUrl: pulumi.Output<string>;
  /** Physical table names by table key. */
  readonly tableNames: pulumi.Output<Record<TableKey, string>>;
  /** Physical function names by kind. */
  readonly functionNames: pulumi.Output<Record<FunctionKind, string>>;
  /** Secret ARNs by catalog key. */
  readonly secretArns: pulumi.Output<Record<SecretKey, string>>;
  /** The topic alarms notify (subscribe to it), when alarms are on. */
  readonly alarmTopicArn?: pulumi.Output<string>;
  /** The customer-managed key, when there is one. */
  readonly kmsKeyArn?: pulumi.Output<string>;
  /** Where to point DNS for the custom domain, when there is one. */
  readonly domainTarget?: pulumi.Output<{ domainName: string; hostedZoneId: string }>;

  /** The parts as components (e.g. `parts.api.route(...)` adds a route). */
  readonly parts: {
    key?: ControlPlaneKey;
    tables: ControlPlaneTables;
    secrets: ControlPlaneSecrets;
    api: ControlPlaneHttpApi;
    functions: Record<FunctionKind, FunctionPart>;
    schedules: ControlPlaneSchedules;
    monitoring?: ControlPlaneMonitoring;
    deploymentRecord?: aws.dynamodb.TableItem;
  };

  constructor(name: string, args: ControlPlaneArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("hybrid-cicd:aws:ControlPlane", name, {}, opts);
    const settings = normalizeArgs(name, args);
    const transform = args.transform ?? {};
    const component = this;
    const inventory = new Inventory();
    const common = { environment: args.environment, tags: args.tags, inventory };
    const parent = { parent: this };

    const key = createKey();
    const kmsKeyArn: pulumi.Input<string> | undefined = key ? key.arn : settings.kmsKeyArn;
    const tables = createTables();
    const secrets = createSecrets();
    const api = createApi();
    const functions = createFunctions();
    routeApi();
    secrets.rotateWith({ arn: functions.rotation.arn, name: functions.rotation.name });
    const schedules = createSchedules();
    const monitoring = createMonitoring();
    const record = createDeploymentRecord();

    this.parts = { key, tables, secrets, api, functions, schedules, monitoring, deploymentRecord: record };
    this.apiUrl = api.url;
    this.consoleUrl = pulumi.interpolate`${api.url}/console/`;
    this.tableNames = pulumi.all(tables.names) as pulumi.Output<Record<TableKey, string>>;
    this.functionNames = pulumi.all(
      Object.fromEntries(functionKinds.map((kind) => [kind, functions[kind].name])),
    ) as pulumi.Output<Record<FunctionKind, string>>;
    this.secretArns = pulumi.all(secrets.arns) as pulumi.Output<Record<SecretKey, string>>;
    this.alarmTopicArn = monitoring?.topicArn;
    this.kmsKeyArn = kmsKeyArn === undefined ? undefined : pulumi.output(kmsKeyArn);
    this.domainTarget = api.domainTarget;
    this.registerOutputs({
      apiUrl: this.apiUrl,
      consoleUrl: this.consoleUrl,
      tableNames: this.tableNames,
      functionNames: this.functionNames,
      secretArns: this.secretArns,
      alarmTopicArn: this.alarmTopicArn,
    });

    function createKey() {
      if (args.kmsKey !== "create") return undefined;
      return new ControlPlaneKey(
        name,
        {
          ...common,
          protect: settings.protect,
          deletionWindowInDays: settings.protect ? 30 : 7,
          transform: { kmsKey: transform.kmsKey, kmsAlias: transform.kmsAlias },
        },
        parent,
      );
    }

    function createTables() {
      return new ControlPlaneTables(
        name,
        {
          ...common,
          capacity: args.capacity,
          kmsKeyArn,
          protect: settings.protect,
          transform: { table: transform.table },
        },
        parent,
      );
    }

    function createSecrets() {
      return new ControlPlaneSecrets(
        name,
        {
          ...common,
          kmsKeyArn,
          protect: settings.protect,
          oauthClientSecrets: args.oauth?.clientSecrets,
          transform: {
            secret: transform.secret,
            secretVersion: transform.secretVersion,
            secretRotation: transform.secretRotation,
            permission: transform.permission,
          },
        },
        parent,
      );
    }

    function createApi() {
      return new ControlPlaneHttpApi(
        name,
        {
          ...common,
          throttling: args.throttling,
          logRetentionDays: settings.logRetentionDays,
          logKmsKeyArn: kmsKeyArn,
          retainLogs: settings.protect,
          domain: args.domain,
          transform: {
            api: transform.api,
            stage: transform.stage,
            logGroup: transform.logGroup,
            integration: transform.integration,
            route: transform.route,
            permission: transform.permission,
            domainName: transform.domainName,
            apiMapping: transform.apiMapping,
          },
        },
        parent,
      );
    }

    function createFunctions(): Record<FunctionKind, FunctionPart> {
      const account = accountContext(component);
      const grantTargets = pulumi
        .all([tables.arns, secrets.arns, kmsKeyArn, account])
        .apply(([tableArns, secretArns, keyArn, context]) => ({
          tableArns,
          secretArns,
          kmsKeyArn: keyArn,
          region: context.region,
        }));
      const runtimeVariables: Record<LambdaVariable, pulumi.Input<string>> &
        Partial<Record<keyof Env, pulumi.Input<string>>> = {
        HYBRID_CICD_ENVIRONMENT: args.environment,
        HYBRID_CICD_TABLE_PREFIX: tables.prefix,
        HYBRID_CICD_SECRET_STORE: "aws",
        HYBRID_CICD_SECRET_PREFIX: secrets.prefix,
      };
      const webVariables: Partial<Record<keyof Env, pulumi.Input<string>>> = {
        HYBRID_CICD_PUBLIC_URL: api.url,
        ...settings.identityVariables,
      };
      const descriptions: Record<FunctionKind, string> = {
        api: "hybrid-cicd API: sessions, agents, jobs (HTTP API, payload 2.0)",
        console: "hybrid-cicd web console (HTTP API /console)",
        scheduled: "hybrid-cicd scheduled tasks: lease sweeper, audit digest",
        rotation: "hybrid-cicd Secrets Manager rotation",
      };
      const created = {} as Record<FunctionKind, FunctionPart>;
      for (const kind of functionKinds) {
        const web = kind === "api" || kind === "console";
        created[kind] = new ControlPlaneFunction(
          `${name}-${kind}`,
          {
            ...common,
            controlPlane: name,
            kind,
            description: descriptions[kind],
            code: args.artifacts?.[kind] ?? lambdaArtifact(kind, args.bundle),
            grants: functionGrants[kind],
            grantTargets,
            environmentVariables: {
              ...runtimeVariables,
              LOG_LEVEL: settings.logLevel,
              ...(web ? webVariables : {}),
            },
            ...args.functions?.[kind],
            architecture: args.architecture,
            tracing: args.tracing,
            logRetentionDays: settings.logRetentionDays,
            logKmsKeyArn: kmsKeyArn,
            retainLogs: settings.protect,
            permissionsBoundary: args.permissionsBoundary,
            deadLetterQueue: !web,
            alias: web,
            transform: {
              role: transform.role,
              rolePolicy: transform.rolePolicy,
              logGroup: transform.logGroup,
              function: transform.function,
              alias: transform.alias,
              provisionedConcurrency: transform.provisionedConcurrency,
              deadLetterQueue: transform.deadLetterQueue,
            },
          },
          parent,
        );
      }
      return created;
    }

    function routeApi() {
      const target = (fn: FunctionPart) => ({
        invokeArn: fn.invokeArn,
        functionName: fn.name,
        qualifier: fn.qualifier,
      });
      api.route("$default", target(functions.api));
      api.route("ANY /console", target(functions.console));
      api.route("ANY /console/{proxy+}", target(functions.console));
    }

    function createSchedules() {
      return new ControlPlaneSchedules(
        name,
        {
          ...common,
          target: { arn: functions.scheduled.arn, name: functions.scheduled.name },
          schedules: args.schedules,
          transform: {
            scheduleRule: transform.scheduleRule,
            scheduleTarget: transform.scheduleTarget,
            permission: transform.permission,
          },
        },
        parent,
      );
    }

    function createMonitoring() {
      if (args.alarms === false) return undefined;
      return new ControlPlaneMonitoring(
        name,
        {
          ...common,
          functions: Object.fromEntries(
            functionKinds.map((kind) => [
              kind,
              {
                name: functions[kind].name,
                timeoutSeconds: functions[kind].timeout,
                reservedConcurrency: functions[kind].reservedConcurrency,
              },
            ]),
          ),
          tables: tables.names,
          api: { id: api.api.id },
          deadLetterQueues: Object.fromEntries(
            functionKinds.flatMap((kind) => {
              const queue = functions[kind].deadLetterQueue;
              return queue ? [[kind, queue.name]] : [];
            }),
          ),
          topicArn: args.alarms?.topicArn,
          kmsKeyArn,
          latencyThresholdMs: args.alarms?.latencyThresholdMs,
          transform: { alarm: transform.alarm, topic: transform.topic },
        },
        parent,
      );
    }

    function createDeploymentRecord() {
      if (args.deploymentRecord === false) return undefined;
      const deployedAt = new Date().toISOString();
      const item = inventory.resolve().apply((resources) =>
        deploymentRecordItem(
          deploymentRecord({
            environment: args.environment,
            deployedAt,
            project: pulumi.getProject(),
            stack: pulumi.getStack(),
            controlPlane: name,
            productVersion,
            platformVersion,
            resources,
            ruleContext: defaultRuleContext,
          }),
        ),
      );
      const declaration = tableDeclarations.deployments;
      return createChild(
        aws.dynamodb.TableItem,
        `${name}-deployment-record`,
        {
          tableName: tables.names.deployments,
          hashKey: declaration.partitionKey.name,
          rangeKey: declaration.sortKey.name,
          item,
        },
        // Each deployment adds an item; replacing the resource must not delete the previous record.
        { parent: component, retainOnDelete: true },
        transform.deploymentRecord,
        undefined,
      );
    }
  }

  /** Every child, for reading outputs or adjusting what the transforms cannot. */
  get nodes() {
    const { key, tables, secrets, api, functions, schedules, monitoring, deploymentRecord } = this.parts;
    return {
      kmsKey: key?.key,
      kmsAlias: key?.alias,
      tables: tables.tables,
      secrets: secrets.secrets,
      oauthClientSecretsVersion: secrets.oauthClientSecretsVersion,
      secretRotations: secrets.rotations,
      secretRotationPermissions: secrets.rotationPermissions,
      functions: Object.fromEntries(
        functionKinds.map((kind) => [
          kind,
          {
            function: functions[kind].function,
            role: functions[kind].role,
            rolePolicy: functions[kind].rolePolicy,
            logGroup: functions[kind].logGroup,
            alias: functions[kind].alias,
            provisionedConcurrency: functions[kind].provisionedConcurrency,
            deadLetterQueue: functions[kind].deadLetterQueue,
          },
        ]),
      ) as Record<
        FunctionKind,
        Pick<
          FunctionPart,
          | "function"
          | "role"
          | "rolePolicy"
          | "logGroup"
          | "alias"
          | "provisionedConcurrency"
          | "deadLetterQueue"
        >
      >,
      api: api.api,
      stage: api.stage,
      accessLogGroup: api.accessLogGroup,
      routes: api.routes,
      domainName: api.domainName,
      schedules: { rules: schedules.rules, targets: schedules.targets, permissions: schedules.permissions },
      alarms: monitoring?.alarms ?? {},
      alarmTopic: monitoring?.topic,
      deploymentRecord,
    };
  }
}

export interface NormalizedControlPlaneArgs {
  readonly protect: boolean;
  readonly kmsKeyArn?: pulumi.Input<string>;
  readonly logRetentionDays: number;
  readonly logLevel: string;
  /** The runtime's identity settings (sign-in providers, role bindings) for the API and console. */
  readonly identityVariables: Partial<Record<keyof Env, string>>;
}

/** Defaults filled in; every mistake that would otherwise surface in the middle of `pulumi up` thrown now. */
export function normalizeArgs(name: string, args: ControlPlaneArgs): NormalizedControlPlaneArgs {
  controlPlaneNames(name, args.environment);
  const production = defaultRuleContext.productionEnvironments.includes(args.environment);
  const logRetentionDays = args.logRetentionDays ?? (production ? 365 : 30);
  if (!logRetentionValues.includes(logRetentionDays)) {
    throw new Error(`logRetentionDays ${logRetentionDays} is not a CloudWatch Logs retention value`);
  }
  if (typeof args.kmsKey === "string" && args.kmsKey !== "create" && !args.kmsKey.startsWith("arn:")) {
    throw new Error(`kmsKey must be "create" or a KMS key ARN, not "${args.kmsKey}"`);
  }
  for (const kind of functionKinds) normalizeSizing(kind, args.functions?.[kind] ?? {});
  if (args.domain && !/^(?=.{1,253}$)([a-z0-9](-?[a-z0-9])*\.)+[a-z]{2,}$/.test(args.domain.name)) {
    throw new Error(`domain.name "${args.domain.name}" is not a lower-case DNS name`);
  }
  return {
    protect: args.protect ?? production,
    kmsKeyArn: args.kmsKey === "create" ? undefined : args.kmsKey,
    logRetentionDays,
    logLevel: args.logLevel ?? "info",
    identityVariables: identityVariables(args.oauth, args.roleBindings),
  };
}

/**
 * Sign-in providers and role bindings as the runtime's environment variables (runtime/src/config/env.ts),
 * the bindings checked by the runtime's own parser so a wrong subject stops `pulumi up`, not the API.
 */
export function identityVariables(
  oauth: OAuthSettings | undefined,
  roleBindings: RoleBindings | undefined,
): Partial<Record<keyof Env, string>> {
  const variables: Partial<Record<keyof Env, string>> = {};
  if (oauth?.github) {
    variables.HYBRID_CICD_OAUTH_GITHUB_CLIENT_ID = oauth.github.clientId;
    if (oauth.github.url) variables.HYBRID_CICD_OAUTH_GITHUB_URL = oauth.github.url;
    if (oauth.github.apiUrl) variables.HYBRID_CICD_OAUTH_GITHUB_API_URL = oauth.github.apiUrl;
  }
  if (oauth?.google) variables.HYBRID_CICD_OAUTH_GOOGLE_CLIENT_ID = oauth.google.clientId;
  if (oauth?.oidc) {
    if (!/^https:\/\/\S+$/.test(oauth.oidc.issuer)) throw new Error("oauth.oidc.issuer must be an https URL");
    variables.HYBRID_CICD_OAUTH_OIDC_ISSUER = oauth.oidc.issuer;
    variables.HYBRID_CICD_OAUTH_OIDC_CLIENT_ID = oauth.oidc.clientId;
    if (oauth.oidc.name) variables.HYBRID_CICD_OAUTH_OIDC_NAME = oauth.oidc.name;
    if (oauth.oidc.scopes) variables.HYBRID_CICD_OAUTH_OIDC_SCOPES = oauth.oidc.scopes;
  }
  const bindings = Object.entries(roleBindings ?? {}).flatMap(([role, subjects]) =>
    (subjects ?? []).map((subject) => `${subject}=${role}`),
  );
  if (bindings.length > 0) {
    const text = bindings.join(",");
    parseConfiguredBindings(text);
    variables.HYBRID_CICD_ROLE_BINDINGS = text;
  }
  return variables;
}
