/**
 * Folder `lib/bus/nats/`: the bus on NATS: the JetStream broker (here), its
 * stream (`jetstream_stream.ts`), listings across instances over core NATS
 * (`directory.ts`) and a guard against one nats.js transport error
 * (`transport_guard.ts`). May import `lib/bus/`, the `@nats-io/*` packages
 * and the shared modules of `lib/`.
 *
 * A {@linkcode Broker} on NATS JetStream: every instance publishes into one
 * stream and reads all of it, so instances share one sequence (the stream's
 * sequence numbers), one epoch (the stream's creation time) and therefore
 * each other's cursors. Fan-out stays local to each instance's hub.
 *
 * @module
 */

import { connect } from "@nats-io/transport-node";
import {
  credsAuthenticator,
  headers as natsHeaders,
  type NatsConnection,
  nkeyAuthenticator,
} from "@nats-io/nats-core";
import {
  type ConsumerMessages,
  DeliverPolicy,
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  type JsMsg,
  type StreamInfo,
} from "@nats-io/jetstream";
import type {
  Broker,
  BrokerChange,
  BusEvent,
  Directory,
  DirectoryEntry,
  DirectoryOptions,
  DirectoryPage,
  DirectoryQuery,
  EngineStats,
  EventRefusal,
  LogState,
  PublishOptions,
} from "../broker.ts";
import { quote } from "../../escape.ts";
import { UnavailableError } from "../../errors.ts";
import { systemClock } from "../clock.ts";
import { natsDirectory } from "./directory.ts";
import { guardNatsTransport } from "./transport_guard.ts";
import {
  ensureStream,
  streamEpoch,
  type StreamSettings,
} from "./jetstream_stream.ts";

/** The header that carries an event's topic. */
const TOPIC_HEADER = "Greeter-Topic";

/** How long a publish waits for JetStream's acknowledgement (ms). */
const PUBLISH_TIMEOUT_MS = 5_000;

/** How long a publish waits for this instance to read back its event (ms). */
const READ_BACK_MS = 2_000;

/** Events a replay from the stream asks for at a time. */
const REPLAY_BATCH = 16;

/** A replay from the stream ends after this long (ms) without an event. */
const REPLAY_IDLE_MS = 5_000;

/** How long (ms) a time lookup waits for the stream's first event since then. */
const SEQ_AT_WAIT_MS = 2_000;

/**
 * How often (ms) the stream's first seq is asked again: events leave the
 * stream by age and size while the reader runs, and a resume below the
 * first must not be promised as recovered.
 */
const FIRST_REFRESH_MS = 1_000;

/**
 * Idle heartbeat of the reader's consumer (ms): with the default 15 s, a
 * reader took over 8 s to resume after a stream leader was killed; 1 s
 * resumed at once (measured on 2.9.10).
 */
const READER_HEARTBEAT_MS = 1_000;

/**
 * How often the connection pings nats-server (ms). Two unanswered pings end
 * it, so a dead path that closes nothing (a frozen link) is seen lost within
 * 4 to 6 s, as quickly as a publish times out; with 10 s it took 20 to 30 s,
 * all that time reported healthy while every publish failed.
 */
const PING_INTERVAL_MS = 2_000;

/**
 * How long one (re)connection attempt may take (ms): an attempt into a
 * path that swallows bytes waits this long (20 s by default) before the next.
 */
const CONNECT_TIMEOUT_MS = 5_000;

