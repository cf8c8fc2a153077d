/**
 * Folder `lib/server/workers/`: one process serving on every core, one
 * sequence for all: the main thread holds the broker and the
 * {@linkcode Sequencer} (the one replay window, the clock's ticks),
 * answers what workers ask (publishes, listings, reads from a shared log),
 * serves metrics, and supervises the workers (`supervisor.ts`), each a
 * whole server on the shared port (`worker.ts`). Calls between threads go
 * through `channel.ts`. May import what `lib/server/` imports.
 *
 * This module: {@linkcode startWorkers}, the main thread's side assembled.
 *
 * @module
 */

import net from "node:net";
import { SharedTally } from "../../access/tally.ts";
import { mergePages } from "../../bus/broker.ts";
import type {
  BusEvent,
  DirectoryEntry,
  DirectoryPage,
  DirectoryQuery,
} from "../../bus/broker.ts";
import {
  DEFAULT_SERVER_REPLAY_SIZE,
  SERVER_REPLAY_BYTES,
} from "../../bus/hub.ts";
import { Sequencer } from "../../bus/sequencer.ts";
import { DEFAULT_GRACE_MS } from "../../defaults.ts";
import { GreeterError } from "../../errors.ts";
import { LOG_LEVELS, type LogLevel, type LogRecord } from "../../log.ts";
import type { MetricsEndpoint } from "../../observe/metrics_endpoint.ts";
import { Metrics } from "../../observe/metrics.ts";
import {
  engineMetrics,
  PUBLISHED_HELP,
  RECEIVED_HELP,
} from "../../observe/server_metrics.ts";
import {
  EventLoopLag,
  isolateMetrics,
  processMetrics,
} from "../../observe/runtime_metrics.ts";
import { BUILD } from "../../build.ts";
import { SummedMetrics } from "../../observe/summed_metrics.ts";
import { bindError, formatAddress } from "../../wire/address.ts";
import { listedSubscription, refusalLog } from "../engine_input.ts";
import {
  type ResolvedServerOptions,
  resolveServerOptions,
  type ServerOptions,
} from "../options.ts";
import type { BusSnapshot, RunningServer, ShutdownOptions } from "../server.ts";
import { startMetrics } from "../exporter.ts";
import { eventWeight, instanceFirstId, runTicks } from "../server_hub.ts";
import { WorkerPool } from "./supervisor.ts";
import type { WorkerSettings, WorkerStart } from "./worker.ts";

/** Options of {@linkcode startWorkers}. */
export interface WorkersOptions {
  /** How many workers serve (at least 2; one is `startServer`). */
  workers: number;
  /** How long (ms) a worker may leave a ping unanswered before it is taken for stuck. Default 10 s. */
  unresponsiveMs?: number;
}

/** A running server over workers, as returned by {@linkcode startWorkers}. */
export interface WorkersServer extends RunningServer {
  /** How many workers serve. */
  readonly workers: number;
  /** Workers replaced so far (each died). */
  readonly replaced: number;
  /** Each serving worker's counters, by worker. */
  byWorker(): Promise<Map<number, BusSnapshot>>;
  /**
   * Makes worker `index` fail as an error nothing caught would, or (with
   * `hangMs`) block its thread that long, answering nothing: a debug hook,
   * for tests of what a death costs.
   */
  crash(index: number, options?: { hangMs?: number }): void;
  /**
   * Resolves when a worker is stuck (no answer to its pings for
   * `unresponsiveMs`): it cannot be stopped or replaced, so the process
   * must stop. Never resolves otherwise.
   */
  readonly failed: Promise<Error>;
}

/**
 * Room in the windows for one event besides its payload: its topic and a
 * refusal's reason (bytes).
 */
const RECORD_ROOM_BYTES = 4096;
/** How long the last counts are waited for after the drain (a stuck worker never answers). */
const FINAL_STATS_MS = 1000;

/**
 * Refuses a port another process listens on already: the workers bind it
 * with SO_REUSEPORT, which would otherwise share it silently with any
 * process of the same user that asked the same (another greeter).
 */
