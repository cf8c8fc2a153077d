/**
 * The greeter client library, as other code uses it
 * (`@greeter/greeter/client`, and the package's `.`): {@linkcode GreeterClient}
 * makes the calls (promises, and async iterables for streams, cancelled by an
 * `AbortSignal`), {@linkcode follow} keeps a subscription across reconnects
 * and resumes it from its last cursor, and every failed call is an
 * {@linkcode RpcError} with its gRPC status name. `docs/library.md` walks
 * through it.
 *
 * @example Publish, then read it back from the window
 * ```ts
 * import { GreeterClient } from "@greeter/greeter/client";
 * import { startServer } from "@greeter/greeter/server";
 *
 * await using server = await startServer({ port: 0, intervalMs: 60_000 });
 * using client = new GreeterClient(`localhost:${server.port}`);
 * const { cursor } = await client.publish(
 *   "news",
 *   new TextEncoder().encode("hello"),
 * );
 * for await (
 *   const message of client.subscribe("reader", {
 *     topics: ["news"],
 *     start: { first: true },
 *   })
 * ) {
 *   if (message.kind !== "event") continue;
 *   console.log(message.cursor.seq === cursor.seq); // true
 *   console.log(new TextDecoder().decode(message.payload)); // "hello"
 *   break;
 * }
 * ```
 *
 * @module
 */

export {
  type CallOptions,
  type ClientCursor,
  DEFAULT_UNARY_TIMEOUT_MS,
  GreeterClient,
  type GreeterClientOptions,
  type StartPosition,
  type StreamInfo,
  type SubscribeCallOptions,
  type SubscriberSummary,
  type SubscriptionMessage,
  type UnaryOptions,
} from "./client.ts";
export {
  type BackoffOptions,
  follow,
  type FollowMessage,
  type FollowOptions,
  nextCursor,
  RETRYABLE_CODES,
} from "./follow.ts";
export { RpcError } from "../errors.ts";
export type { ClientTls } from "../wire/tls.ts";
