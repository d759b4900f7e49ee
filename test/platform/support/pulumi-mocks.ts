import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import yaml from "js-yaml";
import type { CheckedResource } from "../../../platform/src/policy/rules";

/**
 * Pulumi's unit-testing mocks for the platform tests: every resource the program registers is kept with
 * its inputs, and the outputs AWS would compute (ARNs, invoke ARNs, endpoints, versions) are filled in
 * with realistic values, so expressions built from them look like the real thing.
 */

export const repositoryRoot = path.resolve(import.meta.dirname, "../../..");
export const mockAccount = "123456789012";
export const mockRegion = "eu-west-1";

export interface MockedResource {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
  readonly id: string;
  readonly state: Record<string, unknown>;
}

/** What the engine is told besides the inputs (the mocks' `newResource` does not see these). */
export interface RegistrationOptions {
  readonly type: string;
  readonly name: string;
  readonly custom: boolean;
  readonly protect: boolean;
  readonly retainOnDelete: boolean;
  readonly replaceOnChanges: readonly string[];
  readonly ignoreChanges: readonly string[];
  readonly parent: string;
  readonly dependencies: readonly string[];
  readonly propertyDependencies: Readonly<Record<string, readonly string[]>>;
  urn?: string;
}

export const mockDeploymentTime = "2026-11-30T06:00:00Z";

/** The outputs AWS computes for a resource, by type. */
function computedOutputs(
  type: string,
  name: string,
  inputs: Record<string, unknown>,
): Record<string, unknown> {
  const physical = typeof inputs["name"] === "string" ? (inputs["name"] as string) : name;
  const region = mockRegion;
  const account = mockAccount;
  // A short id per logical name (two names ending alike must not share one).
  const slug = createHash("sha256").update(name).digest("hex").slice(0, 10);
  switch (type) {
    // The provider keeps the creation time while the triggers stay the same; the mocks stand for a
    // stack whose state already holds it.
    case "time:index/static:Static":
      return { rfc3339: mockDeploymentTime, unix: Date.parse(mockDeploymentTime) / 1000 };
    case "aws:dynamodb/table:Table":
      return { arn: `arn:aws:dynamodb:${region}:${account}:table/${physical}`, name: physical };
    case "aws:secretsmanager/secret:Secret": {
      const arn = `arn:aws:secretsmanager:${region}:${account}:secret:${physical}-Ab12Cd`;
      return { arn, name: physical };
    }
    case "aws:lambda/function:Function": {
      const arn = `arn:aws:lambda:${region}:${account}:function:${physical}`;
      return {
        arn,
        name: physical,
        version: "1",
        qualifiedArn: `${arn}:1`,
        invokeArn: `arn:aws:apigateway:${region}:lambda:path/2015-03-31/functions/${arn}/invocations`,
      };
    }
    case "aws:lambda/alias:Alias": {
      const arn = `arn:aws:lambda:${region}:${account}:function:${inputs["functionName"]}:${physical}`;
      return {
        arn,
        name: physical,
        invokeArn: `arn:aws:apigateway:${region}:lambda:path/2015-03-31/functions/${arn}/invocations`,
      };
    }
    case "aws:iam/role:Role":
      return { arn: `arn:aws:iam::${account}:role/${physical}`, name: physical };
    case "aws:cloudwatch/logGroup:LogGroup":
      return { arn: `arn:aws:logs:${region}:${account}:log-group:${physical}`, name: physical };
    case "aws:sqs/queue:Queue":
      return {
        arn: `arn:aws:sqs:${region}:${account}:${physical}`,
        name: physical,
        url: `https://sqs.${region}.amazonaws.com/${account}/${physical}`,
      };
    case "aws:apigatewayv2/api:Api": {
      const id = `api${slug.toLowerCase()}`;
      return {
        arn: `arn:aws:apigateway:${region}::/apis/${id}`,
        apiEndpoint: `https://${id}.execute-api.${region}.amazonaws.com`,
        executionArn: `arn:aws:execute-api:${region}:${account}:${id}`,
        __id: id,
      };
    }
    case "aws:apigatewayv2/stage:Stage":
      return { arn: `arn:aws:apigateway:${region}::/apis/${inputs["apiId"]}/stages/${physical}` };
    case "aws:apigatewayv2/domainName:DomainName":
      return {
        arn: `arn:aws:apigateway:${region}::/domainnames/${inputs["domainName"]}`,
        domainNameConfiguration: {
          ...(inputs["domainNameConfiguration"] as object),
          targetDomainName: `d-${slug.toLowerCase()}.execute-api.${region}.amazonaws.com`,
          hostedZoneId: "Z2FDTNDATAQYW2",
        },
      };
    case "aws:cloudwatch/eventRule:EventRule":
      return { arn: `arn:aws:events:${region}:${account}:rule/${physical}`, name: physical };
    case "aws:cloudwatch/metricAlarm:MetricAlarm":
      return { arn: `arn:aws:cloudwatch:${region}:${account}:alarm:${physical}` };
    case "aws:kms/key:Key": {
      const keyId = `0000${slug}`.padEnd(36, "0");
      return { arn: `arn:aws:kms:${region}:${account}:key/${keyId}`, keyId };
    }
    case "aws:sns/topic:Topic":
      return { arn: `arn:aws:sns:${region}:${account}:${physical}`, name: physical };
    default:
      return { arn: `arn:aws:mock:${region}:${account}:${type}/${name}` };
  }
}

