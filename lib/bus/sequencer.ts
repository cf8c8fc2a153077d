/**
 * One sequence for a process whose hubs run in several workers: the
 * sequencer listens to the process's one broker (the memory broker, which
 * numbers events, or the one JetStream consumer of the process) and writes
 * each event once into the replay windows every worker reads
 * (`shared_window.ts`), then nudges the workers, once per batch. The workers'
 * side is `relay_broker.ts`.
 *
 * @module
 */

import type { Broker, BrokerChange, BusEvent } from "./broker.ts";
import { SharedWindow, type SharedWindowMemory } from "./shared_window.ts";

/** What the workers are handed to read the sequence: the windows and the state. */
export interface SequenceMemory {
  /** The window of ordinary topics. */
  readonly ordinary: SharedWindowMemory;
  /** The window of the server's own (`$`) topics. */
  readonly own: SharedWindowMemory;
  /**
   * `BigInt64` [0]: the next subscription id (one counter for every hub);
   * `Float64` [1]: the broker's head, [2]: its first seq (shared log), as
   * last seen.
   */
  readonly state: SharedArrayBuffer;
}

/** The windows' bounds, as the hubs' would be (see `HubOptions`). */
export interface SequencerOptions {
  /** Events of ordinary topics kept. */
  size: number;
  /** Events of the server's own topics kept. */
  ownSize: number;
  /** Age beyond which events are let go (ms). */
  maxAgeMs: number;
  /** Most bytes of ordinary topics, as `sizeOf` weighs them. */
  maxBytes: number;
  /** Most bytes of the server's own topics. */
  ownMaxBytes: number;
  /** What an event's payload weighs. */
  sizeOf: (data: Uint8Array) => number;
  /** The largest event's topic, payload and refusal together (bytes). */
  maxRecordBytes: number;
  /** The first subscription id. Default 1. */
  firstId?: number;
  /** Time source. Default `Date.now`. */
  now?: () => number;
}

/** What the sequencer tells the workers. */
export interface SequencerListener {
  /** Events through `seq` are in the windows: take them in. */
  events(seq: number): void;
  /** The sequence changed: a new epoch (new windows in `memory`), or the engine. */
  change(change: BrokerChange, memory: SequenceMemory): void;
}

/** How often (ms) the windows let old events go and the broker's state is read. */
const REFRESH_MS = 1_000;

/** State slots: the id counter (BigInt64), then Float64s. */
const NEXT_ID = 0;
const HEAD = 1;
const FIRST = 2;

/**
 * Takes every event of `broker` into the windows once, in order (a shared
 * log's repeats left out, its skips promised to no resume), and nudges
 * `listener` once per batch of events (a microtask later).
 *
 * @example
 * ```ts
 * import { MemoryBroker } from "./broker.ts";
 * import { Sequencer } from "./sequencer.ts";
 * const broker = new MemoryBroker<Uint8Array>();
 * const seen: number[] = [];
 * const sequencer = new Sequencer(broker, {
 *   size: 100, ownSize: 10, maxAgeMs: 60_000, maxBytes: 1 << 20,
 *   ownMaxBytes: 1 << 16, sizeOf: (data) => data.length, maxRecordBytes: 4096,
 * }, { events: (seq) => seen.push(seq), change: () => {} });
 * await broker.publish("news", new Uint8Array(1));
 * await Promise.resolve();
 * seen; // [1]
 * sequencer.close();
 * ```
 */
export class Sequencer {
  #broker: Broker<Uint8Array>;
  #options: SequencerOptions;
  #listener: SequencerListener;
  #now: () => number;
  #ordinary!: SharedWindow;
  #own!: SharedWindow;
  #memory!: SequenceMemory;
  #state: SharedArrayBuffer;
  #numbers: Float64Array;
  #last: number;
  #published = 0;
  #nudging = false;
  #detach: () => void;
  #timer: ReturnType<typeof setInterval>;

