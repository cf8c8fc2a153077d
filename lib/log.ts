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
export type LogFields = Record<
  string,
  string | number | boolean | readonly string[] | undefined
>;

/** A record as logged, before it is a line. */
export interface LogRecord {
  /** Its level. */
  level: LogLevel;
  /** The message, with its `{field}` placeholders. */
  msg: string;
  /** Its fields. */
  fields: LogFields;
}

/** A field named in a message: `{name}`. */
const PLACEHOLDER = /\{(\w+)\}/g;

/** Options of {@linkcode Logger}. */
export interface LoggerOptions {
  /** Records below this level are dropped. Default `"info"`. */
  level?: LogLevel;
  /** Default `"text"`. */
  format?: LogFormat;
  /** Where a finished line goes. Default: stderr. */
  write?: (line: string) => void;
  /**
   * Where a record goes as it was logged, unformatted, in place of `write`
   * (a worker hands its records to the thread that writes every line, which
   * formats them as its own).
   */
  forward?: (record: LogRecord) => void;
  /** Time source for the timestamp. Default `Date.now`. */
  now?: () => number;
}

const encoder = new TextEncoder();

/** A field's value in a text line: strings and lists quoted, the rest bare. */
function shown(value: LogFields[string]): string {
  if (typeof value === "string") return quote(value);
  if (Array.isArray(value)) return quote(value.join(","));
  return String(value);
}
const toStderr = (line: string) => {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
};

/**
 * A levelled logger. Text lines read `TIME LEVEL message key=value…`, every
 * string value quoted and escaped by `quote` (`escape.ts`) (numbers and
 * booleans bare, a list as its items joined by commas); JSON lines hold
 * `time`, `level`, `msg` and the fields. A message may name a field,
 * `client {name} subscribed.`: a text line shows the value there, quoted, for
 * people; a JSON line keeps `msg` the same for every record of its kind
 * (`client subscribed.`) and the value in its field, for log pipelines.
 * Logging never throws: a line the sink cannot take is dropped.
 *
 * @example
 * ```ts
 * import { Logger } from "./log.ts";
 * const log = new Logger({ level: "info" });
 * log.info("Starting server on 127.0.0.1:50051", { port: 50051 });
 * log.info("client {name} subscribed.", { name: "you", topics: ["tick"] });
 * ```
 */
export class Logger {
  #min: number;
  #format: LogFormat;
  #write: (line: string) => void;
  #forward?: (record: LogRecord) => void;
  #now: () => number;

  /** Creates a logger; see {@linkcode LoggerOptions} for the defaults. */
  constructor(options: LoggerOptions = {}) {
    this.#min = LOG_LEVELS.indexOf(options.level ?? "info");
    this.#format = options.format ?? "text";
    this.#write = options.write ?? toStderr;
    this.#forward = options.forward;
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
      if (this.#forward) this.#forward({ level, msg, fields });
      else this.#emit(level, msg, fields);
    } catch {
      // A broken sink (e.g. stderr closed: EPIPE) must not take the server
      // down nor skip the caller's cleanup: the line is dropped.
    }
  }

  #emit(level: LogLevel, msg: string, fields: LogFields): void {
    const time = new Date(this.#now()).toISOString();
    if (this.#format === "json") {
      const constant = msg.includes("{")
        ? msg.replace(PLACEHOLDER, "").replace(/ {2,}/g, " ")
        : msg;
      // \uXXXX escapes are JSON too: the value parses back unchanged, and a
      // terminal showing the line is not steered by a client's characters.
      this.#write(
        escapeUnsafe(JSON.stringify({ time, level, msg: constant, ...fields })),
      );
      return;
    }
    // The message is the server's own words, and the fields it names are
    // quoted; escaping what remains keeps it on one line.
    const named = new Set<string>();
    const text = msg.includes("{")
      ? msg.replace(PLACEHOLDER, (whole, key: string) => {
        if (!(key in fields)) return whole;
        named.add(key);
        return shown(fields[key]);
      })
      : msg;
    let line = `${time} ${level.toUpperCase()} ${escapeUnsafe(text)}`;
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined || named.has(key)) continue;
      line += ` ${key}=${shown(value)}`;
    }
    this.#write(line);
  }
}