/** Resolves Pulumi archives and assets in inputs (the mock hands them over as objects with promises). */
async function plain(value: unknown): Promise<unknown> {
  const resolved = await value;
  if (Array.isArray(resolved)) return Promise.all(resolved.map(plain));
  if (resolved && typeof resolved === "object" && !Buffer.isBuffer(resolved)) {
    const entries = await Promise.all(
      Object.entries(resolved as Record<string, unknown>).map(async ([key, entry]) => [
        key,
        await plain(entry),
      ]),
    );
    return Object.fromEntries(entries);
  }
  return resolved;
}

export class ResourceRecorder {
  readonly resources: MockedResource[] = [];
  readonly registrations: RegistrationOptions[] = [];
  readonly calls: string[] = [];

  /** Wraps the mock engine to see each registration's options (protect, parent, dependencies, URN). */
  observe(monitor: unknown): void {
    type Request = {
      getType(): string;
      getName(): string;
      getCustom(): boolean;
      getProtect(): boolean;
      getRetainondelete(): boolean;
      getReplaceonchangesList(): string[];
      getIgnorechangesList(): string[];
      getParent(): string;
      getDependenciesList(): string[];
      getPropertydependenciesMap(): {
        forEach(fn: (value: { getUrnsList(): string[] }, key: string) => void): void;
      };
    };
    type Callback = (error: unknown, response?: { getUrn(): string }) => void;
    const target = monitor as { registerResource(request: Request, callback: Callback): Promise<void> };
    const original = target.registerResource.bind(target);
    target.registerResource = (request, callback) => {
      const propertyDependencies: Record<string, string[]> = {};
      request.getPropertydependenciesMap().forEach((value, key) => {
        propertyDependencies[key] = value.getUrnsList();
      });
      const registration: RegistrationOptions = {
        type: request.getType(),
        name: request.getName(),
        custom: request.getCustom(),
        protect: request.getProtect(),
        retainOnDelete: request.getRetainondelete(),
        replaceOnChanges: request.getReplaceonchangesList(),
        ignoreChanges: request.getIgnorechangesList(),
        parent: request.getParent(),
        dependencies: request.getDependenciesList(),
        propertyDependencies,
      };
      this.registrations.push(registration);
      return original(request, (error, response) => {
        if (response) registration.urn = response.getUrn();
        callback(error, response);
      });
    };
  }

  registration(type: string, name: string): RegistrationOptions {
    const found = this.registrations.find((entry) => entry.type === type && entry.name === name);
    if (!found) throw new Error(`${type} ${name} was never registered`);
    return found;
  }

