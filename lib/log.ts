/**
 * The one place that writes logs: one line per record to stderr (or any
 * sink), as text or as JSON lines, filtered by level.
 *
 * @module
 */

import { escapeUnsafe, quote } from "./escape.ts";

/** Severity of a log record, least to most severe. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Output shape: human text, or one JSON object per line. */
export type LogFormat = "text" | "json";

/** Names of every level, in order of severity. */
export const LOG_LEVELS: readonly LogLevel[] = [
  "debug",
  "info",
  "warn",
  "error",
];

/** Extra structured fields of a record (subscription id, peer, reason…). */
export type LogFields = Record<string, string | number | boolean | undefined>;

/** Options of {@linkcode Logger}. */
export interface LoggerOptions {
  /** Records below this level are dropped. Default `"info"`. */
  level?: LogLevel;
  /** Default `"text"`. */
  format?: LogFormat;
  /** Where a finished line goes. Default: stderr. */
  write?: (line: string) => void;
  /** Time source for the timestamp. Default `Date.now`. */
  now?: () => number;
}

const encoder = new TextEncoder();
const toStderr = (line: string) => {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
};

/**
 * A levelled logger. Text lines read `TIME LEVEL message key=value…`, every
 * string value quoted and escaped by `quote` (`escape.ts`) (numbers and booleans
 * bare); JSON lines hold `time`, `level`, `msg` and the fields. Logging
 * never throws: a line the sink cannot take is dropped.
 *
 * @example
 * ```ts
 * import { Logger } from "./log.ts";
 * const log = new Logger({ level: "info" });
 * log.info("Starting server on [::]:50051", { port: 50051 });
 * ```
 */
export class Logger {
  #min: number;
  #format: LogFormat;
  #write: (line: string) => void;
  #now: () => number;

  /** Creates a logger; see {@linkcode LoggerOptions} for the defaults. */
  constructor(options: LoggerOptions = {}) {
    this.#min = LOG_LEVELS.indexOf(options.level ?? "info");
    this.#format = options.format ?? "text";
    this.#write = options.write ?? toStderr;
    this.#now = options.now ?? Date.now;
  }

  /** Whether a record at `level` would be written (to skip building it). */
  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) >= this.#min;
  }

  /** Logs at `debug`. */
  debug(msg: string, fields?: LogFields): void {
    this.#log("debug", msg, fields);
  }
  /** Logs at `info`. */
  info(msg: string, fields?: LogFields): void {
    this.#log("info", msg, fields);
  }
  /** Logs at `warn`. */
  warn(msg: string, fields?: LogFields): void {
    this.#log("warn", msg, fields);
  }
  /** Logs at `error`. */
  error(msg: string, fields?: LogFields): void {
    this.#log("error", msg, fields);
  }

  #log(level: LogLevel, msg: string, fields: LogFields = {}): void {
    if (LOG_LEVELS.indexOf(level) < this.#min) return;
    try {
      this.#emit(level, msg, fields);
    } catch {
      // A broken sink (e.g. stderr closed: EPIPE) must not take the server
      // down nor skip the caller's cleanup: the line is dropped.
    }
  }

  #emit(level: LogLevel, msg: string, fields: LogFields): void {
    const time = new Date(this.#now()).toISOString();
    if (this.#format === "json") {
      this.#write(JSON.stringify({ time, level, msg, ...fields }));
      return;
    }
    // The message is the server's own words (client values in it are
    // quoted by the caller); escaping what remains keeps it on one line.
    let line = `${time} ${level.toUpperCase()} ${escapeUnsafe(msg)}`;
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      line += ` ${key}=${typeof value === "string" ? quote(value) : value}`;
    }
    this.#write(line);
  }
}
