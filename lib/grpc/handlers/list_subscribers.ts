/**
 * `ListSubscribers`: presence, the live subscriptions (optionally of one
 * topic), with their total, one page at a time: read from the hub's
 * id-ordered index (a page costs its own length, not a scan of every
 * subscription), cut short before the message size limit, with a token for
 * the next page.
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";
import type { GreeterContext } from "../service_context.ts";
import type { Directory } from "../../bus/broker.ts";
import { Hub, validateFilterTopic } from "../../bus/hub.ts";
import { type SubscriptionInfo } from "../../bus/hub_items.ts";
import { InvalidArgumentError } from "../../errors.ts";
import type {
  ListSubscribersReply,
  ListSubscribersRequest,
  SubscriberMessage,
} from "../../wire/proto.ts";
import { toServiceError } from "../status.ts";

/** Most subscribers `ListSubscribers` returns in one reply. */
export const MAX_LIST_SUBSCRIBERS = 1000;

/** Subscribers per reply when the request does not say. */
export const DEFAULT_LIST_SUBSCRIBERS = 100;

/** Topics listed per subscriber; `topic_count` gives the number. */
export const LISTED_TOPICS = 8;

/** Kept free in a reply for its `total`, token and framing. */
const REPLY_MARGIN_BYTES = 256;

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

/** An upper bound of `message`'s encoded size inside the reply. */
function encodedBound(message: SubscriberMessage): number {
  // Varints of ids, times and counts (11 bytes each at most), tags and
  // lengths; strings at 3 UTF-8 bytes per UTF-16 unit at most.
  let bytes = 64 + 3 * message.name.length;
  for (const topic of message.topics) bytes += 3 + 3 * topic.length;
  return bytes;
}

/** The subscription id a page token continues after. */
function parsePageToken(token: string): number {
  if (token === "") return 0;
  const id = /^\d{1,16}$/.test(token) ? Number(token) : NaN;
  if (!Number.isSafeInteger(id)) {
    throw new InvalidArgumentError(
      `Invalid page token "${
        token.slice(0, 32)
      }": send the next_page_token of the previous reply, or none for the first page`,
    );
  }
  return id;
}

/**
 * One page of subscriptions for `request`, from `source` (this hub, or a
 * directory of every instance on a shared stream): at most `limit` (default
 * {@linkcode DEFAULT_LIST_SUBSCRIBERS}), and no more than fit in
 * `maxReplyBytes`; `next_page_token` is set when more follow. Throws
 * {@linkcode InvalidArgumentError} for a bad topic, limit or token.
 *
 * @example
 * ```ts ignore
 * await listSubscribersPage(hub, { topic: "", limit: 0, page_token: "" }, 64 * 1024);
 * ```
 */
export async function listSubscribersPage(
  source: Hub<Uint8Array> | Directory<SubscriptionInfo>,
  request: ListSubscribersRequest,
  maxReplyBytes: number,
): Promise<ListSubscribersReply> {
  const { topic, limit } = request;
  if (topic !== "") validateFilterTopic(topic);
  if (limit > MAX_LIST_SUBSCRIBERS) {
    throw new InvalidArgumentError(
      `Limit ${limit} is over ${MAX_LIST_SUBSCRIBERS}: ask for fewer`,
    );
  }
  const query = {
    topic: topic || undefined,
    after: parsePageToken(request.page_token ?? ""),
    limit: limit || DEFAULT_LIST_SUBSCRIBERS,
  };
  const page = source instanceof Hub
    ? source.page(query)
    : await source.list(query);
  const budget = maxReplyBytes - REPLY_MARGIN_BYTES;
  const subscribers: SubscriberMessage[] = [];
  let bytes = 0;
  for (const info of page.entries) {
    const message = subscriberMessage(info);
    const size = encodedBound(message);
    if (subscribers.length > 0 && bytes + size > budget) break;
    subscribers.push(message);
    bytes += size;
  }
  // More follow: say where to go on.
  const next = page.more || subscribers.length < page.entries.length
    ? String(subscribers.at(-1)!.subscription_id)
    : "";
  return { subscribers, total: page.total, next_page_token: next };
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
    listSubscribersPage(source, call.request, maxReplyBytes).then(
      (reply) => callback(null, reply),
      (error) => callback(toServiceError(error)),
    );
  };
}
