/**
 * The replay window held once for a process whose hubs run in several
 * workers: one thread writes it ({@linkcode SharedWindow}, where events are
 * sequenced), every worker reads it ({@linkcode SharedWindowReader}) to take
 * each event in once and to replay from it, all over `SharedArrayBuffer`s
 * (handed to a worker by `postMessage`, which shares them, not copies).
 *
 * Its bounds are {@linkcode ReplayLog}'s (count, bytes as `sizeOf` weighs
 * them, the newest always kept, age), and so are its answers (`first`,
 * `lost`, `next`). Each event is encoded once, into a ring of bytes (topic,
 * payload, and the reason of a refused event) indexed by a ring of slots;
 * a reader copies an event out (its payload must outlive the slot) and
 * keeps the recent ones it decoded, so that every subscriber of a worker is
 * handed the same object (the transports encode each object once).
 *
 * Concurrency: one writer, any number of readers, no lock. The header is a
 * seqlock (a version, odd while the writer changes it); slots and bytes are
 * only ever rewritten after the writer has published, in the header, that
 * the event there was let go. A reader copies an event, then reads the
 * header again: the copy stands if the event was still held, and is taken
 * again otherwise.
 *
 * @module
 */

import type { BusEvent } from "./broker.ts";
import type { EventWindow, ReplayLogOptions } from "./replay_log.ts";

/** The memory of one window: what a worker is handed to read it. */
export interface SharedWindowMemory {
  /** The seqlock's version (`Int32`), then the window's state (`Float64`). */
  readonly header: SharedArrayBuffer;
  /** {@linkcode SLOT_FIELDS} `Float64`s per event slot. */
  readonly slots: SharedArrayBuffer;
  /** Each event's topic, payload and refusal, back to back. */
  readonly bytes: SharedArrayBuffer;
  /** Event slots. */
  readonly size: number;
  /** Events older than this (ms) are not replayed. */
  readonly maxAgeMs: number;
}

/** Options of {@linkcode SharedWindow}. */
export interface SharedWindowOptions extends ReplayLogOptions<Uint8Array> {
  /** Most bytes held, as `sizeOf` counts them: a shared window is always bounded. */
  maxBytes: number;
  /**
   * The largest event's topic, payload and refusal together, in bytes: the
   * ring of bytes always has room for one. A larger one is held refused
   * (reason `size`, no payload): its subscribers get a gap.
   */
  maxRecordBytes: number;
}

// Header: Int32 [0] is the version; Float64 fields from byte 8.
const VERSION = 0;
const FIRST_ABS = 1; // absolute index of the oldest event held
const END_ABS = 2; // one past the newest
const LAST = 3; // seq of the newest appended
const LOST = 4; // newest seq let go
const WEIGHT = 5; // bytes held, as sizeOf counts them
const HEADER_BYTES = 8 * 6;

// Each slot: Float64 fields.
const SEQ = 0;
const TIME = 1;
const OFFSET = 2;
const TOPIC_BYTES = 3;
const DATA_BYTES = 4;
/** 0: not refused; else the reason's length + 1. */
const REFUSAL = 5;
const SLOT_WEIGHT = 6;
/** Float64 fields per slot. */
export const SLOT_FIELDS = 7;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The header's fields, read consistently. */
interface Header {
  firstAbs: number;
  endAbs: number;
  last: number;
  lost: number;
}

/** Views of a window's memory, shared by its writer and readers. */
class Views {
  readonly version: Int32Array;
  readonly header: Float64Array;
  readonly slots: Float64Array;
  readonly bytes: Uint8Array;
  readonly size: number;

  constructor(memory: SharedWindowMemory) {
    this.version = new Int32Array(memory.header, 0, 1);
    this.header = new Float64Array(memory.header);
    this.slots = new Float64Array(memory.slots);
    this.bytes = new Uint8Array(memory.bytes);
    this.size = memory.size;
  }

  /** The header as one consistent snapshot (waits out a write under way). */
  read(): Header {
    const { version, header } = this;
    for (;;) {
      const before = Atomics.load(version, VERSION);
      if (before % 2 === 0) {
        const snapshot = {
          firstAbs: header[FIRST_ABS],
          endAbs: header[END_ABS],
          last: header[LAST],
          lost: header[LOST],
        };
        if (Atomics.load(version, VERSION) === before) return snapshot;
      }
    }
  }

  /** Where slot `abs`'s fields start. */
  at(abs: number): number {
    return (abs % this.size) * SLOT_FIELDS;
  }

  /** The seq in slot `abs`. */
  seqAt(abs: number): number {
    return this.slots[this.at(abs)];
  }

