import assert from "node:assert/strict";
import { tickMessage } from "../lib/greetings.ts";
import { loadGreeterProto } from "../lib/wire/proto.ts";
import { namePart, tickPart, tickReply } from "../lib/grpc/tick_reply.ts";

Deno.test("tickReply() encodes exactly what protobufjs encodes, and decodes back", () => {
  const { responseSerialize, responseDeserialize } =
    loadGreeterProto().service.SayHelloStreamReply;
  // Lengths of one, two and three varint bytes (the last beyond any name
  // the server accepts: the encoder does not depend on that limit).
  const names = [
    "you",
    "Jürgen 王",
    "x".repeat(256),
    "🙂".repeat(200),
    "y".repeat(20_000),
  ];
  const ticks = [
    ["0123456789abcdef", 1, Date.UTC(2024, 0, 2, 3, 4, 5)],
    ["e", 2 ** 40 + 7, 1_800_000_000_123],
    ["", 0, 0],
  ] as const;
  for (const name of names) {
    for (const [epoch, seq, time] of ticks) {
      const expected = responseSerialize({
        message: tickMessage(name, time),
        cursor: { epoch, seq },
        time_ms: time,
      });
      const reply = tickReply(namePart(name), tickPart(epoch, seq, time));
      const bytes = reply.body;
      assert.deepEqual(
        [...reply.frame.subarray(0, 5)],
        [0, 0, 0, bytes.length >> 8, bytes.length & 0xff],
        "the gRPC frame prefix",
      );
      assert.deepEqual(new Uint8Array(bytes), new Uint8Array(expected));
      assert.deepEqual(responseDeserialize(bytes), {
        message: tickMessage(name, time),
        cursor: { epoch, seq: String(seq) },
        time_ms: String(time),
      });
    }
  }
});
