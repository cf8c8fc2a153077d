import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import {
  CallWriter,
  type CallWriterOptions,
  FramedMessage,
} from "../lib/grpc/workarounds/call_writer.ts";
import { settles } from "../testing/server.ts";

/**
 * A connection as Deno 2.9.3's node:http2 shows it to a writer (measured):
 * each stream's `bufferSize` grows faster than the bytes written even when
 * its peer reads everything, while the socket's `bytesWritten` counts what
 * was really sent.
 */
function fakeConnection(
  streams: number,
  options: { flowing: boolean; batched?: boolean },
) {
  const socket = { bytesWritten: 0, writableLength: 0 };
  const session = { socket };
  let sent = 0;
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
        if (options.flowing) {
          // A gRPC prefix per message; a DATA frame header per message, or
          // per batch of ten when the transport batches them.
          socket.bytesWritten += bytes.length + 5 +
            (!options.batched ? 9 : ++sent % 10 === 0 ? 9 : 0);
        }
        return true;
      },
    });
    return { call, stream };
  });
}

/**
 * One call as grpc-js and `node:http2` show it, with what each was asked
 * to write: grpc-js's writes (encoded messages, which it frames itself) and
 * the HTTP/2 stream's (frames).
 */
function fakeCall() {
  const socket = {
    bytesWritten: 0,
    writableLength: 0,
    corked: 0,
    corks: 0,
    cork() {
      socket.corked++;
      socket.corks++;
    },
    uncork() {
      socket.corked--;
    },
  };
  const viaGrpc: Buffer[] = [];
  const viaStream: Buffer[] = [];
  const stream = Object.assign(new EventEmitter(), {
    bufferSize: 0,
    session: { socket },
    headersSent: false,
    destroyed: false,
    writableEnded: false,
    writableNeedDrain: false,
    write(frame: Buffer) {
      viaStream.push(frame);
      return true;
    },
  });
  const call = Object.assign(new EventEmitter(), {
    writableNeedDrain: false,
    /** What grpc-js holds, not yet handed to the stream. */
    writableLength: 0,
    call: { stream },
    sendMetadata() {
      stream.headersSent = true;
    },
    write(bytes: Buffer) {
      viaGrpc.push(bytes);
      return true;
    },
  });
  // deno-lint-ignore no-explicit-any
  const writer = new CallWriter<string>(call as any, serialize);
  return { call, stream, socket, writer, viaGrpc, viaStream };
}

/** `text` as one gRPC frame. */
function framed(text: string): Buffer {
  const body = Buffer.from(text);
  return Buffer.concat([Buffer.from([0, 0, 0, 0, body.length]), body]);
}

const serialize = (text: string) => Buffer.from(text);
const never = new AbortController().signal;
const HOUR = 3_600_000;

for (const batched of [false, true]) {
  Deno.test(
    `CallWriter never holds back a busy connection whose socket keeps flushing${
      batched ? ", messages batched in DATA frames" : ""
    }`,
    async () => {
      await neverHeldBack(fakeConnection(100, { flowing: true, batched }));
    },
  );
}

async function neverHeldBack(connection: ReturnType<typeof fakeConnection>) {
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
}

/**
 * Writes 100 counted bytes at a time on every stream of a connection whose
 * socket flushes nothing, for 100 ms; returns the bytes written.
 */
