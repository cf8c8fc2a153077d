import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import { GreeterClient } from "../lib/client/client.ts";
import { RpcError } from "../lib/errors.ts";
import { BUILD } from "../lib/build.ts";
import { Metrics } from "../lib/observe/metrics.ts";
import { loadGreeterProto } from "../lib/wire/proto.ts";
import { startBusServer, startTestServer, waitFor } from "../testing/server.ts";
import { PROMTOOL } from "../testing/prometheus.ts";
import { docRows } from "../testing/docs.ts";

/** Parses the text exposition format: series value by `name{labels}`, and each family's type. */
function parse(text: string) {
  const values = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const type = line.match(/^# TYPE (\S+) (counter|gauge|histogram)$/);
    if (type) {
      types.set(type[1], type[2]);
      continue;
    }
    if (line.startsWith("# HELP ")) continue;
    const sample = line.match(/^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/);
    assert.ok(sample, `not a sample line: ${line}`);
    values.set(sample[1], Number(sample[2]));
  }
  return { values, types };
}

async function scrape(port: number, token = "secret") {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(response.status, 200);
  assert.match(
    response.headers.get("content-type")!,
    /^text\/plain; version=0\.0\.4/,
  );
  return parse(await response.text());
}

Deno.test("the metrics page parses, and its counters move with the traffic", async () => {
  await using t = await startTestServer({
    metricsPort: 0,
    intervalMs: 3_600_000,
    heartbeatMs: 3_600_000,
    tokens: ["secret"],
  });
  const port = t.server.metricsPort!;
  const before = await scrape(port);
  for (
    const family of [
      "greeter_subscribers",
      "greeter_events_published_total",
      "greeter_events_delivered_total",
      "greeter_events_dropped_total",
      "greeter_resumes_total",
      "greeter_subscriptions_ended_total",
      "greeter_rpcs_total",
      "greeter_event_delivery_seconds",
      "greeter_connections",
      "greeter_connections_max",
      "greeter_connections_refused_total",
      "grpc_server_started_total",
      "grpc_server_handled_total",
      "grpc_server_msg_received_total",
      "grpc_server_msg_sent_total",
      "grpc_server_handling_seconds",
      "process_cpu_seconds_total",
      "process_resident_memory_bytes",
      "process_start_time_seconds",
      "deno_heap_used_bytes",
      "deno_heap_total_bytes",
      "deno_event_loop_lag_seconds",
      "greeter_build_info",
    ]
  ) assert.ok(before.types.has(family), `${family} missing`);
  assert.equal(before.types.get("greeter_subscribers"), "gauge");
  assert.equal(before.types.get("greeter_rpcs_total"), "counter");
  assert.equal(before.types.get("grpc_server_handling_seconds"), "histogram");
  assert.ok(before.values.get("process_resident_memory_bytes")! > 1e6);
  assert.ok(before.values.get("process_cpu_seconds_total")! > 0);
  assert.equal(
    before.values.get(
      `greeter_build_info{version="${BUILD.version}",deno="${Deno.version.deno}",grpc_js="${BUILD.grpcJs}"}`,
    ),
    1,
  );
  assert.equal(
    before.values.get('greeter_connections_max{transport="grpc"}'),
    10_000,
  );
  // Known label values are shown at zero before their first event, so that
  // rate() panels have data from the start.
  for (const reason of ["aborted", "cancelled", "closed", "slow-consumer"]) {
    assert.equal(
      before.values.get(
        `greeter_subscriptions_ended_total{reason="${reason}"}`,
      ),
      0,
    );
  }
  assert.equal(
    before.values.get(
      'greeter_rpcs_total{transport="grpc",method="/helloworld.Greeter/Publish",code="UNAVAILABLE"}',
    ),
    0,
  );

  using client = new GreeterClient(t.target, { token: "secret" });
  using stranger = new GreeterClient(t.target);
  assert.equal(await client.sayHello("you"), "Hello, you!");
  await assert.rejects(client.sayHello(""), RpcError);
  await assert.rejects(stranger.sayHello("x"), RpcError);
  const stream = client.subscribe("reader", { topics: ["news"] });
  const first = await stream.next();
  assert.equal(first.value?.kind, "subscribed");
  await client.publish("news", new Uint8Array([1]));
  assert.equal((await stream.next()).value?.kind, "event");
  const during = await scrape(port);
  assert.equal(during.values.get("greeter_subscribers"), 1);
  await stream.return(undefined);
  await waitFor("the leave", () => t.server.hub.size === 0);
  const resumed = client.subscribe("reader", {
    topics: ["news"],
    after: first.value!.kind === "subscribed" ? first.value!.cursor : undefined,
  });
  await resumed.next();
  await resumed.return(undefined);
  await waitFor("the leave", () => t.server.hub.size === 0);

  const after = await scrape(port);
  const v = (key: string) => after.values.get(key) ?? 0;
  const method = (m: string, code: string) =>
    `greeter_rpcs_total{transport="grpc",method="/helloworld.Greeter/${m}",code="${code}"}`;
  assert.equal(v(method("SayHello", "OK")), 1);
  assert.equal(v(method("SayHello", "INVALID_ARGUMENT")), 1);
  assert.equal(v(method("SayHello", "UNAUTHENTICATED")), 1);
  assert.equal(v(method("Publish", "OK")), 1);
  assert.equal(v(method("Subscribe", "CANCELLED")), 2);
  assert.equal(v("greeter_subscribers"), 0);
  assert.equal(
    v('greeter_subscriptions_ended_total{reason="client-cancelled"}'),
    2,
  );
  assert.equal(v('greeter_resumes_total{outcome="recovered"}'), 1);
  assert.ok(
    v("greeter_events_published_total") >
      (before.values.get("greeter_events_published_total") ?? 0),
  );
  assert.ok(v("greeter_events_delivered_total") >= 1);

  const missing = await fetch(`http://127.0.0.1:${port}/other`, {
    headers: { authorization: "Bearer secret" },
  });
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
});

