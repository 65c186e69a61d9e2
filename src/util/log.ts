// JSON log lines (winston). Every message and string field is redacted on the way out, so a
// secret that slipped into an error message still never reaches the log.

import winston from "winston";
import { redact } from "./redact.js";

export type Logger = winston.Logger;

const redactFormat = winston.format((info) => {
  for (const key of Object.keys(info)) {
    const value: unknown = info[key];
    if (typeof value === "string") info[key] = redact(value);
  }
  return info;
});

/** The process logger; LOG_LEVEL (or GITSYNC_LOG_LEVEL) sets the level, default info. */
export function createLogger(level = process.env.GITSYNC_LOG_LEVEL ?? process.env.LOG_LEVEL ?? "info"): Logger {
  return winston.createLogger({
    level: level.toLowerCase(),
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: false }), redactFormat(), winston.format.json()),
    transports: [new winston.transports.Console({ stderrLevels: [] })],
  });
}

export const rootLogger: Logger = createLogger();

/** The error's message without stack, redacted: the form every log field and status message uses. */
export function errorText(err: unknown): string {
  return redact(err instanceof Error ? err.message : String(err));
}
