/**
 * Presence, one page at a time, whatever carries it: the live
 * subscriptions (optionally of one topic) read from the hub's id-ordered
 * index, or from a directory of every instance on a shared stream (a page
 * costs its own length, not a scan of every subscription), cut short before
 * a reply's size limit, with a token for the next page.
 *
 * @module
 */

import type { Directory } from "./broker.ts";
import { Hub, validateFilterTopic } from "./hub.ts";
import type { SubscriptionInfo } from "./hub_items.ts";
import { InvalidArgumentError } from "../errors.ts";
import { quote } from "../escape.ts";

/** Most subscribers one page holds. */
export const MAX_LIST_SUBSCRIBERS = 1000;

/** Subscribers per page when the request does not say. */
export const DEFAULT_LIST_SUBSCRIBERS = 100;

/** Topics listed per subscriber; a count gives the number. */
export const LISTED_TOPICS = 8;

/** Kept free in a reply for its total, token and framing. */
const REPLY_MARGIN_BYTES = 256;

/** What a page is asked for. */
export interface ListingQuery {
  /** Only those receiving this topic; "" for all. */
  topic: string;
  /** Most entries: 1 to {@linkcode MAX_LIST_SUBSCRIBERS}; 0 means the default. */
  limit: number;
  /** Where the previous page stopped; "" for the first. */
  pageToken: string;
}

/** One page of a listing. */
export interface ListingPage {
  /** The subscriptions, oldest first. */
  entries: SubscriptionInfo[];
  /** How many there are in all. */
  total: number;
  /** Where the next page starts; "" on the last one. */
  nextPageToken: string;
}

/**
 * An upper bound of what `info` weighs in a binary reply (its first
 * {@linkcode LISTED_TOPICS} topics): varints of ids, times and counts (11
 * bytes each at most), tags and lengths; strings at 3 UTF-8 bytes per UTF-16
 * unit at most.
 */
function encodedBound(info: SubscriptionInfo): number {
  let bytes = 64 + 3 * info.name.length;
  for (const topic of info.topics.slice(0, LISTED_TOPICS)) {
    bytes += 3 + 3 * topic.length;
  }
  return bytes;
}

/** The subscription id a page token continues after. */
function parsePageToken(token: string): number {
  if (token === "") return 0;
  const id = /^\d{1,16}$/.test(token) ? Number(token) : NaN;
  if (!Number.isSafeInteger(id)) {
    throw new InvalidArgumentError(
      `Invalid page token ${
        quote(token.slice(0, 32))
      }: send the next_page_token of the previous reply, or none for the first page`,
    );
  }
  return id;
}

/**
 * One page of subscriptions for `query`, from `source` (this hub, or a
 * directory of every instance on a shared stream): at most `limit` (default
 * {@linkcode DEFAULT_LIST_SUBSCRIBERS}), and no more than fit in a binary
 * reply of `maxReplyBytes` (a JSON one may weigh twice that: halve it);
 * `nextPageToken` is set when more follow. Throws
 * {@linkcode InvalidArgumentError} for a bad topic, limit or token.
 *
 * @example
 * ```ts
 * import { listingPage } from "./listing.ts";
 * import { Hub } from "./hub.ts";
 * import { MemoryBroker } from "./broker.ts";
 * const hub = new Hub(new MemoryBroker<string>());
 * hub.subscribe("ann");
 * (await listingPage(hub, { topic: "", limit: 0, pageToken: "" }, 65536)).total; // 1
 * hub.close();
 * ```
 */
export async function listingPage<T>(
  source: Hub<T> | Directory<SubscriptionInfo>,
  query: ListingQuery,
  maxReplyBytes: number,
): Promise<ListingPage> {
  const { topic, limit } = query;
  if (topic !== "") validateFilterTopic(topic);
  if (limit > MAX_LIST_SUBSCRIBERS) {
    throw new InvalidArgumentError(
      `Limit ${limit} is over ${MAX_LIST_SUBSCRIBERS}: ask for fewer`,
    );
  }
  const asked = {
    topic: topic || undefined,
    after: parsePageToken(query.pageToken),
    limit: limit || DEFAULT_LIST_SUBSCRIBERS,
  };
  const page = source instanceof Hub
    ? source.page(asked)
    : await source.list(asked);
  const budget = maxReplyBytes - REPLY_MARGIN_BYTES;
  const entries: SubscriptionInfo[] = [];
  let bytes = 0;
  for (const info of page.entries) {
    const size = encodedBound(info);
    if (entries.length > 0 && bytes + size > budget) break;
    entries.push(info);
    bytes += size;
  }
  // More follow: say where to go on.
  const nextPageToken = page.more || entries.length < page.entries.length
    ? String(entries.at(-1)!.id)
    : "";
  return { entries, total: page.total, nextPageToken };
}