Deno.test("with tokens, /metrics needs one that grants metrics", async () => {
  await using t = await startTestServer({
    metricsPort: 0,
    intervalMs: 3_600_000,
    heartbeatMs: 3_600_000,
    tokens: [
      "full-token-0123456789",
      "reader-token-0123456789 subscribe:news",
      "scraper-token-0123456789 metrics",
    ],
  });
  const url = `http://127.0.0.1:${t.server.metricsPort}/metrics`;
  const status = async (token?: string) => {
    const response = await fetch(url, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    const text = await response.text();
    return [response.status, text] as const;
  };
  const [anonymous, why] = await status();
  assert.equal(anonymous, 401);
  assert.match(why, /Missing or invalid bearer token for \/metrics/);
  assert.equal((await status("wrong"))[0], 401);
  assert.deepEqual(await status("reader-token-0123456789"), [
    403,
    'Permission denied for /metrics: this token lacks "metrics"\n',
  ]);
  assert.equal((await status("scraper-token-0123456789"))[0], 200);
  assert.equal((await status("full-token-0123456789"))[0], 200);
  assert.ok(!t.logs.some((l) => l.includes("-token-0123456789")));
});

Deno.test("Metrics renders HELP, TYPE and escaped label values", () => {
  const metrics = new Metrics();
  const counter = metrics.counter("demo_total", "A demo.\nSecond line.");
  counter.inc({ path: 'a"b\\c\nd' }, 2);
  counter.inc({ path: 'a"b\\c\nd' });
  assert.equal(
    metrics.render(),
    [
      "# HELP demo_total A demo. Second line.",
      "# TYPE demo_total counter",
      'demo_total{path="a\\"b\\\\c\\nd"} 3',
      "",
    ].join("\n"),
  );
  assert.throws(() => metrics.counter("demo_total", "again"), /already/);
  assert.throws(() => metrics.counter("bad name", "x"), /Invalid metric name/);
});

Deno.test("a call its deadline ends is counted and logged as DEADLINE_EXCEEDED and leaves for the deadline, one that is cancelled as CANCELLED and client-cancelled", async () => {
  await using t = await startTestServer({
    metricsPort: 0,
    intervalMs: 3_600_000,
    heartbeatMs: 3_600_000,
  });
  const { Client } = loadGreeterProto();
  const client = new Client(t.target, grpc.credentials.createInsecure());
  try {
    const ends = (call: grpc.ClientReadableStream<unknown>) =>
      new Promise<grpc.StatusObject>((resolve) => {
        call.on("data", () => {});
        call.on("error", () => {});
        call.on("status", resolve);
      });
    const late = client.SayHelloStreamReply(
      { name: "late" },
      { deadline: Date.now() + 300 },
    );
    assert.equal((await ends(late)).code, grpc.status.DEADLINE_EXCEEDED);
    await waitFor("the late one's leave", () => t.server.hub.size === 0);
    const left = client.SayHelloStreamReply({ name: "left" });
    await waitFor("the subscription", () => t.server.hub.size === 1);
    const leftEnd = ends(left);
    left.cancel();
    assert.equal((await leftEnd).code, grpc.status.CANCELLED);
    // The channel closed at once, as GreeterClient's dispose does right
    // after a break: still a cancel, not a connection lost (it said
    // "disconnected": the connection was closed by the stream's close).
  } finally {
    client.close();
  }
  const method = "/helloworld.Greeter/SayHelloStreamReply";
  for (const code of ["DEADLINE_EXCEEDED", "CANCELLED"]) {
    const key =
      `greeter_rpcs_total{transport="grpc",method="${method}",code="${code}"}`;
    await waitFor(`${code} counted`, async () => {
      const { values } = await scrape(t.server.metricsPort!, "");
      return values.get(key) === 1;
    });
    // The debug line says what the metrics count (it said CANCELLED for both).
    await waitFor(
      `the ${code} line`,
      () =>
        t.logs.some((line) =>
          line.includes(`Call ended method="${method}"`) &&
          line.includes(`code="${code}"`)
        ),
    );
  }
  // Why each subscription ended, in its leave line and in the metrics.
  for (
    const [name, reason] of [["late", "deadline"], ["left", "client-cancelled"]]
  ) {
    await waitFor(
      `${name}'s leave`,
      () =>
        t.logs.some((line) =>
          line.includes(`client "${name}" is leaving.`) &&
          line.endsWith(`reason="${reason}"`)
        ),
    );
    const { values } = await scrape(t.server.metricsPort!, "");
    assert.equal(
      values.get(`greeter_subscriptions_ended_total{reason="${reason}"}`),
      1,
      reason,
    );
  }
});

Deno.test("Metrics renders a histogram: cumulative buckets up to +Inf, then _sum and _count, per label set", () => {
  const metrics = new Metrics();
  const latency = metrics.histogram("demo_seconds", "A latency.", [0.1, 1]);
  const fast = latency.series({ route: "a" });
  fast.observe(0.05);
  fast.observe(0.1); // on a bound: counted in it (le is "less or equal")
  fast.observe(0.5);
  fast.observe(7);
  latency.series({ route: "b" }); // shown before its first observation
  assert.equal(
    metrics.render(),
    [
      "# HELP demo_seconds A latency.",
      "# TYPE demo_seconds histogram",
      'demo_seconds_bucket{route="a",le="0.1"} 2',
      'demo_seconds_bucket{route="a",le="1"} 3',
      'demo_seconds_bucket{route="a",le="+Inf"} 4',
      'demo_seconds_sum{route="a"} 7.65',
      'demo_seconds_count{route="a"} 4',
      'demo_seconds_bucket{route="b",le="0.1"} 0',
      'demo_seconds_bucket{route="b",le="1"} 0',
      'demo_seconds_bucket{route="b",le="+Inf"} 0',
      'demo_seconds_sum{route="b"} 0',
      'demo_seconds_count{route="b"} 0',
      "",
    ].join("\n"),
  );
  const bare = new Metrics();
  bare.histogram("bare_seconds", "No labels.", [1]).series().observe(2);
  assert.match(bare.render(), /^bare_seconds_bucket\{le="1"\} 0$/m);
  assert.match(bare.render(), /^bare_seconds_count 1$/m);
  assert.throws(
    () => metrics.histogram("unsorted_seconds", "x", [1, 0.5]),
    /Invalid buckets for "unsorted_seconds": 1, 0.5/,
  );
  assert.throws(
    () => metrics.histogram("le_seconds", "x", [1]).series({ le: "1" }),
    /Invalid label name "le"/,
  );
});

/** Every method the server registers, as go-grpc-middleware labels it. */
const SERVED = [
  ["unary", "helloworld.Greeter", "SayHello"],
  ["server_stream", "helloworld.Greeter", "SayHelloStreamReply"],
  ["bidi_stream", "helloworld.Greeter", "SayHelloBidiStream"],
  ["server_stream", "helloworld.Greeter", "SayHelloStream2"],
  ["server_stream", "helloworld.Greeter", "Subscribe"],
  ["unary", "helloworld.Greeter", "Publish"],
  ["unary", "helloworld.Greeter", "ListSubscribers"],
  ["unary", "grpc.health.v1.Health", "Check"],
  ["server_stream", "grpc.health.v1.Health", "Watch"],
  ["unary", "grpc.health.v1.Health", "List"],
  [
    "bidi_stream",
    "grpc.reflection.v1.ServerReflection",
    "ServerReflectionInfo",
  ],
  [
    "bidi_stream",
    "grpc.reflection.v1alpha.ServerReflection",
    "ServerReflectionInfo",
  ],
] as const;

/** grpc-go's `codes.Code.String()` for codes 0 to 16. */
const GO_CODES = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];