  /** The first absolute index in [from, to) whose seq is above `seq` (`to` when none). */
  search(from: number, to: number, seq: number): number {
    let low = from;
    let high = to;
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      if (this.seqAt(middle) <= seq) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** Slot `abs`'s event, copied out (valid only if still held after). */
  copy(abs: number): BusEvent<Uint8Array> {
    const { slots, bytes } = this;
    const at = this.at(abs);
    const offset = slots[at + OFFSET];
    const topicEnd = offset + slots[at + TOPIC_BYTES];
    const dataEnd = topicEnd + slots[at + DATA_BYTES];
    const refusal = slots[at + REFUSAL];
    const event: BusEvent<Uint8Array> = {
      kind: "event",
      seq: slots[at + SEQ],
      time: slots[at + TIME],
      // slice(): a copy in memory of its own (not shared), as decode needs.
      topic: decoder.decode(bytes.slice(offset, topicEnd)),
      data: bytes.slice(topicEnd, dataEnd),
    };
    if (refusal === 0) return event;
    const reason = decoder.decode(bytes.slice(dataEnd, dataEnd + refusal - 1));
    return { ...event, rejected: reason };
  }
}

/** Allocates a window's memory. */
function allocate(
  size: number,
  bytes: number,
  maxAgeMs: number,
): SharedWindowMemory {
  return {
    header: new SharedArrayBuffer(HEADER_BYTES),
    slots: new SharedArrayBuffer(size * SLOT_FIELDS * 8),
    bytes: new SharedArrayBuffer(bytes),
    size,
    maxAgeMs,
  };
}

/**
 * The writing side: appends events in ascending seq, evicting by count,
 * weight and age exactly as {@linkcode ReplayLog} does. One thread only.
 *
 * @example
 * ```ts
 * import { SharedWindow, SharedWindowReader } from "./shared_window.ts";
 * const window = new SharedWindow({ size: 2, maxAgeMs: 60_000, maxBytes: 1024, maxRecordBytes: 256 });
 * const data = new TextEncoder().encode("hi");
 * for (const seq of [1, 2, 3]) window.append({ kind: "event", seq, time: 0, topic: "t", data }, 0);
 * const reader = new SharedWindowReader(window.memory, { through: 3 }); // in a worker
 * reader.first; // 2
 * reader.lost; // 1
 * reader.next(2)?.seq; // 3
 * ```
 */
export class SharedWindow {
  /** What readers are handed. */
  readonly memory: SharedWindowMemory;
  #views: Views;
  #maxAgeMs: number;
  #maxBytes: number;
  #maxRecordBytes: number;
  #sizeOf: (data: Uint8Array) => number;
  /**
   * Where the oldest held event's bytes start, and where the next go; held
   * bytes are [head, tail), or once wrapped [head, its end) and [0, tail).
   */
  #byteHead = 0;
  #byteTail = 0;
  #wrapped = false;

  /** Creates an empty window; the first event appended is numbered above `after`. */
  constructor(options: SharedWindowOptions) {
    const { size, maxAgeMs, maxBytes, maxRecordBytes, after = 0 } = options;
    if (!Number.isSafeInteger(size) || size < 1) {
      throw new RangeError(
        `Cannot create shared window: size must be a positive integer, got ${size}`,
      );
    }
    if (!(maxAgeMs > 0) || !(maxBytes > 0) || !(maxRecordBytes > 0)) {
      throw new RangeError(
        `Cannot create shared window: max age, bytes and record bytes must be positive, got ${maxAgeMs}, ${maxBytes}, ${maxRecordBytes}`,
      );
    }
    this.#maxAgeMs = maxAgeMs;
    this.#maxBytes = maxBytes;
    this.#maxRecordBytes = maxRecordBytes;
    this.#sizeOf = options.sizeOf ?? (() => 0);
    // Room for the weight bound (payloads weigh at least their length),
    // one event beyond it, and one wasted where the ring wraps.
    const capacity = Math.min(maxBytes, size * maxRecordBytes) +
      2 * maxRecordBytes;
    this.memory = allocate(size, capacity, maxAgeMs);
    this.#views = new Views(this.memory);
    const header = this.#views.header;
    header[LAST] = after;
    header[LOST] = after;
  }

  /** Sequence number of the oldest event held; `last + 1` when none is. */
  get first(): number {
    const { header } = this.#views;
    return header[FIRST_ABS] === header[END_ABS]
      ? header[LAST] + 1
      : this.#views.seqAt(header[FIRST_ABS]);
  }

  /** Sequence number of the newest event appended. */
  get last(): number {
    return this.#views.header[LAST];
  }

  /** Sequence number of the newest event let go. */
  get lost(): number {
    return this.#views.header[LOST];
  }

  /** Events held now. */
  get length(): number {
    const { header } = this.#views;
    return header[END_ABS] - header[FIRST_ABS];
  }

