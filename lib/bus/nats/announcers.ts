/**
 * Who is there on a directory subject: the instances that say they are
 * alive, and which of them a listing waits for. Announcements are untrusted
 * (anyone who may publish there can send them): ids are checked, their
 * number is bounded, and one that was waited for and did not answer is not
 * waited for again for a while, so forged announcers cannot make every
 * listing wait its full time.
 *
 * @module
 */

/**
 * An instance not heard from for this long (ms) is no longer waited for: a
 * dead instance drops out of listings within 3 s (at once when it closed).
 */
export const ALIVE_TIMEOUT_MS = 3_000;

/**
 * An announcer that was waited for and did not answer is not waited for
 * again for this long (ms); it is listed meanwhile whenever it answers in
 * time. A real instance that was too slow once is waited for again after
 * this; a forged one costs one listing its full wait this often.
 */
export const SILENT_MS = 30_000;

/**
 * Most announcers tracked (and so waited for) at once: far more instances
 * than one stream serves; beyond, new ids are ignored until others expire.
 */
export const MAX_ANNOUNCERS = 256;

/** An instance's id, as `crypto.randomUUID()` makes them. */
const INSTANCE_ID =
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether `id` looks like an instance id (a UUID). */
export function isInstanceId(id: unknown): id is string {
  return typeof id === "string" && INSTANCE_ID.test(id);
}

/** Options of {@linkcode Announcers}. */
export interface AnnouncersOptions {
  /** Default `Date.now`. */
  now?: () => number;
  /** Default {@linkcode MAX_ANNOUNCERS}. */
  max?: number;
}

/**
 * The announcers heard on one directory subject, and whom a listing waits
 * for: every one alive and not silent, and this instance always.
 *
 * @example
 * ```ts
 * import { Announcers } from "./announcers.ts";
 * const self = crypto.randomUUID();
 * const other = crypto.randomUUID();
 * const announcers = new Announcers(self);
 * announcers.heard(`${other} here`); // true: a newcomer
 * announcers.expected().size; // 2
 * announcers.missed([other]);
 * announcers.expected().size; // 1: not waited for while silent
 * ```
 */
export class Announcers {
  #self: string;
  #now: () => number;
  #max: number;
  /** By id: when last heard, and until when it is not waited for. */
  #seen = new Map<string, { at: number; silentUntil: number }>();

  /** Tracks announcers other than `self` (this instance, always expected). */
  constructor(self: string, options: AnnouncersOptions = {}) {
    this.#self = self;
    this.#now = options.now ?? Date.now;
    this.#max = options.max ?? MAX_ANNOUNCERS;
  }

  /**
   * Takes one announcement, `ID here` or `ID gone`; returns true when it
   * names an announcer not known before (which should hear from us at
   * once). Anything else is ignored.
   */
  heard(text: string): boolean {
    const [id, state, ...rest] = text.split(" ");
    if (rest.length > 0 || !isInstanceId(id) || id === this.#self) {
      return false;
    }
    if (state === "gone") {
      this.#seen.delete(id);
      return false;
    }
    if (state !== "here") return false;
    const now = this.#now();
    const known = this.#seen.get(id);
    if (known) {
      known.at = now;
      return false;
    }
    if (this.#seen.size >= this.#max) this.#sweep(now);
    if (this.#seen.size >= this.#max) return false;
    this.#seen.set(id, { at: now, silentUntil: 0 });
    return true;
  }

  /** The ids a listing waits for: alive and not silent, and this instance. */
  expected(): Set<string> {
    const now = this.#now();
    this.#sweep(now);
    const ids = new Set([this.#self]);
    for (const [id, { silentUntil }] of this.#seen) {
      if (silentUntil <= now) ids.add(id);
    }
    return ids;
  }

  /** `id` answered a listing: waited for again from now on. */
  answered(id: string): void {
    const known = this.#seen.get(id);
    if (known) known.silentUntil = 0;
  }

  /** `ids` were waited for and did not answer: silent for {@linkcode SILENT_MS}. */
  missed(ids: Iterable<string>): void {
    const until = this.#now() + SILENT_MS;
    for (const id of ids) {
      const known = this.#seen.get(id);
      if (known) known.silentUntil = until;
    }
  }

  #sweep(now: number): void {
    for (const [id, { at }] of this.#seen) {
      if (now - at > ALIVE_TIMEOUT_MS) this.#seen.delete(id);
    }
  }
}
