/**
 * `StreamInfo`: the event stream's state without subscribing (what
 * `nats stream info` answers): its epoch, the oldest and newest events
 * held, how many and how big, from the hub's window or the shared log.
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";
import type { GreeterContext } from "../service_context.ts";
import type { StreamInfoReply } from "../../wire/proto.ts";
import { toServiceError } from "../status.ts";

/**
 * The `StreamInfo` handler.
 *
 * @example
 * ```ts ignore
 * const implementation = { StreamInfo: streamInfo(context) };
 * ```
 */
export function streamInfo(
  context: GreeterContext,
): grpc.handleUnaryCall<Record<string, never>, StreamInfoReply> {
  const { hub } = context;
  return async (_call, callback) => {
    try {
      const state = await hub.state();
      callback(null, {
        epoch: state.epoch,
        store: state.store,
        first_seq: state.firstSeq,
        last_seq: state.lastSeq,
        events: state.events,
        bytes: state.bytes,
        first_time_ms: state.firstTimeMs,
        last_time_ms: state.lastTimeMs,
      });
    } catch (error) {
      callback(toServiceError(error));
    }
  };
}
