import { createWriteStream, existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Command } from "commander";
import { parsePublicKeys, publicKeyFromRaw } from "../domain/audit/audit-signing";
import {
  CONSISTENCY_PROOF_FORMAT,
  type ConsistencyProofDocument,
  INCLUSION_PROOF_FORMAT,
  type InclusionProofDocument,
  verifyConsistencyDocument,
  verifyInclusionDocument,
} from "../domain/audit/merkle-proofs";
import { type BundleVerification, verifyBundle } from "../domain/reports/evidence-bundle";
import { reportFormats } from "../domain/reports/reports-service";

class CommandExit extends Error {
  readonly code = "hybrid-cicd.exit";
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

interface ApiOptions {
  url?: string;
  token?: string;
}

function api(options: ApiOptions): { url: string; token: string } {
  const url = options.url ?? process.env.HYBRID_CICD_URL ?? "http://127.0.0.1:8000";
  const token = options.token ?? process.env.HYBRID_CICD_TOKEN;
  if (!token) {
    process.stderr.write(
      "hybrid-cicd: a token is needed: --token or HYBRID_CICD_TOKEN (an admin or auditor API token)\n",
    );
    throw new CommandExit(2);
  }
  return { url: url.replace(/\/+$/, ""), token };
}

async function problem(response: Response): Promise<string> {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as { title?: string; detail?: string };
    return `${response.status} ${body.title ?? ""}${body.detail ? `: ${body.detail}` : ""}`;
  } catch {
    return `${response.status} ${text.slice(0, 200)}`;
  }
}

/**
 * `hybrid-cicd report`, `hybrid-cicd verify-event`: a compliance report through the API with a token
 * (streamed to a file, with progress on a terminal), and offline checks of Merkle proofs (decision 020).
 * `hybrid-cicd verify <bundle.zip>` is the `verify` command, which recognises a bundle.
 */
export function registerReportCommands(program: Command): void {
  program
    .command("report")
    .description("export a compliance report (json, csv, pdf or a signed evidence bundle) through the API")
    .option("--url <url>", "control plane URL (env HYBRID_CICD_URL, default http://127.0.0.1:8000)")
    .option("--token <token>", "API token of an admin or auditor (env HYBRID_CICD_TOKEN)")
    .option("--from <time>", "start of the period, ISO 8601 (default: the start of the audit trail)")
    .option("--to <time>", "end of the period, ISO 8601 (default: now)")
    .option("--target-environment <env>", "only jobs targeting this environment")
    .option("--format <format>", `one of ${reportFormats.join(", ")}`, "bundle")
    .requiredOption("--out <file>", "where to write it")
    .action(
      async (
        options: ApiOptions & {
          from?: string;
          to?: string;
          targetEnvironment?: string;
          format: string;
          out: string;
        },
      ) => {
        const code = await reportCommand(options);
        if (code !== 0) throw new CommandExit(code);
      },
    );

  program
    .command("verify-event")
    .description(
      "check a Merkle inclusion (or consistency) proof against its signed digest; exit 0 only if it holds",
    )
    .argument("[proof-file]", "a proof from GET /audit/events/{seq}/proof or GET /audit/digests/consistency")
    .option("--seq <seq>", "fetch the proof of this event from the API instead of a file")
    .option("--digest-seq <n>", "prove against this digest (default: the latest)")
    .option("--url <url>", "control plane URL (env HYBRID_CICD_URL)")
    .option("--token <token>", "API token (env HYBRID_CICD_TOKEN)")
    .option("--public-key <key>", "trusted key: file with GET /audit/public-key JSON or PEM, or the raw key")
    .option("--json", "print the result as JSON")
    .action(
      async (
        file: string | undefined,
        options: ApiOptions & { seq?: string; digestSeq?: string; publicKey?: string; json?: boolean },
      ) => {
        const code = await verifyEventCommand(file, options);
        if (code !== 0) throw new CommandExit(code);
      },
    );
}

