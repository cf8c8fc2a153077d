/**
 * `BENCH_ONLY=http`: the HTTP port's fan-out beside gRPC's, in one run:
 * `BENCH_HTTP_SUBSCRIBERS` (5,000) subscribers, each row against a fresh
 * server process, in two regimes:
 *
 * - **tick**: the server's clock at 10 ms (100 events/s per subscriber):
 *   gRPC's tick path (`SayHelloStreamReply`: a reply made per subscriber),
 *   server-sent events of `tick` over HTTP/1.1, one connection each (how a
 *   browser on plain HTTP connects) and over HTTP/2 with TLS, 25
 *   connections of 200 streams (hyper's most per connection), `Subscribe`
 *   over Connect (`+proto`) the same way, and the floor: a bare
 *   `Deno.serve` SSE server (`bench/bare_sse_server.ts`: no hub, no bound,
 *   no backpressure, its own 10 ms timer) over HTTP/1.1, HTTP/2 TLS and h2c: what the
 *   platform costs before the greeter adds anything;
 * - **broadcast**: a publisher process (`bench/publisher.ts`) calling
 *   `Publish` on `bench` every 10 ms, as the broadcast section runs it:
 *   gRPC `Subscribe` (one encoding shared by every subscriber), and the
 *   same three HTTP rows subscribed to `bench`, and SSE over h2c (plain
 *   HTTP/2, as the gRPC rows connect: HTTP/2's cost apart from TLS's). A
 *   server that falls behind takes several events per wake-up here, where
 *   the clock skips its late ticks.
 *
 * gRPC subscribers come from `bench/pool.ts` as its own process over 25
 * connections (h2c); HTTP ones from `h2load` (nghttp2's client: it reads the
 * bytes and decodes nothing). Each row: events per second delivered (the
 * server's count of events handed to its transport,
 * `greeter_events_delivered_total`, or the bare server's), what was offered,
 * the server's and the client's CPU, the machine's load, **events per
 * server CPU-second**, and **KB of RSS per subscriber** (under the load,
 * less the RSS before they subscribed); then same-run ratios of events per
 * CPU-second. `BENCH_HTTP_ROWS` picks rows, `BENCH_HTTP_ROUNDS` repeats
 * them interleaved (the ratios then take each row's median).
 *
 * @module
 */

import os from "node:os";
import { setTimeout as delay } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import { join } from "node:path";
import type { Bench, Scenario } from "../bench.ts";
import type { Report } from "../report.ts";
import { cpuSeconds, rssKb } from "../resources.ts";
import { envList, envNumber, SECONDS, WARM_UP_MS } from "../settings.ts";
import { greeterDescriptors } from "../../lib/wire/descriptors.ts";
import {
  LineProcess,
  scriptArgs,
  spawnSubscriberPool,
} from "../../testing/process.ts";
import { makeTestPki, OPENSSL_MISSING } from "../../testing/tls.ts";

/** Subscribers of every row (`BENCH_HTTP_SUBSCRIBERS`). */
export const HTTP_SUBSCRIBERS: number = envNumber(
  "BENCH_HTTP_SUBSCRIBERS",
  5000,
);

/**
 * Where a row's events come from: the server's own clock at 10 ms
 * (`tick`), or a publisher process calling `Publish` every 10 ms
 * (`broadcast`, as the broadcast section runs it: a server behind takes
 * several events per wake-up).
 */
type Regime = "tick" | "broadcast";

/** The rows, by name. */
type RowKey =
  | "grpc-tick"
  | "sse-h1-tick"
  | "bare-h1"
  | "sse-h2-tick"
  | "connect-h2-tick"
  | "bare-h2"
  | "grpc-broadcast"
  | "sse-h1-broadcast"
  | "sse-h2-broadcast"
  | "sse-h2c-broadcast"
  | "connect-h2-broadcast"
  | "bare-h2c";

/** The rows to run (`BENCH_HTTP_ROWS`, comma-separated: all by default). */
const HTTP_ROWS: string[] = envList(
  "BENCH_HTTP_ROWS",
  [
    "grpc-tick",
    "sse-h1-tick",
    "bare-h1",
    "sse-h2-tick",
    "connect-h2-tick",
    "bare-h2",
    "grpc-broadcast",
    "sse-h1-broadcast",
    "sse-h2-broadcast",
    "sse-h2c-broadcast",
    "connect-h2-broadcast",
    "bare-h2c",
  ].join(","),
);

