/**
 * A worker of the process (`new Worker(…/worker.ts)`, started by
 * `supervisor.ts`): one server over the process's sequence: a hub fed by a
 * {@linkcode RelayBroker}, every transport on the shared port, heartbeats.
 * Ticks, metrics, signals and the exit belong to the main thread; so does
 * every log line (each record is handed over, and written there). What the
 * main thread may ask is {@linkcode Worker}'s `handlers`; an error nothing
 * caught is told to it (`fatal`), which replaces this worker.
 *
 * @module
 */

import { AccessControl } from "../../access/access.ts";
import { SharedTally, type SharedTallyMemory } from "../../access/tally.ts";
import { PeerShares } from "../../access/peer_shares.ts";
import { DEFAULT_MAX_BROKER_REPLAYS } from "../../bus/hub.ts";
import { healthWatches } from "../../grpc/transport.ts";
import type {
  BrokerChange,
  BusEvent,
  DirectoryQuery,
} from "../../bus/broker.ts";
import { RelayBroker, type RelayStart } from "../../bus/relay_broker.ts";
import type { SequenceMemory } from "../../bus/sequencer.ts";
import { systemClock } from "../../bus/clock.ts";
import { Logger, type LogLevel } from "../../log.ts";
import type { ResolvedServerOptions } from "../options.ts";
import {
  type GreeterServer,
  serveHub,
  type SharedLimits,
  snapshot,
} from "../server.ts";
import { Channel, type Port } from "./channel.ts";

/** The settings a worker is handed: the resolved ones that cross threads. */
export type WorkerSettings = Omit<
  ResolvedServerOptions,
  "broker" | "clock" | "log" | "access" | "metricsPort"
>;

/** What the main thread hands a worker to start it. */
export interface WorkerStart {
  /** Which worker (0, 1…): a replacement takes the index of the one it replaces. */
  index: number;
  /** Its server's settings. */
  settings: WorkerSettings;
  /** The least severe level logged. */
  logLevel: LogLevel;
  /** The token file's lines, when tokens are required. */
  tokens: readonly string[] | undefined;
  /** The sequence, as the sequencer holds it now. */
  relay: RelayStart;
  /** The main thread's `Error.stackTraceLimit`. */
  stackTraceLimit: number;
  /** Where subscriptions (in all, per peer) and connections are counted, by every worker. */
  counts: SharedTallyMemory;
}

/** The tally's keys of the totals (no peer address holds a NUL). */
const SUBSCRIBERS_KEY = "\0subscribers";
/** See {@linkcode SUBSCRIBERS_KEY}. */
const CONNECTIONS_KEY = "\0connections";

/**
 * The process's limits as this worker counts them, all in `tally` (one
 * column per worker): every pool the server bounds, and each peer's share.
 */
function sharedLimits(
  tally: SharedTally,
  settings: WorkerSettings,
): SharedLimits {
  const { maxSubscribers, maxConnections } = settings;
  return {
    peers: tally,
    subscribers: {
      take: () => tally.take(SUBSCRIBERS_KEY, maxSubscribers),
      give: () => tally.give(SUBSCRIBERS_KEY),
    },
    connections: {
      take: () => tally.take(CONNECTIONS_KEY, maxConnections),
      give: () => tally.give(CONNECTIONS_KEY),
    },
    connectionShares: new PeerShares({
      perPeer: settings.maxConnectionsPerPeer,
      what: "connections",
      tally,
    }),
    brokerReplays: new PeerShares({
      total: DEFAULT_MAX_BROKER_REPLAYS,
      what: "reads of the event stream",
      tally,
    }),
    healthWatches: new PeerShares({
      total: healthWatches(settings),
      what: "health watches",
      tally,
    }),
  };
}

/** Events a replay from the shared log reads per call. */
const REPLAY_BATCH = 16;

let server: GreeterServer | undefined;
let relay: RelayBroker | undefined;
let access: AccessControl | undefined;

const channel = new Channel(self as unknown as Port, {
  start: (init: WorkerStart) => start(init),
  drain: ({ graceMs }: { graceMs: number }) => server?.shutdown({ graceMs }),
  stats: () => server && snapshot(server.hub),
  metrics: () => server?.metrics.render(),
  page: (query: DirectoryQuery) => relay?.page(query),
  ping: () => true,
  crash: ({ message, hangMs }: { message: string; hangMs?: number }) => {
    // A debug hook (tests kill a worker this way): an error nothing
    // catches, or (`hangMs`) this thread blocked that long, answering
    // nothing, as a loop that never yields would leave it.
    setTimeout(() => {
      if (hangMs === undefined) throw new Error(message);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, hangMs);
    });
  },
}, {
  events: () => relay?.take(),
  change: ({ change, memory, pending }: {
    change: BrokerChange;
    memory: SequenceMemory;
    pending?: string;
  }) => relay?.change(change, memory, pending),
  tokens: (lines: readonly string[]) => access?.replace(lines),
});

/** An error nothing caught: the main thread replaces this worker. */
function fatal(error: unknown): void {
  channel.note("fatal", {
    message: error instanceof Error ? error.message : String(error),
    stack: error instanceof Error ? error.stack : undefined,
  });
}

self.addEventListener("error", (event) => {
  event.preventDefault();
  fatal(event.error ?? event.message);
});
self.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  fatal(event.reason);
});

/** Starts this worker's server; resolves to where it listens. */
async function start(init: WorkerStart) {
  Error.stackTraceLimit = init.stackTraceLimit;
  // Each record goes to the main thread, which writes every line.
  const log = new Logger({
    level: init.logLevel,
    forward: (record) => channel.note("log", record),
  });
  access = init.tokens && new AccessControl(init.tokens, { log });
  relay = new RelayBroker(init.relay, {
    publish: (topic, data, options) =>
      channel.call("publish", { topic, data, id: options?.id }),
    list: (query) => channel.call("list", query),
    replay: init.relay.replay ? replay : undefined,
    state: () => channel.call("state", null),
    seqAt: (timeMs) => channel.call("seqAt", { timeMs }),
  });
  const broker = relay;
  const settings = init.settings;
  server = await serveHub({
    ...settings,
    broker,
    clock: systemClock,
    log,
    access,
    metricsPort: undefined,
  }, {
    hub: {
      windows: (after) => broker.windows(after),
      nextId: () => broker.nextId(),
    },
    limits: sharedLimits(new SharedTally(init.counts, init.index), settings),
    ticks: false,
    alone: false,
    worker: init.index,
  });
  broker.take(); // what was sequenced while this worker started
  return {
    address: server.address,
    port: server.port,
    httpPort: server.httpPort,
  };
}

/** Reads the shared log through the main thread, a batch at a time. */
async function* replay(
  after: number,
  through: number,
  signal: AbortSignal,
): AsyncGenerator<BusEvent<Uint8Array>> {
  const id = await channel.call<number>("replayOpen", { after, through });
  // Left before its read came back: the main thread stops reading at once.
  const stop = () => channel.note("replayClose", id);
  signal.addEventListener("abort", stop, { once: true });
  try {
    for (;;) {
      signal.throwIfAborted();
      const { events, done } = await channel.call<{
        events: BusEvent<Uint8Array>[];
        done: boolean;
      }>("replayNext", { id, count: REPLAY_BATCH });
      yield* events;
      if (done) return;
    }
  } finally {
    signal.removeEventListener("abort", stop);
    channel.note("replayClose", id);
  }
}
