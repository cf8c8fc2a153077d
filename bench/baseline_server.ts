/**
 * The baseline: a minimal grpc-js Greeter (SayHello only, no hub, no
 * validation) on the same runtime, so the bench reports our overhead as a
 * ratio. Prints `listening on PORT` to stderr.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { loadGreeterProto } from "../lib/proto.ts";
import type { HelloReply, HelloRequest } from "../lib/proto.ts";

const server = new grpc.Server({ "grpc.enable_channelz": 0 });
server.addService(loadGreeterProto().service, {
  SayHello(
    call: grpc.ServerUnaryCall<HelloRequest, HelloReply>,
    callback: grpc.sendUnaryData<HelloReply>,
  ) {
    callback(null, { message: `Hello, ${call.request.name}!` });
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
Deno.addSignalListener("SIGTERM", () => server.forceShutdown());
