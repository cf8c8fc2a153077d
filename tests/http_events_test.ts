/**
 * Server-sent events on the HTTP port (`GET /v1/events`), against a real
 * server on 127.0.0.1: ids that are cursors, resume by `Last-Event-ID`
 * with no duplicate and no hole, heartbeats, refusals, tokens from a
 * header, a cookie or the query, the session, CORS, the drain, and a client
 * that goes away.
 */

import assert from "node:assert/strict";
import { EncodedItems } from "../lib/http/encoded_items.ts";
import type { ServerOptions } from "../lib/server/options.ts";
import {
  settles,
  startBusServer,
  startTestServer,
  type TestServer,
  waitFor,
} from "../testing/server.ts";
import { GreeterClient } from "../lib/client/client.ts";
import { docBlocks } from "../testing/docs.ts";
import { type SseBlock, SseReader } from "../testing/http.ts";

const encoder = new TextEncoder();

/** A server with an HTTP port and a slow clock (no ticks in the way). */
async function httpServer(options: ServerOptions = {}) {
  const test = await startTestServer({
    httpPort: 0,
    intervalMs: 60_000,
    ...options,
  });
  const base = `http://127.0.0.1:${test.server.httpPort}`;
  return Object.assign(test, { base });
}

/** Opens `path` on `test`'s HTTP port as an event stream. */
async function events(
  test: { base: string },
  path: string,
  headers: HeadersInit = {},
): Promise<SseReader> {
  const response = await settles(
    `GET ${path}`,
    fetch(`${test.base}${path}`, { headers }),
  );
  if (response.status !== 200) {
    assert.fail(`${path}: ${response.status} ${await response.text()}`);
  }
  assert.equal(
    response.headers.get("content-type"),
    "text/event-stream; charset=utf-8",
  );
  return new SseReader(response);
}

/** The answer to `path`, its body read. */
async function answer(
  test: TestServer & { base: string },
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  const response = await settles(
    `${init.method ?? "GET"} ${path}`,
    fetch(`${test.base}${path}`, init),
  );
  return {
    status: response.status,
    headers: response.headers,
    text: await response.text(),
  };
}

async function publish(test: TestServer, topic: string, text: string) {
  return await test.server.hub.publish(topic, encoder.encode(text));
}

/** An event block's data, decoded (its payload as text). */
function eventOf(block: SseBlock) {
  assert.equal(block.event, undefined, JSON.stringify(block));
  const event = JSON.parse(block.data!);
  return {
    id: block.id,
    seq: Number(event.seq),
    topic: event.topic,
    text: atob(event.payload ?? ""),
  };
}

for (const workers of [1, 2]) {
  Deno.test(`GET /v1/events streams events with their cursor as id, and Last-Event-ID resumes with no duplicate and no hole (workers: ${workers})`, async () => {
    const started = await startBusServer(
      { httpPort: 0, intervalMs: 60_000 },
      workers,
    );
    await using test = Object.assign(started, {
      base: `http://127.0.0.1:${started.server.httpPort}`,
    });
    // Published over gRPC: over workers, from whichever the kernel picks.
    using client = new GreeterClient(test.target);
    const publish = async (_: unknown, topic: string, text: string) =>
      (await client.publish(topic, encoder.encode(text))).cursor;
    const { epoch } = await test.server.stats();
    let lastId: string | undefined;
    {
      await using stream = await events(test, "/v1/events?topic=news");
      const opening = await stream.next();
      assert.equal(opening?.retry !== undefined && opening.retry >= 1000, true);
      const first = await stream.next();
      assert.equal(first?.event, "first");
      assert.equal(first?.id, `${epoch}:0`);
      const start = JSON.parse(first!.data!);
      assert.equal(start.cursor.epoch, epoch);
      assert.equal(start.recovered, undefined); // false: omitted
      assert.equal(start.heartbeatIntervalMs > 0, true);
      const one = await publish(test, "news", "one");
      await publish(test, "sport", "not mine");
      const two = await publish(test, "news", "two");
      const received = [
        eventOf((await stream.next())!),
        eventOf((await stream.next())!),
      ];
      assert.deepEqual(received, [
        { id: `${epoch}:${one.seq}`, seq: one.seq, topic: "news", text: "one" },
        { id: `${epoch}:${two.seq}`, seq: two.seq, topic: "news", text: "two" },
      ]);
      lastId = received[1].id;
    }
    await waitFor(
      "the subscriber to leave",
      async () => (await test.server.stats()).size === 0,
    );
    // While nobody listens.
    await publish(test, "news", "three");
    await publish(test, "news", "four");
    await using again = await events(test, "/v1/events?topic=news", {
      "last-event-id": lastId!,
    });
    await again.next(); // retry
    const first = await again.next();
    assert.equal(first?.id, lastId);
    assert.equal(JSON.parse(first!.data!).recovered, true);
    await publish(test, "news", "five");
    const texts = [];
    for (let i = 0; i < 3; i++) texts.push(eventOf((await again.next())!).text);
    assert.deepEqual(texts, ["three", "four", "five"]);
  });
}

