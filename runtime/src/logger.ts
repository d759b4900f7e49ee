import pino, { type Logger } from "pino";

/**
 * The one logger: JSON lines on stdout (CloudWatch Logs on AWS). Credentials never reach it: request
 * logs carry the path without its query (a logout URL carries a session id) and these paths are redacted
 * wherever they appear.
 */
export const redactedPaths = [
  "authorization",
  "cookie",
  "signature",
  "token",
  "session_id",
  "registration_token",
  "workload_identity_secret",
  "*.authorization",
  "*.cookie",
  "*.signature",
  "*.token",
  "*.session_id",
  "*.registration_token",
  "*.workload_identity_secret",
  "headers.authorization",
  "headers.cookie",
  "headers.signature",
];

export function createLogger(
  options: { level?: string; name?: string; destination?: pino.DestinationStream } = {},
) {
  return pino(
    {
      name: options.name ?? "hybrid-cicd",
      level: options.level ?? "info",
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactedPaths, censor: "[redacted]" },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination,
  );
}

export type { Logger };
