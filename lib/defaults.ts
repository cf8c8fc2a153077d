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

/** Default milliseconds between heartbeats to an idle subscriber (below common load-balancer idle timeouts). */
export const DEFAULT_HEARTBEAT_MS = 15_000;

/** Default upper bound of the random delay a Goodbye advises before reconnecting (ms). */
export const DEFAULT_RECONNECT_JITTER_MS = 3_000;

/** Default largest payload `Publish` accepts, in bytes. */
export const DEFAULT_MAX_PUBLISH_BYTES = 16 * 1024;
