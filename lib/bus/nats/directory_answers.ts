/**
 * What instances send each other for a listing, read as untrusted input:
 * anyone who may publish on the directory subject can ask or answer. A
 * query is bounded before it is answered; an answer is refused whole, with
 * its cause, unless it is a page this listing can use (ids in range, in
 * order and above the page token, no more entries than asked, a bounded
 * total, and entries its checker takes).
 *
 * @module
 */

import type {
  DirectoryEntry,
  DirectoryPage,
  DirectoryQuery,
} from "../broker.ts";
import { isInstanceId } from "./announcers.ts";

/** Most entries a listing asks each instance for. */
export const MAX_QUERY_LIMIT = 1_000;

/** Longest topic filter a query may carry (characters). */
const MAX_QUERY_TOPIC = 256;

/**
 * Largest total an instance may claim: the most subscriptions one
 * instance can hold (`--max-subscribers` is at most ten million).
 */
export const MAX_ANSWER_TOTAL = 10_000_000;

/** Why an answer was refused, for logs and metrics. */
export type RefusalCause =
  /** Not JSON, or not a page at all. */
  | "malformed"
  /** More entries than the listing asked for. */
  | "entries"
  /** An id out of range, out of order, or not above the page token. */
  | "id"
  /** An entry its checker refused (its fields). */
  | "entry"
  /** A total out of range. */
  | "total";

/** An answer refused: why, and what was wrong, for a person. */
export class RefusedAnswer extends Error {
  /** Why, for metrics. */
  readonly reason: RefusalCause;

  /** `message` says what was wrong with the answer. */
  constructor(reason: RefusalCause, message: string) {
    super(message);
    this.name = "RefusedAnswer";
    this.reason = reason;
  }
}

/** One instance's answer, checked. */
export interface Answer<E extends DirectoryEntry> {
  /** The answering instance's id (absent from instances before it was sent). */
  instance?: string;
  /** Its page. */
  page: DirectoryPage<E>;
}

/**
 * A query as asked by another instance: `after` a safe integer from 0,
 * `limit` from 1 to {@linkcode MAX_QUERY_LIMIT}, `topic` a short string or
 * absent. Throws a `RangeError` otherwise.
 *
 * @example
 * ```ts
 * import { readQuery } from "./directory_answers.ts";
 * readQuery({ after: 0, limit: 10 }); // { after: 0, limit: 10, topic: undefined }
 * ```
 */
export function readQuery(raw: unknown): DirectoryQuery {
  const query = raw as Partial<DirectoryQuery> | null;
  const { after, limit, topic } = query ?? {};
  if (
    typeof query !== "object" || query === null ||
    !isSafeCount(after) || !Number.isSafeInteger(limit) || limit! < 1 ||
    limit! > MAX_QUERY_LIMIT ||
    (topic !== undefined &&
      (typeof topic !== "string" || topic.length > MAX_QUERY_TOPIC))
  ) {
    throw new RangeError("Not a directory query");
  }
  return { after: after!, limit: limit!, topic };
}

/**
 * Another instance's answer to `query`, each entry through `entry` (which
 * throws on one it does not take); throws {@linkcode RefusedAnswer} on
 * anything this listing cannot use.
 *
 * @example
 * ```ts
 * import { readAnswer } from "./directory_answers.ts";
 * const instance = crypto.randomUUID();
 * readAnswer(
 *   { instance, entries: [{ id: 7 }], total: 1, more: false },
 *   { after: 0, limit: 10 },
 *   (value) => value as { id: number },
 * ).page.entries; // [{ id: 7 }]
 * ```
 */
export function readAnswer<E extends DirectoryEntry>(
  raw: unknown,
  query: DirectoryQuery,
  entry: (value: unknown) => E,
): Answer<E> {
  const answer = raw as Record<string, unknown> | null;
  if (
    typeof answer !== "object" || answer === null ||
    (answer.instance !== undefined && !isInstanceId(answer.instance)) ||
    !Array.isArray(answer.entries) ||
    typeof answer.more !== "boolean"
  ) {
    throw new RefusedAnswer(
      "malformed",
      "an answer that is not a page (instance, entries, total, more)",
    );
  }
  const raws = answer.entries as unknown[];
  if (raws.length > query.limit) {
    throw new RefusedAnswer(
      "entries",
      `${raws.length} entries where at most ${query.limit} were asked for`,
    );
  }
  let last = query.after;
  const entries = raws.map((value) => {
    const id = (value as { id?: unknown } | null)?.id;
    if (!Number.isSafeInteger(id) || (id as number) <= last) {
      throw new RefusedAnswer(
        "id",
        `entry id ${
          String(id).slice(0, 32)
        } is not a safe integer above ${last} (the page token, then the entry before)`,
      );
    }
    last = id as number;
    try {
      return entry(value);
    } catch (error) {
      throw new RefusedAnswer(
        "entry",
        `entry ${id}: ${(error as Error).message}`,
      );
    }
  });
  const { total } = answer;
  if (
    !isSafeCount(total) || total < entries.length || total > MAX_ANSWER_TOTAL
  ) {
    throw new RefusedAnswer(
      "total",
      `total ${
        String(total).slice(0, 32)
      } is not a count from ${entries.length} to ${MAX_ANSWER_TOTAL}`,
    );
  }
  return {
    instance: answer.instance as string | undefined,
    page: { entries, total, more: answer.more },
  };
}

/** Whether `n` is a safe integer from 0. */
function isSafeCount(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) >= 0;
}