async function checkPortFree(host: string, port: number): Promise<void> {
  const server = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host, port }, resolve);
    });
  } catch (error) {
    throw bindError(host, port, error as Error);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

/** The settings each worker's server runs with. */
function workerSettings(settings: ResolvedServerOptions): WorkerSettings {
  const {
    broker: _broker,
    clock: _clock,
    log: _log,
    access: _access,
    metricsPort: _metricsPort,
    ...rest
  } = settings;
  // Every worker binds the port, shared by the kernel.
  return { ...rest, reusePort: true };
}

/** Sums the workers' counters into one snapshot; the events received are the process's. */
function sum(
  snapshots: BusSnapshot[],
  epoch: string,
  seq: number,
  own: { received: number; ticked: number },
): BusSnapshot {
  const total = (key: keyof BusSnapshot) =>
    snapshots.reduce((n, s) => n + (s[key] as number), 0);
  return {
    epoch,
    seq,
    published: total("published") + own.ticked,
    received: own.received,
    size: total("size"),
    delivered: total("delivered"),
    dropped: total("dropped"),
    slowConsumerDisconnects: total("slowConsumerDisconnects"),
    resumesRecovered: total("resumesRecovered"),
    resumesMissed: total("resumesMissed"),
  };
}

/**
 * Starts `workers.workers` servers on one port, each in its own worker,
 * over one sequence held here; resolves once all serve. Rejects with a
 * `GreeterError` naming the address when the port is taken.
 *
 * @example
 * ```ts ignore
 * await using server = await startWorkers({ port: 0 }, { workers: 2 });
 * ```
 */
export async function startWorkers(
  options: ServerOptions,
  { workers, unresponsiveMs }: WorkersOptions,
): Promise<WorkersServer> {
  if (!Number.isSafeInteger(workers) || workers < 2) {
    throw new RangeError(
      `Cannot start workers: at least 2 are needed, got ${workers} (one is startServer)`,
    );
  }
  const settings = resolveServerOptions(options);
  const { log, broker, clock, access } = settings;
  if (!settings.reusePort) {
    for (const port of [settings.port, settings.httpPort]) {
      if (port) await checkPortFree(settings.host, port);
    }
  }
  const sequencer = new Sequencer(broker, {
    size: settings.replaySize,
    ownSize: DEFAULT_SERVER_REPLAY_SIZE,
    maxAgeMs: settings.replayAgeMs,
    maxBytes: settings.replayBytes,
    ownMaxBytes: Math.min(settings.replayBytes, SERVER_REPLAY_BYTES),
    sizeOf: eventWeight,
    maxRecordBytes: settings.maxMessageBytes + RECORD_ROOM_BYTES,
    firstId: broker.shared ? instanceFirstId() : 1,
    now: () => clock.now(),
  }, {
    events: (seq) => pool.note("events", seq),
    change: (change, memory) =>
      pool.note("change", { change, memory, pending: broker.pending }),
  });
  const stopSequencer = () => sequencer.close();
  try {
    // One whose engine is not reached yet is not waited for: the workers
    // refuse subscriptions meanwhile (as one server does).
    if (broker.pending === undefined) await broker.ready;
  } catch (error) {
    stopSequencer();
    throw error;
  }
  const logLevel: LogLevel = LOG_LEVELS.find((level) => log.enabled(level)) ??
    "error";
  // Reads from the shared log, by worker: each an iterator the worker pages.
  const replays = new Map<
    number,
    Map<
      number,
      { events: AsyncIterator<BusEvent<Uint8Array>>; stop: AbortController }
    >
  >();
  let replayIds = 0;
  const localPage = async (query: DirectoryQuery) =>
    mergePages(
      [...(await pool.ask<DirectoryPage<DirectoryEntry>>("page", query))
        .values()],
      query.limit,
    );
  const shared = broker.directory?.(localPage, {
    entry: listedSubscription,
    onRefused: refusalLog(
      log,
      "A listing answer from another instance left out",
    ),
  });
  // Each worker admits up to --max-connections of its own (fewer once
  // descriptors run out): the process, that many in all.
  const summed = new SummedMetrics(
    new Map([["greeter_connections_max", settings.maxConnections]]),
  );
  // Every pool's count, and each peer's share of it, kept by every worker:
  // subscriptions and patterns per peer, connections, watches, reads.
  const counts = SharedTally.allocate(
    4 * settings.maxSubscribers + settings.maxConnections,
    workers,
  );
  let fail!: (error: Error) => void;
  const failed = new Promise<Error>((resolve) => fail = resolve);
  const pool: WorkerPool = new WorkerPool({
    size: workers,
    log,
    unresponsiveMs,
    onStuck: (_index, error) => fail(new GreeterError(error.message)),
    portsKnown: settings.port !== 0 && settings.httpPort !== 0,
    init: (index, listening): WorkerStart => ({
      index,
      settings: {
        ...workerSettings(settings),
        port: listening?.port ?? settings.port,
        httpPort: listening?.httpPort ?? settings.httpPort,
      },
      logLevel,
      tokens: access?.lines,
      relay: {
        epoch: broker.epoch,
        seq: sequencer.seq,
        memory: sequencer.memory,
        shared: broker.shared ?? false,
        replay: broker.replay !== undefined,
        pending: broker.pending,
      },
      stackTraceLimit: Error.stackTraceLimit,
      counts,
    }),
    handlers: (index) => ({
      publish: async (
        { topic, data, id }: { topic: string; data: Uint8Array; id?: string },
      ) => {
        const event = await broker.publish(topic, data, { id });
        return { seq: event.seq, time: event.time, duplicate: event.duplicate };
      },
      state: () => broker.state!(),
      seqAt: ({ timeMs }: { timeMs: number }) => broker.seqAt!(timeMs),
      list: (query: DirectoryQuery) =>
        shared ? shared.list(query) : localPage(query),
      replayOpen: ({ after, through }: { after: number; through: number }) => {
        const stop = new AbortController();
        const events = broker.replay!(after, through, stop.signal)
          [Symbol.asyncIterator]();
        const id = ++replayIds;
        let open = replays.get(index);
        if (!open) replays.set(index, open = new Map());
        open.set(id, { events, stop });
        return id;
      },
      replayNext: async ({ id, count }: { id: number; count: number }) => {
        const replay = replays.get(index)?.get(id);
        const events: BusEvent<Uint8Array>[] = [];
        if (!replay) return { events, done: true };
        while (events.length < count) {
          const next = await replay.events.next();
          if (next.done) return { events, done: true };
          events.push(next.value);
        }
        return { events, done: false };
      },
    }),
    notes: (index) => ({
      log: ({ level, msg, fields }: LogRecord) => log[level](msg, fields),
      replayClose: (id: number) => closeReplay(index, id),
    }),
    onStarted: () => {
      if (broker.engine?.up === false) {
        pool.note("change", {
          change: { kind: "engine", up: false, reason: "not reachable" },
          memory: sequencer.memory,
          pending: broker.pending,
        });
      }
    },
    onGone: (index) => {
      SharedTally.release(counts, index);
      for (const id of replays.get(index)?.keys() ?? []) closeReplay(index, id);
      summed.retire(index);
    },
  });
  function closeReplay(index: number, id: number) {
    const replay = replays.get(index)?.get(id);
    if (!replay) return;
    replays.get(index)!.delete(id);
    replay.stop.abort();
    void replay.events.return?.()?.catch?.(() => {});
  }
  let address: string;
  let port: number;
  let httpPort: number | undefined;
  try {
    ({ address, port, httpPort } = await pool.start());
  } catch (error) {
    shared?.close();
    stopSequencer();
    throw error;
  }
  const stopTokens = access?.watch((lines) => pool.note("tokens", lines));
  log.info(`Starting server on ${address}`, { port, workers });
  if (httpPort !== undefined) {
    const http = formatAddress(settings.host, httpPort);
    log.info(`HTTP on ${settings.tls ? "https" : "http"}://${http}`, {
      httpPort,
    });
  }
  // The process's own families, rendered here, and this thread's: the
  // workers' are summed to them.
  const own = new Metrics();
  /** The ticks this process published (the workers count their publishes). */
  let ticked = 0;
  processMetrics(own, BUILD);
  const lag = new EventLoopLag(isolateMetrics(own, { worker: "main" }));
  if (broker.engine) engineMetrics(own, broker);
  // The ticks published here; the workers' publishes are summed to them.
  own.collected(
    "greeter_events_published_total",
    PUBLISHED_HELP,
    "counter",
    () => [[{}, ticked]],
  );
  // Each worker's hub takes every event in: the process reads each once.
  own.collected(
    "greeter_events_received_total",
    RECEIVED_HELP,
    "counter",
    () => [[{}, sequencer.published]],
  );
  own.collected(
    "greeter_workers",
    "Workers serving (--workers).",
    "gauge",
    () => [[{}, workers]],
  );
  own.collected(
    "greeter_workers_replaced_total",
    "Workers that died and were replaced.",
    "counter",
    () => [[{}, pool.replaced]],
  );
  const metrics = {
    render: async () => {
      const texts = await pool.ask<string>("metrics", null);
      return summed.render(own.render(), texts);
    },
  };
  let exporter: MetricsEndpoint | undefined;
  try {
    exporter = startMetrics(settings, metrics, []);
  } catch (error) {
    pool.end();
    shared?.close();
    stopSequencer();
    throw error;
  }
  const draining = new AbortController();
  const ticks = runTicks(
    (topic, data, options) =>
      broker.publish(topic, data, options).then((event) => {
        if (!event.duplicate) ticked++; // another instance's tick otherwise
      }),
    {
      intervalMs: settings.intervalMs,
      clock,
      log,
      signal: draining.signal,
      shared: broker.shared ?? false,
    },
  );
  const stats = async (timeoutMs?: number) =>
    sum(
      [...(await pool.ask<BusSnapshot>("stats", null, { timeoutMs })).values()],
      broker.epoch,
      sequencer.seq,
      { received: sequencer.published, ticked },
    );
  /** What the workers said last, once they are gone. */
  let final: BusSnapshot | undefined;
  let stopping: Promise<void> | undefined;
  const shutdown = ({ graceMs = DEFAULT_GRACE_MS }: ShutdownOptions = {}) =>
    stopping ??= (async () => {
      draining.abort();
      stopTokens?.();
      await ticks;
      await pool.drain(graceMs);
      // Bounded: a stuck worker, which the drain gave up on, never answers.
      final = await stats(FINAL_STATS_MS);
      pool.end();
      shared?.close();
      stopSequencer();
      lag.stop();
      await exporter?.stop();
    })();
  return {
    address,
    port,
    httpPort,
    metricsPort: exporter?.port,
    workers,
    get replaced() {
      return pool.replaced;
    },
    crash: (index, options) => pool.crash(index, options),
    failed,
    byWorker: () => pool.ask<BusSnapshot>("stats", null),
    stats: () => final ? Promise.resolve(final) : stats(),
    shutdown,
    [Symbol.asyncDispose]: () => shutdown(),
  };
}
