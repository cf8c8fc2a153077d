/**
 * The baseline: a minimal grpc-js Greeter on the same runtime, so the bench
 * reports our overhead as a ratio. `SayHello` as ours; `SayHelloStreamReply`
 * writes every open call from one `setInterval` (no hub, no buffer bound, no
 * backpressure, no validation), ticking every 10 ms like the bench's server;
 * `Publish` writes the event to every `Subscribe` call, each serialised by
 * grpc-js (what a naive grpc-js service does). Prints `listening on PORT` to
 * stderr.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { loadGreeterProto } from "../lib/wire/proto.ts";
import type {
  GreetingMessage,
  HelloReply,
  HelloRequest,
  PublishReply,
  PublishRequest,
} from "../lib/wire/proto.ts";

const intervalMs = 10; // the bench's fan-out tick
const subscribers = new Set<
  grpc.ServerWritableStream<HelloRequest, HelloReply>
>();
const ticker = setInterval(() => {
  const time_ms = Date.now();
  const stamp = new Date(time_ms).toISOString().slice(0, 19).replace("T", " ");
  for (const call of subscribers) {
    call.write({
      message: `hello ${call.request.name}, it's ${stamp}`,
      time_ms,
    });
  }
}, intervalMs);

const bus = new Set<grpc.ServerWritableStream<unknown, GreetingMessage>>();
const epoch = "baseline";
let seq = 0;

const server = new grpc.Server({ "grpc.enable_channelz": 0 });
server.addService(loadGreeterProto().service, {
  SayHello(
    call: grpc.ServerUnaryCall<HelloRequest, HelloReply>,
    callback: grpc.sendUnaryData<HelloReply>,
  ) {
    callback(null, { message: `Hello, ${call.request.name}!` });
  },
  SayHelloStreamReply(
    call: grpc.ServerWritableStream<HelloRequest, HelloReply>,
  ) {
    subscribers.add(call);
    call.on("cancelled", () => subscribers.delete(call));
  },
  Subscribe(call: grpc.ServerWritableStream<unknown, GreetingMessage>) {
    call.write({ firstGreetingMessage: { cursor: { epoch, seq } } });
    bus.add(call);
    call.on("cancelled", () => bus.delete(call));
  },
  Publish(
    call: grpc.ServerUnaryCall<PublishRequest, PublishReply>,
    callback: grpc.sendUnaryData<PublishReply>,
  ) {
    const time_ms = Date.now();
    const event = {
      seq: ++seq,
      epoch,
      time_ms,
      topic: call.request.topic,
      payload: call.request.payload,
    };
    for (const subscriber of bus) subscriber.write({ event });
    callback(null, { cursor: { epoch, seq }, time_ms });
  },
});
server.bindAsync(
  "127.0.0.1:0",
  grpc.ServerCredentials.createInsecure(),
  (error, port) => {
    if (error) throw error;
    console.error(`listening on ${port}`);
  },
);
Deno.addSignalListener("SIGTERM", () => {
  clearInterval(ticker);
  server.forceShutdown();
});
