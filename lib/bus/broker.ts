/**
 * Where the hub's events come from. A broker orders published events into
 * one sequence (its `epoch`, then `seq` 1, 2, 3…), stamps their publish time,
 * and hands every event, in order, to each attached listener. The hub fans
 * them out to its local subscribers and keeps the recent ones for replay.
 *
 * {@linkcode MemoryBroker} is the embedded default: one process, one
 * sequence, a new epoch per start. A broker backed by an external log (e.g. a
 * Redis stream or a NATS JetStream subject) implements the same interface so
 * that several server instances share one sequence: `publish` appends to the
 * shared log, and `listen` feeds every instance's hub from it. The service
 * and the client do not change.
 *
 * @module
 */

/** One published event. Shared by every subscriber, never copied. */
export interface BusEvent<T> {
  /** Discriminates events from the hub's other stream items. */
  readonly kind: "event";
  /** Position in the broker's sequence: 1, 2, 3… in publish order. */
  readonly seq: number;
  /** When it was published, in milliseconds since the Unix epoch. */
  readonly time: number;
  /** What it is about; subscribers filter on it. */
  readonly topic: string;
  /** What was published. */
  readonly data: T;
  /**
   * Set when a shared log held something this instance refuses to pass on
   * (why, in a word: see {@linkcode EventRefusal}): then `data` is empty,
   * and each subscriber it would have reached is handed a gap (reason
   * `rejected`) in its place, never the event.
   */
  readonly rejected?: string;
  /**
   * Set on what `publish` resolves to when the event was published before
   * with the same id, within the duplicate window: no new event.
   */
  readonly duplicate?: true;
}

/** Why an event read from a shared log is refused, and what was wrong. */
export interface EventRefusal {
  /**
   * In a word, for metrics: `size` (over this instance's limit), `topic`
   * (one `Publish` refuses), `tick` (a tick with a payload), `presence` (a
   * `$presence` payload that is not a join or leave), `subject` (not on
   * the stream's events subject).
   */
  readonly reason: string;
  /** What was wrong, for a person (escaped). */
  readonly detail: string;
}

/** What an event stream holds now (the hub's window, or a shared log). */
export interface StreamState {
  /** Names the sequence. */
  readonly epoch: string;
  /** Where the events are held: `memory` (the hub's window) or the shared log's engine (`nats`). */
  readonly store: string;
  /** The oldest event held; 0 when none is. */
  readonly firstSeq: number;
  /** The newest event published; 0 before any. */
  readonly lastSeq: number;
  /** Events held. */
  readonly events: number;
  /** Their size in bytes, as the store counts them. */
  readonly bytes: number;
  /** When the oldest held event was published (ms since the Unix epoch); 0 when none is. */
  readonly firstTimeMs: number;
  /** When the newest held event was published; 0 when none is. */
  readonly lastTimeMs: number;
}

/** What a shared log holds now, as its engine says ({@linkcode Broker.state}). */
export type LogState = Omit<StreamState, "epoch">;

