/**
 * The broker of a hub in a worker: the process's sequence as the
 * `Sequencer` (`sequencer.ts`) writes it into the shared windows. Events
 * are read from those windows, once per worker, in order; publishes, reads
 * from a shared log and listings go through a {@linkcode SequencerLink}
 * to the thread that holds the real broker. The hub reads its replay
 * windows from the same memory ({@linkcode RelayBroker.windows}) and numbers
 * its subscriptions from the process's one counter.
 *
 * @module
 */

import type {
  Broker,
  BrokerChange,
  BusEvent,
  Directory,
  DirectoryEntry,
  DirectoryPage,
  DirectoryQuery,
  LogState,
  PublishOptions,
} from "./broker.ts";
import type { HubWindows } from "./hub.ts";
import { type SequenceMemory, SequenceState } from "./sequencer.ts";
import { SharedWindowReader } from "./shared_window.ts";

/** What a worker asks of the thread that holds the broker. */
export interface SequencerLink {
  /**
   * Publishes through the real broker; resolves to the event's seq and time
   * once sequenced, and whether it was one published before (its id).
   */
  publish(
    topic: string,
    data: Uint8Array,
    options?: PublishOptions,
  ): Promise<{ seq: number; time: number; duplicate?: true }>;
  /** Reads the shared log after `after` through `through` (when the broker has one). */
  replay?(
    after: number,
    through: number,
    signal: AbortSignal,
  ): AsyncIterable<BusEvent<Uint8Array>>;
  /** Lists the subscriptions of every worker (and instance, on a shared log). */
  list(query: DirectoryQuery): Promise<DirectoryPage<DirectoryEntry>>;
  /** What the shared log holds (when the broker has one). */
  state?(): Promise<LogState>;
  /** The seq of the shared log's first event since `timeMs` (when the broker has one). */
  seqAt?(timeMs: number): Promise<number | undefined>;
}

/** What a worker is told of the sequence when it starts. */
export interface RelayStart {
  /** The sequence's name. */
  epoch: string;
  /** The last seq taken into the windows: the worker's hub starts there. */
  seq: number;
  /** The windows and the state. */
  memory: SequenceMemory;
  /** Whether other instances share the sequence (a shared log). */
  shared: boolean;
  /** Whether resumes older than the windows can be read from the log. */
  replay: boolean;
  /** Why the sequence cannot be used yet (its engine not reached), if so. */
  pending?: string;
}

/**
 * A {@linkcode Broker} over the shared windows.
 *
 * @example
 * ```ts ignore
 * const broker = new RelayBroker(start, link);
 * const hub = new Hub(broker, { windows: (after) => broker.windows(after), nextId: () => broker.nextId() });
 * // when the sequencer says so:
 * broker.take(seq);
 * ```
 */
