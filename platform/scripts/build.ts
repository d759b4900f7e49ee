/**
 * Builds what `npm pack` ships and what the Pulumi CLI loads (docs/decisions/108-installable-platform-package.md):
 *
 * - `dist/index.cjs`: the component library as one CommonJS file, the runtime's schema, catalog and
 *   parsers inlined, `@pulumi/*` left to the consumer (peer dependencies); `dist/index.mjs` re-exports it
 *   for ES modules (one copy of the code, so `instanceof` and Pulumi's type registry see one class);
 * - `dist/index.d.ts`: the public types in one file, the runtime's types inlined;
 * - `dist/lambda/<function>.zip` + `manifest.json`: the Lambda code, prebuilt deterministic zips;
 * - `policy/dist/pack.cjs`: the policy pack's rules as one CommonJS file inside the pack's folder, so the
 *   pack loads the way the CLI loads it (`require()`) and can be published on its own.
 *
 * Run with `npm run build -w platform` (tsx). Output is deterministic: the same sources give the same bytes.
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { functionKinds } from "../src/grants";
import { buildLambdaArtifact, resolveLambdaEntry } from "../src/lambda-artifact";

const platformDirectory = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dist = path.join(platformDirectory, "dist");

/** `import.meta.url` inside a CommonJS bundle: the bundle file's own URL. */
const importMetaUrlShim = 'const __importMetaUrl = require("node:url").pathToFileURL(__filename).href;';

const commonOptions: esbuild.BuildOptions = {
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  absWorkingDir: platformDirectory,
  sourcemap: false,
  minify: false,
  keepNames: true,
  legalComments: "inline",
  charset: "utf8",
  logLevel: "warning",
  define: { "import.meta.url": "__importMetaUrl" },
  banner: { js: importMetaUrlShim },
};

async function buildLibrary(): Promise<void> {
  await esbuild.build({
    ...commonOptions,
    entryPoints: [path.join(platformDirectory, "src/index.ts")],
    outfile: path.join(dist, "index.cjs"),
    // The consumer's Pulumi SDK and provider (peer dependencies: one copy per program); zod and yazl
    // as ordinary dependencies; esbuild only when bundling from sources.
    external: ["@pulumi/*", "esbuild", "zod", "yazl"],
  });
  await writeFile(
    path.join(dist, "index.mjs"),
    '// ES module entry: the same code as index.cjs (one copy of each class).\nexport * from "./index.cjs";\n',
  );
}

/**
 * Declarations by the TypeScript compiler, of the platform and of the runtime modules it uses (table
 * schema, secret catalog, settings), with `@hybrid-cicd/runtime/...` rewritten to the copies shipped
 * alongside: the consumer needs no runtime package for the types either.
 */
async function buildTypes(): Promise<void> {
  const ts = (await import("typescript")).default;
  const repository = path.join(platformDirectory, "..");
  const parsed = ts.getParsedCommandLineOfConfigFile(path.join(repository, "tsconfig.json"), undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"));
    },
  });
  if (!parsed) throw new Error("tsconfig.json cannot be read");
  const typesDirectory = path.join(dist, "types");
  const runtimeModules = new Set<string>();
  const emitDeclarations = (roots: string[]) => {
    const program = ts.createProgram(roots, {
      ...parsed.options,
      noEmit: false,
      declaration: true,
      emitDeclarationOnly: true,
      rootDir: repository,
      outDir: typesDirectory,
    });
    const result = program.emit(undefined, (fileName, text) => {
      ts.sys.writeFile(fileName, rewriteRuntimeImports(fileName, text, typesDirectory, runtimeModules));
    });
    const errors = ts.getPreEmitDiagnostics(program).concat(result.diagnostics);
    if (errors.length > 0) {
      const host = {
        getCanonicalFileName: (name: string) => name,
        getCurrentDirectory: () => repository,
        getNewLine: () => "\n",
      };
      throw new Error(ts.formatDiagnostics(errors, host));
    }
  };
  emitDeclarations([path.join(platformDirectory, "src/index.ts")]);
  // The runtime modules the platform's declarations name, emitted from their own sources (imported
  // through node_modules they count as a library, which TypeScript does not emit).
  emitDeclarations(
    [...runtimeModules].map((subpath) => path.join(repository, "runtime/src", `${subpath}.ts`)),
  );
  await writeFile(path.join(dist, "index.d.ts"), 'export * from "./types/platform/src/index";\n');
  await writeFile(path.join(dist, "index.d.mts"), 'export * from "./types/platform/src/index";\n');
}

function rewriteRuntimeImports(
  fileName: string,
  text: string,
  typesDirectory: string,
  runtimeModules: Set<string>,
): string {
  return text.replace(
    /(["'])@hybrid-cicd\/runtime\/([^"']+)\1/g,
    (_match, quote: string, subpath: string) => {
      runtimeModules.add(subpath);
      const target = path.join(typesDirectory, "runtime/src", subpath);
      let relative = path.relative(path.dirname(fileName), target).split(path.sep).join("/");
      if (!relative.startsWith(".")) relative = `./${relative}`;
      return `${quote}${relative}${quote}`;
    },
  );
}

async function buildLambdaZips(): Promise<void> {
  const directory = path.join(dist, "lambda");
  await mkdir(directory, { recursive: true });
  const manifest: Record<string, unknown> = {};
  for (const kind of functionKinds) {
    const artifact = await buildLambdaArtifact(resolveLambdaEntry(kind), { outputDirectory: directory });
    await rm(path.join(directory, `${kind}.zip`), { force: true });
    await writeFile(path.join(directory, `${kind}.zip`), artifact.zip);
    await rm(artifact.path, { force: true });
    manifest[kind] = {
      handler: artifact.handler,
      sha256: artifact.sha256,
      files: artifact.files,
      bundleBytes: artifact.bundleBytes,
    };
  }
  await writeFile(path.join(directory, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
}

async function buildPolicyPack(): Promise<void> {
  await esbuild.build({
    ...commonOptions,
    entryPoints: [path.join(platformDirectory, "src/policy/pack.ts")],
    outfile: path.join(platformDirectory, "policy/dist/pack.cjs"),
    external: ["@pulumi/*"],
  });
}

if (process.argv[2] === "policy") {
  await buildPolicyPack();
} else {
  await rm(dist, { recursive: true, force: true });
  await mkdir(dist, { recursive: true });
  await Promise.all([buildLibrary(), buildPolicyPack(), buildLambdaZips()]);
  await buildTypes();
}