Deno.test("GET /v1/events resumes from Last-Event-ID over last_event_id over after; a bad or unknown cursor is said", async () => {
  await using test = await httpServer();
  const epoch = test.server.hub.epoch;
  for (const text of ["a", "b", "c"]) await publish(test, "t", text);
  const startOf = async (path: string, headers: HeadersInit = {}) => {
    await using stream = await events(test, path, headers);
    const [, first] = [await stream.next(), await stream.next()];
    const next = await stream.next();
    return { first: first!.id, next: next && eventOf(next).text };
  };
  assert.deepEqual(
    await startOf(
      `/v1/events?topic=t&after=${epoch}:0&last_event_id=${epoch}:1`,
      {
        "last-event-id": `${epoch}:2`,
      },
    ),
    { first: `${epoch}:2`, next: "c" },
  );
  assert.deepEqual(
    await startOf(
      `/v1/events?topic=t&after=${epoch}:0&last_event_id=${epoch}:1`,
    ),
    { first: `${epoch}:1`, next: "b" },
  );
  assert.deepEqual(await startOf(`/v1/events?topic=t&after=${epoch}:0`), {
    first: `${epoch}:0`,
    next: "a",
  });
  // Another epoch: live from now, not recovered, and why.
  await using other = await events(test, "/v1/events?topic=t", {
    "last-event-id": "0123456789abcdef:2",
  });
  await other.next();
  const first = JSON.parse((await other.next())!.data!);
  assert.equal(first.recovered, undefined);
  assert.match(first.reason, /from before the server's last start/);
  const bad = await answer(test, "/v1/events?topic=t", {
    headers: { "last-event-id": "no-cursor" },
  });
  assert.equal(bad.status, 400);
  assert.match(bad.text, /^Invalid cursor "no-cursor" in Last-Event-ID/);
});

Deno.test("GET /v1/events sends idle subscribers a heartbeat: an id that moves the resume point, and no data", async () => {
  await using test = await httpServer({ heartbeatMs: 50 });
  const epoch = test.server.hub.epoch;
  await using stream = await events(test, "/v1/events?topic=quiet");
  await stream.until((block) => block.event === "first");
  const elsewhere = await publish(test, "elsewhere", "x");
  const blocks = await stream.until((block) =>
    block.comments.includes("heartbeat") &&
    block.id === `${epoch}:${elsewhere.seq}`
  );
  const beat = blocks.at(-1)!;
  assert.equal(beat.data, undefined);
  assert.equal(beat.event, undefined);
});

Deno.test("GET /v1/events: gaps are events of their own, and their id moves past them", () => {
  const items = new EncodedItems(() => "e");
  const block = new TextDecoder().decode(items.sse({
    kind: "gap",
    from: 3,
    to: 5,
    missed: 2,
    reason: "slow-consumer",
  }));
  assert.equal(
    block,
    'event: gap\nid: e:5\ndata: {"fromSeq":"3","toSeq":"5","missed":"2","reason":"slow-consumer"}\n\n',
  );
});

Deno.test("GET /v1/events refuses what it cannot serve, in one line with its status", async () => {
  await using test = await httpServer({ maxSubscribersPerPeer: 1 });
  const refusals = [
    ["/v1/events?topic=bad%20topic", 400, /^Invalid topic "bad topic"/],
    ["/v1/events?name=", 400, /^Name must not be empty/],
    ["/v1/events?after=e:x", 400, /^Invalid cursor "e:x" in after/],
  ] as const;
  for (const [path, status, text] of refusals) {
    const refused = await answer(test, path);
    assert.equal(refused.status, status, path);
    assert.match(refused.text, text);
    assert.equal(refused.text.split("\n").length, 2); // one line
    assert.equal(
      refused.headers.get("content-type"),
      "text/plain; charset=utf-8",
    );
  }
  const post = await answer(test, "/v1/events", { method: "POST" });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "GET");
  await using _held = await events(test, "/v1/events");
  const full = await answer(test, "/v1/events");
  assert.equal(full.status, 429);
  assert.match(full.text, /per-peer limit of 1/);
  assert.equal(full.headers.get("retry-after"), "5");
});