/** Rounds of the rows, interleaved (`BENCH_HTTP_ROUNDS`). */
const HTTP_ROUNDS: number = envNumber("BENCH_HTTP_ROUNDS", 1);

/** Streams per HTTP/2 connection: hyper's most, not settable. */
const STREAMS_PER_CONNECTION = 200;

/** The tick of every row (ms): 100 events/s per subscriber. */
const TICK_MS = 10;

/** A server a row measures, started and ready. */
interface Contender extends AsyncDisposable {
  /** Its process (the one whose CPU and RSS count). */
  pid: number;
  /** Events handed to its transport so far. */
  delivered(): Promise<number>;
  /** Events published so far (ticks). */
  published(): Promise<number>;
  /** Subscriptions live now. */
  subscribers(): Promise<number>;
}

/** Where an HTTP row connects, and how. */
interface HttpClient {
  /**
   * `h1`: one connection per subscriber; `h2`: 200 streams per connection
   * over TLS; `h2c`: the same in plain text (HTTP/2 with prior knowledge,
   * as the gRPC rows connect).
   */
  protocol: "h1" | "h2" | "h2c";
  /** The URL to open, N times. */
  url: string;
  /** `Subscribe`'s request (a file of one envelope) and its content type, for a POST. */
  body?: { file: string; contentType: string };
}

/** What a row found. */
interface RowFigures {
  eventsPerSecond: number;
  serverCpu: number;
  eventsPerCpuSecond: number;
  kbPerSubscriber: number;
}

/** The greeter as users run it, with its HTTP port (over TLS with `tls`). */
async function greeter(
  bench: Bench,
  regime: Regime,
  tls?: { cert: string; key: string },
): Promise<Contender & { target: string; httpBase: string }> {
  const started = await bench.spawnGreeter([
    // The broadcast's events come from the publisher: the clock stays at 1 s.
    ...(regime === "tick" ? ["--interval", String(TICK_MS)] : []),
    "--http-port",
    "0",
    ...(tls ? ["--tls-cert", tls.cert, "--tls-key", tls.key] : []),
  ]);
  const [, scheme, port] = await started.process.waitForLine(
    "stderr",
    /HTTP on (https?):\/\/\S+:(\d+)/,
  );
  const page = `http://127.0.0.1:${started.metricsPort}/metrics`;
  // A reading that failed is asked again, 20 times at most, 250 ms apart:
  // the metrics server closes an idle connection that fetch may still pool,
  // and a server buried under a broadcast row runs its event loop in turns
  // longer than the page's 2 s header deadline now and then. A page without
  // the family failed too (read as 0, a row's delivered events would be
  // all since the start).
  const read = async (name: string) => {
    const series = new RegExp(`^${name} (\\S+)$`, "m");
    for (let i = 0;; i++) {
      try {
        const response = await fetch(page);
        const found = (await response.text()).match(series);
        if (response.ok && found) return Number(found[1]);
      } catch {
        // asked again
      }
      if (i === 20) return NaN;
      await delay(250);
    }
  };
  return {
    pid: started.process.child.pid,
    target: started.target,
    httpBase: `${scheme}://127.0.0.1:${port}`,
    delivered: () => read("greeter_events_delivered_total"),
    published: () => read("greeter_events_published_total"),
    subscribers: () => read("greeter_subscribers"),
    [Symbol.asyncDispose]: () => started.process[Symbol.asyncDispose](),
  };
}

/** The bare `Deno.serve` floor (over TLS with `tls`, whose CA `ca` its stats are read with). */
async function bareServer(
  tls?: { cert: string; key: string; ca: Uint8Array },
): Promise<Contender & { httpBase: string }> {
  const process = new LineProcess(
    scriptArgs(
      "serve",
      "bench/bare_sse_server.ts",
      "0",
      String(TICK_MS),
      ...(tls ? [tls.cert, tls.key] : []),
    ),
  );
  const [, port] = await process.waitForLine("stdout", /^listening (\d+)$/);
  const client = tls
    ? Deno.createHttpClient({ caCerts: [new TextDecoder().decode(tls.ca)] })
    : undefined;
  const base = `${tls ? "https" : "http"}://127.0.0.1:${port}`;
  const stats = async () =>
    await (await fetch(`${base}/stats`, client ? { client } : {})).json();
  return {
    pid: process.child.pid,
    httpBase: base,
    delivered: async () => (await stats()).handed,
    published: async () => (await stats()).published,
    subscribers: async () => (await stats()).subscribers,
    [Symbol.asyncDispose]: async () => {
      client?.close();
      await process[Symbol.asyncDispose]();
    },
  };
}

