/**
 * Attacks of issue 13 ("hostile clients") against a real server on
 * loopback, each bounded in count and time: what a stranger can make the
 * server hold.
 */

import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { ManualClock } from "../testing/manual_clock.ts";
import { settles, startTestServer } from "../testing/server.ts";

/** Protobuf varint bytes of `n`. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** A length-delimited protobuf field. */
function field(tag: number, bytes: Uint8Array): Uint8Array {
  return new Uint8Array([
    ...varint((tag << 3) | 2),
    ...varint(bytes.length),
    ...bytes,
  ]);
}

/** Concatenates byte arrays. */
function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * Publishes `PublishRequest{topic, payload}` with an unknown field of
 * `padding` bytes after it, gzip-compressed on the wire, as a raw request.
 */
function publishPadded(
  client: grpc.Client,
  topic: string,
  payload: Uint8Array,
  padding: number,
): Promise<void> {
  const body = concat(
    field(1, new TextEncoder().encode(topic)),
    field(2, payload),
    field(15, new Uint8Array(padding)),
  );
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      "/helloworld.Greeter/Publish",
      (bytes: Uint8Array) => Buffer.from(bytes),
      (reply: Buffer) => reply,
      body,
      (error) => error ? reject(error) : resolve(),
    )
  );
}

Deno.test("Publish: a 1-byte payload padded with a 60 KB unknown field keeps 1 byte in the replay window, not 60 KB", async () => {
  await using t = await startTestServer({
    clock: new ManualClock(),
    replayBytes: 64 * 1024,
  });
  const client = new grpc.Client(t.target, grpc.credentials.createInsecure(), {
    "grpc.default_compression_algorithm": grpc.compressionAlgorithms.gzip,
  });
  try {
    for (let i = 0; i < 200; i++) {
      await settles(
        "a publish",
        publishPadded(client, "news", new Uint8Array([i]), 60_000),
      );
    }
  } finally {
    client.close();
  }
  // What the window holds, read back through a resume from the start.
  const { hub } = t.server;
  const probe = hub.subscribe("probe", {
    topics: ["news"],
    after: { epoch: hub.epoch, seq: 0 },
  });
  const reader = probe.readable.getReader();
  const retained = new Set<ArrayBufferLike>();
  let events = 0;
  try {
    for (let i = 0; i < 200; i++) {
      const { value } = await settles("a replayed event", reader.read());
      if (value?.kind !== "event") break;
      events++;
      assert.equal(value.data.length, 1);
      retained.add(value.data.buffer);
    }
  } finally {
    await reader.cancel();
  }
  assert.ok(events > 100, `only ${events} events were held`);
  const bytes = [...retained].reduce((n, b) => n + b.byteLength, 0);
  assert.ok(
    bytes <= 64 * 1024,
    `${events} held events of 1 byte keep ${bytes} bytes of buffers alive, over --replay-bytes 65536`,
  );
});
