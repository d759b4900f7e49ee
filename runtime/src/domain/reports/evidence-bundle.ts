import { createHash, type KeyObject, verify } from "node:crypto";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { isDeepStrictEqual } from "node:util";
import yauzl from "yauzl";
import type { AuditDigest, AuditEvent } from "../audit/audit-event";
import { type ExportVerification, verifyExport } from "../audit/audit-export";
import { publicKeyFromRaw } from "../audit/audit-signing";
import { AUDIT_EXPORT_FILE, ReportBuilder } from "./report-builder";
import type { ComplianceReport, ReportSections } from "./report-schema";

/**
 * The signed evidence bundle (decision 021): a zip of report.json, report.pdf, csv/*.csv, the audit
 * export, `manifest.json` (SHA-256 and size of every other file) and `manifest.sig.json` (Ed25519 over
 * the exact bytes of manifest.json, with the audit signing key). `verifyBundle` is what
 * `hybrid-cicd verify <bundle.zip>` runs.
 */

export const BUNDLE_FORMAT = "hybrid-cicd-evidence-bundle/1";
export const MANIFEST_FILE = "manifest.json";
export const SIGNATURE_FILE = "manifest.sig.json";

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  report_id: string;
  environment: string;
  generated_at: string;
  algorithm: "sha256";
  files: { path: string; sha256: string; bytes: number }[];
}

export interface BundleCheck {
  name: "manifest" | "signature" | "audit_chain" | "figures";
  ok: boolean;
  /** What failed, naming the file, event or figure. */
  problems: string[];
}

export interface BundleVerification {
  ok: boolean;
  checks: BundleCheck[];
  report_id: string | null;
  trusted_keys: boolean;
  chain: ExportVerification | null;
}

const MAX_BUFFERED_ENTRY = 256 * 1024 * 1024;

/** Reads a zip's entries: small ones into memory, the audit export as a stream on demand. */
async function openZip(file: string) {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(file, { lazyEntries: true, autoClose: false }, (error, opened) =>
      error ? reject(error) : resolve(opened),
    ),
  );
  const entries = new Map<string, yauzl.Entry>();
  await new Promise<void>((resolve, reject) => {
    zip.on("entry", (entry: yauzl.Entry) => {
      entries.set(entry.fileName, entry);
      zip.readEntry();
    });
    zip.on("end", resolve);
    zip.on("error", reject);
    zip.readEntry();
  });
  const stream = (name: string): Promise<Readable> => zip.openReadStreamPromise(entries.get(name)!);
  const hashOf = async (name: string) => {
    const hash = createHash("sha256");
    let bytes = 0;
    for await (const chunk of await stream(name)) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    return { sha256: hash.digest("hex"), bytes };
  };
  const read = async (name: string) => {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of await stream(name)) {
      size += (chunk as Buffer).length;
      if (size > MAX_BUFFERED_ENTRY) throw new Error(`${name} is too large to read`);
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  };
  return {
    names: [...entries.keys()],
    has: (name: string) => entries.has(name),
    stream,
    hashOf,
    read,
    close: () => zip.close(),
  };
}

/**
 * Verifies a bundle offline: every file against the manifest (and no file outside it), the manifest's
 * signature, the audit export's chain and digests (the existing export verifier), and the report's
 * figures recomputed from the exported events. With `publicKeys` the signatures prove origin.
 */
