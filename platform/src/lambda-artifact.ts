import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type * as esbuild from "esbuild";
import yazl from "yazl";
import type { FunctionKind } from "./grants";
import { lambdaNodeTarget } from "./lambda-runtime";

/**
 * The code of each Lambda function: the runtime's (and console's) own handler, bundled by esbuild into
 * one file and packed into a deterministic zip. The same sources always give the same bytes (sorted
 * entries, fixed timestamps and permissions, no absolute paths), so `sourceCodeHash` only changes when
 * the code does and `pulumi up` never redeploys a function for nothing.
 */

/** The module each function is bundled from; each exports `handler`. */
export const lambdaEntries: Readonly<Record<FunctionKind, string>> = {
  api: "@hybrid-cicd/runtime/lambda/api",
  scheduled: "@hybrid-cicd/runtime/lambda/scheduled",
  rotation: "@hybrid-cicd/runtime/lambda/rotation",
  console: "@hybrid-cicd/console/server/lambda.ts",
};

const packageRequire = createRequire(import.meta.url);

/** The absolute path of a function's entry module. */
export function resolveLambdaEntry(kind: FunctionKind): string {
  const specifier = lambdaEntries[kind];
  try {
    return packageRequire.resolve(specifier);
  } catch (error) {
    throw new Error(`the ${kind} function's entry ${specifier} cannot be found: ${(error as Error).message}`);
  }
}

export interface LambdaArtifactOptions {
  /**
   * Module format of the bundle. ESM keeps `import.meta` and top-level await working in the runtime's
   * ESM sources (see docs/decisions/102-lambda-bundle-format.md).
   * @default "esm"
   */
  format?: "esm" | "cjs";
  /**
   * Leave `@aws-sdk/*` out of the bundle and use the copy in the Lambda Node.js runtime. Smaller zip,
   * but the SDK version is then AWS's choice rather than the one the tests ran against.
   * @default false
   */
  externalAwsSdk?: boolean;
  /** @default true */
  minify?: boolean;
  /** Where zips are written (content-addressed). @default `${os.tmpdir()}/hybrid-cicd-lambda` */
  outputDirectory?: string;
}

export interface LambdaArtifactFile {
  readonly name: string;
  readonly bytes: number;
}

export interface LambdaArtifact {
  /** The entry module the bundle was built from. */
  readonly entry: string;
  /** The Lambda `handler` setting, e.g. `index.handler`. */
  readonly handler: string;
  /** The zip file's bytes. */
  readonly zip: Buffer;
  /** The zip written to disk (content-addressed, so identical builds share one file). */
  readonly path: string;
  /** SHA-256 of the zip, hex. */
  readonly sha256: string;
  /** SHA-256 of the zip, base64: Lambda's `sourceCodeHash`. */
  readonly sourceCodeHash: string;
  /** Entries of the zip, sorted. */
  readonly files: readonly LambdaArtifactFile[];
  /** Size of the bundled JavaScript file. */
  readonly bundleBytes: number;
  /** Bundler warnings, formatted. */
  readonly warnings: readonly string[];
}

/**
 * 1980-01-01 00:00 in local time: the earliest DOS timestamp, written identically in every time zone
 * (zip headers store local time).
 */
const fixedModificationTime = new Date(1980, 0, 1, 0, 0, 0);
/** A regular file, rw-r--r--: readable by the Lambda runtime's user. */
const fixedFileMode = 0o100644;

/** Lets bundled CommonJS dependencies `require` Node built-ins from an ES module. */
const esmRequireShim =
  'import { createRequire as __hybridCicdCreateRequire } from "node:module"; const require = __hybridCicdCreateRequire(import.meta.url);';

