/**
 * grpc-js's own log lines without credentials. With `GRPC_TRACE=server_call`
 * (or `all`) and `GRPC_VERBOSITY=DEBUG`, grpc-js logs every request's
 * headers, `authorization` included; the serve task allows `GRPC_*` for
 * such debugging. Its logger is replaced by one that writes the same lines
 * with the credentials taken out, so tracing stays usable and tokens stay
 * out of the log; and without the lines that restate an error the greeter
 * reports itself, so a person reads each failure once.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";

const REDACTED = "<redacted>";

/** A JSON string, escapes included (a token may hold `"` or `]`). */
const JSON_STRING = String.raw`"(?:[^"\\]|\\.)*"`;
/** `"authorization":[...]` in a metadata dump (JSON), any case. */
const AUTHORIZATION_JSON = new RegExp(
  String
    .raw`("authorization"\s*:\s*)(\[\s*(?:${JSON_STRING}\s*,?\s*)*\]|${JSON_STRING})`,
  "gi",
);
/**
 * A bearer credential anywhere else (`Bearer xyz`, `authorization: xyz`):
 * up to the next white space, which no token holds, so that no part of one
 * is left whatever it holds.
 */
const BEARER = /(\bbearer\s+)(?!<redacted>)\S+/gi;
const AUTHORIZATION_HEADER =
  /(\bauthorization\s*[:=]\s*)(?!["[<]|bearer\b)\S+/gi;

/**
 * `text` with every authorization value and bearer token replaced by
 * `<redacted>`.
 *
 * @example
 * ```ts
 * import { redactCredentials } from "./log_redaction.ts";
 * redactCredentials('{"authorization":["Bearer s3cret"]}'); // '{"authorization":["<redacted>"]}'
 * ```
 */
export function redactCredentials(text: string): string {
  return text
    .replace(AUTHORIZATION_JSON, `$1["${REDACTED}"]`)
    .replace(BEARER, `$1${REDACTED}`)
    .replace(AUTHORIZATION_HEADER, `$1${REDACTED}`);
}

/**
 * Lines grpc-js logs at ERROR just before it throws the same words: on a
 * busy port, `E No address added out of total 1 resolved`, then the bind
 * error, which the greeter reports as `Cannot bind "HOST:PORT": …`.
 */
const RESTATED = [/^No address added out of total \d+ resolved$/];

const redactArgument = (value: unknown) =>
  typeof value === "string" ? redactCredentials(value) : value;

/**
 * Makes grpc-js log through {@linkcode redactCredentials}: the same lines,
 * prefixes and stream (stderr) as its default logger (at `GRPC_VERBOSITY`,
 * which grpc-js checks before it calls the logger), but none of the
 * {@linkcode RESTATED} ones. Process-wide and idempotent.
 *
 * @example
 * ```ts
 * import { redactGrpcLogs } from "./log_redaction.ts";
 * redactGrpcLogs(); // before the server takes calls
 * ```
 */
export function redactGrpcLogs(): void {
  const line = (prefix: string) => (message: unknown, ...rest: unknown[]) => {
    if (RESTATED.some((pattern) => pattern.test(String(message)))) return;
    console.error(
      prefix + redactCredentials(String(message)),
      ...rest.map(redactArgument),
    );
  };
  grpc.setLogger({ error: line("E "), info: line("I "), debug: line("D ") });
}