/** `h2load` holding `subscribers` streams of `client` open until disposed. */
function h2load(client: HttpClient, subscribers: number): LineProcess {
  const h1 = client.protocol === "h1";
  const connections = h1
    ? subscribers
    : Math.ceil(subscribers / STREAMS_PER_CONNECTION);
  return new LineProcess([
    "-c",
    String(connections),
    "-m",
    h1 ? "1" : String(STREAMS_PER_CONNECTION),
    "-n",
    String(subscribers),
    "-t",
    "1",
    "-D",
    "600", // held until disposed
    ...(h1 ? ["--h1"] : []),
    ...(client.body
      ? [
        "-d",
        client.body.file,
        "-H",
        `content-type: ${client.body.contentType}`,
      ]
      : []),
    client.url,
  ], { command: "h2load" });
}

/**
 * Measures one row: `contender` fresh, its RSS before, `subscribe` opened
 * until all are live, a warm-up, then a window of `BENCH_SECONDS`.
 */
async function measureRow(
  report: Report,
  label: string,
  contender: Contender,
  subscribe: () => Promise<LineProcess>,
  afterLive?: () => Promise<AsyncDisposable>,
): Promise<RowFigures> {
  await delay(500); // what starting allocated settles
  const before = rssKb(contender.pid);
  await using clients = await subscribe();
  const deadline = performance.now() + 120_000;
  // NaN (a page that did not answer) is not "all live".
  while (!((await contender.subscribers()) >= HTTP_SUBSCRIBERS)) {
    if (performance.now() > deadline) {
      throw new Error(
        `${label}: only ${await contender
          .subscribers()} of ${HTTP_SUBSCRIBERS} subscribed in 120 s`,
      );
    }
    await delay(250);
  }
  await using _publisher = await afterLive?.();
  await delay(WARM_UP_MS);
  const client = clients.child.pid;
  const [d0, p0] = [await contender.delivered(), await contender.published()];
  const [c0, g0] = [cpuSeconds(contender.pid), cpuSeconds(client)];
  const t0 = performance.now();
  await delay(SECONDS * 1000);
  const [d1, p1] = [await contender.delivered(), await contender.published()];
  const [c1, g1] = [cpuSeconds(contender.pid), cpuSeconds(client)];
  const seconds = (performance.now() - t0) / 1000;
  const figures = {
    eventsPerSecond: (d1 - d0) / seconds,
    serverCpu: (100 * (c1 - c0)) / seconds,
    eventsPerCpuSecond: (d1 - d0) / Math.max(0.01, c1 - c0),
    kbPerSubscriber: (rssKb(contender.pid) - before) / HTTP_SUBSCRIBERS,
  };
  const offered = ((p1 - p0) / seconds) * HTTP_SUBSCRIBERS;
  const load = os.loadavg()[0].toFixed(1);
  report.figure(
    `${label} delivered`,
    figures.eventsPerSecond,
    "events/s",
    `${
      Math.round(offered).toLocaleString("en-US")
    } offered (published x subscribers); server CPU ${
      figures.serverCpu.toFixed(0)
    }%, client CPU ${
      ((100 * (g1 - g0)) / seconds).toFixed(0)
    }% of a core; load average ${load}`,
  );
  report.figure(
    `${label} events per server CPU-second`,
    figures.eventsPerCpuSecond,
    "events/CPU-s",
  );
  report.figure(`${label} KB per subscriber`, figures.kbPerSubscriber, "KB");
  return figures;
}