/** Orders, stamps and distributes events. */
export interface Broker<T> {
  /** Names the sequence; a cursor from another epoch cannot be resumed. */
  readonly epoch: string;
  /** Sequence number of the last event published (0 before any). */
  readonly seq: number;
  /**
   * The newest seq known to exist in the sequence, which listeners may not
   * have been handed yet (a shared log read with some lag). Default: `seq`.
   * A cursor up to here is not ahead of the sequence: it is waited for.
   */
  readonly head?: number;
  /**
   * Appends an event to the sequence and resolves to it once every listener
   * was handed it (or, for a shared log, once the log acknowledged it).
   * Events published with the same `options.id` within the broker's
   * duplicate window are one event: the later publishes resolve to the
   * first one's seq, and hand nothing to listeners.
   */
  publish(
    topic: string,
    data: T,
    options?: PublishOptions,
  ): Promise<BusEvent<T>>;
  /**
   * Calls `listener` with every event from now on, in sequence order, each
   * at most once; returns the function that detaches it. A shared log may
   * skip seqs it no longer holds: listeners see the jump.
   */
  listen(listener: (event: BusEvent<T>) => void): () => void;
  /**
   * Calls `listener` when the sequence itself changes (a new epoch) or the
   * broker loses or regains its engine; returns the function that detaches
   * it. Absent on brokers where neither can happen.
   */
  watch?(listener: (change: BrokerChange) => void): () => void;
  /**
   * Resolves once the first listener was handed what the sequence held at
   * start (a shared log reads its recent past back). Absent: nothing to read.
   */
  readonly ready?: Promise<void>;
  /**
   * Why the sequence cannot be used yet (its engine not reached since the
   * start), or `undefined` once it can: the hub refuses subscriptions
   * meanwhile, and the server listens without waiting for `ready`.
   */
  readonly pending?: string;
  /**
   * The oldest seq the shared log still holds, as last seen: a cursor from
   * there on can be resumed through {@linkcode Broker.replay} even when the
   * hub's own window no longer holds it.
   */
  readonly first?: number;
  /**
   * Reads the stored events after `after` through `through`, in order, from
   * the shared log (ending early at whatever it no longer holds); aborting
   * `signal` stops it. Absent on a broker with no log of its own.
   */
  replay?(
    after: number,
    through: number,
    signal: AbortSignal,
  ): AsyncIterable<BusEvent<T>>;
  /**
   * True when other instances share this sequence: their subscribers are
   * listed through {@linkcode Broker.directory}, their subscription ids must
   * not collide with this one's, and their ticks are one per interval.
   */
  readonly shared?: boolean;
  /**
   * Lists entries (subscriptions) of every instance on this sequence:
   * `local` answers for this one, for every instance that asks. Absent on a
   * broker that is one process.
   */
  directory?<E extends DirectoryEntry>(
    local: (
      query: DirectoryQuery,
    ) => DirectoryPage<E> | Promise<DirectoryPage<E>>,
    options?: DirectoryOptions<E>,
  ): Directory<E>;
  /**
   * What the shared log holds now, asked of its engine. Absent on a broker
   * with no log of its own (the hub's window is then the store).
   */
  state?(): Promise<LogState>;
  /**
   * The seq of the first event the shared log holds that was published at
   * or after `timeMs`; undefined when none is yet. Absent on a broker with
   * no log of its own.
   */
  seqAt?(timeMs: number): Promise<number | undefined>;
  /** A shared log's engine, for metrics; absent on an embedded broker. */
  readonly engine?: EngineStats;
  /**
   * Calls `listener` with the seconds each publish the engine acknowledged
   * took, from the request to the acknowledgement; returns the function
   * that detaches it. Absent on a broker with no engine.
   */
  onAcknowledged?(listener: (seconds: number) => void): () => void;
}

/** What a broker on an external engine reports about it. */
export interface EngineStats {
  /** Whether the engine is reachable now. */
  readonly up: boolean;
  /** Events the engine holds that this instance has not read yet. */
  readonly lag: number;
  /** Times the connection to the engine was regained. */
  readonly reconnects: number;
  /** Publishes the engine acknowledged. */
  readonly published: number;
  /** Other instances' listing answers left out, by cause (untrusted input). */
  readonly refusedAnswers: Readonly<Record<string, number>>;
  /** Events read from the log and refused, by reason (untrusted input). */
  readonly rejectedEvents: Readonly<Record<string, number>>;
}

/** What {@linkcode Directory.list} asks each instance. */
export interface DirectoryQuery {
  /** Only entries of this topic filter; all when absent. */
  topic?: string;
  /** Only entries with a greater id (a page's continuation). */
  after: number;
  /** At most this many entries from each instance. */
  limit: number;
}

/** An entry a directory lists: anything with an id unique across instances. */
export interface DirectoryEntry {
  /** Orders the listing and continues it. */
  readonly id: number;
}

/** One instance's answer, or the merged answer of all. */
export interface DirectoryPage<E extends DirectoryEntry> {
  /** Entries in id order, after the query's `after`. */
  entries: E[];
  /** How many entries match in all (not just after `after`). */
  total: number;
  /** Whether entries beyond these match. */
  more: boolean;
}

/**
 * How a directory reads other instances' answers, which are untrusted
 * input: each entry through `entry`, each answer it cannot use told to
 * `onRefused`.
 */
export interface DirectoryOptions<E extends DirectoryEntry> {
  /**
   * Checks one entry of another instance's answer and returns it; throws,
   * saying what is wrong, on one it does not take (then the whole answer
   * is left out). Default: any entry with a safe integer id.
   */
  entry?: (value: unknown) => E;
  /** Told of each answer left out of a listing: why (a short cause) and what was wrong. */
  onRefused?: (cause: string, detail: string) => void;
}

/** Lists entries of every instance sharing a sequence. */
export interface Directory<E extends DirectoryEntry> {
  /** Asks every instance and merges their answers in id order. */
  list(query: DirectoryQuery): Promise<DirectoryPage<E>>;
  /** Stops answering other instances. */
  close(): void;
}

/** Options of {@linkcode Broker.publish}. */
export interface PublishOptions {
  /** Deduplication key: one event per key within the broker's window. */
  id?: string;
}

/**
 * What a broker tells its watchers: the sequence was replaced (`reset`: a new
 * epoch, listeners continue after `seq`), or its engine was lost or regained
 * (`engine`).
 */
export type BrokerChange =
  | { kind: "reset"; epoch: string; seq: number; reason: string }
  | { kind: "engine"; up: boolean; reason: string };

/** Default duplicate window of publishes with an id (ms): JetStream's default too. */
export const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;