/** Where the engine is, who we are to it, and how the stream is kept. */
export interface JetStreamBrokerOptions extends StreamSettings {
  /** NATS servers, `host:port` or `nats://host:port`. */
  servers: string[];
  /** User name, with `password`. */
  user?: string;
  /** Password of `user`. */
  password?: string;
  /** Authentication token (instead of user and password). */
  token?: string;
  /** A user's nkey seed (`SU…`), for nats-server's nkey users. */
  nkeySeed?: Uint8Array;
  /** A credentials file's content (a user JWT and its nkey seed). */
  creds?: Uint8Array;
  /**
   * The connection's name, as nats-server's monitoring shows it. Default
   * `greeter`; give each instance its own (`greeter HOST PID`).
   */
  name?: string;
  /**
   * TLS to NATS, required (nats.js refuses a server that offers none, before
   * it sends anything): PEM file paths of the CA to trust (else the
   * system's) and of a client certificate and its key.
   */
  tls?: { ca?: string; cert?: string; key?: string };
  /** Events read back at start, so this instance can replay them. */
  preload: number;
  /**
   * Checks each event read from the stream (which anyone nats-server lets
   * publish there can write): one it refuses is handed on marked
   * `rejected`, with no data (the hub turns it into gaps). Messages on
   * other subjects than `STREAM.events` are refused whatever it says.
   */
  check?: (topic: string, data: Uint8Array) => EventRefusal | undefined;
  /** Told of each event refused as it is read live (not again on replays). */
  onRejected?: (event: BusEvent<Uint8Array>, refusal: EventRefusal) => void;
}

/** The data of a refused event: none. */
const NO_DATA = new Uint8Array(0);

/**
 * Events in one JetStream stream, shared by every instance that names it.
 * Publishing waits for JetStream's acknowledgement; a supervised reader hands
 * every stored event to the listeners in stream order, recreating its
 * consumer at the next seq whenever the engine comes back, and checking that
 * the stream is still the same one (else: a `reset` to its new epoch).
 *
 * @example
 * ```ts ignore
 * const broker = await JetStreamBroker.connect({
 *   servers: ["127.0.0.1:4222"], maxEvents: 10_000, maxBytes: 64 << 20,
 *   maxAgeMs: 300_000, preload: 10_000,
 * });
 * broker.listen((event) => console.log(event.seq, event.topic));
 * await broker.ready;
 * await broker.publish("news", new TextEncoder().encode("hi"));
 * await broker.close();
 * ```
 */
