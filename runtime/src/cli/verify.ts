import { createReadStream, existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import type { Command } from "commander";
import { type ExportVerification, verifyExport } from "../domain/audit/audit-export";
import { parsePublicKeys } from "../domain/audit/audit-signing";
import { isZipFile, verifyBundleCommand } from "./report";

/** Ends `verify` with an exit code; `main` returns it (like commander's own exits). */
class VerifyExit extends Error {
  readonly code = "hybrid-cicd.exit";
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

export interface VerifyOptions {
  publicKey?: string;
  json?: boolean;
  strict?: boolean;
}

/**
 * `hybrid-cicd verify <export-file> [--public-key K]`: checks an audit export offline — every hash
 * link, every digest signature, that digests seal every event, that the file is whole. Needs no
 * network and no control plane. Exit 0 only when everything verifies; 1 when something does not (the
 * first bad record is named); 2 when the file or key cannot be read.
 */
export function registerVerifyCommand(program: Command): void {
  program
    .command("verify")
    .description(
      "verify an audit export offline (hash chain and signed digests); exit 0 only if it all verifies",
    )
    .argument("<export-file>", "a file from GET /audit/export (JSON Lines), or an evidence bundle (.zip)")
    .option(
      "--public-key <key>",
      "trusted key: a file with the JSON of GET /audit/public-key or a PEM, or the raw base64url key itself",
    )
    .option("--json", "print the full report as JSON")
    .option("--strict", "also fail on warnings (e.g. a gap between digests longer than their interval)")
    .action(async (file: string, options: VerifyOptions) => {
      const code = await verifyCommand(file, options);
      if (code !== 0) throw new VerifyExit(code);
    });
}

export async function verifyCommand(file: string, options: VerifyOptions): Promise<number> {
  let publicKeys: ReturnType<typeof parsePublicKeys> | undefined;
  if (options.publicKey !== undefined) {
    try {
      const text = existsSync(options.publicKey)
        ? await readFile(options.publicKey, "utf8")
        : options.publicKey;
      publicKeys = parsePublicKeys(text);
    } catch (error) {
      process.stderr.write(`hybrid-cicd verify: cannot use the public key: ${(error as Error).message}\n`);
      return 2;
    }
  }
  if (!existsSync(file)) {
    process.stderr.write(`hybrid-cicd verify: ${file} does not exist\n`);
    return 2;
  }
  // A compliance evidence bundle (zip) is verified as a whole: manifest, signature, chain, figures.
  if (await isZipFile(file)) return verifyBundleCommand(file, { publicKey: publicKeys, json: options.json });
  const lines = createInterface({
    input: createReadStream(file, "utf8"),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  let report: ExportVerification;
  try {
    report = await verifyExport(lines, { publicKeys });
  } catch (error) {
    process.stderr.write(`hybrid-cicd verify: cannot read ${file}: ${(error as Error).message}\n`);
    return 2;
  }
  const failed = !report.ok || (options.strict === true && report.warnings.length > 0);
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ file, verified: !failed, ...report }, null, 2)}\n`);
  } else {
    process.stdout.write(describe(file, report, failed));
  }
  return failed ? 1 : 0;
}

function describe(file: string, report: ExportVerification, failed: boolean): string {
  const out: string[] = [`${file}`];
  if (report.header) {
    const period = `${report.header.from ?? "start"} .. ${report.header.to ?? "export time"}`;
    out.push(
      `  chain ${report.header.chain}, environment ${report.header.environment}, exported ${report.header.exported_at}`,
    );
    out.push(`  period ${period}`);
  }
  const seqs = report.first_seq === null ? "no events" : `seq ${report.first_seq}..${report.last_seq}`;
  out.push(`  ${report.events} events (${seqs}), ${report.digests} digests`);
  const keys = report.key_ids.length > 0 ? report.key_ids.join(", ") : "none";
  out.push(
    `  signing keys verified: ${keys} (${report.trusted_keys ? "trusted, from --public-key" : "taken from the file itself"})`,
  );
  for (const warning of report.warnings) out.push(`  warning: ${warning}`);
  if (report.ok && !failed) {
    out.push(
      `VERIFIED: every hash link and digest signature checks out; sealed through seq ${report.sealed_through_seq ?? "-"}`,
    );
  } else if (report.ok) {
    out.push("FAILED (--strict): the chain verifies but there are warnings");
  } else {
    const first = report.first_problem!;
    const where = [
      first.location,
      first.seq !== undefined ? `seq ${first.seq}` : undefined,
      first.event_id ? `event ${first.event_id}` : undefined,
      first.digest_seq !== undefined ? `digest ${first.digest_seq}` : undefined,
    ]
      .filter(Boolean)
      .join(", ");
    out.push(`FAILED at ${where || "end of file"}: ${first.kind}: ${first.message}`);
    for (const problem of report.problems.slice(1, 10)) {
      out.push(
        `  also ${[problem.location, `${problem.kind}:`].filter(Boolean).join(" ")} ${problem.message}`,
      );
    }
    if (report.problem_count > 1) out.push(`  (${report.problem_count} problems in all)`);
  }
  return `${out.join("\n")}\n`;
}