Deno.test("GET /v1/events takes a token from the header, the session cookie or access_token, and its subscribe grants", async () => {
  await using test = await httpServer({
    tokens: ["all-the-things", "news-only subscribe:news.>"],
    httpCorsOrigins: ["https://app.example"],
  });
  const none = await answer(test, "/v1/events?topic=news.x");
  assert.equal(none.status, 401);
  assert.equal(none.headers.get("www-authenticate"), "Bearer");
  assert.match(none.text, /^Missing or invalid bearer token/);
  const wrong = await answer(test, "/v1/events?access_token=nope");
  assert.equal(wrong.status, 401);
  const forbidden = await answer(test, "/v1/events?topic=news.x&topic=secret", {
    headers: { authorization: "Bearer news-only" },
  });
  assert.equal(forbidden.status, 403);
  assert.match(
    forbidden.text,
    /on topic "secret": this token lacks "subscribe:secret"/,
  );
  // Every topic ("*") needs a grant covering them all.
  const all = await answer(test, "/v1/events?access_token=news-only");
  assert.equal(all.status, 403);
  for (
    const [path, headers] of [
      ["/v1/events?topic=news.x", { authorization: "Bearer news-only" }],
      ["/v1/events?topic=news.x&access_token=news-only", {}],
      ["/v1/events?topic=news.x", { cookie: "greeter_token=news-only" }],
      ["/v1/events?topic=news.x", {
        cookie: "greeter_token=news-only",
        origin: "https://app.example",
      }],
    ] as const
  ) {
    await using stream = await events(test, path, headers);
    assert.equal((await stream.until((b) => b.event === "first")).length, 2);
  }
  // The cookie from another site's page is not the user acting.
  const elsewhere = await answer(test, "/v1/events?topic=news.x", {
    headers: {
      cookie: "greeter_token=news-only",
      origin: "https://evil.example",
    },
  });
  assert.equal(elsewhere.status, 403);
  assert.match(
    elsewhere.text,
    /session cookie is not accepted from origin "https:\/\/evil.example"/,
  );
  // No log line holds a token, nor a query.
  const logs = test.logs.join("\n");
  assert.doesNotMatch(logs, /news-only|all-the-things|access_token/);
});

Deno.test("/v1/session sets the HttpOnly cookie from a bearer header, says whether one is held, and clears it", async () => {
  await using test = await httpServer({ tokens: ["s3cret=;x"] });
  const ask = async (headers: HeadersInit = {}) =>
    JSON.parse((await answer(test, "/v1/session", { headers })).text);
  assert.deepEqual(await ask(), { tokens: true, authenticated: false });
  const refused = await answer(test, "/v1/session", { method: "POST" });
  assert.equal(refused.status, 401);
  assert.equal(refused.headers.get("set-cookie"), null);
  const bad = await answer(test, "/v1/session", {
    method: "POST",
    headers: { authorization: "Bearer guess" },
  });
  assert.equal(bad.status, 401);
  const made = await answer(test, "/v1/session", {
    method: "POST",
    headers: { authorization: "Bearer s3cret=;x" },
  });
  assert.equal(made.status, 204);
  const cookie = made.headers.get("set-cookie")!;
  assert.equal(
    cookie,
    "greeter_token=s3cret%3D%3Bx; Path=/; HttpOnly; SameSite=Strict",
  );
  const value = cookie.split(";")[0];
  assert.deepEqual(await ask({ cookie: value }), {
    tokens: true,
    authenticated: true,
  });
  await using stream = await events(test, "/v1/events", { cookie: value });
  assert.equal((await stream.next())?.retry !== undefined, true);
  const cleared = await answer(test, "/v1/session", { method: "DELETE" });
  assert.equal(cleared.status, 204);
  assert.match(
    cleared.headers.get("set-cookie")!,
    /^greeter_token=; .*Max-Age=0/,
  );
  await using open = await httpServer();
  assert.deepEqual(
    JSON.parse((await answer(open, "/v1/session")).text),
    { tokens: false, authenticated: true },
  );
});

