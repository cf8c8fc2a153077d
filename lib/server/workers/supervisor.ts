/**
 * The workers' lives, from the main thread: each started with what it needs
 * (`worker.ts`), asked and told things over its {@linkcode Channel}, watched
 * (an error nothing caught, or no answer to a ping for a while), and
 * replaced when it dies of an error: the death logged and counted, the
 * replacement started at once, on the same port, reading the same windows
 * (so that its subscribers, reconnecting, resume by cursor). A run of
 * deaths backs off. One stuck is told to the process, which stops.
 *
 * @module
 */

import type { Logger } from "../../log.ts";
import { Channel, type Handlers } from "./channel.ts";
import type { WorkerStart } from "./worker.ts";

/** How often (ms) each worker is pinged. */
const PING_MS = 1_000;

/**
 * A worker that has not answered a ping for this long (ms) is taken for
 * stuck (its event loop blocked, or gone without a word: `Deno.exit` in a
 * worker ends it silently): the process stops (see `WorkerPool`'s
 * `onStuck`). A worker at full load still turns its event loop many times
 * a second.
 */
export const UNRESPONSIVE_MS = 10_000;

/** Deaths closer together than this (ms) are a run: each waits longer to be replaced. */
const RUN_MS = 10_000;

/** Longest wait (ms) before a worker of a run of deaths is replaced. */
const MOST_BACKOFF_MS = 5_000;

/** Where a worker listens: the gRPC port, and the HTTP port when it serves HTTP. */
export interface Listening {
  /** The gRPC address, e.g. `[::]:50051`. */
  address: string;
  /** The gRPC port. */
  port: number;
  /** The HTTP port, if HTTP is served. */
  httpPort?: number;
}

/** One worker's place: its index, the worker there now, its channel. */
interface Slot {
  readonly index: number;
  worker: Worker;
  channel: Channel;
  /** Resolved once it serves; rejected if it cannot start. */
  started: Promise<Listening>;
  /** It died (or was told to stop): its messages are not read. */
  gone: boolean;
  /** When it last answered a ping (performance.now()). */
  answered: number;
}

/** What the pool needs of the main thread. */
export interface PoolOptions {
  /** How many workers. */
  size: number;
  /**
   * What worker `index` is started with: the sequence as it is now, and
   * where the others listen (nothing for the first: the ports asked for
   * by the settings).
   */
  init: (index: number, listening: Listening | undefined) => WorkerStart;
  /** What a worker may ask of the main thread, by name. */
  handlers: (index: number) => Handlers;
  /** What a worker may tell the main thread (no answer), by name. */
  notes: (index: number) => Record<string, (value: never) => void>;
  /** Told when worker `index` serves (a replacement too). */
  onStarted?: (index: number) => void;
  /** Told when worker `index` is gone (its calls to clean up). */
  onGone?: (index: number) => void;
  /** Told when worker `index` answered no ping for too long (it is not replaced). */
  onStuck?: (index: number, error: Error) => void;
  /** Where deaths are said. */
  log: Logger;
  /**
   * Whether the ports are known before any worker binds them (none is 0):
   * then every worker starts at once, else the first binds, then the
   * others join it on the ports it got.
   */
  portsKnown?: boolean;
  /** How long (ms) without an answer to a ping is death. Default {@linkcode UNRESPONSIVE_MS}. */
  unresponsiveMs?: number;
}

/** The module every worker runs. */
const WORKER_URL = new URL("./worker.ts", import.meta.url);

/**
 * The process's workers, supervised.
 *
 * @example
 * ```ts ignore
 * const pool = new WorkerPool({ size: 2, init, handlers, notes, log });
 * await pool.start();
 * pool.note("events", 42);
 * await pool.drain(5000);
 * pool.end();
 * ```
 */
export class WorkerPool {
  #options: PoolOptions;
  #slots: Slot[] = [];
  /** Where the workers listen, once the first does. */
  #listening?: Listening;
  #replaced = 0;
  #stopping = false;
  #deaths: number[] = [];
  #pinger?: ReturnType<typeof setInterval>;
  #backoffs = new Set<ReturnType<typeof setTimeout>>();

