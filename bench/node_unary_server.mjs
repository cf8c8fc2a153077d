/**
 * The other yardstick for unary calls: a minimal grpc-js Greeter
 * (`SayHello` only) on Node, run by the bench when `node` is installed:
 * `node bench/node_unary_server.mjs` prints `listening on PORT` to stderr.
 * Plain JavaScript, so that Node runs it as it is; the same grpc-js and
 * proto-loader as ours, from the project's `node_modules`.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const protos = join(dirname(fileURLToPath(import.meta.url)), "../protos");
const definition = protoLoader.loadSync(join(protos, "helloworld.proto"), {
  includeDirs: [protos],
});
const { helloworld } = grpc.loadPackageDefinition(definition);

const server = new grpc.Server({ "grpc.enable_channelz": 0 });
server.addService(helloworld.Greeter.service, {
  SayHello(call, callback) {
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