export class JetStreamBroker implements Broker<Uint8Array> {
  #nc: NatsConnection;
  #js: JetStreamClient;
  #jsm: JetStreamManager;
  #options: JetStreamBrokerOptions;
  #stream: string;
  #subject: string;
  #epoch: string;
  /** The last seq handed to listeners. */
  #seq: number;
  /** The newest seq known to be in the stream. */
  #head: number;
  /** The oldest seq the stream held when last asked. */
  #first: number;
  /** The stream's count limit (0: none): the first seq is at least head less it. */
  #maxEvents: number;
  #refreshing?: Promise<void>;
  #listeners = new Set<(event: BusEvent<Uint8Array>) => void>();
  #watchers = new Set<(change: BrokerChange) => void>();
  /** Publishes waiting to read their event back, by seq. */
  #readBack = new Map<number, Array<(event?: BusEvent<Uint8Array>) => void>>();
  #messages?: ConsumerMessages;
  /** Ends the reader's wait between two attempts (see `#wakeReader`). */
  #backoff?: AbortController;
  #reading?: Promise<void>;
  #closed = new AbortController();
  #up = true;
  #stats = {
    reconnects: 0,
    published: 0,
    refusedAnswers: {} as Record<string, number>,
    rejectedEvents: {} as Record<string, number>,
  };
  /** Told each acknowledged publish's round trip, in seconds. */
  #acknowledged = new Set<(seconds: number) => void>();
  #ready: PromiseWithResolvers<void> = Promise.withResolvers();
  #readyAt: number;

  private constructor(
    nc: NatsConnection,
    jsm: JetStreamManager,
    info: StreamInfo,
    options: JetStreamBrokerOptions,
  ) {
    this.#nc = nc;
    this.#jsm = jsm;
    this.#js = jetstream(nc);
    this.#options = options;
    this.#stream = info.config.name;
    this.#subject = `${this.#stream}.events`;
    this.#epoch = streamEpoch(info.created);
    const { first_seq: first, last_seq: last } = info.state;
    this.#head = last;
    this.#first = Math.max(first, 1);
    this.#maxEvents = Math.max(info.config.max_msgs, 0);
    this.#readyAt = last;
    this.#seq = Math.max(first, 1, last - options.preload + 1) - 1;
    if (this.#seq >= last) this.#ready.resolve();
  }

  /**
   * Connects to the engine, creates the stream if it does not exist (or
   * adopts the one that does, warning when its limits differ), and returns
   * the broker. Throws {@linkcode UnavailableError} when no server answers.
   */
  static async connect(
    options: JetStreamBrokerOptions,
  ): Promise<JetStreamBroker> {
    guardNatsTransport();
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: options.servers,
        user: options.user,
        pass: options.password,
        token: options.token,
        authenticator: options.creds
          ? credsAuthenticator(options.creds)
          : options.nkeySeed
          ? nkeyAuthenticator(options.nkeySeed)
          : undefined,
        tls: options.tls && {
          caFile: options.tls.ca,
          certFile: options.tls.cert,
          keyFile: options.tls.key,
        },
        name: options.name ?? "greeter",
        // Replies come to inboxes under the stream's name, so that nats-server
        // can let instances read theirs and no one else's.
        inboxPrefix: inboxPrefix(options.stream ?? "greeter"),
        maxReconnectAttempts: -1,
        // Credentials refused twice must not end the connection for good: an
        // operator who fixes them on nats-server gets the instance back.
        ignoreAuthErrorAbort: true,
        reconnectTimeWait: 250,
        pingInterval: PING_INTERVAL_MS,
        timeout: CONNECT_TIMEOUT_MS,
      });
    } catch (error) {
      throw new UnavailableError(
        `Cannot connect to NATS at ${options.servers.join(",")}: ${
          (error as Error).message
        }`,
        { cause: error },
      );
    }
    try {
      // No account-wide `$JS.API.INFO` check: the instances need (and nats-server
      // may grant them) the API of their own stream only.
      const jsm = await jetstreamManager(nc, { checkAPI: false });
      const info = await ensureStream(jsm, options);
      const broker = new JetStreamBroker(nc, jsm, info, options);
      broker.#watchConnection();
      broker.#refreshing = broker.#refreshFirst();
      return broker;
    } catch (error) {
      await nc.close();
      throw new UnavailableError(
        `Cannot use JetStream stream "${options.stream ?? "greeter"}" at ${
          options.servers.join(",")
        }: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  /** Other instances share this stream. */
  get shared(): boolean {
    return true;
  }

  /**
   * Answers listings of other instances with `local` (on core NATS subject
   * `STREAM.directory`, outside the stream) and asks every instance,
   * itself included, for each listing. Answers it leaves out are counted
   * by cause ({@linkcode EngineStats.refusedAnswers}).
   */
  directory<E extends DirectoryEntry>(
    local: (
      query: DirectoryQuery,
    ) => DirectoryPage<E> | Promise<DirectoryPage<E>>,
    options: DirectoryOptions<E> = {},
  ): Directory<E> {
    return natsDirectory(this.#nc, `${this.#stream}.directory`, local, {
      ...options,
      onRefused: (cause, detail) => {
        const counts = this.#stats.refusedAnswers;
        counts[cause] = (counts[cause] ?? 0) + 1;
        options.onRefused?.(cause, detail);
      },
    });
  }

  /** The stream's incarnation: its creation time. */
  get epoch(): string {
    return this.#epoch;
  }

  /** The last seq handed to listeners. */
  get seq(): number {
    return this.#seq;
  }

  /** The newest seq known to be in the stream. */
  get head(): number {
    return Math.max(this.#head, this.#seq);
  }

  /**
   * The oldest seq the stream holds, as last asked (at most
   * {@linkcode FIRST_REFRESH_MS} ago), and never below what its count limit
   * lets it keep behind the head.
   */
  get first(): number {
    const byCount = this.#maxEvents > 0 ? this.head - this.#maxEvents + 1 : 1;
    return Math.max(this.#first, byCount);
  }

  /**
   * Reads the stored events after `after` through `through` with a consumer
   * of its own (a resume older than an instance's window); ends at
   * `through`, at the stream's end, or after 5 s without an event.
   */
  async *replay(
    after: number,
    through: number,
    signal: AbortSignal,
  ): AsyncIterable<BusEvent<Uint8Array>> {
    if (through <= after || signal.aborted) return;
    const consumer = await this.#js.consumers.get(this.#stream, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: after + 1,
    });
    const messages = await consumer.consume({
      // What a stalled reader makes this instance hold: a few events.
      max_messages: REPLAY_BATCH,
      idle_heartbeat: READER_HEARTBEAT_MS,
      expires: 5_000,
    });
    let idle: ReturnType<typeof setTimeout> | undefined;
    const stop = () => messages.stop();
    const quiet = () => {
      clearTimeout(idle);
      idle = setTimeout(stop, REPLAY_IDLE_MS);
    };
    signal.addEventListener("abort", stop, { once: true });
    if (signal.aborted) stop(); // it left while the consumer was being made
    quiet();
    try {
      for await (const message of messages) {
        // The idle bound is the engine's, not the reader's: paused while
        // the reader takes its time over an event.
        clearTimeout(idle);
        yield this.#event(message)[0];
        if (message.seq >= through || message.info.pending === 0) break;
        quiet();
      }
    } finally {
      clearTimeout(idle);
      signal.removeEventListener("abort", stop);
      messages.stop();
    }
  }

  /**
   * What the stream holds now, asked of JetStream (`StreamInfo`). Throws
   * {@linkcode UnavailableError} when the engine does not answer.
   */
  async state(): Promise<LogState> {
    let info: StreamInfo;
    try {
      info = await this.#jsm.streams.info(this.#stream);
    } catch (error) {
      throw new UnavailableError(
        `Cannot read the state of the event stream "${this.#stream}" (NATS): ${
          (error as Error).message
        }; retry in a moment`,
        { cause: error },
      );
    }
    const { messages, bytes, first_seq, last_seq, first_ts, last_ts } =
      info.state;
    return {
      store: "nats",
      firstSeq: messages > 0 ? first_seq : 0,
      lastSeq: last_seq,
      events: messages,
      bytes,
      firstTimeMs: messages > 0 ? Date.parse(first_ts) || 0 : 0,
      lastTimeMs: messages > 0 ? Date.parse(last_ts) || 0 : 0,
    };
  }

  /**
   * The seq of the first event the stream holds published at or after
   * `timeMs` (a consumer of its own that starts there reads one); undefined
   * when none is yet. Throws {@linkcode UnavailableError} when the engine
   * does not answer.
   */
  async seqAt(timeMs: number): Promise<number | undefined> {
    try {
      const consumer = await this.#js.consumers.get(this.#stream, {
        deliver_policy: DeliverPolicy.StartTime,
        opt_start_time: new Date(timeMs).toISOString(),
      });
      const message = await consumer.next({ expires: SEQ_AT_WAIT_MS });
      return message?.seq;
    } catch (error) {
      throw new UnavailableError(
        `Cannot find the events since ${
          new Date(timeMs).toISOString()
        } in the event stream "${this.#stream}" (NATS): ${
          (error as Error).message
        }; retry in a moment`,
        { cause: error },
      );
    }
  }

  /** Resolves once the events that were in the stream at start were read. */
  get ready(): Promise<void> {
    return this.#ready.promise;
  }

  /** Lag, reconnects, publishes, and whether the engine is up. */
  get engine(): EngineStats {
    return {
      ...this.#stats,
      refusedAnswers: { ...this.#stats.refusedAnswers },
      rejectedEvents: { ...this.#stats.rejectedEvents },
      lag: this.head - this.#seq,
      up: this.#up,
    };
  }

  /**
   * Appends an event to the stream and resolves once JetStream acknowledged
   * it (and, within 2 s, once this instance read it back, so that it carries
   * the stored time). Rejects with {@linkcode UnavailableError} when the
   * engine did not acknowledge it: then it may or may not be stored.
   */
  async publish(
    topic: string,
    data: Uint8Array,
    options: PublishOptions = {},
  ): Promise<BusEvent<Uint8Array>> {
    if (!this.#up || this.#closed.signal.aborted) {
      throw new UnavailableError(
        `Cannot publish on "${topic}": the event stream (NATS) is unreachable; retry later`,
      );
    }
    const headers = natsHeaders();
    headers.set(TOPIC_HEADER, topic);
    const started = performance.now();
    let seq: number;
    let duplicate = false;
    try {
      const ack = await this.#js.publish(this.#subject, data, {
        headers,
        msgID: options.id,
        timeout: PUBLISH_TIMEOUT_MS,
      });
      seq = ack.seq;
      duplicate = ack.duplicate;
    } catch (error) {
      throw new UnavailableError(
        `Cannot publish on "${topic}": the event stream (NATS) did not acknowledge it (${
          (error as Error).message
        }); retry`,
        { cause: error },
      );
    }
    this.#stats.published++;
    const seconds = (performance.now() - started) / 1000;
    for (const listener of this.#acknowledged) listener(seconds);
    if (seq > this.#head) this.#head = seq;
    this.#wakeReader();
    const event = await this.#readBackEvent(seq) ??
      { kind: "event", seq, time: Date.now(), topic, data };
    return duplicate ? { ...event, duplicate: true } : event;
  }

  /** Adds a listener of every later event; the first one starts the reader. */
  listen(listener: (event: BusEvent<Uint8Array>) => void): () => void {
    this.#listeners.add(listener);
    this.#reading ??= this.#read();
    return () => this.#listeners.delete(listener);
  }

  /** Adds a listener of each acknowledged publish's round trip, in seconds. */
  onAcknowledged(listener: (seconds: number) => void): () => void {
    this.#acknowledged.add(listener);
    return () => this.#acknowledged.delete(listener);
  }

  /** Adds a watcher of resets and of the engine's loss and return. */
  watch(listener: (change: BrokerChange) => void): () => void {
    this.#watchers.add(listener);
    return () => this.#watchers.delete(listener);
  }

  /** Stops reading and closes the connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort();
    this.#messages?.stop();
    await this.#reading;
    await this.#refreshing;
    await this.#nc.close();
    this.#ready.resolve();
  }

  #readBackEvent(seq: number): Promise<BusEvent<Uint8Array> | undefined> {
    if (seq <= this.#seq) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const done = (event?: BusEvent<Uint8Array>) => {
        clearTimeout(timer);
        resolve(event);
      };
      const timer = setTimeout(() => {
        const waiting = this.#readBack.get(seq);
        waiting?.splice(waiting.indexOf(done), 1);
        if (waiting?.length === 0) this.#readBack.delete(seq);
        done();
      }, READ_BACK_MS);
      const waiting = this.#readBack.get(seq);
      if (waiting) waiting.push(done);
      else this.#readBack.set(seq, [done]);
    });
  }

  async #watchConnection(): Promise<void> {
    for await (const status of this.#nc.status()) {
      if (status.type === "disconnect" && this.#up) {
        this.#setUp(false, `lost the connection to ${status.server}`);
      } else if (status.type === "reconnect") {
        this.#stats.reconnects++;
        this.#setUp(true, `reconnected to ${status.server}`);
        this.#messages?.stop(); // recreate the reader, recheck the stream
        this.#wakeReader();
      }
    }
  }

  /** Asks the stream's first seq again every {@linkcode FIRST_REFRESH_MS}. */
  async #refreshFirst(): Promise<void> {
    const signal = this.#closed.signal;
    while (!signal.aborted) {
      try {
        await systemClock.sleep(FIRST_REFRESH_MS, signal);
        const info = await unlessAborted(
          this.#jsm.streams.info(this.#stream),
          signal,
        );
        // A stream made anew is the reader's to find (a reset).
        if (streamEpoch(info.created) !== this.#epoch) continue;
        this.#first = Math.max(info.state.first_seq, 1);
        this.#maxEvents = Math.max(info.config.max_msgs, 0);
      } catch {
        // Closed, or the engine is away: the reader says so; ask again.
      }
    }
  }

  #setUp(up: boolean, reason: string): void {
    if (this.#up === up) return;
    this.#up = up;
    this.#options.onNotice?.(
      up ? "info" : "warn",
      up ? "Event stream regained" : "Event stream lost",
      { stream: this.#stream, reason },
    );
    this.#tell({ kind: "engine", up, reason });
  }

  #tell(change: BrokerChange): void {
    for (const watcher of this.#watchers) watcher(change);
  }

  /**
   * The supervised reader: an ordered consumer from the next seq; on any
   * trouble (a recreated consumer, missed heartbeats, a reconnect, an error)
   * it is stopped and made anew at the next seq, after checking the stream.
   */
  async #read(): Promise<void> {
    const signal = this.#closed.signal;
    let backoffMs = 250;
    while (!signal.aborted) {
      try {
        // close() must not wait for a request to an engine that is away
        // (up to its 5 s timeout): these waits end when it is called.
        await unlessAborted(this.#checkStream(), signal);
        const consumer = await unlessAborted(
          this.#js.consumers.get(this.#stream, {
            deliver_policy: DeliverPolicy.StartSequence,
            opt_start_seq: this.#seq + 1,
          }),
          signal,
        );
        const messages = await unlessAborted(
          consumer.consume({
            idle_heartbeat: READER_HEARTBEAT_MS,
            expires: 5_000,
          }),
          signal,
        );
        this.#messages = messages;
        if (signal.aborted) messages.stop();
        this.#superviseConsumer(messages);
        for await (const message of messages) {
          this.#receive(message);
          backoffMs = 250;
        }
      } catch (error) {
        if (!signal.aborted) {
          this.#options.onNotice?.("warn", "Event stream reader restarts", {
            stream: this.#stream,
            reason: (error as Error).message,
          });
        }
      } finally {
        this.#messages?.stop();
        this.#messages = undefined;
      }
      if (signal.aborted) break;
      const backoff = this.#backoff = new AbortController();
      await systemClock.sleep(
        backoffMs,
        AbortSignal.any([signal, backoff.signal]),
      )
        .catch(() => {});
      this.#backoff = undefined;
      backoffMs = Math.min(backoffMs * 2, 5_000);
    }
  }

  /**
   * Ends the reader's wait between attempts once the engine shows it is
   * back (a publish acknowledged: the stream has a leader again; a
   * reconnect). Its backoff grows to 5 s while an election fails every
   * attempt; without this, a reader that failed through a 6 s election of
   * a new stream leader could wait up to 5 s more, plus a request timeout,
   * while every publish was acknowledged again.
   */
  #wakeReader(): void {
    this.#backoff?.abort();
  }

  async #superviseConsumer(messages: ConsumerMessages): Promise<void> {
    for await (const status of messages.status()) {
      const stall = status.type === "ordered_consumer_recreated" ||
        status.type === "stream_not_found" ||
        (status.type === "heartbeats_missed" && status.count >= 2);
      if (stall) {
        messages.stop();
        return;
      }
    }
  }

  /**
   * Rereads the stream's identity: a stream recreated (or lost with its
   * memory storage and made anew) has a new creation time, so a new epoch,
   * and its seqs start again: listeners are told to reset.
   */
  async #checkStream(): Promise<void> {
    // Its limits were warned about at connect: not again at every restart.
    const info = await ensureStream(this.#jsm, {
      ...this.#options,
      onNotice: undefined,
    });
    if (info.state.last_seq > this.#head) this.#head = info.state.last_seq;
    this.#first = Math.max(info.state.first_seq, 1);
    this.#maxEvents = Math.max(info.config.max_msgs, 0);
    const epoch = streamEpoch(info.created);
    if (epoch === this.#epoch) return;
    const previous = this.#epoch;
    this.#epoch = epoch;
    this.#seq = Math.max(info.state.first_seq, 1) - 1;
    this.#head = info.state.last_seq;
    const reason =
      `the event stream "${this.#stream}" was recreated (epoch ${previous} is gone)`;
    this.#options.onNotice?.("warn", "Event stream replaced", {
      stream: this.#stream,
      epoch,
      previous,
    });
    this.#tell({ kind: "reset", epoch, seq: this.#seq, reason });
  }

  /**
   * The event `message` holds, or, when this instance refuses it (see
   * {@linkcode JetStreamBrokerOptions.check}), its place in the sequence:
   * marked `rejected`, with no data.
   */
  #event(message: JsMsg): [BusEvent<Uint8Array>, EventRefusal?] {
    const seq = message.seq;
    const time = Math.floor(Number(message.info.timestampNanos) / 1e6);
    const topic = message.headers?.get(TOPIC_HEADER) ?? "";
    const refusal = message.subject !== this.#subject
      ? {
        reason: "subject",
        detail: `a message on ${
          quote(message.subject.slice(0, 160))
        }, not ${this.#subject}`,
      }
      : this.#options.check?.(topic, message.data);
    if (!refusal) {
      return [{
        kind: "event",
        seq,
        time,
        topic,
        data: ownBytes(message.data),
      }];
    }
    return [{
      kind: "event",
      seq,
      time,
      topic,
      data: NO_DATA,
      rejected: refusal.reason,
    }, refusal];
  }

  #receive(message: JsMsg): void {
    const seq = message.seq;
    if (seq <= this.#seq) return; // read again after a reconsume
    const [event, refusal] = this.#event(message);
    if (refusal) {
      // Counted and told once, as read live: a replay meets it again
      // (and hands its gaps on) without a word.
      const counts = this.#stats.rejectedEvents;
      counts[refusal.reason] = (counts[refusal.reason] ?? 0) + 1;
      this.#options.onRejected?.(event, refusal);
    }
    this.#seq = seq;
    if (seq > this.#head) this.#head = seq;
    for (const listener of this.#listeners) listener(event);
    if (seq >= this.#readyAt) this.#ready.resolve();
    if (this.#readBack.size > 0) {
      for (const [waited, resolvers] of this.#readBack) {
        if (waited > seq) continue;
        this.#readBack.delete(waited);
        for (const resolve of resolvers) {
          resolve(waited === seq ? event : undefined);
        }
      }
    }
  }
}

/**
 * Where a broker on stream `stream` gets its replies (requests to
 * JetStream, listings, consumers' deliveries): `_INBOX_STREAM`, so that
 * nats-server's permissions can give the instances `_INBOX_STREAM.>` alone.
 *
 * @example
 * ```ts
 * import { inboxPrefix } from "./jetstream_broker.ts";
 * inboxPrefix("greeter"); // "_INBOX_greeter"
 * ```
 */
export function inboxPrefix(stream: string): string {
  return `_INBOX_${stream}`;
}

/**
 * `data` in a buffer of its own: a view into a larger receive buffer would
 * keep all of it alive in the replay window, which charges only the view.
 */
function ownBytes(data: Uint8Array): Uint8Array {
  return data.byteLength === data.buffer.byteLength ? data : data.slice();
}

/**
 * `promise`, or a rejection as soon as `signal` aborts (`promise` is left
 * to settle on its own; its outcome is then ignored).
 */
function unlessAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal,
): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason);
    signal.addEventListener("abort", abort, { once: true });
    promise.then(resolve, reject).finally(() =>
      signal.removeEventListener("abort", abort)
    );
  });
}
