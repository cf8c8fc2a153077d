/**
 * Server defaults shared by the server and the command line, in a module with
 * no imports, so that parsing a client's flags loads no server code.
 *
 * @module
 */

/** Default milliseconds a shutdown waits for calls to finish before forcing. */
export const DEFAULT_GRACE_MS = 5_000;

/** Default milliseconds between keepalive pings the server sends a peer. */
export const DEFAULT_KEEPALIVE_TIME_MS = 20_000;

/** Default milliseconds a peer has to answer a keepalive ping. */
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 10_000;
