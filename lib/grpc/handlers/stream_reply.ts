/**
 * `SayHelloStreamReply`: a hub subscription to the clock's ticks, each
 * written as `hello NAME, it's TIME` with its cursor.
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";
import type { GreeterContext } from "../service_context.ts";
import { TICK_TOPIC } from "../../bus/hub_items.ts";
import type { HelloReply, HelloRequest } from "../../wire/proto.ts";
import { readAll } from "../subscription_call.ts";
import { namePart, tickReply } from "../tick_reply.ts";

/**
 * The `SayHelloStreamReply` handler.
 *
 * @example
 * ```ts ignore
 * const implementation = { SayHelloStreamReply: sayHelloStreamReply(context) };
 * ```
 */
export function sayHelloStreamReply(
  context: GreeterContext,
): grpc.handleServerStreamingCall<HelloRequest, HelloReply> {
  const { subscriptions, encoded, delivered } = context;
  const serialize = context.methods.SayHelloStreamReply.responseSerialize;
  return (call) =>
    subscriptions.serve<HelloReply>(call, {
      name: call.request.name,
      subscribe: () => ({ topics: [TICK_TOPIC] }),
      serialize,
      body: async ({ name, readable }, writer, signal) => {
        const prefix = namePart(name);
        await readAll(readable, signal, (item) => {
          // This seed message has no room for gaps or heartbeats.
          if (item.kind !== "event") return undefined;
          delivered(item.time);
          return writer.write(tickReply(prefix, encoded.tick(item)), signal);
        });
        if (!call.cancelled) call.end();
      },
    });
}
