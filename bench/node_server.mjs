/**
 * The other yardstick: a minimal grpc-js Greeter on Node, run by the
 * bench when `node` is installed: `node bench/node_server.mjs [INTERVAL_MS]`
 * prints `listening on PORT` to stderr. The same service as the bare
 * baseline on Deno (`bench/baseline_server.ts`): `SayHello`;
 * `SayHelloStreamReply` writes every open call its personalised
 * `hello NAME, it's …` from one `setInterval` of `INTERVAL_MS` (10); `Publish`
 * writes the event to every `Subscribe` call. Plain JavaScript, so that Node
 * runs it as it is; the same grpc-js and proto-loader as ours, from the
 * project's `node_modules`.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const protos = join(dirname(fileURLToPath(import.meta.url)), "../protos");
// The options of lib/grpc/proto.ts: snake_case fields (time_ms) as on the wire.
const definition = protoLoader.loadSync(join(protos, "helloworld.proto"), {
  includeDirs: [protos],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const { helloworld } = grpc.loadPackageDefinition(definition);

const intervalMs = Number(process.argv[2] ?? 10);
const subscribers = new Set();
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

const bus = new Set();
const epoch = "node";
let seq = 0;

const server = new grpc.Server({ "grpc.enable_channelz": 0 });
server.addService(helloworld.Greeter.service, {
  SayHello(call, callback) {
    callback(null, { message: `Hello, ${call.request.name}!` });
  },
  SayHelloStreamReply(call) {
    subscribers.add(call);
    call.on("cancelled", () => subscribers.delete(call));
  },
  Subscribe(call) {
    call.write({ firstGreetingMessage: { cursor: { epoch, seq } } });
    bus.add(call);
    call.on("cancelled", () => bus.delete(call));
  },
  Publish(call, callback) {
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
process.on("SIGTERM", () => {
  clearInterval(ticker);
  server.forceShutdown();
});