/** Most publish ids {@linkcode MemoryBroker} remembers at once (the oldest forgotten first). */
export const MAX_REMEMBERED_IDS = 100_000;

/** Options of {@linkcode MemoryBroker}. */
export interface MemoryBrokerOptions {
  /** The sequence's name. Default: 16 random hex digits. */
  epoch?: string;
  /** Time source for publish times. Default `Date.now`. */
  now?: () => number;
  /** How long (ms) a publish id is remembered. Default {@linkcode DEFAULT_DUPLICATE_WINDOW_MS}. */
  duplicateWindowMs?: number;
}

/** A new random epoch: 16 hex digits (64 bits). */
export function randomEpoch(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The in-process broker: sequences events as they are published and hands
 * them to listeners synchronously. An event published by a listener while
 * another is being handed out is queued, so every listener still sees the
 * sequence in order. Publishes with an id it has seen within its duplicate
 * window are one event, as JetStream's `Nats-Msg-Id` makes them: a reply
 * lost on the way (the connection cut after the event was stored) must not
 * make the client's retry a second event. It remembers at most
 * {@linkcode MAX_REMEMBERED_IDS} ids, and each only for the window.
 *
 * @example
 * ```ts
 * import { MemoryBroker } from "./broker.ts";
 * const broker = new MemoryBroker<string>();
 * const seen: number[] = [];
 * broker.listen((event) => seen.push(event.seq));
 * await broker.publish("news", "hello");
 * seen; // [1]
 * ```
 */
export class MemoryBroker<T> implements Broker<T> {
  /** Names this sequence. */
  readonly epoch: string;
  #now: () => number;
  #seq = 0;
  #listeners = new Set<(event: BusEvent<T>) => void>();
  #queue: BusEvent<T>[] = [];
  #delivering = false;
  #windowMs: number;
  /** Ids published within the window, oldest first: the event each made. */
  #ids = new Map<string, { seq: number; time: number; topic: string }>();

  /** Creates a broker with a fresh epoch. */
  constructor(options: MemoryBrokerOptions = {}) {
    this.epoch = options.epoch ?? randomEpoch();
    this.#now = options.now ?? Date.now;
    this.#windowMs = options.duplicateWindowMs ?? DEFAULT_DUPLICATE_WINDOW_MS;
  }

  /** Sequence number of the last event published. */
  get seq(): number {
    return this.#seq;
  }

  /**
   * Stamps the event and hands it to every listener before resolving. With
   * `options.id` seen within the window, resolves to the event that id made
   * (its seq, time and topic; this `data`) and hands nothing out.
   */
  publish(
    topic: string,
    data: T,
    options: PublishOptions = {},
  ): Promise<BusEvent<T>> {
    const now = this.#now();
    const { id } = options;
    if (id !== undefined) {
      this.#forget(now);
      const first = this.#ids.get(id);
      if (first) {
        return Promise.resolve({
          kind: "event",
          ...first,
          data,
          duplicate: true,
        });
      }
    }
    const event: BusEvent<T> = {
      kind: "event",
      seq: ++this.#seq,
      time: now,
      topic,
      data,
    };
    if (id !== undefined) {
      if (this.#ids.size >= MAX_REMEMBERED_IDS) {
        this.#ids.delete(this.#ids.keys().next().value!);
      }
      this.#ids.set(id, { seq: event.seq, time: now, topic });
    }
    this.#queue.push(event);
    if (!this.#delivering) this.#deliver();
    return Promise.resolve(event);
  }

  /** Adds a listener of every later event. */
  listen(listener: (event: BusEvent<T>) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Forgets the ids older than the window. */
  #forget(now: number): void {
    for (const [id, first] of this.#ids) {
      if (now - first.time < this.#windowMs) return;
      this.#ids.delete(id);
    }
  }

  #deliver(): void {
    this.#delivering = true;
    try {
      for (let event; (event = this.#queue.shift());) {
        for (const listener of this.#listeners) listener(event);
      }
    } finally {
      this.#delivering = false;
    }
  }
}

/**
 * Instances' (or workers') pages as one, in id order: at most `limit` entries, `more` when
 * any instance has entries beyond those. An instance that has more than it
 * sent bounds the page at its last entry, so that paging on from there
 * misses none of its entries.
 *
 * @example
 * ```ts
 * import { mergePages } from "./broker.ts";
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
  // Ids are unique across instances: one given twice was forged once.
  const all = pages.flatMap((page) => page.entries).filter((entry) =>
    entry.id <= cut
  ).sort((a, b) => a.id - b.id).filter((entry, i, sorted) =>
    i === 0 || entry.id !== sorted[i - 1].id
  );
  return {
    entries: all.slice(0, limit),
    total: pages.reduce((sum, page) => sum + page.total, 0),
    more: all.length > limit || pages.some((page) => page.more),
  };
}
