import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { type ControlPlanePartArgs, partContext } from "./control-plane-part";
import { createChild, type Inventory } from "./inventory";
import type { Transform } from "./transform";

export interface ApiThrottling {
  /**
   * Requests per second, steady state, for the whole stage.
   * @default 100
   */
  rateLimit?: number;
  /**
   * Requests allowed in a burst.
   * @default 200
   */
  burstLimit?: number;
}

export interface CustomDomain {
  /** @example "cicd.example.com" */
  name: string;
  /** An ACM certificate for `name` in the stack's region (it is not created here). */
  certificateArn: pulumi.Input<string>;
}

export interface ControlPlaneHttpApiArgs extends ControlPlanePartArgs {
  /** @default { rateLimit: 100, burstLimit: 200 } */
  throttling?: ApiThrottling;
  /** Days the access-log group keeps logs. */
  logRetentionDays: number;
  /** Customer-managed KMS key ARN for the access-log group. */
  logKmsKeyArn?: pulumi.Input<string>;
  /** Keep the access logs when the stack is destroyed. @default false */
  retainLogs?: boolean;
  /**
   * Serve the API on your own domain with an existing ACM certificate. Point a DNS record at
   * `domainTarget` (regional endpoint).
   */
  domain?: CustomDomain;
  transform?: {
    api?: Transform<aws.apigatewayv2.ApiArgs>;
    stage?: Transform<aws.apigatewayv2.StageArgs>;
    logGroup?: Transform<aws.cloudwatch.LogGroupArgs>;
    integration?: Transform<aws.apigatewayv2.IntegrationArgs>;
    route?: Transform<aws.apigatewayv2.RouteArgs>;
    permission?: Transform<aws.lambda.PermissionArgs>;
    domainName?: Transform<aws.apigatewayv2.DomainNameArgs>;
    apiMapping?: Transform<aws.apigatewayv2.ApiMappingArgs>;
  };
}

/** A function a route invokes. */
export interface RouteTarget {
  /** Invoke ARN of the function or (better) of its alias. */
  readonly invokeArn: pulumi.Input<string>;
  readonly functionName: pulumi.Input<string>;
  /** The alias, when the invoke ARN is an alias's: the permission is then granted on it alone. */
  readonly qualifier?: pulumi.Input<string>;
}

export interface ApiRoute {
  readonly integration: aws.apigatewayv2.Integration;
  readonly route: aws.apigatewayv2.Route;
  readonly permission: aws.lambda.Permission;
}

/** One access-log line per request (JSON; no query strings, which may carry session ids). */
export const accessLogFormat = JSON.stringify({
  request_id: "$context.requestId",
  time: "$context.requestTime",
  ip: "$context.identity.sourceIp",
  user_agent: "$context.identity.userAgent",
  method: "$context.httpMethod",
  route: "$context.routeKey",
  path: "$context.path",
  protocol: "$context.protocol",
  status: "$context.status",
  response_length: "$context.responseLength",
  response_latency_ms: "$context.responseLatency",
  integration_status: "$context.integrationStatus",
  integration_latency_ms: "$context.integrationLatency",
  integration_error: "$context.integrationErrorMessage",
});

/**
 * The `execute-api` source-ARN suffix of one route: `$default` → `* /$default`,
 * `ANY /console/{proxy+}` → `* / * /console/{proxy+}` (stage / method / path).
 */