export async function reportCommand(
  options: ApiOptions & {
    from?: string;
    to?: string;
    targetEnvironment?: string;
    format: string;
    out: string;
  },
): Promise<number> {
  const { url, token } = api(options);
  const query = new URLSearchParams({ format: options.format });
  if (options.from) query.set("from", options.from);
  if (options.to) query.set("to", options.to);
  if (options.targetEnvironment) query.set("target_environment", options.targetEnvironment);
  const response = await fetch(`${url}/reports/compliance?${query}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  if (!response.ok || !response.body) {
    process.stderr.write(`hybrid-cicd report: ${await problem(response)}\n`);
    return 1;
  }
  const events = response.headers.get("x-report-events");
  const tty = process.stderr.isTTY === true;
  let received = 0;
  let lastDrawn = 0;
  const started = Date.now();
  const draw = (done: boolean) => {
    const mb = (received / 1048576).toFixed(1);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const width = 30;
    const filled = done ? width : Math.floor((Date.now() / 150) % width);
    const bar = done
      ? "=".repeat(width)
      : `${" ".repeat(filled)}<=>${" ".repeat(width - filled)}`.slice(0, width);
    process.stderr.write(`\r[${bar}] ${mb} MB, ${events ?? "?"} events, ${seconds} s${done ? "\n" : ""}`);
  };
  const body = Readable.fromWeb(response.body as import("node:stream/web").ReadableStream<Uint8Array>);
  body.on("data", (chunk: Buffer) => {
    received += chunk.length;
    if (tty && Date.now() - lastDrawn > 100) {
      lastDrawn = Date.now();
      draw(false);
    }
  });
  await pipeline(body, createWriteStream(options.out));
  if (tty) draw(true);
  process.stdout.write(
    `${options.out}: ${options.format} report ${response.headers.get("x-report-id")}, ${received} bytes, ${events} events\n`,
  );
  return 0;
}

export async function verifyEventCommand(
  file: string | undefined,
  options: ApiOptions & { seq?: string; digestSeq?: string; publicKey?: string; json?: boolean },
): Promise<number> {
  let document: InclusionProofDocument | ConsistencyProofDocument;
  try {
    if (options.seq !== undefined) {
      const { url, token } = api(options);
      const query = options.digestSeq ? `?digest_seq=${encodeURIComponent(options.digestSeq)}` : "";
      const response = await fetch(`${url}/audit/events/${encodeURIComponent(options.seq)}/proof${query}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      if (!response.ok) {
        process.stderr.write(`hybrid-cicd verify-event: ${await problem(response)}\n`);
        return 2;
      }
      document = (await response.json()) as InclusionProofDocument;
    } else if (file !== undefined && existsSync(file)) {
      document = JSON.parse(await readFile(file, "utf8"));
    } else {
      process.stderr.write("hybrid-cicd verify-event: give a proof file, or --seq N to fetch one\n");
      return 2;
    }
  } catch (error) {
    if (error instanceof CommandExit) throw error;
    process.stderr.write(`hybrid-cicd verify-event: cannot read the proof: ${(error as Error).message}\n`);
    return 2;
  }
  let keys: Map<string, import("node:crypto").KeyObject>;
  const trusted = options.publicKey !== undefined;
  try {
    if (options.publicKey !== undefined) {
      const text = existsSync(options.publicKey)
        ? await readFile(options.publicKey, "utf8")
        : options.publicKey;
      keys = parsePublicKeys(text);
    } else {
      keys = new Map(
        (document.public_keys ?? []).map((key) => [key.key_id, publicKeyFromRaw(key.public_key)]),
      );
    }
  } catch (error) {
    process.stderr.write(
      `hybrid-cicd verify-event: cannot use the public key: ${(error as Error).message}\n`,
    );
    return 2;
  }
  let result: ReturnType<typeof verifyInclusionDocument>;
  let what: string;
  if (document.format === INCLUSION_PROOF_FORMAT) {
    result = verifyInclusionDocument(document, keys, trusted);
    what = `event seq ${document.event.seq} (${document.event.action}) in digest ${document.digest.digest_seq} (tree of ${document.tree_size} events, ${document.audit_path.length} hashes)`;
  } else if (document.format === CONSISTENCY_PROOF_FORMAT) {
    result = verifyConsistencyDocument(document, keys, trusted);
    what = `digest ${document.first.digest_seq} (${document.first.head_seq} events) is a prefix of digest ${document.second.digest_seq} (${document.second.head_seq} events), ${document.proof.length} hashes`;
  } else {
    process.stderr.write("hybrid-cicd verify-event: not an inclusion or consistency proof document\n");
    return 2;
  }
  if (options.json) process.stdout.write(`${JSON.stringify({ verified: result.ok, ...result }, null, 2)}\n`);
  else {
    const keysNote = trusted
      ? "trusted key from --public-key"
      : "keys taken from the proof itself; pass --public-key to prove origin";
    process.stdout.write(
      result.ok
        ? `VERIFIED: ${what}; ${keysNote}\n`
        : `FAILED: ${what}\n${result.problems.map((line) => `  ${line}`).join("\n")}\n`,
    );
  }
  return result.ok ? 0 : 1;
}

/** `hybrid-cicd verify` on a bundle: manifest, signature, chain and figures, each named when it fails. */
export async function verifyBundleCommand(
  file: string,
  options: { publicKey?: ReturnType<typeof parsePublicKeys>; json?: boolean },
): Promise<number> {
  let result: BundleVerification;
  try {
    result = await verifyBundle(file, { publicKeys: options.publicKey });
  } catch (error) {
    process.stderr.write(`hybrid-cicd verify: cannot read ${file}: ${(error as Error).message}\n`);
    return 2;
  }
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ file, verified: result.ok, ...result }, null, 2)}\n`);
    return result.ok ? 0 : 1;
  }
  const out = [`${file}: evidence bundle, report ${result.report_id ?? "?"}`];
  for (const check of result.checks) {
    out.push(`  ${check.ok ? "ok    " : "FAILED"} ${check.name}`);
    for (const problem of check.problems.slice(0, 20)) out.push(`         ${problem}`);
  }
  if (result.chain) {
    out.push(
      `  ${result.chain.events} events (seq ${result.chain.first_seq ?? "-"}..${result.chain.last_seq ?? "-"}), ${result.chain.digests} digests`,
    );
  }
  out.push(
    `  keys: ${result.trusted_keys ? "trusted, from --public-key" : "taken from the bundle itself: pass --public-key to prove origin"}`,
  );
  const failed = result.checks.filter((check) => !check.ok).map((check) => check.name);
  out.push(
    failed.length === 0
      ? "VERIFIED: manifest, signature, audit chain and every figure check out"
      : `FAILED: ${failed.join(", ")}`,
  );
  process.stdout.write(`${out.join("\n")}\n`);
  return result.ok ? 0 : 1;
}

/** Whether a file starts with the zip local-file signature. */
export async function isZipFile(file: string): Promise<boolean> {
  const { open } = await import("node:fs/promises");
  const handle = await open(file, "r");
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(4), 0, 4, 0);
    return bytesRead === 4 && buffer.readUInt32LE(0) === 0x04034b50;
  } finally {
    await handle.close();
  }
}
