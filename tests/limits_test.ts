import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { GreeterClient } from "../lib/client/client.ts";
import type { RpcError } from "../lib/errors.ts";
import { parseServeArgs } from "../lib/cli/config.ts";
import { ManualClock } from "../testing/manual_clock.ts";
import { settles, startTestServer, waitFor } from "../testing/server.ts";

/** A client on a connection of its own (grpc-js shares one per target otherwise). */
const ownConnection = (target: string) =>
  new GreeterClient(target, {
    channelOptions: { "grpc.use_local_subchannel_pool": 1 },
  });

const exhausted = (pattern: RegExp) => (error: RpcError) =>
  error.code === "RESOURCE_EXHAUSTED" && pattern.test(error.message);

Deno.test("subscribers beyond --max-subscribers get RESOURCE_EXHAUSTED", async () => {
  await using t = await startTestServer({
    clock: new ManualClock(),
    maxSubscribers: 2,
  });
  using a = ownConnection(t.target);
  using b = ownConnection(t.target);
  using c = ownConnection(t.target);
  const first = a.streamReply("a").next();
  const second = b.streamReply("b").next();
  await waitFor("two subscribers", () => t.server.hub.size === 2);
  await assert.rejects(
    settles("refusal", c.streamReply("c").next()),
    exhausted(/at its limit of 2 subscribers; retry later/),
  );
  a.close();
  b.close();
  await Promise.allSettled([first, second]);
});

Deno.test("subscriptions beyond the per-connection limit get RESOURCE_EXHAUSTED", async () => {
  await using t = await startTestServer({
    clock: new ManualClock(),
    maxSubscribersPerConnection: 1,
  });
  using one = ownConnection(t.target);
  using other = ownConnection(t.target);
  const first = one.streamReply("first").next();
  await waitFor("a subscriber", () => t.server.hub.size === 1);
  await assert.rejects(
    settles("refusal", one.streamReply("second").next()),
    exhausted(/this connection holds 1 subscriptions, the limit/),
  );
  // Another connection is counted on its own; a leave frees the slot.
  const third = other.streamReply("third").next();
  await waitFor("two subscribers", () => t.server.hub.size === 2);
  one.close();
  await Promise.allSettled([first]);
  await waitFor("one left", () => t.server.hub.size === 1);
  other.close();
  await Promise.allSettled([third]);
});

Deno.test("calls beyond --max-concurrent-streams wait for a free stream", async () => {
  await using t = await startTestServer({
    clock: new ManualClock(),
    maxConcurrentStreams: 2,
  });
  using client = ownConnection(t.target);
  const controllers = [0, 1, 2].map(() => new AbortController());
  const pending = controllers.map((c, i) =>
    client.streamReply(`s${i}`, { signal: c.signal }).next()
  );
  await waitFor("two subscribers", () => t.server.hub.size === 2);
  const names = () => t.server.hub.subscriptions().map((s) => s.name).sort();
  const [waiting] = ["s0", "s1", "s2"].filter((n) => !names().includes(n));
  // The third call is queued by HTTP/2, not refused: it starts once one ends.
  const leaving = names()[0];
  controllers[Number(leaving.slice(1))].abort();
  await waitFor("the queued call admitted", () => names().includes(waiting));
  assert.equal(t.server.hub.size, 2);
  for (const c of controllers) c.abort();
  await Promise.allSettled(pending);
});

Deno.test("messages beyond --max-message-size get RESOURCE_EXHAUSTED", async () => {
  await using t = await startTestServer({ maxMessageBytes: 1024 });
  using client = ownConnection(t.target);
  await assert.rejects(
    client.sayHello("x".repeat(2000)),
    (error: RpcError) => error.code === "RESOURCE_EXHAUSTED",
  );
  assert.equal(await client.sayHello("small"), "Hello, small!");
  // Counted as what the client got (grpc-js refuses it below the
  // interceptors, which saw only the call's end: it was CANCELLED).
  const counted = (code: string, times = 1) =>
    t.server.metrics.render().includes(
      `greeter_rpcs_total{transport="grpc",method="/helloworld.Greeter/SayHello",code="${code}"} ${times}\n`,
    );
  await waitFor("the refusal counted", () => counted("RESOURCE_EXHAUSTED"));
  assert.ok(counted("OK"));
  assert.ok(counted("CANCELLED", 0));
});

/** Writes `bytes` on a raw TCP connection and waits (bounded) for the server to close it. */
async function sendGarbage(port: number, bytes: Uint8Array): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(bytes);
    const buffer = new Uint8Array(4096);
    await settles(
      "the server closing a garbage connection",
      (async () => {
        while (await conn.read(buffer) !== null) { /* drain */ }
      })(),
    );
  } finally {
    try {
      conn.close();
    } catch {
      // Closed by the server already.
    }
  }
}

Deno.test("garbage on the port never crashes the server nor leaks a subscription", async () => {
  await using t = await startTestServer({ clock: new ManualClock() });
  using client = ownConnection(t.target);
  const port = t.server.port;
  const encoder = new TextEncoder();

  await sendGarbage(port, encoder.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  await sendGarbage(port, crypto.getRandomValues(new Uint8Array(4096)));

  // A connection that never sends the HTTP/2 preface delays nobody.
  const silent = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    assert.equal(await client.sayHello("meanwhile"), "Hello, meanwhile!");
  } finally {
    silent.close();
  }

  // A corrupt protobuf body and an unknown method get statuses, not crashes.
  const raw = new grpc.Client(t.target, grpc.credentials.createInsecure());
  const call = (path: string, body: Uint8Array) =>
    new Promise<grpc.ServiceError>((resolve, reject) =>
      raw.makeUnaryRequest(
        path,
        () => Buffer.from(body),
        (b: Buffer) => b,
        {},
        (error) => error ? resolve(error) : reject(new Error("no error")),
      )
    );
  try {
    const corrupt = await call(
      "/helloworld.Greeter/SayHello",
      new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
    );
    assert.ok(corrupt.code !== grpc.status.OK, corrupt.message);
    const unknown = await call("/helloworld.Greeter/Nope", new Uint8Array());
    assert.equal(unknown.code, grpc.status.UNIMPLEMENTED);
  } finally {
    raw.close();
  }

  assert.equal(await client.sayHello("after"), "Hello, after!");
  assert.equal(t.server.hub.size, 0);
});

Deno.test("with the command line's defaults, 1,000 subscriptions over one connection are all admitted", async () => {
  const parsed = parseServeArgs([], {});
  assert.ok(!parsed.help);
  await using t = await startTestServer({
    ...parsed.config,
    host: "127.0.0.1",
    port: 0,
    clock: new ManualClock(),
  });
  using client = ownConnection(t.target); // one channel: one HTTP/2 connection
  const controller = new AbortController();
  const streams = Array.from(
    { length: 1000 },
    (_, i) =>
      client.subscribe(`s${i}`, {
        topics: ["news"],
        signal: controller.signal,
      }),
  );
  try {
    const firsts = await settles(
      "1,000 first messages",
      Promise.all(streams.map((s) => s.next())),
      60_000,
    );
    assert.deepEqual(
      new Set(firsts.map((r) => r.value?.kind)),
      new Set(["subscribed"]),
    );
    assert.equal(t.server.hub.size, 1000);
  } finally {
    controller.abort();
    await Promise.allSettled(streams.map((s) => s.return(undefined)));
  }
  await waitFor(
    "every subscription gone",
    () => t.server.hub.size === 0,
    20_000,
  );
});