  /** Bytes held now, as `sizeOf` counts them. */
  get bytes(): number {
    return this.#views.header[WEIGHT];
  }

  /**
   * Appends `event` (seq above the last), evicting the oldest while over
   * the count or the weight (the newest stays) and whatever is older than
   * the maximum age at `now`.
   */
  append(event: BusEvent<Uint8Array>, now: number): void {
    const views = this.#views;
    const { header, slots, bytes } = views;
    if (event.seq <= header[LAST]) {
      throw new RangeError(
        `Shared window out of order: got seq ${event.seq} after ${
          header[LAST]
        }`,
      );
    }
    let topic = encoder.encode(event.topic);
    let data = event.data;
    let refusal = event.rejected === undefined
      ? undefined
      : encoder.encode(event.rejected);
    if (
      topic.length + data.length + (refusal?.length ?? 0) >
        this.#maxRecordBytes
    ) {
      topic = topic.subarray(0, Math.max(0, this.#maxRecordBytes - 8));
      data = new Uint8Array(0);
      refusal = encoder.encode("size");
    }
    const need = topic.length + data.length + (refusal?.length ?? 0);
    this.#begin();
    try {
      if (this.length === views.size) this.#evict();
      const offset = this.#place(need);
      const end = header[END_ABS];
      const at = views.at(end);
      bytes.set(topic, offset);
      bytes.set(data, offset + topic.length);
      if (refusal) bytes.set(refusal, offset + topic.length + data.length);
      const weight = this.#sizeOf(data);
      slots[at + SEQ] = event.seq;
      slots[at + TIME] = event.time;
      slots[at + OFFSET] = offset;
      slots[at + TOPIC_BYTES] = topic.length;
      slots[at + DATA_BYTES] = data.length;
      slots[at + REFUSAL] = refusal ? refusal.length + 1 : 0;
      slots[at + SLOT_WEIGHT] = weight;
      this.#byteTail = offset + need;
      header[END_ABS] = end + 1;
      header[LAST] = event.seq;
      header[WEIGHT] += weight;
      while (header[WEIGHT] > this.#maxBytes && this.length > 1) this.#evict();
      this.#expire(now);
    } finally {
      this.#end();
    }
  }

  /** Evicts the events older than the maximum age at `now`. */
  expire(now: number): void {
    this.#begin();
    try {
      this.#expire(now);
    } finally {
      this.#end();
    }
  }

  /**
   * The sequence skipped past `after` (events up to it are not all held):
   * what is held stays readable live, but no resume from before `after` is
   * promised from here.
   */
  restart(after: number): void {
    const { header } = this.#views;
    this.#begin();
    header[LOST] = Math.max(header[LOST], after);
    header[LAST] = Math.max(header[LAST], after);
    this.#end();
  }

  #expire(now: number): void {
    const views = this.#views;
    const cutoff = now - this.#maxAgeMs;
    while (
      this.length > 0 &&
      views.slots[views.at(views.header[FIRST_ABS]) + TIME] < cutoff
    ) this.#evict();
  }

  /** Where `need` bytes go, evicting the oldest events until they fit. */
  #place(need: number): number {
    const capacity = this.#views.bytes.length;
    for (;;) {
      if (this.length === 0) {
        this.#byteHead = this.#byteTail = 0;
        this.#wrapped = false;
        return 0;
      }
      const head = this.#byteHead;
      const tail = this.#byteTail;
      if (this.#wrapped) {
        if (tail + need <= head) return tail;
      } else {
        if (tail + need <= capacity) return tail;
        if (need <= head) {
          this.#wrapped = true;
          return 0;
        }
      }
      this.#evict();
    }
  }

  #evict(): void {
    const views = this.#views;
    const { header, slots } = views;
    const first = header[FIRST_ABS];
    const at = views.at(first);
    header[LOST] = Math.max(header[LOST], slots[at + SEQ]);
    header[WEIGHT] -= slots[at + SLOT_WEIGHT];
    header[FIRST_ABS] = first + 1;
    if (first + 1 === header[END_ABS]) {
      this.#byteHead = this.#byteTail = 0;
      this.#wrapped = false;
      return;
    }
    const next = slots[views.at(first + 1) + OFFSET];
    if (next < this.#byteHead) this.#wrapped = false; // the head wrapped too
    this.#byteHead = next;
  }

  #begin(): void {
    Atomics.add(this.#views.version, VERSION, 1); // odd: readers wait
  }

  #end(): void {
    Atomics.add(this.#views.version, VERSION, 1);
  }
}

/** Decoded events a worker keeps, so that each is one object for all its subscribers. */
const DECODED_KEPT = 1024;

/** Options of {@linkcode SharedWindowReader}. */
export interface SharedWindowReaderOptions {
  /**
   * The newest seq this reader shows (its hub's, which moves it on as it
   * takes each event in): a replay must not run ahead of the events the
   * hub hands its live subscribers.
   */
  through: number;
  /**
   * Decoded events by seq, shared by a worker's readers (the newest
   * {@linkcode DECODED_KEPT} are kept). Default: the reader's own.
   */
  decoded?: Map<number, BusEvent<Uint8Array>>;
}

/**
 * The reading side, in a worker: the window as its hub's
 * {@linkcode EventWindow}, showing events up to the hub's seq, and
 * {@linkcode SharedWindowReader.read} for taking events in live.
 *
 * @example
 * ```ts ignore
 * const reader = new SharedWindowReader(memory, { through: hub.seq });
 * for (let e = reader.read(seq); e; e = reader.read(e.seq)) hubListener(e);
 * ```
 */
export class SharedWindowReader implements EventWindow<Uint8Array> {
  #views: Views;
  #through: number;
  #maxAgeMs: number;
  /** Events before this time count as let go (set by `expire`). */
  #cutoff = -Infinity;
  #decoded: Map<number, BusEvent<Uint8Array>>;