/** The directory above the platform package: paths in the bundle are relative to it, wherever it lives. */
const workingDirectory = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * pdfkit (the compliance report's PDF) loads its standard fonts' metrics through
 * `createRequire(import.meta.url)("#standard-fonts/<Font>")`, a package-internal import that esbuild
 * cannot see and that nothing resolves inside a bundle (decision 114). This rewrites those calls into
 * plain `require("./standard-fonts/<Font>.cjs")`, which esbuild bundles (lazily, as CommonJS wrappers),
 * so the PDF format works from the deployed zip without shipping node_modules.
 */
const pdfkitStandardFonts: esbuild.Plugin = {
  name: "pdfkit-standard-fonts",
  setup(build) {
    build.onLoad({ filter: /[\\/]pdfkit[\\/]js[\\/]pdfkit(\.node)?\.m?js$/ }, async (args) => {
      const source = await readFile(args.path, "utf8");
      let rewritten = 0;
      const contents = source.replace(
        /[\w$]+\(\s*(['"])#standard-fonts\/(\w+)\1\s*\)/g,
        (_call, _quote: string, font: string) => {
          rewritten += 1;
          return `require("./standard-fonts/${font}.cjs")`;
        },
      );
      if (source.includes("#standard-fonts/") && rewritten === 0) {
        throw new Error(
          `${args.path}: pdfkit's standard-font loaders changed shape; update the bundle plugin`,
        );
      }
      return { contents, loader: "js", resolveDir: path.dirname(args.path) };
    });
  },
};

export async function bundleLambda(
  entry: string,
  options: LambdaArtifactOptions = {},
): Promise<{ files: { name: string; contents: Uint8Array }[]; handler: string; warnings: string[] }> {
  const format = options.format ?? "esm";
  const extension = format === "esm" ? "mjs" : "cjs";
  const outfile = path.join(workingDirectory, ".lambda-build", `index.${extension}`);
  // Loaded only when bundling from sources: an installed package deploys its prebuilt zips instead.
  const esbuild = await import("esbuild");
  let result: esbuild.BuildResult<{ write: false }>;
  try {
    result = await esbuild.build({
      entryPoints: [entry],
      absWorkingDir: workingDirectory,
      outfile,
      write: false,
      bundle: true,
      platform: "node",
      target: lambdaNodeTarget,
      format,
      mainFields: format === "esm" ? ["module", "main"] : ["main", "module"],
      minify: options.minify ?? true,
      keepNames: true,
      sourcemap: false,
      legalComments: "external",
      charset: "utf8",
      banner: format === "esm" ? { js: esmRequireShim } : undefined,
      external: options.externalAwsSdk ? ["@aws-sdk/*"] : [],
      define: { "process.env.NODE_ENV": '"production"' },
      plugins: [pdfkitStandardFonts],
      logLevel: "silent",
    });
  } catch (error) {
    const failure = error as esbuild.BuildFailure;
    const messages = failure.errors
      ? await esbuild.formatMessages(failure.errors, { kind: "error", color: false })
      : [String(error)];
    throw new Error(`bundling ${path.relative(workingDirectory, entry)} failed:\n${messages.join("\n")}`);
  }
  const warnings = await esbuild.formatMessages(result.warnings, { kind: "warning", color: false });
  const files = result.outputFiles
    .filter((file) => file.contents.length > 0)
    .map((file) => ({ name: path.relative(path.dirname(outfile), file.path), contents: file.contents }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { files, handler: "index.handler", warnings };
}

/** Packs files into a zip whose bytes depend only on the names and contents given. */
export async function deterministicZip(
  files: readonly { name: string; contents: Uint8Array }[],
): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const file of sorted) {
    zip.addBuffer(Buffer.from(file.contents), file.name, {
      mtime: fixedModificationTime,
      mode: fixedFileMode,
      forceDosTimestamp: true,
      compress: true,
      compressionLevel: 9,
    });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

/** Bundles an entry and packs it. Pure function of the sources and options. */
export async function buildLambdaArtifact(
  entry: string,
  options: LambdaArtifactOptions = {},
): Promise<LambdaArtifact> {
  const bundle = await bundleLambda(entry, options);
  const zip = await deterministicZip(bundle.files);
  const digest = createHash("sha256").update(zip);
  const sha256 = digest.copy().digest("hex");
  const sourceCodeHash = digest.digest("base64");
  const directory = options.outputDirectory ?? path.join(tmpdir(), "hybrid-cicd-lambda");
  const zipPath = path.join(directory, `${sha256}.zip`);
  if (!existsSync(zipPath)) {
    await mkdir(directory, { recursive: true });
    // Written under a unique name and renamed, so a concurrent build never reads a half-written file.
    const partial = `${zipPath}.${randomBytes(8).toString("hex")}.partial`;
    await writeFile(partial, zip);
    await rename(partial, zipPath);
  }
  const main = bundle.files.find((file) => /^index\.(mjs|cjs|js)$/.test(file.name));
  return {
    entry,
    handler: bundle.handler,
    zip,
    path: zipPath,
    sha256,
    sourceCodeHash,
    files: bundle.files.map((file) => ({ name: file.name, bytes: file.contents.length })),
    bundleBytes: main?.contents.length ?? 0,
    warnings: bundle.warnings,
  };
}

const builds = new Map<string, Promise<LambdaArtifact>>();

/**
 * The zips `npm run build -w platform` prebuilt next to the compiled package (`dist/lambda/`). An
 * installed package deploys these; in this repository the sources (src/) have none and bundle instead.
 */
const prebuiltDirectory = path.join(path.dirname(fileURLToPath(import.meta.url)), "lambda");

interface PrebuiltManifestEntry {
  handler: string;
  sha256: string;
  files: LambdaArtifactFile[];
  bundleBytes: number;
}

function prebuiltArtifact(kind: FunctionKind): LambdaArtifact | undefined {
  const manifestPath = path.join(prebuiltDirectory, "manifest.json");
  if (!existsSync(manifestPath)) return undefined;
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as Record<string, PrebuiltManifestEntry>;
  const entry = manifest[kind];
  if (!entry) return undefined;
  const zipPath = path.join(prebuiltDirectory, `${kind}.zip`);
  const zip = readFileSync(zipPath);
  const digest = createHash("sha256").update(zip);
  const sha256 = digest.copy().digest("hex");
  if (sha256 !== entry.sha256) throw new Error(`${zipPath} does not match its manifest (sha256 ${sha256})`);
  return {
    entry: lambdaEntries[kind],
    handler: entry.handler,
    zip,
    path: zipPath,
    sha256,
    sourceCodeHash: digest.digest("base64"),
    files: entry.files,
    bundleBytes: entry.bundleBytes,
    warnings: [],
  };
}

const defaultOptions = (options: LambdaArtifactOptions) =>
  (options.format ?? "esm") === "esm" &&
  !options.externalAwsSdk &&
  (options.minify ?? true) &&
  options.outputDirectory === undefined;

/**
 * The artifact of one function: the prebuilt zip of an installed package (default options), or built
 * from the runtime's sources once per process for the same entry and options (a stack with
 * two ControlPlanes, or a test run, bundles each entry once).
 */
export function lambdaArtifact(
  kind: FunctionKind,
  options: LambdaArtifactOptions = {},
): Promise<LambdaArtifact> {
  const key = JSON.stringify([
    lambdaEntries[kind],
    options.format,
    options.externalAwsSdk,
    options.minify,
    options.outputDirectory,
  ]);
  let build = builds.get(key);
  if (!build) {
    build = Promise.resolve().then(
      () =>
        (defaultOptions(options) ? prebuiltArtifact(kind) : undefined) ??
        buildLambdaArtifact(resolveLambdaEntry(kind), options),
    );
    builds.set(key, build);
    build.catch(() => builds.delete(key));
  }
  return build;
}