  /** A pool of `options.size` workers, none started yet. */
  constructor(options: PoolOptions) {
    this.#options = options;
  }

  /** Workers replaced so far. */
  get replaced(): number {
    return this.#replaced;
  }

  /**
   * Starts worker 0, then (on the port it bound) the others, or all at
   * once when the ports are known; resolves to where they listen once all
   * serve. Rejects, every worker stopped, if one cannot start.
   */
  async start(): Promise<Listening> {
    try {
      const { size, portsKnown } = this.#options;
      const first = this.#spawn(0).started;
      if (!portsKnown) this.#listening = await first;
      const rest = [];
      for (let index = 1; index < size; index++) {
        rest.push(this.#spawn(index).started);
      }
      this.#listening = await first;
      await Promise.all(rest);
      // Silence counts from now: a slow start is not a stuck worker.
      const now = performance.now();
      for (const slot of this.#slots) slot.answered = now;
      this.#pinger = setInterval(() => this.#ping(), PING_MS);
      return this.#listening;
    } catch (error) {
      this.#stopping = true;
      for (const slot of this.#slots) this.#end(slot);
      throw error;
    }
  }

  /** Tells every started worker `name` with `value`. */
  note(name: string, value: unknown): void {
    for (const slot of this.#slots) {
      if (!slot.gone) slot.channel.note(name, value);
    }
  }

  /** Asks every worker that serves `name` with `value`; resolves to their answers, by worker. */
  async ask<T>(
    name: string,
    value: unknown,
    { timeoutMs }: { timeoutMs?: number } = {},
  ): Promise<Map<number, T>> {
    const answer = async (slot: Slot) => {
      if (slot.gone) return [];
      try {
        await slot.started;
        return [[slot.index, await slot.channel.call<T>(name, value)] as const];
      } catch {
        return []; // died meanwhile: its replacement answers next time
      }
    };
    // A worker whose thread is stuck never answers: left out after
    // `timeoutMs` (its call is rejected when the pool ends).
    const within = (slot: Slot) => {
      if (timeoutMs === undefined) return answer(slot);
      let timer: ReturnType<typeof setTimeout> | undefined;
      return Promise.race([
        answer(slot),
        new Promise<[]>((resolve) => {
          timer = setTimeout(() => resolve([]), timeoutMs);
        }),
      ]).finally(() => clearTimeout(timer));
    };
    const answers = await Promise.all(this.#slots.map(within));
    return new Map(answers.flat());
  }

  /**
   * Makes worker `index` fail as an error nothing caught would, or (with
   * `hangMs`) block its thread that long: a debug hook.
   */
  crash(index: number, { hangMs }: { hangMs?: number } = {}): void {
    void this.#slots[index]?.channel.call("crash", {
      message: "Crashed on purpose",
      hangMs,
    }).catch(() => {});
  }

  /**
   * Drains every worker with `graceMs` to finish its calls, and waits for
   * them (a little longer than the grace: their own forced end); none is
   * replaced from now on. {@linkcode WorkerPool.end} ends them.
   */
  async drain(graceMs: number): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#pinger);
    for (const timer of this.#backoffs) clearTimeout(timer);
    const drained = this.#slots.map(async (slot) => {
      if (slot.gone) return;
      try {
        await slot.started;
        await slot.channel.call("drain", { graceMs });
      } catch {
        // Gone or failed: ended below all the same.
      }
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(drained),
      new Promise((resolve) => timer = setTimeout(resolve, graceMs + 1_000)),
    ]);
    clearTimeout(timer);
  }

