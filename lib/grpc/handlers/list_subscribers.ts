/**
 * `ListSubscribers`: presence, the live subscriptions (optionally of one
 * topic), with their total.
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";
import type { GreeterContext } from "../service_context.ts";
import { type SubscriptionInfo, validateFilterTopic } from "../../bus/hub.ts";
import { InvalidArgumentError } from "../../errors.ts";
import type { ListSubscribersReply, ListSubscribersRequest } from "../proto.ts";
import { toServiceError } from "../status.ts";

/** Most subscribers `ListSubscribers` returns in one reply. */
export const MAX_LIST_SUBSCRIBERS = 1000;
const DEFAULT_LIST_SUBSCRIBERS = 100;

/** A subscription as `ListSubscribers` shows it (no peer: it is not the caller's business). */
function subscriberMessage(info: SubscriptionInfo) {
  return {
    subscription_id: info.id,
    name: info.name,
    since_ms: info.since,
    topics: [...info.topics],
    delivered: info.delivered,
    dropped: info.dropped,
  };
}

/**
 * The `ListSubscribers` handler.
 *
 * @example
 * ```ts ignore
 * const implementation = { ListSubscribers: listSubscribers(context) };
 * ```
 */
export function listSubscribers(
  context: GreeterContext,
): grpc.handleUnaryCall<ListSubscribersRequest, ListSubscribersReply> {
  const { hub } = context;
  return (call, callback) => {
    try {
      const { topic, limit } = call.request;
      if (topic !== "") validateFilterTopic(topic);
      if (limit > MAX_LIST_SUBSCRIBERS) {
        throw new InvalidArgumentError(
          `Limit ${limit} is over ${MAX_LIST_SUBSCRIBERS}: ask for fewer`,
        );
      }
      const chosen = topic || undefined;
      callback(null, {
        subscribers: hub.subscriptions(
          chosen,
          limit || DEFAULT_LIST_SUBSCRIBERS,
        ).map(subscriberMessage),
        total: hub.count(chosen),
      });
    } catch (error) {
      callback(toServiceError(error));
    }
  };
}