  /** Reads the window whose memory is `memory`. */
  constructor(memory: SharedWindowMemory, options: SharedWindowReaderOptions) {
    this.#views = new Views(memory);
    this.#through = options.through;
    this.#maxAgeMs = memory.maxAgeMs;
    this.#decoded = options.decoded ?? new Map();
  }

  /** The newest seq shown. */
  get through(): number {
    return this.#through;
  }

  /** Sequence number of the newest event the writer appended. */
  get last(): number {
    return this.#views.read().last;
  }

  /** Sequence number of the newest event let go (by the writer, or by age), at most `through`. */
  get lost(): number {
    return Math.min(this.#lost(this.#views.read()), this.#through);
  }

  /** Sequence number of the oldest event shown; one past the newest when none is. */
  get first(): number {
    const event = this.next(0);
    return event?.seq ?? Math.min(this.last, this.#through) + 1;
  }

  /** Events held now (shown or not yet). */
  get length(): number {
    const { firstAbs, endAbs } = this.#views.read();
    return endAbs - firstAbs;
  }

  /** The hub took `event` in: it is shown from now on. */
  append(event: BusEvent<Uint8Array>): void {
    this.#through = event.seq;
    this.#keep(event);
  }

  /** Events older than the maximum age at `now` count as let go. */
  expire(now: number): void {
    this.#cutoff = now - this.#maxAgeMs;
  }

  /** The oldest event shown with a seq above `seq`, decoded once. */
  next(seq: number): BusEvent<Uint8Array> | undefined {
    const event = this.#find(seq, true);
    return event && event.seq <= this.#through ? event : undefined;
  }

  /**
   * The oldest event held with a seq above `seq`, shown or not, let go
   * for resumes or not (a skip past it, its age): how a worker takes
   * events in live.
   */
  read(seq: number): BusEvent<Uint8Array> | undefined {
    return this.#find(seq, false);
  }

  /** The oldest event held above `seq` (and above what was let go, when `held`). */
  #find(seq: number, held: boolean): BusEvent<Uint8Array> | undefined {
    const views = this.#views;
    for (;;) {
      const header = views.read();
      const above = held ? Math.max(seq, this.#lost(header)) : seq;
      const abs = views.search(header.firstAbs, header.endAbs, above);
      if (abs === header.endAbs) return undefined;
      const found = views.seqAt(abs);
      const kept = this.#decoded.get(found);
      const event = kept ?? views.copy(abs);
      // The copy stands if its slot was still held once copied, and the
      // search was not misled by slots rewritten meanwhile (the one before
      // it, if still held, is at or below `above`).
      const now = views.read();
      if (
        now.firstAbs <= abs && event.seq === found && found > above &&
        (abs === now.firstAbs || views.seqAt(abs - 1) <= above)
      ) {
        if (!kept) this.#keep(event);
        return event;
      }
    }
  }

  /** The newest seq let go, counting the events older than the cutoff. */
  #lost(header: Header): number {
    let lost = header.lost;
    if (this.#cutoff === -Infinity) return lost;
    // A slot rewritten since the snapshot holds a newer event, within the
    // age: the scan stops there.
    const views = this.#views;
    for (let abs = header.firstAbs; abs < header.endAbs; abs++) {
      const at = views.at(abs);
      if (views.slots[at + TIME] >= this.#cutoff) break;
      lost = Math.max(lost, views.slots[at + SEQ]);
    }
    return lost;
  }

  #keep(event: BusEvent<Uint8Array>): void {
    const decoded = this.#decoded;
    if (decoded.has(event.seq)) return;
    decoded.set(event.seq, event);
    if (decoded.size > DECODED_KEPT) {
      decoded.delete(decoded.keys().next().value!);
    }
  }
}
