/**
 * A broker whose engine may be reached after the server starts: the server
 * listens at once (health says NOT_SERVING for readiness, the Greeter's own
 * `SayHello` works) while this keeps connecting, with backoff, and becomes
 * the broker it connected to once that has read its recent past back.
 * Until then nothing of the bus can be used: subscriptions are refused (the
 * hub asks {@linkcode DeferredBroker.pending}), publishes and listings
 * fail with {@linkcode UnavailableError} saying why, and the engine counts
 * as down. It knows no engine: it is handed how to connect.
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
  EngineStats,
  LogState,
  PublishOptions,
} from "./broker.ts";
import { UnavailableError } from "../errors.ts";

/** A broker with connections to close. */
export type ClosableBroker<T> = Broker<T> & { close(): Promise<void> };

/** Default first wait between two attempts (ms); it doubles up to the most. */
export const DEFAULT_RETRY_MS = 250;

/** Default longest wait between two attempts (ms). */
export const DEFAULT_MAX_RETRY_MS = 5_000;

/** Shortest time between two "still not reached" notices (ms). */
const NOTICE_INTERVAL_MS = 30_000;

/** Options of {@linkcode DeferredBroker}. */
export interface DeferredBrokerOptions<T> {
  /** One attempt to connect; rejects when the engine cannot be used now. */
  connect(): Promise<ClosableBroker<T>>;
  /**
   * Whether a failed attempt is worth another (the engine not reachable
   * yet), rather than a refusal no wait mends (credentials, a stream that
   * does not fit). Default: every failure is.
   */
  retryable?(error: unknown): boolean;
  /** What the engine is, for messages: `the event stream (NATS at HOST:PORT)`. */
  name: string;
  /** Whether the engine's sequence is shared with other instances. */
  shared: boolean;
  /** Most milliseconds to keep trying; then {@linkcode DeferredBroker.failed} rejects. Default: no end. */
  waitMs?: number;
  /** First wait between attempts (ms), doubling up to `maxRetryMs`. Default {@linkcode DEFAULT_RETRY_MS}. */
  retryMs?: number;
  /** Longest wait between attempts (ms). Default {@linkcode DEFAULT_MAX_RETRY_MS}. */
  maxRetryMs?: number;
  /** Told of failed attempts (the first, then at most one line per 30 s). */
  onRetry?(attempts: number, error: unknown): void;
  /** Told once the engine is reached and its recent past read back. */
  onReached?(broker: ClosableBroker<T>): void;
}

const DOWN: EngineStats = {
  up: false,
  lag: 0,
  reconnects: 0,
  published: 0,
  refusedAnswers: {},
  rejectedEvents: {},
};

/**
 * A {@linkcode Broker} that connects in the background and then passes
 * everything to the broker it connected to. Its first attempt is its
 * caller's: it starts by waiting before the second.
 *
 * @example
 * ```ts ignore
 * const broker = new DeferredBroker({
 *   connect: () => JetStreamBroker.connect(options),
 *   name: "the event stream (NATS at 127.0.0.1:4222)",
 *   shared: true,
 * });
 * await broker.ready; // once NATS is reached and the stream read back
 * ```
 */
export class DeferredBroker<T> implements Broker<T> {
  #options: DeferredBrokerOptions<T>;
  #inner?: ClosableBroker<T>;
  #pending: string | undefined;
  #listeners = new Set<(event: BusEvent<T>) => void>();
  #watchers = new Set<(change: BrokerChange) => void>();
  #acknowledged = new Set<(seconds: number) => void>();
  /** Listings asked for before the engine was reached. */
  #directories = new Set<WaitingDirectory<T>>();
  #ready = Promise.withResolvers<void>();
  #closed = new AbortController();
  #running: Promise<void>;

