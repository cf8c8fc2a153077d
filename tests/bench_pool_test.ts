// The bench's lean subscriber reads two fields out of undecoded messages:
// checked here against messages the server's own serialiser makes.
import assert from "node:assert/strict";
import http2 from "node:http2";
import { loadGreeterProto } from "../lib/wire/proto.ts";
import { grpcFrame, waitFor } from "../testing/server.ts";
import { publishTime, stampedTime, SubscriberPool } from "../bench/pool.ts";

const { service } = loadGreeterProto();

/** A `Subscribe` event as the server serialises it. */
function event(payload: Uint8Array) {
  return new Uint8Array(service.Subscribe.responseSerialize({
    event: {
      seq: 300,
      epoch: "18ecedb9ef1624a6",
      time_ms: 1_795_493_168_123,
      topic: "latency",
      payload,
    },
  }));
}

Deno.test("bench pool: reads an event's time_ms and the publisher's stamp from its payload", () => {
  const stamp = 1_795_493_168_123.456;
  const payload = new Uint8Array(32);
  new DataView(payload.buffer).setFloat64(0, stamp, true);
  const bytes = event(payload);
  assert.equal(publishTime("Subscribe", bytes), 1_795_493_168_123);
  assert.equal(stampedTime(bytes), stamp);
});

Deno.test("bench pool: messages without an event or a stamp have no time", () => {
  assert.equal(stampedTime(event(new Uint8Array(4))), -1); // too short for a stamp
  const first = new Uint8Array(service.Subscribe.responseSerialize({
    firstGreetingMessage: { subscription_id: 1 },
  }));
  assert.equal(publishTime("Subscribe", first), -1);
  assert.equal(stampedTime(first), -1);
});

Deno.test("SubscriberPool.windowEvents counts only events published inside the window, whenever they arrive", async () => {
  // A raw HTTP/2 peer that answers SayHelloStreamReply with the replies the
  // test writes, each carrying the publish time it chooses.
  const streams: http2.ServerHttp2Stream[] = [];
  const server = http2.createServer();
  server.on("stream", (stream: http2.ServerHttp2Stream) => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" });
    stream.on("error", () => {}); // cancelled by the pool's close
    streams.push(stream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const pool = new SubscriberPool(`127.0.0.1:${port}`, {
    subscribers: 1,
    connections: 1,
    method: "SayHelloStreamReply",
  });
  const reply = (time_ms: number) =>
    grpcFrame(
      service.SayHelloStreamReply.responseSerialize({
        message: "hello s0, it's 2026-11-30 21:00:00",
        time_ms,
      }),
    );
  const arrived = async (events: number) => {
    await waitFor(`${events} events`, () => pool.events >= events);
    assert.equal(pool.events, events);
  };
  try {
    const starting = pool.start(5000);
    await waitFor("the pool's call", () => streams.length > 0);
    const t0 = 1_795_493_000_000;
    streams[0].write(reply(t0 - 5000)); // its first message: live
    await starting;
    pool.openWindow(t0);
    streams[0].write(reply(t0 - 1000)); // a backlog from before the window
    streams[0].write(reply(t0 + 10));
    await arrived(3);
    pool.closeWindow(t0 + 4000);
    streams[0].write(reply(t0 + 4000)); // published after it
    streams[0].write(reply(t0 + 3990)); // published inside it, arriving late
    await arrived(5);
    assert.equal(pool.windowEvents, 2);
  } finally {
    pool.close();
    for (const stream of streams) stream.close();
    await new Promise((resolve) => server.close(resolve));
  }
});
