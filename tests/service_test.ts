import assert from "node:assert/strict";
import { GreeterClient } from "../lib/client/client.ts";
import { RpcError } from "../lib/errors.ts";
import { formatLocalTime } from "../lib/greetings.ts";
import { Logger } from "../lib/log.ts";
import { startServer } from "../lib/server/server.ts";
import { ManualClock } from "../testing/manual_clock.ts";
import {
  stalledSubscriber,
  startTestServer,
  waitFor,
} from "../testing/server.ts";

Deno.test("SayHello replies Hello, NAME!", async () => {
  await using t = await startTestServer();
  using client = new GreeterClient(t.target);
  assert.equal(await client.sayHello("you"), "Hello, you!");
  assert.equal(await client.sayHello("世界"), "Hello, 世界!");
});

Deno.test("SayHello answers a bad name with INVALID_ARGUMENT and a reason", async () => {
  await using t = await startTestServer();
  using client = new GreeterClient(t.target);
  for (
    const [name, reason] of [
      ["", /must not be empty/],
      ["x".repeat(257), /257 characters long: at most 256/],
      ["evil\nINFO forged", /control character/],
      ["an\u200bn", /"an\\u200bn" contains U\+200B, an invisible/],
      ["eve\u202e", /contains U\+202E, an invisible or text-direction/],
    ] as const
  ) {
    await assert.rejects(
      client.sayHello(name),
      (error: RpcError) =>
        error.code === "INVALID_ARGUMENT" && reason.test(error.message),
    );
  }
});

