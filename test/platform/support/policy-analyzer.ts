import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import type { CheckedResource } from "../../../platform/src/policy/rules";
import { repositoryRoot } from "./pulumi-mocks";

/**
 * The policy pack as the Pulumi CLI runs it: `node <@pulumi/pulumi>/cmd/run-policy-pack <engine> <pack
 * directory>` (the runner require()s the pack's entry with ts-node registered), which prints the
 * analyzer's port; the engine's calls then go over gRPC with the SDK's own generated client
 * (`proto/analyzer_grpc_pb`). Nothing of the pack is imported into the test process.
 */

const require = createRequire(import.meta.url);
const grpc = require("@grpc/grpc-js") as typeof import("@grpc/grpc-js");
const services = require("@pulumi/pulumi/proto/analyzer_grpc_pb.js");
const messages = require("@pulumi/pulumi/proto/analyzer_pb.js");
const { Empty } = require("google-protobuf/google/protobuf/empty_pb.js");
const { Struct } = require("google-protobuf/google/protobuf/struct_pb.js");

export interface Diagnostic {
  readonly policy: string;
  /** The violation (the SDK prefixes it with the policy's description on a line of its own). */
  readonly message: string;
  readonly urn: string;
  readonly enforcementLevel: number;
}

export interface AnnouncedPolicy {
  readonly name: string;
  readonly description: string;
  readonly enforcementLevel: number;
}

interface DiagnosticMessage {
  getPolicyname(): string;
  getMessage(): string;
  getUrn(): string;
  getEnforcementlevel(): number;
}

/** A URN for a hand-written resource (the analyzer reports violations by URN). */
export function urnOf(resource: CheckedResource, parentType?: string): string {
  const type = parentType ? `${parentType}$${resource.type}` : resource.type;
  return `urn:pulumi:test::hybrid-cicd::${type}::${resource.name}`;
}

function resourceOptions(resource: CheckedResource) {
  const options = new messages.AnalyzerResourceOptions();
  options.setProtect(resource.protect ?? false);
  return options;
}

/** JSON round trip: the analyzer's Struct holds JSON values only. */
const jsonProperties = (props: object) => JSON.parse(JSON.stringify(props)) as Record<string, unknown>;

export class PolicyAnalyzer {
  private constructor(
    private readonly process: ChildProcess,
    // biome-ignore lint/suspicious/noExplicitAny: generated gRPC client
    private readonly client: any,
    readonly port: number,
  ) {}

  /** Starts the pack in `packDirectory` (default platform/policy) through the SDK's runner. */
  static async start(packDirectory = path.join(repositoryRoot, "platform/policy")): Promise<PolicyAnalyzer> {
    const runner = path.join(
      path.dirname(require.resolve("@pulumi/pulumi/package.json")),
      "cmd/run-policy-pack",
    );
    // The engine address: the runner only dials it to log, which these packs never do.
    const child = spawn(process.execPath, [runner, "127.0.0.1:1", "."], {
      cwd: packDirectory,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NODE_OPTIONS: "" },
    });
    const port = await new Promise<number>((resolve, reject) => {
      let output = "";
      let errors = "";
      child.stdout?.on("data", (chunk: Buffer) => {
        output += chunk;
        const match = /^(\d+)\s/.exec(output);
        if (match?.[1]) resolve(Number(match[1]));
      });
      child.stderr?.on("data", (chunk: Buffer) => {
        errors += chunk;
      });
      child.on("exit", (code) => reject(new Error(`the policy pack exited (${code}): ${errors}`)));
    });
    const client = new services.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    return new PolicyAnalyzer(child, client, port);
  }

  private call<T>(method: string, request: unknown): Promise<T> {
    return new Promise<T>((resolve, reject) =>
      this.client[method](request, (error: Error | null, response: T) =>
        error ? reject(error) : resolve(response),
      ),
    );
  }

  async info(): Promise<{ name: string; policies: AnnouncedPolicy[] }> {
    const info = await this.call<{
      getName(): string;
      getPoliciesList(): { getName(): string; getEnforcementlevel(): number; getDescription(): string }[];
    }>("getAnalyzerInfo", new Empty());
    return {
      name: info.getName(),
      policies: info.getPoliciesList().map((entry) => ({
        name: entry.getName(),
        description: entry.getDescription(),
        enforcementLevel: entry.getEnforcementlevel(),
      })),
    };
  }

  /** `Analyze`: the engine's call for one resource. */
  async analyze(resource: CheckedResource): Promise<Diagnostic[]> {
    const request = new messages.AnalyzeRequest();
    request.setType(resource.type);
    request.setName(resource.name);
    const urn = resource.urn ?? urnOf(resource);
    request.setUrn(urn);
    request.setProperties(Struct.fromJavaScript(jsonProperties(resource.props)));
    request.setOptions(resourceOptions(resource));
    const response = await this.call<{ getDiagnosticsList(): DiagnosticMessage[] }>("analyze", request);
    // A resource policy's diagnostic is about the analyzed resource (the engine attaches it there).
    return response
      .getDiagnosticsList()
      .map((entry) => ({ ...diagnostic(entry), urn: entry.getUrn() || urn }));
  }

  /** `AnalyzeStack`: the engine's call with every resource of the stack. */
  async analyzeStack(resources: readonly CheckedResource[]): Promise<Diagnostic[]> {
    const request = new messages.AnalyzeStackRequest();
    for (const resource of resources) {
      const entry = new messages.AnalyzerResource();
      entry.setType(resource.type);
      entry.setName(resource.name);
      entry.setUrn(resource.urn ?? urnOf(resource));
      entry.setProperties(Struct.fromJavaScript(jsonProperties(resource.props)));
      entry.setOptions(resourceOptions(resource));
      const dependencies = entry.getPropertydependenciesMap();
      for (const [property, urns] of Object.entries(resource.propertyDependencies ?? {})) {
        const list = new messages.AnalyzerPropertyDependencies();
        list.setUrnsList([...urns]);
        dependencies.set(property, list);
      }
      request.addResources(entry);
    }
    const response = await this.call<{ getDiagnosticsList(): DiagnosticMessage[] }>("analyzeStack", request);
    return response.getDiagnosticsList().map(diagnostic);
  }

  /** Both calls, as a `pulumi preview` makes them: each resource, then the stack. */
  async analyzeAll(resources: readonly CheckedResource[]): Promise<Diagnostic[]> {
    const perResource = await Promise.all(resources.map((resource) => this.analyze(resource)));
    return [...perResource.flat(), ...(await this.analyzeStack(resources))];
  }

  close(): void {
    this.client.close();
    this.process.kill();
  }
}

function diagnostic(message: DiagnosticMessage): Diagnostic {
  return {
    policy: message.getPolicyname(),
    message: message.getMessage().split("\n").at(-1) ?? "",
    urn: message.getUrn(),
    enforcementLevel: message.getEnforcementlevel(),
  };
}