Deno.test("the gRPC ecosystem's families: every served method shown at zero, then started, handled (grpc-go's code names), messages received and sent (the fan-out's writes too), handling time; a made-up method adds no series", async () => {
  await using t = await startTestServer({
    metricsPort: 0,
    intervalMs: 3_600_000,
    heartbeatMs: 3_600_000,
  });
  const port = t.server.metricsPort!;
  const labels = (type: string, service: string, method: string) =>
    `grpc_type="${type}",grpc_service="${service}",grpc_method="${method}"`;
  const before = await scrape(port, "");
  for (const [type, service, method] of SERVED) {
    const own = labels(type, service, method);
    for (const family of ["started", "msg_received", "msg_sent"]) {
      assert.equal(before.values.get(`grpc_server_${family}_total{${own}}`), 0);
    }
    for (const code of GO_CODES) {
      assert.equal(
        before.values.get(
          `grpc_server_handled_total{${own},grpc_code="${code}"}`,
        ),
        0,
        `${service}/${method} ${code}`,
      );
    }
    assert.equal(
      before.values.get(`grpc_server_handling_seconds_count{${own}}`),
      0,
    );
    assert.equal(
      before.values.get(
        `grpc_server_handling_seconds_bucket{${own},le="+Inf"}`,
      ),
      0,
    );
  }
  const series = (text: Map<string, number>) =>
    [...text.keys()].filter((key) => key.startsWith("grpc_server_")).length;
  const seriesBefore = series(before.values);

  using client = new GreeterClient(t.target);
  assert.equal(await client.sayHello("you"), "Hello, you!");
  await assert.rejects(client.sayHello(""), RpcError);
  const replies: string[] = [];
  for await (const reply of client.bidi(["a", "b", "c"])) replies.push(reply);
  assert.equal(replies.length, 3);
  const stream = client.subscribe("reader", { topics: ["news"] });
  assert.equal((await stream.next()).value?.kind, "subscribed");
  await client.publish("news", new Uint8Array([1]));
  await client.publish("news", new Uint8Array([2]));
  assert.equal((await stream.next()).value?.kind, "event");
  assert.equal((await stream.next()).value?.kind, "event");
  await stream.return(undefined);
  await waitFor("the leave", () => t.server.hub.size === 0);
  // A path no service has: UNIMPLEMENTED, and counted nowhere.
  const { Client } = loadGreeterProto();
  const raw = new Client(t.target, grpc.credentials.createInsecure());
  try {
    const code = await new Promise<number | undefined>((resolve) =>
      raw.makeUnaryRequest(
        "/helloworld.Greeter/NoSuchMethod",
        (value: Uint8Array) => Buffer.from(value),
        (value: Uint8Array) => value,
        new Uint8Array(),
        (error: grpc.ServiceError | null) => resolve(error?.code),
      )
    );
    assert.equal(code, grpc.status.UNIMPLEMENTED);
  } finally {
    raw.close();
  }

  const greeter = (type: string, method: string) =>
    labels(type, "helloworld.Greeter", method);
  const key = (family: string, own: string, extra = "") =>
    `grpc_server_${family}{${own}${extra}}`;
  await waitFor("the subscription's end counted", async () => {
    const { values } = await scrape(port, "");
    return values.get(
      key(
        "handled_total",
        greeter("server_stream", "Subscribe"),
        ',grpc_code="Canceled"',
      ),
    ) === 1;
  });
  const after = await scrape(port, "");
  const v = (name: string) => after.values.get(name);
  const hello = greeter("unary", "SayHello");
  assert.equal(v(key("started_total", hello)), 2);
  assert.equal(v(key("handled_total", hello, ',grpc_code="OK"')), 1);
  assert.equal(
    v(key("handled_total", hello, ',grpc_code="InvalidArgument"')),
    1,
  );
  assert.equal(v(key("msg_received_total", hello)), 2);
  assert.equal(v(key("msg_sent_total", hello)), 1); // a refusal sends none
  assert.equal(v(key("handling_seconds_count", hello)), 2);
  const bidi = greeter("bidi_stream", "SayHelloBidiStream");
  assert.equal(v(key("msg_received_total", bidi)), 3);
  assert.equal(v(key("msg_sent_total", bidi)), 3);
  assert.equal(v(key("handled_total", bidi, ',grpc_code="OK"')), 1);
  // The first message, then two events: written straight to the HTTP/2
  // stream by the call's writer, past grpc-js's interceptors.
  const subscribe = greeter("server_stream", "Subscribe");
  assert.equal(v(key("msg_sent_total", subscribe)), 3);
  assert.equal(v(key("msg_received_total", subscribe)), 1);
  assert.equal(v(key("handling_seconds_count", subscribe)), 1);
  assert.equal(v(key("started_total", greeter("unary", "Publish"))), 2);
  assert.equal(series(after.values), seriesBefore);
  assert.ok(
    ![...after.values.keys()].some((name) => name.includes("NoSuchMethod")),
  );
  // Both events reached the subscriber through the write path.
  assert.equal(
    v('greeter_event_delivery_seconds_count{transport="grpc"}'),
    2,
  );
  assert.equal(v('greeter_connections{transport="grpc"}'), 1);
});

