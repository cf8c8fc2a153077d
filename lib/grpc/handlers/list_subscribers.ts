/**
 * `ListSubscribers`: presence, one page at a time
 * (`lib/bus/listing.ts`), as gRPC replies carry it.
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";
import type { GreeterContext } from "../service_context.ts";
import { LISTED_TOPICS, listingPage } from "../../bus/listing.ts";
import { type SubscriptionInfo } from "../../bus/hub_items.ts";
import type {
  ListSubscribersReply,
  ListSubscribersRequest,
  SubscriberMessage,
} from "../../wire/proto.ts";
import { toServiceError } from "../status.ts";

/** A subscription as a listing shows it (no peer: not the caller's business). */
export function subscriberMessage(info: SubscriptionInfo): SubscriberMessage {
  return {
    subscription_id: info.id,
    name: info.name,
    since_ms: info.since,
    topics: info.topics.slice(0, LISTED_TOPICS),
    delivered: info.delivered,
    dropped: info.dropped,
    topic_count: info.topics.length,
  };
}

/** What grpc-js clients take by default, when the server sets no limit. */
const DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024;

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
  const maxReplyBytes = Math.min(
    context.writer?.maxMessageBytes ?? Infinity,
    DEFAULT_MAX_REPLY_BYTES,
  );
  const source = context.directory ?? hub;
  return (call, callback) => {
    const { topic, limit, page_token: pageToken } = call.request;
    listingPage(source, { topic, limit, pageToken }, maxReplyBytes).then(
      (page) =>
        callback(null, {
          subscribers: page.entries.map(subscriberMessage),
          total: page.total,
          next_page_token: page.nextPageToken,
        }),
      (error) => callback(toServiceError(error)),
    );
  };
}