export function routeSourceArnSuffix(routeKey: string): string {
  if (routeKey === "$default") return "*/$default";
  const match = /^(ANY|GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (\/.*)$/.exec(routeKey);
  if (!match) throw new Error(`route key "${routeKey}" is not "$default" or "METHOD /path"`);
  const method = match[1] === "ANY" ? "*" : match[1];
  return `*/${method}${match[2]}`;
}

/**
 * The HTTP API (API Gateway v2) in front of the functions: one `$default` stage with auto-deploy,
 * throttling, JSON access logs (always on) and, optionally, a custom domain. `route()` adds a Lambda
 * route whose invoke permission is scoped to exactly that route's source ARN.
 *
 * @example
 * ```ts
 * const api = new ControlPlaneHttpApi("hybrid-cicd", { environment: "staging", logRetentionDays: 30 });
 * api.route("$default", { invokeArn: fn.invokeArn, functionName: fn.name });
 * export const url = api.url;
 * ```
 */
export class ControlPlaneHttpApi extends pulumi.ComponentResource {
  readonly api: aws.apigatewayv2.Api;
  readonly stage: aws.apigatewayv2.Stage;
  readonly accessLogGroup: aws.cloudwatch.LogGroup;
  readonly domainName?: aws.apigatewayv2.DomainName;
  readonly apiMapping?: aws.apigatewayv2.ApiMapping;
  readonly routes: Record<string, ApiRoute> = {};
  /** Base URL, without a trailing slash: the custom domain if there is one. */
  readonly url: pulumi.Output<string>;
  /** Where a DNS record for the custom domain points (regional domain name and hosted zone). */
  readonly domainTarget?: pulumi.Output<{ domainName: string; hostedZoneId: string }>;

  private readonly componentName: string;
  private readonly transforms: ControlPlaneHttpApiArgs["transform"];
  private readonly inventory?: Inventory;

  constructor(name: string, args: ControlPlaneHttpApiArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("hybrid-cicd:aws:ControlPlaneHttpApi", name, {}, opts);
    const { names, tags } = partContext(name, args);
    this.componentName = name;
    this.transforms = args.transform;
    this.inventory = args.inventory;
    const throttling = { rateLimit: 100, burstLimit: 200, ...args.throttling };
    if (throttling.rateLimit <= 0 || throttling.burstLimit <= 0)
      throw new Error("API throttling limits must be positive");

    this.accessLogGroup = createChild(
      aws.cloudwatch.LogGroup,
      `${name}-access-logs`,
      {
        name: `/aws/apigateway/${names.physical("access")}`,
        retentionInDays: args.logRetentionDays,
        kmsKeyId: args.logKmsKeyArn,
        tags,
      },
      { parent: this, retainOnDelete: args.retainLogs ?? false },
      args.transform?.logGroup,
      args.inventory,
    );
    this.api = createChild(
      aws.apigatewayv2.Api,
      `${name}-http-api`,
      {
        name: names.physical("http-api"),
        protocolType: "HTTP",
        description: `hybrid-cicd control plane API (${args.environment})`,
        tags,
      },
      { parent: this },
      args.transform?.api,
      args.inventory,
    );
    this.stage = createChild(
      aws.apigatewayv2.Stage,
      `${name}-stage`,
      {
        apiId: this.api.id,
        name: "$default",
        autoDeploy: true,
        accessLogSettings: { destinationArn: this.accessLogGroup.arn, format: accessLogFormat },
        defaultRouteSettings: {
          throttlingRateLimit: throttling.rateLimit,
          throttlingBurstLimit: throttling.burstLimit,
        },
        tags,
      },
      { parent: this },
      args.transform?.stage,
      args.inventory,
    );

    if (args.domain) {
      const domainName = createChild(
        aws.apigatewayv2.DomainName,
        `${name}-domain`,
        {
          domainName: args.domain.name,
          domainNameConfiguration: {
            certificateArn: args.domain.certificateArn,
            endpointType: "REGIONAL",
            securityPolicy: "TLS_1_2",
          },
          tags,
        },
        { parent: this },
        args.transform?.domainName,
        args.inventory,
      );
      this.domainName = domainName;
      this.apiMapping = createChild(
        aws.apigatewayv2.ApiMapping,
        `${name}-domain-mapping`,
        { apiId: this.api.id, domainName: domainName.domainName, stage: this.stage.name },
        { parent: this },
        args.transform?.apiMapping,
        args.inventory,
      );
      this.url = pulumi.output(`https://${args.domain.name}`);
      this.domainTarget = domainName.domainNameConfiguration.apply((configuration) => ({
        domainName: configuration.targetDomainName ?? "",
        hostedZoneId: configuration.hostedZoneId ?? "",
      }));
    } else {
      this.url = this.api.apiEndpoint;
    }
    this.registerOutputs({ url: this.url });
  }

  /**
   * Routes `routeKey` (e.g. `$default`, `ANY /console/{proxy+}`) to a function through a payload-2.0
   * Lambda proxy integration, and lets API Gateway invoke it for that route only.
   */
  route(routeKey: string, target: RouteTarget): ApiRoute {
    if (this.routes[routeKey]) throw new Error(`route "${routeKey}" exists already`);
    const slug =
      routeKey === "$default"
        ? "default"
        : routeKey
            .toLowerCase()
            .replace(/[^a-z0-9]+/g, "-")
            .replace(/^-|-$/g, "");
    const base = `${this.componentName}-${slug}`;
    const integration = createChild(
      aws.apigatewayv2.Integration,
      `${base}-integration`,
      {
        apiId: this.api.id,
        integrationType: "AWS_PROXY",
        integrationUri: target.invokeArn,
        payloadFormatVersion: "2.0",
        timeoutMilliseconds: 30_000,
      },
      { parent: this },
      this.transforms?.integration,
      this.inventory,
    );
    const route = createChild(
      aws.apigatewayv2.Route,
      `${base}-route`,
      { apiId: this.api.id, routeKey, target: pulumi.interpolate`integrations/${integration.id}` },
      { parent: this },
      this.transforms?.route,
      this.inventory,
    );
    const permission = createChild(
      aws.lambda.Permission,
      `${base}-invoke`,
      {
        action: "lambda:InvokeFunction",
        function: target.functionName,
        qualifier: target.qualifier,
        principal: "apigateway.amazonaws.com",
        sourceArn: pulumi.interpolate`${this.api.executionArn}/${routeSourceArnSuffix(routeKey)}`,
      },
      { parent: this },
      this.transforms?.permission,
      this.inventory,
    );
    const created = { integration, route, permission };
    this.routes[routeKey] = created;
    return created;
  }
}
