import { Readable } from "node:stream";
import { stringify } from "csv-stringify/sync";
import type { AuditEvent } from "../audit/audit-event";
import { cell, type ReportTable } from "./report-tables";

/** RFC 4180 CSV of one table (header row first). */
export function tableCsv(table: ReportTable): string {
  return stringify([table.columns, ...table.rows.map((row) => row.map(cell))], { record_delimiter: "\r\n" });
}

export const EVIDENCE_EVENT_COLUMNS = [
  "seq",
  "time",
  "action",
  "outcome",
  "actor",
  "target",
  "request_id",
  "hash",
];

/** The period's events as CSV, streamed row by row (a period can hold millions). */
export function eventsCsv(events: AsyncIterable<AuditEvent>): Readable {
  return Readable.from(
    (async function* () {
      yield stringify([EVIDENCE_EVENT_COLUMNS], { record_delimiter: "\r\n" });
      for await (const event of events) {
        yield stringify(
          [
            [
              event.seq,
              event.time,
              event.action,
              event.outcome,
              `${event.actor.type}:${event.actor.id}`,
              `${event.target.type}:${event.target.id}`,
              event.request_id ?? "",
              event.hash,
            ],
          ],
          { record_delimiter: "\r\n" },
        );
      }
    })(),
  );
}
