/**
 * A guard against one known error of nats.js 3.4.0's Node transport under
 * Deno.
 *
 * @module
 */

let transportGuarded = false;

/**
 * Keeps one known error of nats.js 3.4.0's Node transport from ending the
 * process. When a nats-server goes away mid-flush, the transport writes to
 * the socket it has just ended, after removing that socket's error
 * listeners; under Deno that `write after end` is an uncaught error (seen in
 * the nats-server restart test under load). The client notices the lost
 * connection by itself and reconnects; only this error, from that
 * transport, is dropped. Installed once, with the first connection.
 *
 * @example
 * ```ts
 * import { guardNatsTransport } from "./nats_transport_guard.ts";
 * guardNatsTransport(); // before connecting; idempotent
 * ```
 */
export function guardNatsTransport(): void {
  if (transportGuarded) return;
  transportGuarded = true;
  globalThis.addEventListener("error", (event) => {
    const error = event.error as {
      code?: string;
      message?: string;
      stack?: string;
    } | undefined;
    const afterEnd = error?.code === "ERR_STREAM_WRITE_AFTER_END" ||
      error?.message === "write after end";
    if (afterEnd && /@nats-io[+/]transport-node/.test(error?.stack ?? "")) {
      event.preventDefault();
    }
  });
}
