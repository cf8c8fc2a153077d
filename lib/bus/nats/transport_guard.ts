/**
 * A guard against one known error of nats.js 3.4.0's Node transport under
 * Deno.
 *
 * @module
 */

let transportGuarded = false;

/**
 * Keeps two known errors of nats.js 3.4.0's Node transport from ending the
 * process. When a nats-server goes away mid-flush, the transport writes to
 * the socket it has just ended, after removing that socket's error
 * listeners; under Deno that `write after end` is an uncaught error (seen in
 * the nats-server restart test under load). And when a nats-server that
 * verifies client certificates refuses ours, its TLS alert can arrive
 * between the transport removing the TLS socket's handshake listeners and
 * adding its own: an uncaught `received fatal alert: …` from Deno's TLS
 * socket (seen once in the TLS test under load; the server would have died
 * of it on a reconnect too). Either way the socket closes and the client
 * sees the connection fail or go, by itself; only these errors are dropped
 * (the first from that transport, the second from Deno's TLS socket with
 * no listener). Installed once, with the first connection.
 *
 * @example
 * ```ts
 * import { guardNatsTransport } from "./transport_guard.ts";
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
    const stack = error?.stack ?? "";
    const tlsAlert = /^received fatal alert: \w+$/.test(error?.message ?? "") &&
      /internal_binding\/tls_wrap\.ts/.test(stack);
    if (
      (afterEnd && /@nats-io[+/]transport-node/.test(stack)) || tlsAlert
    ) {
      event.preventDefault();
    }
  });
}