  /** Listens to `broker` from its current seq on. */
  constructor(
    broker: Broker<Uint8Array>,
    options: SequencerOptions,
    listener: SequencerListener,
  ) {
    this.#broker = broker;
    this.#options = options;
    this.#listener = listener;
    this.#now = options.now ?? Date.now;
    this.#state = new SharedArrayBuffer(8 * 3);
    new BigInt64Array(this.#state, 0, 1)[NEXT_ID] = BigInt(
      options.firstId ?? 1,
    );
    this.#numbers = new Float64Array(this.#state);
    this.#last = broker.seq;
    this.#renew(broker.seq);
    const unlisten = broker.listen((event) => this.#take(event));
    const unwatch = broker.watch?.((change) => this.#changed(change));
    this.#timer = setInterval(() => {
      const now = this.#now();
      this.#ordinary.expire(now);
      this.#own.expire(now);
      this.#refresh();
    }, REFRESH_MS);
    this.#detach = () => {
      unlisten();
      unwatch?.();
      clearInterval(this.#timer);
    };
  }

  /** What a worker starting now is handed. */
  get memory(): SequenceMemory {
    return this.#memory;
  }

  /** The last seq taken in. */
  get seq(): number {
    return this.#last;
  }

  /** Events taken in so far (a shared log's repeats not counted). */
  get published(): number {
    return this.#published;
  }

  /** The window of ordinary topics (for metrics). */
  get window(): SharedWindow {
    return this.#ordinary;
  }

  /** Stops listening. Idempotent. */
  close(): void {
    this.#detach();
  }

  #renew(after: number): void {
    const options = this.#options;
    this.#ordinary = new SharedWindow({
      size: options.size,
      maxAgeMs: options.maxAgeMs,
      maxBytes: options.maxBytes,
      sizeOf: options.sizeOf,
      maxRecordBytes: options.maxRecordBytes,
      after,
    });
    this.#own = new SharedWindow({
      size: options.ownSize,
      maxAgeMs: options.maxAgeMs,
      maxBytes: options.ownMaxBytes,
      sizeOf: options.sizeOf,
      maxRecordBytes: options.maxRecordBytes,
      after,
    });
    this.#memory = {
      ordinary: this.#ordinary.memory,
      own: this.#own.memory,
      state: this.#state,
    };
    this.#refresh();
  }

  #take(event: BusEvent<Uint8Array>): void {
    if (event.seq <= this.#last) return; // a shared log's repeat
    if (event.seq > this.#last + 1) {
      // The log skipped: what lies between is no one's to resume.
      this.#ordinary.restart(event.seq - 1);
      this.#own.restart(event.seq - 1);
    }
    const window = event.topic.startsWith("$") ? this.#own : this.#ordinary;
    window.append(event, this.#now());
    this.#last = event.seq;
    this.#published++;
    this.#refresh();
    if (this.#nudging) return;
    this.#nudging = true;
    queueMicrotask(() => {
      this.#nudging = false;
      this.#listener.events(this.#last);
    });
  }

  #changed(change: BrokerChange): void {
    if (change.kind === "reset") {
      this.#last = change.seq;
      this.#renew(change.seq);
    }
    this.#listener.change(change, this.#memory);
  }

  #refresh(): void {
    const broker = this.#broker;
    this.#numbers[HEAD] = Math.max(broker.head ?? 0, broker.seq, this.#last);
    this.#numbers[FIRST] = broker.first ?? 0;
  }
}

/**
 * The sequence's state as a worker reads it: the broker's head and first
 * seq, and the one counter of subscription ids.
 *
 * @example
 * ```ts ignore
 * const state = new SequenceState(memory.state);
 * const id = state.nextId();
 * ```
 */
export class SequenceState {
  #ids: BigInt64Array;
  #numbers: Float64Array;

  /** Reads the state in `state` (a {@linkcode SequenceMemory}'s). */
  constructor(state: SharedArrayBuffer) {
    this.#ids = new BigInt64Array(state, 0, 1);
    this.#numbers = new Float64Array(state);
  }

  /** The newest seq known to exist. */
  get head(): number {
    return this.#numbers[HEAD];
  }

  /** The oldest seq the shared log holds, as last seen (0: none said). */
  get first(): number {
    return this.#numbers[FIRST];
  }

  /** A subscription id no hub of the process has used. */
  nextId(): number {
    return Number(Atomics.add(this.#ids, NEXT_ID, 1n));
  }
}
