/**
 * The `goodbyeGreetingMessage` a stream ends with: why, and whether and when
 * to reconnect.
 *
 * @module
 */

import type { GreetingMessage } from "../wire/proto.ts";

/**
 * A Goodbye with status `code` and `reason`; with `reconnectJitterMs`, it
 * advises reconnecting after a random delay below it (so that clients do not
 * all come back at once), otherwise not to reconnect.
 *
 * @example
 * ```ts
 * import { goodbye } from "./goodbye.ts";
 * goodbye(14, "The server is shutting down", { reconnectJitterMs: 3000 });
 * goodbye(0, "The stream is complete"); // no reconnect
 * ```
 */
export function goodbye(
  code: number,
  reason: string,
  options: { reconnectJitterMs?: number } = {},
): GreetingMessage {
  const jitterMs = options.reconnectJitterMs;
  return {
    goodbyeGreetingMessage: jitterMs === undefined
      ? { code, reason, reconnect: false }
      : {
        code,
        reason,
        reconnect: true,
        reconnect_after_ms: Math.floor(Math.random() * jitterMs),
      },
  };
}
