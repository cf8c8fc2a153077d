/**
 * `Subscribe`: the event bus on a call: a first message (where the stream
 * starts, whether it recovered), then events, gaps and heartbeats in
 * sequence order, and a goodbye when it ends.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import type { GreeterContext } from "../service_context.ts";
import { type Cursor, endedReason } from "../../bus/hub_items.ts";
import { InvalidArgumentError, SlowConsumerError } from "../../errors.ts";
import { toServiceError } from "../status.ts";
import { MAX_SEQ, parseSeq } from "../../bus/seq.ts";
import { goodbye } from "../goodbye.ts";
import { isRevocation } from "../call_signal.ts";
import type {
  CursorMessage,
  GreetingMessage,
  StartPositionMessage,
  SubscribeRequest,
} from "../../wire/proto.ts";
import type { StartPosition } from "../../bus/hub_items.ts";
import { readAll } from "../subscription_call.ts";

/**
 * The `SubscribeRequest.after` cursor, if one was sent. Its uint64 `seq`
 * arrives as a decimal string: parsed exactly, and refused past what the
 * hub can hold rather than rounded.
 */
function parseCursor(after?: CursorMessage | null): Cursor | undefined {
  if (!after) return undefined;
  const seq = parseSeq(after.seq);
  if (seq === undefined) {
    throw new InvalidArgumentError(
      `Cursor seq ${after.seq} is out of range: a seq is at most ${MAX_SEQ}; resume from a cursor the server sent`,
    );
  }
  return after.epoch === "" && seq === 0
    ? undefined
    : { epoch: after.epoch, seq };
}

/**
 * The `SubscribeRequest.start` position, if one was sent: `first`, `last`
 * (1 or more) or `time_ms`.
 */
function parseStart(
  start?: StartPositionMessage | null,
): StartPosition | undefined {
  switch (start?.position) {
    case undefined:
      return undefined;
    case "first":
      if (!start.first) {
        throw new InvalidArgumentError(
          "Start position first is false: set it to true, or send no start position to start live",
        );
      }
      return { first: true };
    case "last":
      if (!start.last || start.last < 1) {
        throw new InvalidArgumentError(
          `Start position last is ${start.last}: ask for 1 event or more`,
        );
      }
      return { last: start.last };
    case "time_ms": {
      const timeMs = Number(start.time_ms);
      if (!Number.isSafeInteger(timeMs)) {
        throw new InvalidArgumentError(
          `Start position time_ms ${start.time_ms} is out of range: send milliseconds since the Unix epoch`,
        );
      }
      return { timeMs };
    }
  }
}

/**
 * The `Subscribe` handler.
 *
 * @example
 * ```ts ignore
 * const implementation = { Subscribe: subscribe(context) };
 * ```
 */
export function subscribe(
  context: GreeterContext,
): grpc.handleServerStreamingCall<SubscribeRequest, GreetingMessage> {
  const {
    subscriptions,
    encoded,
    heartbeatIntervalMs,
    reconnectJitterMs,
    delivered,
  } = context;
  const serialize = context.methods.Subscribe.responseSerialize;
  return (call) => {
    const { request } = call;
    return subscriptions.serve<GreetingMessage>(call, {
      name: request.name,
      subscribe: async () => {
        const after = parseCursor(request.after);
        const start = parseStart(request.start);
        if (!start) return { topics: request.topics, after };
        if (after) {
          throw new InvalidArgumentError(
            "A subscription resumes after a cursor or starts at a position, not both: send after or start",
          );
        }
        const seq = await context.hub.startAfter(start, request.topics);
        return {
          topics: request.topics,
          after: { epoch: context.hub.epoch, seq },
          started: true,
        };
      },
      serialize,
      body: async (subscription, writer, signal) => {
        await writer.write({
          firstGreetingMessage: {
            subscription_id: subscription.id,
            cursor: subscription.cursor,
            recovered: subscription.recovered,
            reason: subscription.reason ?? "",
            heartbeat_interval_ms: heartbeatIntervalMs,
            head: subscription.head,
          },
        }, signal);
        await readAll(
          subscription.readable,
          signal,
          (item) => {
            if (item.kind === "event") delivered(item.time);
            return writer.write(encoded.greeting(item), signal);
          },
        );
        // The hub ended the stream: the server is draining, or the event
        // stream itself was replaced (a new epoch: no cursor of the old one
        // can be resumed, which the client hears when it comes back).
        await writer.write(
          goodbye(
            grpc.status.UNAVAILABLE,
            endedReason(subscription.cursor, context.hub.epoch),
            { reconnectJitterMs },
          ),
          signal,
        );
        call.end();
      },
      lastWord: (error) => {
        if (error instanceof SlowConsumerError) {
          // Queued without waiting: this reader is known to be slow.
          call.write(
            goodbye(grpc.status.RESOURCE_EXHAUSTED, error.message, {
              reconnectJitterMs,
            }),
          );
        } else if (isRevocation(error)) {
          // A reload revoked the token, or narrowed its grants: no
          // reconnecting with it.
          call.write(goodbye(toServiceError(error).code, error.message));
        }
      },
    });
  };
}