async function writeToStalled(
  streams: number,
  options: CallWriterOptions,
): Promise<number> {
  const connection = fakeConnection(streams, { flowing: false });
  const writers = connection.map(({ call }) =>
    // deno-lint-ignore no-explicit-any
    new CallWriter<string>(call as any, serialize, { ...options, pollMs: 5 })
  );
  const controller = new AbortController();
  let written = 0;
  const writing = writers.map(async (writer) => {
    for (;;) {
      await writer.write("x".repeat(95), controller.signal); // 100 bytes counted
      written += 100;
    }
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
  controller.abort(new Error("done"));
  await Promise.allSettled(writing);
  for (const { call } of connection) call.emit("close");
  return written;
}

Deno.test("CallWriter holds back a connection whose socket stops flushing, at its bound", async () => {
  const written = await writeToStalled(10, { highWater: 1024 });
  // The bucket's bound: 1,024 bytes x 10 streams, plus one message each.
  assert.ok(written <= 10 * 1024 + 10 * 100, `wrote ${written} bytes`);
  assert.ok(written >= 10 * 1024 - 10 * 100, `wrote only ${written} bytes`);
});

Deno.test("CallWriter has grpc-js send the headers, then frames messages straight onto the HTTP/2 stream", async () => {
  const { stream, writer, viaGrpc, viaStream } = fakeCall();
  await writer.write("one", never);
  await writer.write(Buffer.from("two"), never);
  assert.equal(stream.headersSent, true);
  assert.deepEqual(viaGrpc, []);
  assert.deepEqual(viaStream, [framed("one"), framed("two")]);
});

Deno.test("CallWriter goes through grpc-js while grpc-js holds one of its messages, so order is kept", async () => {
  const { call, stream, writer, viaGrpc, viaStream } = fakeCall();
  call.sendMetadata = () => {}; // the headers are not out: grpc-js takes it
  await writer.write("first", never);
  call.writableLength = 1; // and holds it
  stream.headersSent = true;
  await writer.write("second", never);
  call.writableLength = 0;
  await writer.write("third", never);
  await writer.write("fourth", never);
  assert.deepEqual(viaGrpc, [Buffer.from("first"), Buffer.from("second")]);
  assert.deepEqual(viaStream, [framed("third"), framed("fourth")]);
});

Deno.test("CallWriter goes through grpc-js when the headers could not be sent", async () => {
  const { call, writer, viaGrpc, viaStream } = fakeCall();
  call.sendMetadata = () => {}; // e.g. the call was cancelled first
  await writer.write("hello", never);
  assert.deepEqual(viaStream, []);
  assert.deepEqual(viaGrpc, [Buffer.from("hello")]);
});

Deno.test("CallWriter writes nothing to an HTTP/2 stream that is closed", async () => {
  const { stream, writer, viaGrpc, viaStream } = fakeCall();
  await writer.write("before", never);
  stream.destroyed = true;
  await writer.write("after", never);
  assert.deepEqual(viaStream, [framed("before")]);
  assert.deepEqual(viaGrpc, []);
});

Deno.test("FramedMessage is framed once and written as it is to every call", async () => {
  const message = new FramedMessage(Buffer.from("shared"));
  assert.deepEqual(message.frame, framed("shared"));
  assert.deepEqual(message.body, Buffer.from("shared"));
  const calls = [fakeCall(), fakeCall()];
  for (const { writer } of calls) await writer.write(message, never);
  for (const { viaStream } of calls) {
    assert.equal(viaStream.length, 1);
    assert.equal(viaStream[0], message.frame); // the same bytes, not a copy
  }
  // Through grpc-js, it is the encoded message that is handed over.
  const { call, writer, viaGrpc } = fakeCall();
  call.sendMetadata = () => {};
  await writer.write(message, never);
  assert.deepEqual(viaGrpc, [Buffer.from("shared")]);
});

Deno.test("CallWriter holds a connection of many streams at its connection bound", async () => {
  const written = await writeToStalled(100, {
    highWater: 1024,
    connectionHighWater: 8 * 1024,
  });
  // 8 KiB for the connection (not 100 x 1 KiB), plus one message per stream.
  assert.ok(written <= 8 * 1024 + 100 * 100, `wrote ${written} bytes`);
  assert.ok(written >= 8 * 1024 - 100, `wrote only ${written} bytes`);
});

Deno.test("CallWriter corks the connection's socket until the next check phase: its writes leave together", async () => {
  const { socket, writer, viaStream } = fakeCall();
  const writes = [writer.write("a", never), writer.write("b", never)];
  assert.equal(socket.corked, 1); // once for both
  await Promise.all(writes);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(socket.corked, 0);
  await writer.write("c", never); // a later turn corks again
  assert.equal(socket.corks, 2);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(socket.corked, 0);
  assert.equal(viaStream.length, 3);
});
