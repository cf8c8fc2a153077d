/**
 * Connect and gRPC-Web on the HTTP port, against a real server on
 * 127.0.0.1: unary JSON from `fetch` as a page calls it, `Subscribe` over
 * both protocols in binary and JSON (first, events, the drain's goodbye
 * and end frame), refusals in each protocol's own terms, deadlines, limits,
 * and a caller that goes away.
 */

import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { AccessControl } from "../lib/access/access.ts";
import { Logger } from "../lib/log.ts";
import { greeterDescriptors } from "../lib/wire/descriptors.ts";
import type { ServerOptions } from "../lib/server/options.ts";
import { enveloped, EnvelopeReader, SseReader } from "../testing/http.ts";
import {
  settles,
  startBusServer,
  startTestServer,
  waitFor,
} from "../testing/server.ts";

const { GreetingMessage, SubscribeRequest } = greeterDescriptors();
const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function httpServer(options: ServerOptions = {}) {
  const test = await startTestServer({
    httpPort: 0,
    intervalMs: 60_000,
    ...options,
  });
  return Object.assign(test, {
    base: `http://127.0.0.1:${test.server.httpPort}`,
  });
}

/** A server with its HTTP port's base URL. */
type Server = { base: string };

/** A Connect unary call with a JSON body, as a page's `fetch` makes it. */
async function unary(
  test: Server,
  method: string,
  body: unknown,
  headers: HeadersInit = {},
) {
  const response = await settles(
    method,
    fetch(`${test.base}/helloworld.Greeter/${method}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    }),
  );
  return { status: response.status, body: await response.json() };
}

/** `Subscribe` in `contentType`, the request enveloped as that type says. */
async function subscribe(
  test: Server,
  contentType: string,
  request: { name: string; topics?: string[] },
  headers: HeadersInit = {},
): Promise<EnvelopeReader> {
  const body = contentType.endsWith("json")
    ? encoder.encode(JSON.stringify(request))
    : toBinary(SubscribeRequest, create(SubscribeRequest, request));
  const response = await settles(
    "Subscribe",
    fetch(`${test.base}/helloworld.Greeter/Subscribe`, {
      method: "POST",
      headers: { "content-type": contentType, ...headers },
      body: enveloped(body),
    }),
  );
  assert.equal(response.status, 200);
  return new EnvelopeReader(response);
}

/** A message envelope's GreetingMessage, decoded as its content type says. */
function greeting(data: Uint8Array, json: boolean) {
  if (json) return JSON.parse(decoder.decode(data));
  const message = fromBinary(GreetingMessage, data);
  return { [message.shapeType.case!]: message.shapeType.value };
}

for (const workers of [1, 2]) {
  Deno.test(`Connect unary JSON from fetch: SayHello, Publish (reaching every transport's subscribers), ListSubscribers (workers: ${workers})`, async () => {
    const started = await startBusServer(
      { httpPort: 0, intervalMs: 60_000 },
      workers,
    );
    await using test = Object.assign(started, {
      base: `http://127.0.0.1:${started.server.httpPort}`,
    });
    const { epoch } = await test.server.stats();
    assert.deepEqual(await unary(test, "SayHello", { name: "you" }), {
      status: 200,
      body: { message: "Hello, you!" },
    });
    await using events = new SseReader(
      await fetch(`${test.base}/v1/events?topic=news&name=page`),
    );
    await events.until((block) => block.event === "first");
    const published = await unary(test, "Publish", {
      topic: "news",
      payload: btoa("hello"),
    });
    assert.equal(published.status, 200);
    assert.equal(published.body.cursor.epoch, epoch);
    const [event] = (await events.until((block) => block.event === undefined))
      .slice(-1);
    assert.equal(
      event.id,
      `${epoch}:${published.body.cursor.seq}`,
    );
    assert.equal(JSON.parse(event.data!).payload, btoa("hello"));
    const listed = await unary(test, "ListSubscribers", {});
    assert.equal(listed.body.total, 1);
    assert.equal(listed.body.subscribers[0].name, "page");
    const tick = await unary(test, "Publish", { topic: "tick" });
    assert.equal(tick.status, 400);
    assert.equal(tick.body.code, "invalid_argument");
    assert.match(tick.body.message, /server's clock/);
  });
}

Deno.test("Connect Publish takes an idempotency key: a retry with it is the same event; a bad one is refused escaped", async () => {
  await using test = await httpServer();
  const publish = (idempotencyKey: string) =>
    unary(test, "Publish", {
      topic: "news",
      payload: btoa("once"),
      idempotencyKey,
    });
  const first = await publish("a1b2c3");
  assert.equal(first.status, 200);
  const retry = await publish("a1b2c3");
  assert.deepEqual(retry.body.cursor, first.body.cursor);
  assert.equal(test.server.hub.stats.published, 1);
  const bad = await publish("no\nway");
  assert.equal(bad.status, 400);
  assert.match(bad.body.message, /Invalid idempotency key "no\\nway"/);
});

for (
  const [contentType, json] of [
    ["application/connect+proto", false],
    ["application/connect+json", true],
    ["application/grpc-web+proto", false],
    ["application/grpc-web+json", true],
  ] as const
) {
  Deno.test(`Subscribe over ${contentType}: first, events, then the drain's goodbye and the end frame`, async () => {
    await using test = await httpServer({ reconnectJitterMs: 500 });
    const stream = await subscribe(test, contentType, {
      name: "ann",
      topics: ["news"],
    });
    assert.equal(
      stream.response.headers.get("content-type"),
      contentType,
    );
    const first = greeting((await stream.next())!.data, json);
    assert.equal(
      first.firstGreetingMessage.cursor.epoch,
      test.server.hub.epoch,
    );
    const event = await test.server.hub.publish("news", encoder.encode("hi"));
    const received = greeting((await stream.next())!.data, json).event;
    assert.equal(String(received.seq), String(event.seq));
    assert.equal(received.topic, "news");
    const stopping = test.server.shutdown({ graceMs: 5000 });
    const [goodbye, end, ...more] = await stream.rest();
    assert.deepEqual(more, []);
    const said = greeting(goodbye.data, json).goodbyeGreetingMessage;
    assert.equal(said.code, 14);
    assert.equal(said.reconnect, true);
    if (contentType.startsWith("application/connect")) {
      assert.equal(end.flags, 2);
      assert.deepEqual(JSON.parse(decoder.decode(end.data)), {});
    } else {
      assert.equal(end.flags, 128);
      assert.match(decoder.decode(end.data), /^grpc-status: 0\r\n/);
    }
    await settles("the server to stop", stopping);
  });
}

Deno.test("Subscribe over Connect and gRPC-Web: one binary encoding of each event for both protocols", async () => {
  await using test = await httpServer();
  const streams = await Promise.all([
    subscribe(test, "application/connect+proto", { name: "a" }),
    subscribe(test, "application/grpc-web+proto", { name: "b" }),
  ]);
  try {
    for (const stream of streams) await stream.next();
    await test.server.hub.publish("news", encoder.encode("same"));
    const [one, two] = await Promise.all(streams.map((s) => s.next()));
    assert.equal(one!.data.length > 0, true);
    assert.deepEqual(one!.data, two!.data);
  } finally {
    for (const stream of streams) await stream[Symbol.asyncDispose]();
  }
});

Deno.test("Connect and gRPC-Web refuse in their own terms: tokens, grants, limits, content types", async () => {
  await using test = await httpServer({
    tokens: ["s3cret", "reader subscribe:news"],
    maxMessageBytes: 1024,
    maxPublishBytes: 16,
  });
  const bearer = { authorization: "Bearer s3cret" };
  const none = await unary(test, "SayHello", { name: "you" });
  assert.equal(none.status, 401);
  assert.equal(none.body.code, "unauthenticated");
  const reader = { authorization: "Bearer reader" };
  const forbidden = await unary(test, "Publish", { topic: "news" }, reader);
  assert.equal(forbidden.status, 403);
  assert.equal(forbidden.body.code, "permission_denied");
  assert.match(forbidden.body.message, /lacks "publish:news"/);
  const large = await unary(test, "Publish", {
    topic: "news",
    payload: btoa("x".repeat(17)),
  }, bearer);
  assert.equal(large.status, 400);
  assert.match(large.body.message, /Payload is 17 bytes: at most 16/);
  const huge = await unary(
    test,
    "SayHello",
    { name: "x".repeat(2000) },
    bearer,
  );
  assert.equal(huge.body.code, "resource_exhausted");
  // Subscribe: Connect says it in the end frame, gRPC-Web in the headers.
  {
    await using refused = await subscribe(test, "application/connect+json", {
      name: "r",
      topics: ["secret"],
    }, reader);
    const [end] = await refused.rest();
    assert.equal(end.flags, 2);
    const { error } = JSON.parse(decoder.decode(end.data));
    assert.equal(error.code, "permission_denied");
    assert.match(error.message, /on topic "secret"/);
  }
  const web = await fetch(`${test.base}/helloworld.Greeter/Subscribe`, {
    method: "POST",
    headers: { "content-type": "application/grpc-web+proto" },
    body: enveloped(new Uint8Array()),
  });
  assert.equal(web.headers.get("grpc-status"), "16");
  await web.body?.cancel();
  const type = await fetch(`${test.base}/helloworld.Greeter/Subscribe`, {
    method: "POST",
    headers: { "content-type": "text/plain", ...bearer },
    body: "{}",
  });
  assert.equal(type.status, 415);
  await type.body?.cancel();
  {
    await using tooLarge = await subscribe(test, "application/connect+json", {
      name: "x".repeat(2000),
    }, bearer);
    const { error } = JSON.parse(decoder.decode((await tooLarge.next())!.data));
    assert.equal(error.code, "resource_exhausted");
  }
  assert.equal(test.server.hub.size, 0);
});

Deno.test("Subscribe over Connect ends at the caller's deadline with DEADLINE_EXCEEDED", async () => {
  await using test = await httpServer();
  await using stream = await subscribe(
    test,
    "application/connect+json",
    { name: "brief" },
    { "connect-timeout-ms": "100" },
  );
  const [first, end] = await stream.rest();
  assert.ok(greeting(first.data, true).firstGreetingMessage);
  assert.equal(end.flags, 2);
  assert.equal(
    JSON.parse(decoder.decode(end.data)).error.code,
    "deadline_exceeded",
  );
  await waitFor("the subscriber to leave", () => test.server.hub.size === 0);
});

Deno.test("a deadline beyond the longest timer is refused with INVALID_ARGUMENT, not passed at once", async () => {
  await using test = await httpServer();
  const thirtyDays = { "connect-timeout-ms": String(30 * 24 * 3600 * 1000) };
  {
    await using stream = await subscribe(
      test,
      "application/connect+json",
      { name: "patient" },
      thirtyDays,
    );
    const { error } = JSON.parse(decoder.decode((await stream.next())!.data));
    assert.equal(error.code, "invalid_argument", error.message);
  }
  const hello = await fetch(`${test.base}/helloworld.Greeter/SayHello`, {
    method: "POST",
    headers: { "content-type": "application/json", ...thirtyDays },
    body: JSON.stringify({ name: "patient" }),
  });
  const { code, message } = await hello.json();
  assert.equal(code, "invalid_argument", message);
  assert.equal(test.server.hub.size, 0);
});

Deno.test("Subscribe over Connect: a caller that goes away leaves the hub at once; per-peer limits count every transport", async () => {
  await using test = await httpServer({ maxSubscribersPerPeer: 1 });
  {
    await using stream = await subscribe(test, "application/connect+proto", {
      name: "gone",
    });
    await stream.next();
    assert.equal(test.server.hub.size, 1);
    const second = await fetch(`${test.base}/v1/events`);
    assert.equal(second.status, 429);
    await second.body?.cancel();
  }
  await waitFor("the subscriber to leave", () => test.server.hub.size === 0);
  assert.match(
    test.logs.find((line) => line.includes("is leaving."))!,
    /transport="connect" reason="cancelled"/,
  );
});

Deno.test("the metrics name the transport: calls and their codes, deliveries, the HTTP port's connections", async () => {
  await using test = await httpServer({ metricsPort: 0 });
  const page = async () =>
    await (await fetch(
      `http://127.0.0.1:${test.server.metricsPort}/metrics`,
    )).text();
  const value = (text: string, series: string) =>
    Number(
      text.match(
        new RegExp(`^${series.replace(/[{}()."/]/g, "\\$&")} (\\S+)$`, "m"),
      )?.[1],
    );
  {
    await using events = new SseReader(
      await fetch(`${test.base}/v1/events?topic=news`),
    );
    await events.until((block) => block.event === "first");
    await using stream = await subscribe(test, "application/grpc-web+proto", {
      name: "web",
      topics: ["news"],
    });
    await stream.next();
    await unary(test, "SayHello", { name: "you" });
    // A body connect-es cannot read: refused before any handler, counted.
    const garbled = await fetch(`${test.base}/helloworld.Greeter/SayHello`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    assert.equal(garbled.status, 400);
    await garbled.body?.cancel();
    await test.server.hub.publish("news", encoder.encode("x"));
    await events.until((block) => block.data !== undefined && !block.event);
    await stream.next();
    const during = await page();
    assert.equal(value(during, 'greeter_connections{transport="http"}'), 2);
    for (const transport of ["sse", "grpc-web"]) {
      assert.equal(
        value(
          during,
          `greeter_event_delivery_seconds_count{transport="${transport}"}`,
        ),
        1,
        transport,
      );
    }
  }
  await waitFor("both to leave", () => test.server.hub.size === 0);
  let after = "";
  const rpcs = (transport: string, method: string, code: string) =>
    value(
      after,
      `greeter_rpcs_total{transport="${transport}",method="/helloworld.Greeter/${method}",code="${code}"}`,
    );
  await waitFor("the streams' ends to be counted", async () => {
    after = await page();
    return rpcs("sse", "Subscribe", "CANCELLED") === 1 &&
      rpcs("grpc-web", "Subscribe", "CANCELLED") === 1;
  });
  assert.equal(rpcs("connect", "SayHello", "OK"), 1);
  assert.equal(rpcs("connect", "SayHello", "INVALID_ARGUMENT"), 1);
  const hello = (family: string, extra = "") =>
    value(
      after,
      `${family}{grpc_type="unary",grpc_service="helloworld.Greeter",grpc_method="SayHello"${extra}}`,
    );
  assert.equal(hello("grpc_server_started_total"), 2);
  assert.equal(
    hello("grpc_server_handled_total", ',grpc_code="OK"') +
      hello("grpc_server_handled_total", ',grpc_code="InvalidArgument"'),
    2,
  );
  // One service's calls in the grpc-ecosystem families, whatever carried them.
  assert.equal(
    value(
      after,
      'grpc_server_started_total{grpc_type="server_stream",grpc_service="helloworld.Greeter",grpc_method="Subscribe"}',
    ),
    2,
  );
});

Deno.test("a token-file reload ends the HTTP streams it refuses: a goodbye that says not to come back, then the end", async () => {
  const access = new AccessControl(["keep-me", "drop-me subscribe:news"], {
    log: new Logger({ write: () => {} }),
  });
  await using test = await httpServer({ access });
  await using kept = new SseReader(
    await fetch(`${test.base}/v1/events?topic=news`, {
      headers: { authorization: "Bearer keep-me" },
    }),
  );
  await using dropped = new SseReader(
    await fetch(`${test.base}/v1/events?topic=news&access_token=drop-me`),
  );
  await using stream = await subscribe(
    test,
    "application/connect+json",
    { name: "web", topics: ["news"] },
    { authorization: "Bearer drop-me" },
  );
  for (const reader of [kept, dropped]) {
    await reader.until((block) => block.event === "first");
  }
  await stream.next();
  assert.equal(test.server.hub.size, 3);
  access.replace(["keep-me"]);
  const [goodbye, ...after] = await dropped.rest();
  assert.deepEqual(after, []);
  assert.equal(goodbye.event, "goodbye");
  assert.equal(goodbye.retry, undefined); // not to come back
  const said = JSON.parse(goodbye.data!);
  assert.equal(said.code, 16);
  assert.equal(said.reconnect, undefined);
  assert.match(said.reason, /token of this call was revoked/);
  const [farewell, end] = await stream.rest();
  assert.equal(greeting(farewell.data, true).goodbyeGreetingMessage.code, 16);
  assert.equal(
    JSON.parse(decoder.decode(end.data)).error.code,
    "unauthenticated",
  );
  await waitFor("the refused to leave", () => test.server.hub.size === 1);
});
