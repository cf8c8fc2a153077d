/**
 * grpc-js's own log lines, minus those that restate an error the greeter
 * reports itself (so a person reads each failure once).
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";

/**
 * Lines grpc-js logs at ERROR just before it throws the same words: on a
 * busy port, `E No address added out of total 1 resolved`, then the bind
 * error, which the greeter reports as `Cannot bind "HOST:PORT": …`.
 */
const RESTATED = [/^No address added out of total \d+ resolved$/];

let installed = false;

/**
 * Replaces grpc-js's logger with one that writes as its default does
 * (`E `, `I `, `D ` prefixes on stderr, at `GRPC_VERBOSITY`), but drops the
 * lines in {@linkcode RESTATED}. Idempotent.
 *
 * @example
 * ```ts ignore
 * dropRestatedErrors();
 * ```
 */
export function dropRestatedErrors(): void {
  if (installed) return;
  installed = true;
  grpc.setLogger({
    error: (message?: unknown, ...rest: unknown[]) => {
      if (RESTATED.some((pattern) => pattern.test(String(message)))) return;
      console.error(`E ${message}`, ...rest);
    },
    info: (message?: unknown, ...rest: unknown[]) =>
      console.error(`I ${message}`, ...rest),
    debug: (message?: unknown, ...rest: unknown[]) =>
      console.error(`D ${message}`, ...rest),
  });
}
