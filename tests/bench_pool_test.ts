// The bench's lean subscriber reads two fields out of undecoded messages:
// checked here against messages the server's own serialiser makes.
import assert from "node:assert/strict";
import { loadGreeterProto } from "../lib/grpc/proto.ts";
import { publishTime, stampedTime } from "../bench/pool.ts";

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