Deno.test("SayHelloStreamReply sends each subscriber a greeting per tick", async () => {
  const clock = new ManualClock();
  await using t = await startTestServer({ clock, intervalMs: 1000 });
  using client = new GreeterClient(t.target);
  const controller = new AbortController();
  const a = client.streamReply("twin", { signal: controller.signal });
  const b = client.streamReply("twin");
  const firstA = a.next();
  const firstB = b.next();
  await waitFor("two subscribers", () => t.server.hub.size === 2);
  const subscriptions = t.server.hub.subscriptions();
  assert.notEqual(subscriptions[0].id, subscriptions[1].id);

  await clock.advance(1000);
  const expected = `hello twin, it's ${formatLocalTime(new Date(clock.now()))}`;
  assert.equal((await firstA).value, expected);
  assert.equal((await firstB).value, expected);

  // One twin leaves; the other keeps receiving.
  controller.abort();
  assert.deepEqual(await a.next(), { done: true, value: undefined });
  await waitFor("one subscriber left", () => t.server.hub.size === 1);
  const next = b.next();
  await clock.advance(1000);
  assert.match((await next).value!, /^hello twin, it's \d{4}-\d\d-\d\d /);
  await b.return(undefined);
  await waitFor("no subscriber", () => t.server.hub.size === 0);
  // One line per leave, with its subscription and peer.
  assert.equal(
    t.logs.filter((l) => l.includes('client "twin" disconnected.')).length,
    0,
  );
  const leaves = t.logs.filter((l) => l.includes('client "twin" is leaving.'));
  assert.equal(leaves.length, 2);
  for (const line of leaves) {
    assert.match(
      line,
      /subscription=\d+ peer="127\.0\.0\.1:\d+" transport="grpc" reason="/,
    );
  }
});

Deno.test("SayHelloStreamReply removes a subscriber whose connection drops", async () => {
  const clock = new ManualClock();
  await using t = await startTestServer({ clock });
  // A raw HTTP/2 connection, destroyed without a cancel: like a killed peer.
  const peer = stalledSubscriber(t.target, "gone");
  await waitFor("subscriber", () => t.server.hub.size === 1);
  peer.close();
  await waitFor("removal", () => t.server.hub.size === 0);
  await clock.advance(5000); // ticks after the leave find nobody
  assert.equal(t.server.hub.stats.dropped, 0);
  const leave = t.logs.find((l) => l.includes('client "gone" is leaving.'));
  assert.match(
    leave!,
    /subscription=1 peer="127\.0\.0\.1:\d+" transport="grpc" reason="disconnected"/,
  );
});

Deno.test("GreeterClient.close() cancels the calls it has open", async () => {
  const clock = new ManualClock();
  await using t = await startTestServer({ clock });
  const client = new GreeterClient(t.target);
  const pending = client.streamReply("closing").next();
  await waitFor("subscriber", () => t.server.hub.size === 1);
  client.close();
  await assert.rejects(pending, (e: RpcError) => e.code === "CANCELLED");
  await waitFor("removal", () => t.server.hub.size === 0);
});

Deno.test("SayHelloStreamReply ends with OK when the server shuts down", async () => {
  const clock = new ManualClock();
  const t = await startTestServer({ clock });
  using client = new GreeterClient(t.target);
  const received: string[] = [];
  const reading = (async () => {
    for await (const m of client.streamReply("you")) received.push(m);
  })();
  await waitFor("subscriber", () => t.server.hub.size === 1);
  await clock.advance(1000);
  await waitFor("one message", () => received.length === 1);
  await t.server.shutdown({ graceMs: 2000 });
  await reading; // resolves: the stream completed with OK
  assert.equal(received.length, 1);
  assert.equal(t.server.hub.size, 0);
});

Deno.test("SayHelloStream2 sends first, five timers one interval apart, goodbye", async () => {
  const clock = new ManualClock();
  await using t = await startTestServer({ clock, intervalMs: 500 });
  using client = new GreeterClient(t.target);
  const kinds: string[] = [];
  const times: number[] = [];
  const start = clock.now();
  const reading = (async () => {
    for await (const kind of client.stream2("you")) {
      kinds.push(kind);
      times.push(clock.now() - start);
    }
  })();
  await waitFor("first", () => kinds.length === 1);
  for (let i = 1; i <= 5; i++) {
    await clock.advance(500);
    await waitFor(`timer ${i}`, () => kinds.length >= i + 1);
  }
  await reading;
  assert.deepEqual(kinds, [
    "firstGreetingMessage",
    ...Array(5).fill("timerGreetingMessage"),
    "goodbyeGreetingMessage",
  ]);
  assert.deepEqual(times, [0, 500, 1000, 1500, 2000, 2500, 2500]);
});

Deno.test("SayHelloStream2 stops its timer when the client cancels midway", async () => {
  const clock = new ManualClock();
  await using t = await startTestServer({ clock, intervalMs: 500 });
  using client = new GreeterClient(t.target);
  const controller = new AbortController();
  const kinds: string[] = [];
  for await (
    const kind of client.stream2("you", { signal: controller.signal })
  ) {
    kinds.push(kind);
    if (kind === "firstGreetingMessage") {
      await waitFor("the server's timer", () => clock.pending === 3); // tick, heartbeat, stream
      controller.abort();
    }
  }
  assert.deepEqual(kinds, ["firstGreetingMessage"]);
  await waitFor("the stream's timer cleared", () => clock.pending === 2);
  await waitFor(
    "disconnect logged",
    () =>
      t.logs.some((l) =>
        /client "you" disconnected\. peer="127\.0\.0\.1:\d+"$/.test(l)
      ),
  );
});

Deno.test("SayHelloStream2 says goodbye early when the server shuts down", async () => {
  const clock = new ManualClock();
  const t = await startTestServer({ clock, intervalMs: 500 });
  using client = new GreeterClient(t.target);
  const kinds: string[] = [];
  const reading = (async () => {
    for await (const kind of client.stream2("you")) kinds.push(kind);
  })();
  await waitFor("first", () => kinds.length === 1);
  await clock.advance(500);
  await waitFor("a timer", () => kinds.length === 2);
  await t.server.shutdown({ graceMs: 2000 });
  await reading;
  assert.deepEqual(kinds, [
    "firstGreetingMessage",
    "timerGreetingMessage",
    "goodbyeGreetingMessage",
  ]);
});

Deno.test("SayHelloBidiStream replies once per request, in order, then OK", async () => {
  await using t = await startTestServer();
  using client = new GreeterClient(t.target);
  const names = Array.from({ length: 200 }, (_, i) => `n${i}`);
  const replies: string[] = [];
  for await (const reply of client.bidi(names)) replies.push(reply);
  assert.deepEqual(replies, names.map((n) => `Hello, ${n}!`));
  const none: string[] = [];
  for await (const reply of client.bidi([])) none.push(reply);
  assert.deepEqual(none, []);
});

Deno.test("SayHelloBidiStream ends with INVALID_ARGUMENT at a bad name", async () => {
  await using t = await startTestServer();
  using client = new GreeterClient(t.target);
  const replies: string[] = [];
  await assert.rejects(
    (async () => {
      for await (const r of client.bidi(["a", "", "c"])) replies.push(r);
    })(),
    (error: RpcError) =>
      error.code === "INVALID_ARGUMENT" &&
      /must not be empty/.test(error.message),
  );
  assert.deepEqual(replies, ["Hello, a!"]);
});

Deno.test("GreeterClient names the target and status when the server is unreachable", async () => {
  // Bind and release a port so nothing listens there.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  using client = new GreeterClient(`127.0.0.1:${port}`);
  await assert.rejects(
    client.sayHello("you"),
    (error: RpcError) =>
      error.code === "UNAVAILABLE" &&
      error.message.startsWith(`127.0.0.1:${port}: UNAVAILABLE: `) &&
      !/Resolution note/.test(error.message),
  );
});

Deno.test("startServer() rejects a non-positive interval before binding", async () => {
  await assert.rejects(
    startTestServer({ intervalMs: 0 }),
    /interval must be positive, got 0/,
  );
});

Deno.test("a subscriber still leaves when the log sink throws", async () => {
  const clock = new ManualClock();
  const server = await startServer({
    host: "127.0.0.1",
    port: 0,
    clock,
    log: new Logger({
      write: () => {
        throw new Error("Broken pipe");
      },
    }),
  });
  try {
    using client = new GreeterClient(`127.0.0.1:${server.port}`);
    const controller = new AbortController();
    const pending = client.streamReply("x", { signal: controller.signal })
      .next();
    await waitFor("subscriber", () => server.hub.size === 1);
    controller.abort();
    await pending;
    await waitFor("removal", () => server.hub.size === 0);
  } finally {
    await server.shutdown({ graceMs: 1000 });
  }
});

Deno.test("startServer() names the address it cannot bind", async () => {
  await using t = await startTestServer();
  await assert.rejects(
    startTestServer({ port: t.server.port }),
    new RegExp(`Cannot bind "127\\.0\\.0\\.1:${t.server.port}"`),
  );
});
