/**
 * `Publish`: a payload on a topic to every subscriber of it; replies with
 * the event's cursor.
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";
import type { GreeterContext } from "../service_context.ts";
import { TICK_TOPIC } from "../../bus/hub_items.ts";
import { validateTopic } from "../../bus/hub.ts";
import { InvalidArgumentError } from "../../errors.ts";
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
      const topic = validateTopic(call.request.topic); // never a "$" one
      if (topic === TICK_TOPIC) {
        throw new InvalidArgumentError(
          `Cannot publish on "${TICK_TOPIC}": it is the server's clock; publish on another topic`,
        );
      }
      const { payload } = call.request;
      if (payload.length > maxPublishBytes) {
        throw new InvalidArgumentError(
          `Payload is ${payload.length} bytes: at most ${maxPublishBytes} are accepted; publish a reference to large data instead`,
        );
      }
      // A copy: protobufjs decodes bytes as a view into the whole request
      // buffer, which the replay window would keep alive uncharged.
      const event = await hub.publish(topic, new Uint8Array(payload));
      callback(null, {
        cursor: { epoch: hub.epoch, seq: event.seq },
        time_ms: event.time,
      });
    } catch (error) {
      callback(toServiceError(error));
    }
  };
}
