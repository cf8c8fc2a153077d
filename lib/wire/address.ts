/**
 * Addresses as the server prints and binds them, which stay on this
 * machine, and the origins (`scheme://host[:port]`) of pages.
 *
 * @module
 */

import { ConfigError, GreeterError } from "../errors.ts";

/**
 * Formats `host:port`, bracketing IPv6 literals.
 *
 * @example
 * ```ts
 * import { formatAddress } from "./address.ts";
 * formatAddress("::", 50051); // "[::]:50051"
 * ```
 */
export function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Why `host:port` could not be bound, and, for the two causes people meet
 * (EADDRINUSE, EADDRNOTAVAIL), what to do.
 *
 * @example
 * ```ts
 * import { bindError } from "./address.ts";
 * const error = Object.assign(new Error("listen EADDRINUSE"), { code: "EADDRINUSE" });
 * bindError("127.0.0.1", 50051, error).message; // 'Cannot bind "127.0.0.1:50051": listen EADDRINUSE: another process listens there …'
 * ```
 */
export function bindError(
  host: string,
  port: number,
  error: Error,
): GreeterError {
  const code = (error as { code?: string }).code;
  const hint = code === "EADDRINUSE"
    ? `: another process listens there (another greeter?): stop it (ss -ltnp 'sport = :${port}' names it) or choose another --port`
    : code === "EADDRNOTAVAIL"
    ? ": no interface of this machine has that address: give --host one it has, 127.0.0.1, or :: for every interface"
    : "";
  return new GreeterError(
    `Cannot bind "${formatAddress(host, port)}": ${error.message}${hint}`,
    { cause: error },
  );
}

/**
 * Whether `host` is a loopback interface: `localhost`, `127.0.0.0/8`, `::1`
 * (or its IPv4-mapped form).
 *
 * @example
 * ```ts
 * import { isLoopback } from "./address.ts";
 * isLoopback("127.0.0.1"); // true
 * isLoopback("::"); // false
 * ```
 */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return h === "localhost" || h === "::1" ||
    /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * The host part of a grpc-js peer (`127.0.0.1:5000`, `::1:5000`,
 * `[::1]:5000`): what a guard counts by, as a peer's port changes with each
 * connection.
 *
 * @example
 * ```ts
 * import { peerHost } from "./address.ts";
 * peerHost("127.0.0.1:5000"); // "127.0.0.1"
 * ```
 */
export function peerHost(peer: string): string {
  return peer.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
}

/**
 * Checks an origin as `--http-cors-origin` takes it: `scheme://host[:port]`,
 * exactly as a browser sends it in `Origin` (no path, no trailing slash);
 * throws `ConfigError` naming the value otherwise.
 *
 * @example
 * ```ts
 * import { checkOrigin } from "./address.ts";
 * checkOrigin("https://console.example.com"); // "https://console.example.com"
 * ```
 */
export function checkOrigin(origin: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(origin);
  } catch {
    parsed = undefined;
  }
  if (
    !parsed || !/^https?:$/.test(parsed.protocol) || parsed.origin !== origin
  ) {
    throw new ConfigError(
      `Invalid CORS origin "${origin}": expected scheme://host[:port] as a browser sends it, e.g. https://console.example.com (no path, no trailing slash, no *)`,
    );
  }
  return origin;
}
