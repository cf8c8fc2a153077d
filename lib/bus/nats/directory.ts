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
} from "../broker.ts";
import { UnavailableError } from "../../errors.ts";

/**
 * A listing waits at most this long (ms) for the instances it knows of: an
 * instance slower than that is left out of that listing.
 */
const DIRECTORY_WAIT_MS = 2_000;

/** Each instance says it is alive this often (ms). */
const ALIVE_INTERVAL_MS = 1_000;

/**
 * An instance not heard from for this long (ms) is no longer waited for: a
 * dead instance drops out of listings within 3 s (at once when it closed).
 */
const ALIVE_TIMEOUT_MS = 3_000;

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
  // Who is there: every instance says so every second (and once when it
  // leaves), so a listing knows how many answers to wait for, however slow
  // a loaded machine makes them, and stops as soon as it has them all.
  const self = crypto.randomUUID();
  const seen = new Map<string, number>();
  const announce = (state: "here" | "gone") => {
    try {
      nc.publish(`${subject}.alive`, `${self} ${state}`);
    } catch {
      // Closed or reconnecting: the others stop waiting for us in 3 s.
    }
  };
  const alive = nc.subscribe(`${subject}.alive`, {
    callback: (error, message) => {
      if (error) return;
      const [id, state] = message.string().split(" ");
      if (state === "gone") return void seen.delete(id);
      // A newcomer hears from everyone at once, not within a second.
      if (!seen.has(id) && id !== self) announce("here");
      seen.set(id, Date.now());
    },
  });
  announce("here");
  const beat = setInterval(() => announce("here"), ALIVE_INTERVAL_MS);
  const known = () => {
    const now = Date.now();
    let n = 0;
    for (const [id, at] of seen) {
      if (now - at <= ALIVE_TIMEOUT_MS) n++;
      else seen.delete(id);
    }
    return Math.max(n, 1); // this instance, even before its first beat
  };
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
        strategy: "count",
        maxMessages: known(),
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
    close() {
      clearInterval(beat);
      announce("gone");
      subscription.unsubscribe();
      alive.unsubscribe();
    },
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
 * import { fitPage } from "./directory.ts";
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
 * import { mergePages } from "./directory.ts";
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
