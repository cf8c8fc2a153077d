/**
 * Listings across every instance on one stream, over core NATS: each
 * instance answers for itself on one subject, and a listing asks them all
 * and merges their pages in id order.
 *
 * @module
 */

import type { NatsConnection } from "@nats-io/nats-core";
import type {
  Directory,
  DirectoryEntry,
  DirectoryPage,
  DirectoryQuery,
} from "./broker.ts";
import { UnavailableError } from "../errors.ts";

/**
 * A directory listing waits this long (ms) for the first instance's answer,
 * and then until no other answer came for {@linkcode DIRECTORY_STALL_MS}: a
 * dead instance is never waited for, so it drops out of listings at once.
 */
const DIRECTORY_WAIT_MS = 2_000;

/** See {@linkcode DIRECTORY_WAIT_MS}. */
const DIRECTORY_STALL_MS = 250;

/**
 * Answers queries on `subject` with `local`, and lists through every
 * instance that answers there; a listing that no instance answers (NATS
 * unreachable) rejects with {@linkcode UnavailableError}.
 *
 * @example
 * ```ts ignore
 * const directory = natsDirectory(nc, "greeter.directory", (query) => hub.page(query));
 * const page = await directory.list({ after: 0, limit: 100 });
 * directory.close();
 * ```
 */
export function natsDirectory<E extends DirectoryEntry>(
  nc: NatsConnection,
  subject: string,
  local: (query: DirectoryQuery) => DirectoryPage<E>,
): Directory<E> {
  const subscription = nc.subscribe(subject, {
    callback: (error, message) => {
      if (error) return;
      try {
        // An answer over the server's max_payload could not be sent at all.
        const max = (nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD) -
          PAYLOAD_MARGIN_BYTES;
        message.respond(fitPage(local(message.json<DirectoryQuery>()), max));
      } catch {
        message.respond(JSON.stringify({ entries: [], total: 0, more: false }));
      }
    },
  });
  return {
    async list(query) {
      const answers = await nc.requestMany(subject, JSON.stringify(query), {
        strategy: "stall",
        stall: DIRECTORY_STALL_MS,
        maxWait: DIRECTORY_WAIT_MS,
      });
      const pages: DirectoryPage<E>[] = [];
      for await (const answer of answers) {
        try {
          pages.push(answer.json<DirectoryPage<E>>());
        } catch {
          // An answer that is not one: that instance is left out.
        }
      }
      // This instance answers too whenever NATS is reachable: no answer at
      // all is not an empty listing.
      if (pages.length === 0) {
        throw new UnavailableError(
          `Cannot list across instances: no instance answered on "${subject}" within ${DIRECTORY_WAIT_MS} ms (is NATS reachable?); retry later`,
        );
      }
      return mergePages(pages, query.limit);
    },
    close: () => subscription.unsubscribe(),
  };
}

/** nats-server's default largest message (bytes), when the server did not say. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/** Room left in a message for what NATS adds around an answer (bytes). */
const PAYLOAD_MARGIN_BYTES = 1024;

/**
 * `page` as JSON of at most `maxBytes` UTF-8 bytes: entries are left out
 * from its end (and `more` set, so the asker pages on) until it fits; the
 * first entry is always kept.
 *
 * @example
 * ```ts
 * import { fitPage } from "./nats_directory.ts";
 * fitPage({ entries: [{ id: 1 }, { id: 2 }], total: 2, more: false }, 40);
 * // '{"entries":[{"id":1}],"total":2,"more":true}'
 * ```
 */
export function fitPage<E extends DirectoryEntry>(
  page: DirectoryPage<E>,
  maxBytes: number,
): string {
  const encoder = new TextEncoder();
  let json = JSON.stringify(page);
  let size = encoder.encode(json).length;
  let kept = page.entries.length;
  while (size > maxBytes && kept > 1) {
    kept = Math.max(1, Math.min(kept - 1, Math.floor(kept * maxBytes / size)));
    json = JSON.stringify({
      ...page,
      entries: page.entries.slice(0, kept),
      more: true,
    });
    size = encoder.encode(json).length;
  }
  return json;
}

/**
 * Instances' pages as one, in id order: at most `limit` entries, `more` when
 * any instance has entries beyond those. An instance that has more than it
 * sent bounds the page at its last entry, so that paging on from there
 * misses none of its entries.
 *
 * @example
 * ```ts
 * import { mergePages } from "./nats_directory.ts";
 * mergePages([{ entries: [{ id: 2 }], total: 1, more: false }, { entries: [{ id: 1 }], total: 1, more: false }], 1);
 * // { entries: [{ id: 1 }], total: 2, more: true }
 * ```
 */
export function mergePages<E extends DirectoryEntry>(
  pages: DirectoryPage<E>[],
  limit: number,
): DirectoryPage<E> {
  let cut = Infinity;
  for (const page of pages) {
    const last = page.entries.at(-1);
    if (page.more && last && last.id < cut) cut = last.id;
  }
  const all = pages.flatMap((page) => page.entries).filter((entry) =>
    entry.id <= cut
  ).sort((a, b) => a.id - b.id);
  return {
    entries: all.slice(0, limit),
    total: pages.reduce((sum, page) => sum + page.total, 0),
    more: all.length > limit || pages.some((page) => page.more),
  };
}
