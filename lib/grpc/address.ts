/**
 * Addresses as the server prints and binds them.
 *
 * @module
 */

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