/** `SubscribeRequest{name, topics: [topic]}` in one binary envelope, in a file of `dir`. */
async function subscribeRequestFile(
  dir: string,
  topic: string,
): Promise<string> {
  const { SubscribeRequest } = greeterDescriptors();
  const message = toBinary(
    SubscribeRequest,
    create(SubscribeRequest, { name: "bench", topics: [topic] }),
  );
  const envelope = new Uint8Array(5 + message.length);
  new DataView(envelope.buffer).setUint32(1, message.length);
  envelope.set(message, 5);
  const file = join(dir, `subscribe_${topic}.bin`);
  await Deno.writeFile(file, envelope);
  return file;
}

/** Why the section cannot run here, or undefined. */
function missing(): string | undefined {
  if (OPENSSL_MISSING) return OPENSSL_MISSING;
  try {
    new Deno.Command("h2load", { args: ["--version"] }).outputSync();
  } catch {
    return "h2load is not installed (apt-get install nghttp2-client)";
  }
  return undefined;
}

/** The HTTP section. */
export const httpScenario: Scenario = {
  name: "http",
  async run(bench) {
    const { report } = bench;
    const why = missing();
    if (why) return report.row("http fan-out", "skipped", why);
    await using pki = await makeTestPki();
    const tls = { cert: pki.files.serverCert, key: pki.files.serverKey };
    const requests = {
      tick: await subscribeRequestFile(pki.dir, "tick"),
      broadcast: await subscribeRequestFile(pki.dir, "bench"),
    };
    const n = HTTP_SUBSCRIBERS;
    const connections = Math.ceil(n / STREAMS_PER_CONNECTION);
    /** The publisher of a broadcast row, once its subscribers are live. */
    const publisher = (regime: Regime, target: string, secure = false) =>
      regime === "tick" ? undefined : async () => {
        const process = new LineProcess(
          scriptArgs(
            "client",
            "bench/publisher.ts",
            target,
            "bench",
            "10",
            "32",
            ...(secure ? [pki.files.ca] : []),
          ),
        );
        await process.waitForLine("stdout", /^ready$/);
        return process;
      };
    const topic = (regime: Regime) => regime === "tick" ? "tick" : "bench";
    const grpcRow = async (label: string, regime: Regime) => {
      await using server = await greeter(bench, regime);
      return await measureRow(
        report,
        label,
        server,
        () =>
          spawnSubscriberPool(
            server.target,
            n,
            connections,
            regime === "tick" ? undefined : { topic: topic(regime) },
          ),
        publisher(regime, server.target),
      );
    };
    const httpRow = async (
      label: string,
      regime: Regime,
      bare: boolean,
      client: Omit<HttpClient, "url"> & {
        path: (topic: string) => string;
      },
    ) => {
      const secure = client.protocol === "h2";
      await using server = bare
        ? await bareServer(secure ? { ...tls, ca: pki.read("ca") } : undefined)
        : await greeter(bench, regime, secure ? tls : undefined);
      const url = server.httpBase + client.path(topic(regime));
      return await measureRow(
        report,
        label,
        server,
        () => Promise.resolve(h2load({ ...client, url }, n)),
        "target" in server
          ? publisher(regime, server.target as string, secure)
          : undefined,
      );
    };
    const events = (topic: string) => `/v1/events?topic=${topic}`;
    const connect = {
      path: () => "/helloworld.Greeter/Subscribe",
      body: { contentType: "application/connect+proto" },
    };
    const h1 = `${n} / ${n} HTTP/1.1`;
    const h2 = `${n} / ${connections} HTTP/2 TLS`;
    const h2c = `${n} / ${connections} h2c`;
    const grpc = `${n} / ${connections} h2c`;
    const rows: Record<
      RowKey,
      { label: string; measure: (label: string) => Promise<RowFigures> }
    > = {
      "grpc-tick": {
        label: `tick: gRPC SayHelloStreamReply ${grpc}`,
        measure: (label) => grpcRow(label, "tick"),
      },
      "sse-h1-tick": {
        label: `tick: SSE ${h1}`,
        measure: (label) =>
          httpRow(label, "tick", false, { protocol: "h1", path: events }),
      },
      "bare-h1": {
        label: `tick: bare Deno.serve SSE ${h1}`,
        measure: (label) =>
          httpRow(label, "tick", true, { protocol: "h1", path: events }),
      },
      "sse-h2-tick": {
        label: `tick: SSE ${h2}`,
        measure: (label) =>
          httpRow(label, "tick", false, { protocol: "h2", path: events }),
      },
      "connect-h2-tick": {
        label: `tick: Connect Subscribe ${h2}`,
        measure: (label) =>
          httpRow(label, "tick", false, {
            protocol: "h2",
            path: connect.path,
            body: { file: requests.tick, ...connect.body },
          }),
      },
      "bare-h2": {
        label: `tick: bare Deno.serve SSE ${h2}`,
        measure: (label) =>
          httpRow(label, "tick", true, { protocol: "h2", path: events }),
      },
      "bare-h2c": {
        label: `tick: bare Deno.serve SSE ${h2c}`,
        measure: (label) =>
          httpRow(label, "tick", true, { protocol: "h2c", path: events }),
      },
      "grpc-broadcast": {
        label: `broadcast: gRPC Subscribe ${grpc}`,
        measure: (label) => grpcRow(label, "broadcast"),
      },
      "sse-h1-broadcast": {
        label: `broadcast: SSE ${h1}`,
        measure: (label) =>
          httpRow(label, "broadcast", false, { protocol: "h1", path: events }),
      },
      "sse-h2-broadcast": {
        label: `broadcast: SSE ${h2}`,
        measure: (label) =>
          httpRow(label, "broadcast", false, { protocol: "h2", path: events }),
      },
      "sse-h2c-broadcast": {
        label: `broadcast: SSE ${h2c}`,
        measure: (label) =>
          httpRow(label, "broadcast", false, { protocol: "h2c", path: events }),
      },
      "connect-h2-broadcast": {
        label: `broadcast: Connect Subscribe ${h2}`,
        measure: (label) =>
          httpRow(label, "broadcast", false, {
            protocol: "h2",
            path: connect.path,
            body: { file: requests.broadcast, ...connect.body },
          }),
      },
    };
    const chosen = HTTP_ROWS.filter((key): key is RowKey => key in rows);
    // Rounds interleave the rows, so that the machine's drift weighs on all.
    const found = new Map<RowKey, RowFigures[]>();
    for (let round = 1; round <= HTTP_ROUNDS; round++) {
      for (const key of chosen) {
        const suffix = HTTP_ROUNDS > 1 ? `, round ${round}` : "";
        const figures = await rows[key].measure(rows[key].label + suffix);
        found.set(key, [...(found.get(key) ?? []), figures]);
      }
    }
    const median = (key: RowKey) => {
      const values = (found.get(key) ?? []).map((f) => f.eventsPerCpuSecond)
        .sort((a, b) => a - b);
      return values.length === 0
        ? undefined
        : values[Math.floor((values.length - 1) / 2)];
    };
    const ratio = (name: string, of: RowKey, to: RowKey) => {
      const [a, b] = [median(of), median(to)];
      if (a === undefined || b === undefined) return;
      report.figure(
        name,
        a / b,
        "x",
        `events per server CPU-second${
          HTTP_ROUNDS > 1 ? `, medians of ${HTTP_ROUNDS} rounds` : ""
        }, same run`,
      );
    };
    for (
      const [label, row, floor] of [
        ["tick: SSE HTTP/1.1", "sse-h1-tick", "bare-h1"],
        ["tick: SSE HTTP/2 TLS", "sse-h2-tick", "bare-h2"],
        ["tick: Connect HTTP/2 TLS", "connect-h2-tick", "bare-h2"],
      ] as const
    ) {
      ratio(`${label} / gRPC tick`, row, "grpc-tick");
      ratio(`${label} / bare Deno.serve of the same protocol`, row, floor);
    }
    ratio("tick: bare Deno.serve SSE h2c / gRPC tick", "bare-h2c", "grpc-tick");
    for (
      const [label, row] of [
        ["broadcast: SSE HTTP/1.1", "sse-h1-broadcast"],
        ["broadcast: SSE HTTP/2 TLS", "sse-h2-broadcast"],
        ["broadcast: SSE h2c", "sse-h2c-broadcast"],
        ["broadcast: Connect HTTP/2 TLS", "connect-h2-broadcast"],
      ] as const
    ) {
      ratio(`${label} / gRPC broadcast`, row, "grpc-broadcast");
      ratio(`${label} / gRPC tick`, row, "grpc-tick");
    }
  },
};
