import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import { CallWriter } from "../lib/call_writer.ts";
import { settles } from "./_support/server.ts";

/**
 * A connection as Deno 2.9.3's node:http2 shows it to a writer (measured):
 * each stream's `bufferSize` grows faster than the bytes written even when
 * its peer reads everything, while the socket's `bytesWritten` counts what
 * was really sent.
 */
function fakeConnection(streams: number, options: { flowing: boolean }) {
  const socket = { bytesWritten: 0, writableLength: 0 };
  const session = { socket };
  return Array.from({ length: streams }, () => {
    const stream = Object.assign(new EventEmitter(), {
      bufferSize: 0,
      session,
    });
    const call = Object.assign(new EventEmitter(), {
      writableNeedDrain: false,
      call: { stream },
      write(bytes: Buffer) {
        stream.bufferSize += Math.round(bytes.length * 3.4);
        if (options.flowing) socket.bytesWritten += bytes.length + 14;
        return true;
      },
    });
    return { call, stream };
  });
}

const serialize = (text: string) => Buffer.from(text);
const never = new AbortController().signal;
const HOUR = 3_600_000;

Deno.test("CallWriter never holds back a busy connection whose socket keeps flushing", async () => {
  const connection = fakeConnection(100, { flowing: true });
  const writers = connection.map(({ call }) =>
    // deno-lint-ignore no-explicit-any
    new CallWriter<string>(call as any, serialize, {
      highWater: 1024,
      pollMs: HOUR,
    })
  );
  const message = "x".repeat(100);
  // 100 streams x 1,000 messages: 11 MB, 100 times the connection's bound;
  // a writer held back would wait an hour.
  for (let round = 0; round < 1000; round++) {
    await settles(
      "writes that are never held back",
      Promise.all(writers.map((writer) => writer.write(message, never))),
      1000,
    );
  }
});

Deno.test("CallWriter holds back a connection whose socket stops flushing, at its bound", async () => {
  const connection = fakeConnection(10, { flowing: false });
  const writers = connection.map(({ call }) =>
    // deno-lint-ignore no-explicit-any
    new CallWriter<string>(call as any, serialize, {
      highWater: 1024,
      pollMs: 5,
    })
  );
  const controller = new AbortController();
  let written = 0;
  const writing = writers.map(async (writer) => {
    for (;;) {
      await writer.write("x".repeat(86), controller.signal); // 100 bytes counted
      written += 100;
    }
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
  // The bucket's bound: 1,024 bytes x 10 streams, plus one message each.
  assert.ok(written <= 10 * 1024 + 10 * 100, `wrote ${written} bytes`);
  assert.ok(written >= 10 * 1024 - 10 * 100, `wrote only ${written} bytes`);
  controller.abort(new Error("done"));
  await Promise.allSettled(writing);
  for (const { call } of connection) call.emit("close");
});
