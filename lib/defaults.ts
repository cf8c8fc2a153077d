/**
 * Server defaults (and the policy names) shared by the server and the command
 * line, in a module with no imports, so that parsing a client's flags loads
 * no server code.
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

/** What the hub does with a subscription whose buffer is full. */
export type SlowConsumerPolicy = "drop-oldest" | "disconnect";

/** Every {@linkcode SlowConsumerPolicy}, for validation and help text. */
export const SLOW_CONSUMER_POLICIES: readonly SlowConsumerPolicy[] = [
  "drop-oldest",
  "disconnect",
];

/** Default number of events a subscription may hold unread. */
export const DEFAULT_BUFFER_SIZE = 128;

/** Default number of events kept for replay. */
export const DEFAULT_REPLAY_SIZE = 10_000;

/** Default age beyond which events are no longer replayed (ms). */
export const DEFAULT_REPLAY_AGE_MS = 300_000;

/** Default bound of the bytes the replay window holds. */
export const DEFAULT_REPLAY_BYTES = 64 * 1024 * 1024;

/** Default milliseconds a connection with no call open is kept (a peer that only answers pings holds a descriptor). */
export const DEFAULT_MAX_CONNECTION_IDLE_MS = 300_000;

/** Default most connections open at once (lowered at run time if descriptors run out first). */
export const DEFAULT_MAX_CONNECTIONS = 10_000;

/** Default most hub subscriptions at once. */
export const DEFAULT_MAX_SUBSCRIBERS = 20_000;

/**
 * Default most hub subscriptions per peer (remote address, all its
 * connections): a quarter of the default total, so one peer cannot take
 * every slot, while one multiplexing gateway still gets thousands.
 */
export const DEFAULT_MAX_SUBSCRIBERS_PER_PEER = 5_000;

/**
 * Default most distinct wildcard topic patterns (`news.*`) one peer's
 * subscriptions may use at once: each is a branch of the hub's pattern
 * index, memory that a peer would otherwise grow without bound.
 */
export const DEFAULT_MAX_PATTERNS_PER_PEER = 1_000;

/** Default most concurrent calls per connection. */
export const DEFAULT_MAX_CONCURRENT_STREAMS = 1000;

/** Default largest message, in bytes. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;
