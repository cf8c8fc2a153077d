import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { GreeterClient } from "../lib/client/client.ts";
import { RpcError } from "../lib/errors.ts";
import { Metrics } from "../lib/observe/metrics.ts";
import { loadGreeterProto } from "../lib/wire/proto.ts";
import { startTestServer, waitFor } from "../testing/server.ts";

/** Parses the text exposition format: series value by `name{labels}`, and each family's type. */
function parse(text: string) {
  const values = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const type = line.match(/^# TYPE (\S+) (counter|gauge)$/);
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
      "process_resident_memory_bytes",
      "process_start_time_seconds",
      "deno_heap_used_bytes",
    ]
  ) assert.ok(before.types.has(family), `${family} missing`);
  assert.equal(before.types.get("greeter_subscribers"), "gauge");
  assert.equal(before.types.get("greeter_rpcs_total"), "counter");
  assert.ok(before.values.get("process_resident_memory_bytes")! > 1e6);

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
    `greeter_rpcs_total{method="/helloworld.Greeter/${m}",code="${code}"}`;
  assert.equal(v(method("SayHello", "OK")), 1);
  assert.equal(v(method("SayHello", "INVALID_ARGUMENT")), 1);
  assert.equal(v(method("SayHello", "UNAUTHENTICATED")), 1);
  assert.equal(v(method("Publish", "OK")), 1);
  assert.equal(v(method("Subscribe", "CANCELLED")), 2);
  assert.equal(v("greeter_subscribers"), 0);
  assert.equal(v('greeter_subscriptions_ended_total{reason="aborted"}'), 2);
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

Deno.test("a call its deadline ends is counted and logged as DEADLINE_EXCEEDED, one that is cancelled as CANCELLED", async () => {
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
  } finally {
    client.close();
  }
  const method = "/helloworld.Greeter/SayHelloStreamReply";
  for (const code of ["DEADLINE_EXCEEDED", "CANCELLED"]) {
    const key = `greeter_rpcs_total{method="${method}",code="${code}"}`;
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
});
