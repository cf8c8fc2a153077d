/**
 * `Publish`: a payload on a topic to every subscriber of it; replies with
 * the event's cursor. With an idempotency key, publishes with the same key
 * within the broker's duplicate window are one event (a retry after an
 * `UNAVAILABLE` that was stored after all is answered with the first one's
 * cursor).
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";
import type { GreeterContext } from "../service_context.ts";
import { publishId, validatePublish } from "../../bus/hub.ts";
import type { PublishReply, PublishRequest } from "../../wire/proto.ts";
import { toServiceError } from "../status.ts";

/**
 * The `Publish` handler.
 *
 * @example
 * ```ts ignore
 * const implementation = { Publish: publish(context) };
 * ```
 */
export function publish(
  context: GreeterContext,
): grpc.handleUnaryCall<PublishRequest, PublishReply> {
  const { hub, maxPublishBytes } = context;
  return async (call, callback) => {
    try {
      const { topic, payload } = call.request;
      validatePublish(topic, payload.length, maxPublishBytes);
      // A copy: protobufjs decodes bytes as a view into the whole request
      // buffer, which the replay window would keep alive uncharged.
      const event = await hub.publish(topic, new Uint8Array(payload), {
        id: publishId(call.request.idempotency_key),
      });
      callback(null, {
        cursor: { epoch: hub.epoch, seq: event.seq },
        time_ms: event.time,
      });
    } catch (error) {
      callback(toServiceError(error));
    }
  };
}
