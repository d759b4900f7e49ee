/**
 * Builds the reference agent as one file that runs with plain `node` (≥20) on a machine without this
 * checkout, no dependencies and no TypeScript loader (docs/decisions/113-installable-agent.md):
 * `runtime/dist/hybrid-cicd-agent.mjs` and its SHA-256 beside it (`.sha256`, `sha256sum -c` format).
 *
 * Run with `npm run build:agent -w runtime`. Output is deterministic: the same sources give the same bytes.
 */
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

export const agentBundleName = "hybrid-cicd-agent.mjs";

const runtimeDirectory = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Lets bundled CommonJS dependencies `require` Node built-ins from an ES module. */
const requireShim =
  'import { createRequire as __hybridCicdCreateRequire } from "node:module"; const require = __hybridCicdCreateRequire(import.meta.url);';

const entry = `
import { agentMain } from "./src/cli/agent-main.ts";
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
process.exitCode = await agentMain(process.argv);
`;

export interface AgentBundle {
  path: string;
  bytes: number;
  sha256: string;
}

/** Bundles the agent into `directory` (default runtime/dist) and writes `<name>.sha256` beside it. */
export async function buildAgentBundle(
  directory = path.join(runtimeDirectory, "dist"),
): Promise<AgentBundle> {
  const result = await esbuild.build({
    stdin: { contents: entry, resolveDir: runtimeDirectory, sourcefile: "agent-entry.ts", loader: "ts" },
    absWorkingDir: runtimeDirectory,
    outfile: path.join(directory, agentBundleName),
    write: false,
    bundle: true,
    platform: "node",
    // Agents run on the operator's machines: Node 20 and later.
    target: "node20",
    format: "esm",
    minify: true,
    keepNames: true,
    legalComments: "inline",
    charset: "utf8",
    banner: { js: `#!/usr/bin/env node\n${requireShim}` },
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "warning",
  });
  const contents = result.outputFiles[0]!.contents;
  const sha256 = createHash("sha256").update(contents).digest("hex");
  await mkdir(directory, { recursive: true });
  const bundlePath = path.join(directory, agentBundleName);
  await writeFile(bundlePath, contents, { mode: 0o755 });
  await writeFile(`${bundlePath}.sha256`, `${sha256}  ${agentBundleName}\n`);
  return { path: bundlePath, bytes: contents.length, sha256 };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const bundle = await buildAgentBundle(process.argv[2]);
  process.stdout.write(`${bundle.path} ${bundle.bytes} bytes sha256 ${bundle.sha256}\n`);
}