  readonly mocks: pulumi.runtime.Mocks = {
    newResource: async (args) => {
      const inputs = (await plain(args.inputs)) as Record<string, unknown>;
      const { __id, ...outputs } = computedOutputs(args.type, args.name, inputs);
      const id = typeof __id === "string" ? __id : `${args.name}-id`;
      const state = { ...inputs, ...outputs };
      this.resources.push({ type: args.type, name: args.name, inputs, id, state });
      return { id, state };
    },
    call: (args) => {
      this.calls.push(args.token);
      switch (args.token) {
        case "aws:index/getCallerIdentity:getCallerIdentity":
          return {
            accountId: mockAccount,
            arn: `arn:aws:iam::${mockAccount}:user/ci`,
            userId: "AIDAMOCK",
            id: mockAccount,
          };
        case "aws:index/getRegion:getRegion":
          return { region: mockRegion, name: mockRegion, id: mockRegion, endpoint: "", description: "" };
        case "aws:index/getPartition:getPartition":
          return {
            partition: "aws",
            dnsSuffix: "amazonaws.com",
            id: "aws",
            reverseDnsPrefix: "com.amazonaws",
          };
        default:
          throw new Error(`unexpected provider call ${args.token}`);
      }
    },
  };

  ofType(type: string): MockedResource[] {
    return this.resources.filter((resource) => resource.type === type);
  }

  one(type: string, name: string): MockedResource {
    const found = this.resources.find((resource) => resource.type === type && resource.name === name);
    if (!found)
      throw new Error(
        `no ${type} named ${name}; have ${this.ofType(type)
          .map((r) => r.name)
          .join(", ")}`,
      );
    return found;
  }

  /** Custom (AWS) resources, not components. */
  get custom(): MockedResource[] {
    return this.resources.filter((resource) => resource.type.startsWith("aws:"));
  }

  /**
   * The resources as the policy analyzer hands them to the rules: inputs (plus the ARN stack rules
   * match on), the protect option, URN and property dependencies.
   */
  checked(): CheckedResource[] {
    return this.custom.map((resource) => {
      const registration = this.registration(resource.type, resource.name);
      return {
        type: resource.type,
        name: resource.name,
        urn: registration.urn,
        props: { ...resource.inputs, arn: resource.state["arn"] },
        protect: registration.protect,
        propertyDependencies: registration.propertyDependencies,
      };
    });
  }
}

/** Waits until the program's registrations and outputs have all resolved. */
export async function settle(recorder: ResourceRecorder): Promise<void> {
  const waitForRPCs = (pulumi.runtime as unknown as { waitForRPCs?: () => Promise<void> }).waitForRPCs;
  let stableRounds = 0;
  let last = -1;
  while (stableRounds < 3) {
    if (waitForRPCs) await waitForRPCs();
    await new Promise((resolve) => setTimeout(resolve, 10));
    stableRounds = recorder.resources.length === last ? stableRounds + 1 : 0;
    last = recorder.resources.length;
  }
}

/** Resolves an Output in a test (mocks run with preview off, so every value is known). */
export function resolved<T>(output: pulumi.Input<T>): Promise<T> {
  return new Promise((resolve) => {
    pulumi.output(output).apply((value) => {
      resolve(value as T);
      return value;
    });
  });
}

/** A stack file's `config:` as `setAllConfig` takes it: plain text, objects as JSON. */
export function stackConfig(stackFile: string): Record<string, string> {
  const document = yaml.load(readFileSync(path.join(repositoryRoot, stackFile), "utf8")) as {
    config?: Record<string, unknown>;
  };
  return Object.fromEntries(
    Object.entries(document.config ?? {}).map(([key, value]) => [
      key,
      typeof value === "string" ? value : JSON.stringify(value),
    ]),
  );
}

/** Fresh mocks (a new mock engine) for one program run. */
export async function useMocks(
  stack: string,
  config: Record<string, string> = {},
  secretKeys: string[] = [],
): Promise<ResourceRecorder> {
  const recorder = new ResourceRecorder();
  pulumi.runtime.setAllConfig(config, secretKeys);
  await pulumi.runtime.setMocks(recorder.mocks, "hybrid-cicd", stack, false);
  recorder.observe(pulumi.runtime.getMonitor());
  return recorder;
}