export class RelayBroker implements Broker<Uint8Array> {
  #link: SequencerLink;
  #epoch: string;
  #seq: number;
  #state: SequenceState;
  #ordinary!: SharedWindowReader;
  #own!: SharedWindowReader;
  #memory!: SequenceMemory;
  #decoded = new Map<number, BusEvent<Uint8Array>>();
  #listeners = new Set<(event: BusEvent<Uint8Array>) => void>();
  #watchers = new Set<(change: BrokerChange) => void>();
  #local?: (
    query: DirectoryQuery,
  ) => DirectoryPage<DirectoryEntry> | Promise<DirectoryPage<DirectoryEntry>>;
  #shared: boolean;
  #pending?: string;
  #taking = false;

  /** Reads the sequence from where `start` says. */
  constructor(start: RelayStart, link: SequencerLink) {
    this.#link = link;
    this.#epoch = start.epoch;
    this.#seq = start.seq;
    this.#shared = start.shared;
    this.#pending = start.pending;
    this.#state = new SequenceState(start.memory.state);
    this.#read(start.memory);
    if (!start.replay) this.replay = undefined;
    // A shared log's state and times are asked of the thread that holds it.
    if (start.replay && link.state && link.seqAt) {
      const { state, seqAt } = link;
      this.state = () => state.call(link);
      this.seqAt = (timeMs) => seqAt.call(link, timeMs);
    }
  }

  /** What the shared log holds, through the thread that holds it; absent without one. */
  state?: () => Promise<LogState>;

  /** The seq of the shared log's first event since `timeMs`; absent without one. */
  seqAt?: (timeMs: number) => Promise<number | undefined>;

  /** The sequence's name. */
  get epoch(): string {
    return this.#epoch;
  }

  /** The last seq handed to listeners. */
  get seq(): number {
    return this.#seq;
  }

  /** The newest seq known to exist (sequenced, maybe not taken in here yet). */
  get head(): number {
    return Math.max(this.#state.head, this.#seq);
  }

  /** The oldest seq the shared log holds, as last seen. */
  get first(): number | undefined {
    return this.#state.first || undefined;
  }

  /** Whether other instances share the sequence. */
  get shared(): boolean {
    return this.#shared;
  }

  /** Why the sequence cannot be used yet, as the sequencer last said. */
  get pending(): string | undefined {
    return this.#pending;
  }

  /** Publishes through the real broker; resolves once this worker has taken the event in. */
  async publish(
    topic: string,
    data: Uint8Array,
    options?: PublishOptions,
  ): Promise<BusEvent<Uint8Array>> {
    const { seq, time, duplicate } = await this.#link.publish(
      topic,
      data,
      options,
    );
    this.take();
    const event = this.#decoded.get(seq) ??
      { kind: "event", seq, time, topic, data };
    return duplicate ? { ...event, duplicate } : event;
  }

  /** Calls `listener` with every event taken in from now on. */
  listen(listener: (event: BusEvent<Uint8Array>) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Calls `listener` on each change the sequencer tells. */
  watch(listener: (change: BrokerChange) => void): () => void {
    this.#watchers.add(listener);
    return () => this.#watchers.delete(listener);
  }

  /** Reads the shared log through the thread that holds it. */
  replay?(
    after: number,
    through: number,
    signal: AbortSignal,
  ): AsyncIterable<BusEvent<Uint8Array>> {
    return this.#link.replay!(after, through, signal);
  }

  /**
   * Lists every worker's subscriptions (and every instance's, on a shared
   * log); `local` answers for this worker when the sequencer asks
   * ({@linkcode RelayBroker.page}).
   */
  directory<E extends DirectoryEntry>(
    local: (
      query: DirectoryQuery,
    ) => DirectoryPage<E> | Promise<DirectoryPage<E>>,
  ): Directory<E> {
    this.#local = local;
    return {
      list: (query) =>
        this.#link.list(query) as unknown as Promise<DirectoryPage<E>>,
      close: () => {
        this.#local = undefined;
      },
    };
  }

  /** This worker's page of a listing. */
  async page(query: DirectoryQuery): Promise<DirectoryPage<DirectoryEntry>> {
    return await this.#local?.(query) ?? { entries: [], total: 0, more: false };
  }

  /** The hub's replay windows, showing events up to `after` until it takes more in. */
  windows(after: number): HubWindows<Uint8Array> {
    const memory = this.#memory;
    const decoded = this.#decoded;
    return {
      ordinary: new SharedWindowReader(memory.ordinary, {
        through: after,
        decoded,
      }),
      own: new SharedWindowReader(memory.own, { through: after, decoded }),
    };
  }

  /** A subscription id no hub of the process has used. */
  nextId(): number {
    return this.#state.nextId();
  }

  /**
   * Takes in every event the windows hold after the last one taken, in
   * order, handing each to the listeners (the hub). Called when the
   * sequencer says events are there; one a publish waits for is taken in
   * before it resolves.
   */
  take(): void {
    if (this.#taking) return; // a listener published: the loop goes on
    this.#taking = true;
    try {
      for (;;) {
        // The own window first: the sequencer appends in seq order, so an
        // ordinary event older than the own event found is already in its
        // window when it is read after. Read the other way round, an
        // ordinary event appended between the reads was passed over, and
        // the hub told its subscribers of a gap where there was none.
        const own = this.#own.read(this.#seq);
        const ordinary = this.#ordinary.read(this.#seq);
        const event = !own || (ordinary && ordinary.seq < own.seq)
          ? ordinary
          : own;
        if (!event) return;
        this.#seq = event.seq;
        for (const listener of this.#listeners) listener(event);
      }
    } finally {
      this.#taking = false;
    }
  }

  /**
   * The sequencer told of a change: a new epoch (read `memory` from now
   * on), or the engine; and whether the sequence can be used (`pending`).
   */
  change(
    change: BrokerChange,
    memory: SequenceMemory,
    pending?: string,
  ): void {
    this.#pending = pending;
    if (change.kind === "reset") {
      this.take(); // the old epoch's last events first
      this.#epoch = change.epoch;
      this.#seq = change.seq;
      this.#decoded = new Map();
      this.#read(memory);
    }
    for (const watcher of this.#watchers) watcher(change);
  }

  #read(memory: SequenceMemory): void {
    this.#memory = memory;
    this.#ordinary = new SharedWindowReader(memory.ordinary, {
      through: Infinity,
      decoded: this.#decoded,
    });
    this.#own = new SharedWindowReader(memory.own, {
      through: Infinity,
      decoded: this.#decoded,
    });
  }
}