  /** Ends every worker at once (after a drain, or when the start fails). */
  end(): void {
    this.#stopping = true;
    clearInterval(this.#pinger);
    for (const timer of this.#backoffs) clearTimeout(timer);
    for (const slot of this.#slots) this.#end(slot);
  }

  #spawn(index: number): Slot {
    const options = this.#options;
    const worker = new Worker(WORKER_URL, { type: "module" });
    const slot: Slot = {
      index,
      worker,
      channel: new Channel(worker, options.handlers(index), {
        ...options.notes(index),
        fatal: (error: { message: string; stack?: string }) =>
          this.#died(slot, error.message, error.stack),
      }),
      started: Promise.resolve({ address: "", port: 0 }),
      gone: false,
      answered: performance.now(),
    };
    // An error the worker's own handlers did not catch: without this, it
    // would end the whole process.
    worker.onerror = (event) => {
      event.preventDefault();
      this.#died(slot, event.message);
    };
    this.#slots[index] = slot;
    slot.started = slot.channel.call(
      "start",
      options.init(index, this.#listening),
    );
    slot.started.then(
      () => {
        slot.answered = performance.now(); // a replacement's silence counts from here
        options.onStarted?.(index);
      },
      () => {}, // a failed start is told to start()'s caller
    );
    return slot;
  }

  #ping(): void {
    const now = performance.now();
    const limit = this.#options.unresponsiveMs ?? UNRESPONSIVE_MS;
    for (const slot of this.#slots) {
      if (slot.gone) continue;
      if (now - slot.answered > limit) {
        this.#stuck(slot, Math.round(limit / 1000));
        continue;
      }
      slot.channel.call("ping", null).then(() => {
        slot.answered = performance.now();
      }, () => {});
    }
  }

  /**
   * Worker `slot` answered no ping for `seconds`: its event loop is stuck.
   * Deno 2.9.3 cannot stop a thread stuck in a loop (`terminate()` leaves
   * it running, with its connections and its place on the shared port:
   * denoland/deno#35657), so it is not replaced: it is said, and told to
   * `onStuck`, for the process to stop and its service manager to restart
   * it.
   */
  #stuck(slot: Slot, seconds: number): void {
    if (slot.gone || this.#slots[slot.index] !== slot) return;
    this.#end(slot); // in case it ends after all
    if (this.#stopping) return;
    const error = new Error(
      `Worker ${slot.index} answered no ping for ${seconds} s: its event loop is stuck, and a stuck worker cannot be stopped or replaced (Deno 2.9.3); stopping the process for its service manager to restart it`,
    );
    this.#options.log.error(error.message, { worker: slot.index });
    this.#options.onStuck?.(slot.index, error);
  }

  /** Worker `slot` died: said, counted, ended, and replaced (unless stopping). */
  #died(slot: Slot, why: string, stack?: string): void {
    if (slot.gone || this.#slots[slot.index] !== slot) return;
    this.#end(slot);
    if (this.#stopping) return;
    const { log } = this.#options;
    const now = performance.now();
    this.#deaths = this.#deaths.filter((at) => now - at < RUN_MS);
    this.#deaths.push(now);
    const waitMs = Math.min(
      MOST_BACKOFF_MS,
      this.#deaths.length <= 1 ? 0 : 250 * 2 ** (this.#deaths.length - 2),
    );
    this.#replaced++;
    log.error(`Worker ${slot.index} died: ${why}; replacing it`, {
      worker: slot.index,
      replaced: this.#replaced,
      inMs: waitMs || undefined,
      stack,
    });
    const timer = setTimeout(() => {
      this.#backoffs.delete(timer);
      if (this.#stopping) return;
      const started = this.#spawn(slot.index).started;
      started.then(
        () => log.info(`Worker ${slot.index} replaced`, { worker: slot.index }),
        (error) => {
          const replacement = this.#slots[slot.index];
          this.#died(replacement, `could not start (${error.message})`);
        },
      );
    }, waitMs);
    this.#backoffs.add(timer);
  }

  #end(slot: Slot): void {
    if (slot.gone) return;
    slot.gone = true;
    slot.channel.close();
    slot.worker.terminate();
    this.#options.onGone?.(slot.index);
  }
}