for (const workers of [1, 2]) {
  Deno.test({
    name:
      `promtool check metrics finds nothing to say of the metrics page (workers: ${workers})`,
    ignore: !PROMTOOL,
    async fn() {
      await using t = await startBusServer({
        metricsPort: 0,
        intervalMs: 3_600_000,
        heartbeatMs: 3_600_000,
      }, workers);
      using client = new GreeterClient(t.target);
      await client.sayHello("you");
      const stream = client.subscribe("reader", { topics: ["news"] });
      await stream.next();
      await client.publish("news", new Uint8Array([1]));
      await stream.next();
      await stream.return(undefined);
      const response = await fetch(
        `http://127.0.0.1:${t.server.metricsPort}/metrics`,
      );
      const text = await response.text();
      const lint = new Deno.Command(PROMTOOL!, {
        args: ["check", "metrics"],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = lint.stdin.getWriter();
      await writer.write(new TextEncoder().encode(text));
      await writer.close();
      const { code, stdout, stderr } = await lint.output();
      const said = new TextDecoder().decode(stdout) +
        new TextDecoder().decode(stderr);
      assert.equal(said, "");
      assert.equal(code, 0);
    },
  });
}

Deno.test("docs/operations.md's Metrics table names every family the server serves, and no other (the engine's only with --broker nats://)", async () => {
  const documented = new Map<string, string>();
  for (const [metric, , what] of docRows("docs/operations.md", "## Metrics")) {
    for (const [, name] of metric.matchAll(/`([a-z_]+)(?:\{[^}]*\})?`/g)) {
      documented.set(name, what);
    }
  }
  const served = new Map<number, Set<string>>();
  for (const workers of [1, 2]) {
    await using t = await startBusServer({
      metricsPort: 0,
      intervalMs: 3_600_000,
      heartbeatMs: 3_600_000,
    }, workers);
    const { types } = await scrape(t.server.metricsPort!, "");
    served.set(workers, new Set(types.keys()));
    assert.deepEqual(
      [...types.keys()].filter((name) => !documented.has(name)),
      [],
      `served (workers: ${workers}), not in docs/operations.md`,
    );
  }
  const alone = served.get(1)!;
  const notAlone = [...documented.keys()].filter((name) => !alone.has(name));
  assert.ok(notAlone.length > 0);
  for (const name of notAlone) {
    if (served.get(2)!.has(name)) {
      assert.match(name, /^greeter_workers?(_|$)/);
      assert.match(documented.get(name)!, /^with `--workers N`/);
    } else {
      assert.match(name, /^greeter_broker_/);
      assert.match(documented.get(name)!, /^with `--broker nats:\/\/…`/);
    }
  }
});