  /** Starts connecting (after a first wait: the caller's attempt failed). */
  constructor(options: DeferredBrokerOptions<T>) {
    this.#options = options;
    this.#pending =
      `${options.name} is not reached yet: this instance started before it, and connects as soon as it can; retry in a moment`;
    // Nobody may wait for these: a shutdown or a give-up must not be unhandled.
    this.#ready.promise.catch(() => {});
    this.#running = this.#run().catch((error) => {
      this.#ready.reject(error);
      throw error;
    });
    this.#running.catch(() => {});
  }

  /** Why the bus cannot be used yet; `undefined` once it can. */
  get pending(): string | undefined {
    return this.#pending;
  }

  /**
   * Resolves once the engine was reached and its recent past read back;
   * rejects when this gives up (`waitMs` passed, or a refusal no wait mends)
   * or closes first.
   */
  get ready(): Promise<void> {
    return this.#ready.promise;
  }

  /** Rejects, with why, when this gives up; never resolves. */
  get failed(): Promise<never> {
    return this.#running.then(
      () => new Promise<never>(() => {}),
      (error) => Promise.reject(error),
    );
  }

  /** The sequence's name once reached; empty before. */
  get epoch(): string {
    return this.#inner?.epoch ?? "";
  }

  /** The last seq handed to listeners (0 before the engine is reached). */
  get seq(): number {
    return this.#inner?.seq ?? 0;
  }

  /** The newest seq known to exist. */
  get head(): number | undefined {
    return this.#inner?.head;
  }

  /** The oldest seq the engine still holds, as last seen. */
  get first(): number | undefined {
    return this.#inner?.first;
  }

  /** Whether other instances share the sequence. */
  get shared(): boolean {
    return this.#options.shared;
  }

  /** The engine's figures; down until it is reached. */
  get engine(): EngineStats {
    return (this.#pending === undefined ? this.#inner?.engine : undefined) ??
      DOWN;
  }

  /** Publishes through the engine; fails with {@linkcode UnavailableError} until it is reached. */
  publish(
    topic: string,
    data: T,
    options?: PublishOptions,
  ): Promise<BusEvent<T>> {
    const pending = this.#pending;
    if (pending !== undefined || !this.#inner) {
      return Promise.reject(
        new UnavailableError(`Cannot publish on "${topic}": ${pending}`),
      );
    }
    return this.#inner.publish(topic, data, options);
  }

  /** What the engine's log holds (`StreamInfo`); refused until it is reached. */
  state(): Promise<LogState> {
    const pending = this.#pending;
    if (pending !== undefined || !this.#inner?.state) {
      return Promise.reject(
        new UnavailableError(
          `Cannot read the event stream's state: ${pending}`,
        ),
      );
    }
    return this.#inner.state();
  }

  /** The seq of the engine's first event since `timeMs`; none until it is reached. */
  seqAt(timeMs: number): Promise<number | undefined> {
    return this.#inner?.seqAt?.(timeMs) ?? Promise.resolve(undefined);
  }

  /** Adds a listener of every event, from the first the engine hands over. */
  listen(listener: (event: BusEvent<T>) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Adds a watcher: told `reset` (the sequence's epoch and where reading
   * starts) when the engine is reached, `engine` up once it can be used,
   * then whatever the engine's broker tells.
   */
  watch(listener: (change: BrokerChange) => void): () => void {
    this.#watchers.add(listener);
    return () => this.#watchers.delete(listener);
  }

  /** Adds a listener of each acknowledged publish's round trip. */
  onAcknowledged(listener: (seconds: number) => void): () => void {
    this.#acknowledged.add(listener);
    return () => this.#acknowledged.delete(listener);
  }

  /** Reads stored events from the engine (only once reached: subscriptions wait for that). */
  async *replay(
    after: number,
    through: number,
    signal: AbortSignal,
  ): AsyncIterable<BusEvent<T>> {
    const replay = this.#inner?.replay;
    if (replay) yield* replay.call(this.#inner, after, through, signal);
  }

  /** Lists every instance's entries once the engine is reached; refuses before. */
  directory<E extends DirectoryEntry>(
    local: (query: DirectoryQuery) => DirectoryPage<E>,
  ): Directory<E> {
    const directory = new DeferredDirectory<E, T>(
      local,
      () => this.#pending,
      (self) => this.#directories.delete(self),
    );
    if (this.#pending === undefined && this.#inner) {
      directory.reach(this.#inner);
    } else this.#directories.add(directory);
    return directory;
  }

  /** Stops connecting, and closes the engine's broker if it was reached. Idempotent. */
  async close(): Promise<void> {
    this.#closed.abort();
    await this.#running.catch(() => {});
    this.#ready.reject(
      new UnavailableError(
        `${this.#options.name}: closed before it was reached`,
      ),
    );
    for (const directory of this.#directories) directory.close();
    await this.#inner?.close();
  }

  /** Connects (waiting first), then hands over; rejects when it gives up. */
  async #run(): Promise<void> {
    const options = this.#options;
    const signal = this.#closed.signal;
    const started = performance.now();
    const waitMs = options.waitMs ?? Infinity;
    const maxRetryMs = options.maxRetryMs ?? DEFAULT_MAX_RETRY_MS;
    let retryMs = options.retryMs ?? DEFAULT_RETRY_MS;
    let attempts = 1; // the caller's
    let lastNotice = performance.now();
    let inner: ClosableBroker<T> | undefined;
    while (!inner) {
      const left = waitMs - (performance.now() - started);
      if (left <= 0) {
        throw new UnavailableError(
          `Cannot reach ${options.name} within ${waitMs} ms (--broker-wait); gave up after ${attempts} attempts`,
        );
      }
      // Jittered, so that instances started together do not knock together.
      await sleep(Math.min(left, retryMs * (0.5 + Math.random() / 2)), signal);
      if (signal.aborted) return;
      retryMs = Math.min(retryMs * 2, maxRetryMs);
      attempts++;
      try {
        inner = await options.connect();
      } catch (error) {
        if (options.retryable && !options.retryable(error)) throw error;
        if (performance.now() - lastNotice >= NOTICE_INTERVAL_MS) {
          lastNotice = performance.now();
          options.onRetry?.(attempts, error);
        }
      }
      if (signal.aborted) {
        await inner?.close();
        return;
      }
    }
    this.#inner = inner;
    this.#handOver(inner);
    // A close while it reads its recent past back ends the wait.
    await Promise.race([
      inner.ready,
      new Promise((resolve) =>
        signal.addEventListener("abort", resolve, { once: true })
      ),
    ]);
    if (signal.aborted) return;
    this.#pending = undefined;
    options.onReached?.(inner);
    this.#ready.resolve();
    for (const directory of this.#directories) directory.reach(inner);
    this.#directories.clear();
    this.#tell({
      kind: "engine",
      up: inner.engine?.up ?? true,
      reason: "reached",
    });
  }

  /** Points listeners and watchers at `inner`, the sequence restarting where it reads from. */
  #handOver(inner: ClosableBroker<T>): void {
    this.#tell({
      kind: "reset",
      epoch: inner.epoch,
      seq: inner.seq,
      reason: `${this.#options.name} was reached`,
    });
    inner.listen((event) => {
      for (const listener of this.#listeners) listener(event);
    });
    inner.watch?.((change) => {
      // The engine's comings and goings count once it can be used.
      if (change.kind === "engine" && this.#pending !== undefined) return;
      this.#tell(change);
    });
    inner.onAcknowledged?.((seconds) => {
      for (const listener of this.#acknowledged) listener(seconds);
    });
  }

  #tell(change: BrokerChange): void {
    for (const watcher of this.#watchers) watcher(change);
  }
}

/** A listing made before the engine was reached, waiting for it. */
interface WaitingDirectory<T> {
  /** The engine's broker is here: list through it from now on. */
  reach(inner: Broker<T>): void;
  close(): void;
}

/** A listing that refuses until the engine is reached, then is the engine's. */
class DeferredDirectory<E extends DirectoryEntry, T>
  implements Directory<E>, WaitingDirectory<T> {
  #local: (query: DirectoryQuery) => DirectoryPage<E>;
  #pending: () => string | undefined;
  #forget: (self: WaitingDirectory<T>) => void;
  #inner?: Directory<E>;
  #closed = false;

  constructor(
    local: (query: DirectoryQuery) => DirectoryPage<E>,
    pending: () => string | undefined,
    forget: (self: WaitingDirectory<T>) => void,
  ) {
    this.#local = local;
    this.#pending = pending;
    this.#forget = forget;
  }

  reach(inner: Broker<T>): void {
    if (!this.#closed && inner.directory) {
      this.#inner = inner.directory(this.#local);
    }
  }

  list(query: DirectoryQuery): Promise<DirectoryPage<E>> {
    if (this.#inner) return this.#inner.list(query);
    return Promise.reject(
      new UnavailableError(`Cannot list subscribers: ${this.#pending()}`),
    );
  }

  close(): void {
    this.#closed = true;
    this.#forget(this);
    this.#inner?.close();
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