Deno.test("CORS: listed origins get a preflight and may read answers with credentials; others get nothing", async () => {
  await using test = await httpServer({
    httpCorsOrigins: ["https://app.example"],
  });
  const preflight = await answer(test, "/helloworld.Greeter/Publish", {
    method: "OPTIONS",
    headers: {
      origin: "https://app.example",
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type, authorization",
    },
  });
  assert.equal(preflight.status, 204);
  assert.equal(
    preflight.headers.get("access-control-allow-origin"),
    "https://app.example",
  );
  assert.equal(
    preflight.headers.get("access-control-allow-credentials"),
    "true",
  );
  assert.match(
    preflight.headers.get("access-control-allow-headers")!,
    /authorization, content-type, connect-protocol-version/,
  );
  const unlisted = await answer(test, "/v1/events", {
    method: "OPTIONS",
    headers: { origin: "https://evil.example" },
  });
  assert.equal(unlisted.status, 403);
  assert.equal(unlisted.headers.get("access-control-allow-origin"), null);
  {
    await using stream = await events(test, "/v1/events", {
      origin: "https://app.example",
    });
    const headers = stream.response.headers;
    assert.equal(
      headers.get("access-control-allow-origin"),
      "https://app.example",
    );
    assert.match(headers.get("access-control-expose-headers")!, /grpc-status/);
    assert.equal(headers.get("vary"), "origin");
  }
  await using other = await events(test, "/v1/events", {
    origin: "https://evil.example",
  });
  assert.equal(other.response.headers.get("access-control-allow-origin"), null);
});

Deno.test("GET /v1/events during the drain: open streams end with what they held, a goodbye and a jittered retry", async () => {
  await using test = await httpServer({ reconnectJitterMs: 1000 });
  await using stream = await events(test, "/v1/events?topic=news");
  await stream.until((block) => block.event === "first");
  await publish(test, "news", "last one");
  const stopping = test.server.shutdown({ graceMs: 5000 });
  const rest = await stream.rest();
  assert.deepEqual(rest.map((block) => block.event ?? "event"), [
    "event",
    "goodbye",
  ]);
  const goodbye = rest[1];
  const data = JSON.parse(goodbye.data!);
  assert.equal(data.code, 14);
  assert.equal(data.reconnect, true);
  assert.match(data.reason, /shutting down; resume from your last cursor/);
  assert.equal(goodbye.retry, data.reconnectAfterMs ?? 0);
  assert.equal(goodbye.retry! < 1000, true);
  await settles("the server to stop", stopping);
});

Deno.test("GET /v1/events while the hub refuses subscriptions: a 200 that says goodbye at once, so that EventSource comes back", async () => {
  await using test = await httpServer({ reconnectJitterMs: 1000 });
  test.server.hub.close(); // as the drain does, the listener still open
  await using stream = await events(test, "/v1/events?topic=news");
  const [goodbye, ...more] = await stream.rest();
  assert.deepEqual(more, []);
  assert.equal(goodbye.event, "goodbye");
  const data = JSON.parse(goodbye.data!);
  assert.equal(data.code, 14);
  assert.match(
    data.reason,
    /^Cannot subscribe "browser": the server is shutting down/,
  );
  assert.equal(goodbye.retry, data.reconnectAfterMs ?? 0);
});

Deno.test("GET /v1/events: a client that goes away leaves the hub at once", async () => {
  await using test = await httpServer();
  {
    await using one = await events(test, "/v1/events?topic=t");
    await one.next();
  }
  await waitFor("the subscriber to leave", () => test.server.hub.size === 0);
  assert.match(
    test.logs.find((line) => line.includes("is leaving."))!,
    /peer="127\.0\.0\.1:\d+" transport="sse" reason="cancelled"/,
  );
  const streams = await Promise.all(
    Array.from({ length: 20 }, () => events(test, "/v1/events?topic=t")),
  );
  await Promise.all(streams.map((stream) => stream.next()));
  assert.equal(test.server.hub.size, 20);
  await Promise.all(streams.map((stream) => stream[Symbol.asyncDispose]()));
  await waitFor("every subscriber to leave", () => test.server.hub.size === 0);
});

Deno.test("docs/http.md shows the event stream the server sends: its blocks, fields, ids and JSON keys", async () => {
  const [shown] = docBlocks("http", ["docs/http.md"]);
  const parse = async (text: string) =>
    await new SseReader(new Response(text)).rest();
  const expected = await parse(shown.text + "\n"); // the last blank line
  await using test = await httpServer();
  await using stream = await events(test, "/v1/events?topic=news");
  const blocks = await stream.until((block) => block.event === "first");
  await publish(test, "news", "hello");
  blocks.push((await stream.next())!);
  const shape = (block: SseBlock) => ({
    fields: Object.entries(block).filter(([, v]) =>
      v !== undefined && !(Array.isArray(v) && v.length === 0)
    ).map(([k]) => k).sort(),
    event: block.event,
    id: block.id?.replace(/^[0-9a-f]{16}:\d+$/, "EPOCH:SEQ"),
    keys: block.data && Object.keys(JSON.parse(block.data)),
  });
  assert.deepEqual(blocks.map(shape), expected.map(shape));
});
