/**
 * The status a grpc-js server call really sent. grpc-js ends some calls
 * itself, below the interceptors (a request over
 * `grpc.max_receive_message_length`, a reply over the send limit, a bad
 * `grpc-timeout`): the interceptors then see only the call's end, as if the
 * client had cancelled, while the client got `RESOURCE_EXHAUSTED` or
 * `INTERNAL`. The HTTP/2 stream still holds what went out.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import type { Http2StreamLike } from "./call_writer.ts";

/**
 * The `grpc-status` code a call's HTTP/2 `stream` sent (in its trailers, or
 * in a trailers-only response's headers), or `undefined` when it sent none
 * (the client went away first) or the stream is not known.
 *
 * @example
 * ```ts ignore
 * sentStatus(http2StreamOf(call)) ?? grpc.status.CANCELLED;
 * ```
 */
export function sentStatus(
  stream: Http2StreamLike | undefined,
): number | undefined {
  const value = stream?.sentTrailers?.["grpc-status"] ??
    stream?.sentHeaders?.["grpc-status"];
  if (value === undefined) return undefined;
  const code = Number(value);
  // A status grpc-js sent is one of its own: anything else counts as UNKNOWN.
  return Number.isInteger(code) ? code : grpc.status.UNKNOWN;
}
