import type { Readable } from "node:stream";
import type { ComplianceReport } from "./report-schema";
import { cell, reportTables } from "./report-tables";

/** Rows per table in the PDF; the CSVs and the JSON hold them all. */
export const PDF_MAX_ROWS = 200;

/**
 * The report for a person (decision 019): a title page, the summary (control matrix and exceptions),
 * one heading per section with its tables, and "page N of M" on every page. Drawn with pdfkit (no
 * browser). Pages are buffered until the end for the page count, so rows per table are capped.
 * pdfkit is loaded on first use: it reads its colour profile and font metrics from files beside its
 * module, which the Lambda bundle does not ship (decision 022), and must not break loading the API.
 */
export async function reportPdf(report: ComplianceReport): Promise<Readable> {
  const { default: PDFDocument } = await import("pdfkit");
  const doc = new PDFDocument({
    size: "A4",
    layout: "landscape",
    margin: 40,
    bufferPages: true,
    info: {
      Title: `Compliance report ${report.environment} ${report.period.from ?? "start"} to ${report.period.to}`,
      Author: "hybrid-cicd",
      Subject: report.report_id,
    },
  });
  const { summary } = report.sections;

  doc.font("Helvetica-Bold").fontSize(26).text("Compliance report", { align: "left" });
  doc.moveDown(0.5).font("Helvetica").fontSize(13);
  doc.text(`Environment: ${report.environment}`);
  doc.text(`Period: ${report.period.from ?? "start of the audit trail"} to ${report.period.to}`);
  doc.text(`Target environment of jobs: ${report.target_environment ?? "all"}`);
  doc.text(`Generated at ${report.generated_at} by ${report.generated_by}`);
  doc.text(`Report id: ${report.report_id}`);
  doc.text(`Product version: ${report.product_version}`);
  doc.text(`Schema: ${report.schema}`);
  doc.moveDown();
  const chain = summary.chain_verification;
  doc.text(
    chain.ok
      ? `Audit chain verified: ${chain.events} events, ${chain.digests} digests, sealed through seq ${chain.sealed_through_seq ?? "-"}`
      : `Audit chain NOT verified: ${chain.first_problem ?? "unknown problem"}`,
  );
  doc.moveDown();
  doc
    .fontSize(10)
    .text(
      "Every figure in this report is computed from the audit events of the period; the signed evidence bundle " +
        "holds those events and their signed digests, and `hybrid-cicd verify <bundle.zip>` recomputes the figures.",
    );

  doc.addPage();
  heading(doc, "Summary");
  const totals = summary.totals;
  doc
    .font("Helvetica")
    .fontSize(10)
    .text(
      `Events ${totals.events} · users ${totals.users} · sign-ins ${totals.sign_ins} · failed sign-ins ${totals.failed_sign_ins} · ` +
        `jobs ${totals.jobs} (production ${totals.production_jobs}) · agents ${totals.agents} · secrets ${totals.secrets} · ` +
        `denied requests ${totals.denied_requests} · exceptions ${summary.exceptions.length}`,
    );
  doc.moveDown(0.5);

  const sectionTitles: Record<string, string> = {
    "1": "1. Scope and summary",
    "2": "2. Access",
    "3": "3. Change management",
    "4": "4. Secrets",
    "5": "5. Agents",
    "6": "6. Monitoring and infrastructure",
    "7": "7. Evidence",
  };
  let section = "";
  for (const table of reportTables(report)) {
    const number = table.name.split("-")[0]!;
    if (number !== section && number !== "1") {
      doc.addPage();
      heading(doc, sectionTitles[number] ?? number);
    }
    section = number;
    doc.font("Helvetica-Bold").fontSize(11).text(table.title);
    doc.moveDown(0.2);
    if (table.rows.length === 0) {
      doc.font("Helvetica").fontSize(9).text("None in this period.");
    } else {
      const shown = table.rows.slice(0, PDF_MAX_ROWS);
      doc.font("Helvetica").fontSize(7);
      doc.table({
        data: [
          table.columns.map((column) => ({
            text: column,
            font: { src: "Helvetica-Bold" },
            type: "TH" as const,
          })),
          ...shown.map((row) => row.map((value) => cell(value).slice(0, 200))),
        ],
      });
      if (table.rows.length > shown.length) {
        doc.fontSize(8).text(`… and ${table.rows.length - shown.length} more rows: see the CSV or JSON.`);
      }
    }
    doc.moveDown();
  }
  if (report.sections.secrets.notes.length > 0) {
    doc.font("Helvetica").fontSize(8);
    for (const note of report.sections.secrets.notes) doc.text(note);
  }

  const range = doc.bufferedPageRange();
  for (let index = range.start; index < range.start + range.count; index++) {
    doc.switchToPage(index);
    const bottom = doc.page.margins.bottom;
    doc.page.margins.bottom = 0;
    doc
      .font("Helvetica")
      .fontSize(8)
      .text(
        `${report.environment} · ${report.report_id} · page ${index + 1} of ${range.count}`,
        doc.page.margins.left,
        doc.page.height - 25,
        {
          align: "center",
          width: doc.page.width - doc.page.margins.left - doc.page.margins.right,
          lineBreak: false,
        },
      );
    doc.page.margins.bottom = bottom;
  }
  doc.end();
  return doc as unknown as Readable;
}

function heading(doc: PDFKit.PDFDocument, text: string): void {
  doc.font("Helvetica-Bold").fontSize(16).text(text, doc.page.margins.left);
  doc.moveDown(0.5);
}