export async function verifyBundle(
  file: string,
  options: { publicKeys?: ReadonlyMap<string, KeyObject> } = {},
): Promise<BundleVerification> {
  const zip = await openZip(file);
  try {
    const checks: BundleCheck[] = [];
    const manifestCheck: BundleCheck = { name: "manifest", ok: true, problems: [] };
    const signatureCheck: BundleCheck = { name: "signature", ok: true, problems: [] };
    checks.push(manifestCheck, signatureCheck);

    let manifestBytes: Buffer | undefined;
    let manifest: BundleManifest | undefined;
    if (!zip.has(MANIFEST_FILE)) manifestCheck.problems.push(`${MANIFEST_FILE} is missing`);
    else {
      manifestBytes = await zip.read(MANIFEST_FILE);
      try {
        manifest = JSON.parse(manifestBytes.toString("utf8")) as BundleManifest;
        if (manifest.format !== BUNDLE_FORMAT || !Array.isArray(manifest.files)) throw new Error("format");
      } catch {
        manifestCheck.problems.push(`${MANIFEST_FILE} is not a ${BUNDLE_FORMAT} manifest`);
        manifest = undefined;
      }
    }
    if (manifest) {
      const listed = new Set(manifest.files.map((entry) => entry.path));
      for (const entry of manifest.files) {
        if (!zip.has(entry.path)) {
          manifestCheck.problems.push(`${entry.path}: listed in the manifest but missing`);
          continue;
        }
        const actual = await zip.hashOf(entry.path);
        if (actual.sha256 !== entry.sha256 || actual.bytes !== entry.bytes)
          manifestCheck.problems.push(
            `${entry.path}: SHA-256 does not match the manifest (the file was changed)`,
          );
      }
      for (const name of zip.names) {
        if (name !== MANIFEST_FILE && name !== SIGNATURE_FILE && !listed.has(name) && !name.endsWith("/"))
          manifestCheck.problems.push(`${name}: not in the manifest (added)`);
      }
    }

    let trusted = options.publicKeys !== undefined;
    let keys = options.publicKeys;
    if (!zip.has(SIGNATURE_FILE)) signatureCheck.problems.push(`${SIGNATURE_FILE} is missing`);
    else {
      try {
        const signature = JSON.parse((await zip.read(SIGNATURE_FILE)).toString("utf8")) as {
          algorithm: string;
          key_id: string;
          signed_file: string;
          signature: string;
          public_keys?: { key_id: string; public_key: string }[];
        };
        // Every member is part of the claim: a signature document that says anything else is not ours.
        if (signature.algorithm !== "ed25519" || signature.signed_file !== MANIFEST_FILE)
          signatureCheck.problems.push(`${SIGNATURE_FILE}: not an Ed25519 signature over ${MANIFEST_FILE}`);
        if (!keys) {
          keys = new Map(
            (signature.public_keys ?? []).map((key) => [key.key_id, publicKeyFromRaw(key.public_key)]),
          );
          trusted = false;
        }
        const key = keys.get(signature.key_id);
        if (!key)
          signatureCheck.problems.push(
            `${SIGNATURE_FILE}: signed by ${signature.key_id}, which is not a trusted key`,
          );
        else if (
          !manifestBytes ||
          !verify(null, manifestBytes, key, Buffer.from(signature.signature, "base64url"))
        )
          signatureCheck.problems.push(
            `${SIGNATURE_FILE}: the signature over ${MANIFEST_FILE} does not verify`,
          );
      } catch {
        signatureCheck.problems.push(`${SIGNATURE_FILE} is not a signature document`);
      }
    }

    // The chain: the existing export verifier, fed the export line by line; events and digests are kept
    // aside (as the report builder's input) at the same time.
    const chainCheck: BundleCheck = { name: "audit_chain", ok: true, problems: [] };
    const figuresCheck: BundleCheck = { name: "figures", ok: true, problems: [] };
    checks.push(chainCheck, figuresCheck);
    let report: ComplianceReport | undefined;
    if (zip.has("report.json")) {
      try {
        report = JSON.parse((await zip.read("report.json")).toString("utf8")) as ComplianceReport;
      } catch {
        figuresCheck.problems.push("report.json is not JSON");
      }
    } else figuresCheck.problems.push("report.json is missing");

    let chain: ExportVerification | null = null;
    let builder: ReportBuilder | undefined;
    try {
      builder = report ? new ReportBuilder(report, report.inputs) : undefined;
    } catch {
      figuresCheck.problems.push("report.json lacks the inputs the figures are computed from");
    }
    if (!zip.has(AUDIT_EXPORT_FILE)) chainCheck.problems.push(`${AUDIT_EXPORT_FILE} is missing`);
    else {
      const lines = createInterface({
        input: await zip.stream(AUDIT_EXPORT_FILE),
        crlfDelay: Number.POSITIVE_INFINITY,
      });
      const tapped = (async function* () {
        for await (const line of lines) {
          if (builder) feed(builder, line);
          yield line;
        }
      })();
      chain = await verifyExport(tapped, { publicKeys: keys ?? new Map() });
      if (!chain.ok) {
        for (const problem of chain.problems.slice(0, 20)) {
          const where = [problem.location, problem.seq !== undefined ? `seq ${problem.seq}` : undefined]
            .filter(Boolean)
            .join(", ");
          chainCheck.problems.push(`${AUDIT_EXPORT_FILE} ${where}: ${problem.kind}: ${problem.message}`);
        }
      }
    }

    if (report && builder) {
      const recomputed = builder.build();
      // The chain check recorded at generation is an input, not a figure of the events.
      for (const path of compareSections(report.sections, recomputed)) {
        figuresCheck.problems.push(
          `report.json ${path} does not match the figure recomputed from the audit events`,
        );
      }
    }

    for (const check of checks) check.ok = check.problems.length === 0;
    return {
      ok: checks.every((check) => check.ok),
      checks,
      report_id: report?.report_id ?? manifest?.report_id ?? null,
      trusted_keys: trusted,
      chain,
    };
  } finally {
    zip.close();
  }
}

function feed(builder: ReportBuilder, line: string): void {
  let record: { record?: string } & Record<string, unknown>;
  try {
    record = JSON.parse(line);
  } catch {
    return;
  }
  const { record: kind, ...body } = record;
  if (kind === "event") builder.add(body as unknown as AuditEvent);
  else if (kind === "digest") builder.addDigest(body as unknown as AuditDigest);
}

/** The paths (e.g. `sections.access.users`) where the report differs from the recomputation. */
export function compareSections(claimed: ReportSections, recomputed: ReportSections): string[] {
  const differences: string[] = [];
  const walk = (a: unknown, b: unknown, path: string, depth: number) => {
    if (isDeepStrictEqual(a, b)) return;
    if (
      depth < 3 &&
      a &&
      b &&
      typeof a === "object" &&
      typeof b === "object" &&
      !Array.isArray(a) &&
      !Array.isArray(b)
    ) {
      const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
      for (const key of keys)
        walk(
          (a as Record<string, unknown>)[key],
          (b as Record<string, unknown>)[key],
          `${path}.${key}`,
          depth + 1,
        );
      return;
    }
    differences.push(path);
  };
  walk(claimed, recomputed, "sections", 0);
  return differences;
}
