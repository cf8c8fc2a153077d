/**
 * Listings across every instance on one stream, over core NATS: each
 * instance answers for itself on one subject, and a listing asks them all
 * and merges their pages in id order.
 *
 * @module
 */

import type { NatsConnection } from "@nats-io/nats-core";
import {
  type Directory,
  type DirectoryEntry,
  type DirectoryOptions,
  type DirectoryPage,
  type DirectoryQuery,
  mergePages,
} from "../broker.ts";
import { UnavailableError } from "../../errors.ts";
import { Announcers, MAX_ANNOUNCERS } from "./announcers.ts";
import { readAnswer, readQuery, RefusedAnswer } from "./directory_answers.ts";

/**
 * A listing waits at most this long (ms) for the instances it knows of: an
 * instance slower than that is left out of that listing.
 */
export const DIRECTORY_WAIT_MS = 2_000;

/** Each instance says it is alive this often (ms). */
const ALIVE_INTERVAL_MS = 1_000;

/** Options of {@linkcode natsDirectory}. */
export interface NatsDirectoryOptions<E extends DirectoryEntry>
  extends DirectoryOptions<E> {
  /** How long a listing waits for answers (ms). Default {@linkcode DIRECTORY_WAIT_MS}. */
  waitMs?: number;
}

/**
 * Answers queries on `subject` with `local`, and lists through every
 * instance that answers there; a listing that no instance answers (NATS
 * unreachable) rejects with {@linkcode UnavailableError}. What others send
 * is checked: a query that is not one gets no answer, an answer this
 * listing cannot use is left out (`options.onRefused` hears why), and an
 * announcer that did not answer is not waited for again for a while.
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
  local: (
    query: DirectoryQuery,
  ) => DirectoryPage<E> | Promise<DirectoryPage<E>>,
  options: NatsDirectoryOptions<E> = {},
): Directory<E> {
  const { waitMs = DIRECTORY_WAIT_MS } = options;
  const entry = options.entry ?? ((value: unknown) => value as E);
  // Who is there: every instance says so every second (and once when it
  // leaves), so a listing knows whose answers to wait for, however slow a
  // loaded machine makes them, and stops as soon as it has them all.
  const self = crypto.randomUUID();
  const announcers = new Announcers(self);
  const announce = (state: "here" | "gone") => {
    try {
      nc.publish(`${subject}.alive`, `${self} ${state}`);
    } catch {
      // Closed or reconnecting: the others stop waiting for us in 3 s.
    }
  };
  const alive = nc.subscribe(`${subject}.alive`, {
    callback: (error, message) => {
      // A newcomer hears from everyone at once, not within a second.
      if (!error && announcers.heard(message.string())) announce("here");
    },
  });
  announce("here");
  const beat = setInterval(() => announce("here"), ALIVE_INTERVAL_MS);
  const subscription = nc.subscribe(subject, {
    callback: (error, message) => {
      if (error) return;
      let query: DirectoryQuery;
      try {
        query = readQuery(message.json());
      } catch {
        return; // not a query: nothing to answer
      }
      // An answer over the server's max_payload could not be sent at all.
      const max = (nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD) -
        PAYLOAD_MARGIN_BYTES;
      const none: DirectoryPage<E> = { entries: [], total: 0, more: false };
      Promise.resolve().then(() => local(query)).catch(() => none).then(
        (page) => message.respond(fitPage({ instance: self, ...page }, max)),
      ).catch(() => {}); // closed meanwhile: nothing to answer on
    },
  });
  return {
    async list(query) {
      const waiting = announcers.expected();
      const answered = new Set<string>();
      const pages: DirectoryPage<E>[] = [];
      try {
        const answers = await nc.requestMany(subject, JSON.stringify(query), {
          strategy: "timer",
          maxWait: waitMs,
        });
        let read = 0;
        for await (const message of answers) {
          // An instance's one page each, from at most as many instances as
          // can be known: a flood of answers is not read on.
          if (++read > MAX_ANNOUNCERS + 1) break;
          let answer;
          try {
            answer = readAnswer(message.json(), query, entry);
          } catch (error) {
            options.onRefused?.(
              error instanceof RefusedAnswer ? error.reason : "malformed",
              error instanceof RefusedAnswer
                ? error.message
                : "an answer that is not JSON",
            );
            continue;
          }
          const { instance } = answer;
          if (instance !== undefined) {
            if (answered.has(instance)) continue;
            answered.add(instance);
            announcers.answered(instance);
            waiting.delete(instance);
          }
          pages.push(answer.page);
          if (waiting.size === 0) break;
        }
      } catch {
        // NATS went away meanwhile: what came is what there is.
      }
      announcers.missed(waiting);
      // This instance answers too whenever NATS is reachable: no answer at
      // all is not an empty listing.
      if (pages.length === 0) {
        throw new UnavailableError(
          `Cannot list across instances: no instance answered on "${subject}" within ${waitMs} ms (is NATS reachable?); retry later`,
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
 * `page` (and the instance that answers it) as JSON of at most `maxBytes`
 * UTF-8 bytes: entries are left out
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
  page: DirectoryPage<E> & { instance?: string },
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
