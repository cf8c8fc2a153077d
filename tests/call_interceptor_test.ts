import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import {
  type CallEnd,
  callInterceptor,
} from "../lib/grpc/workarounds/call_interceptor.ts";
import { loadGreeterProto } from "../lib/wire/proto.ts";

Deno.test("a reply that cannot be encoded fails its call with INTERNAL, counted, and the server goes on", async () => {
  const { service, Client } = loadGreeterProto();
  const ends: CallEnd[] = [];
  const server = new grpc.Server({
    interceptors: [callInterceptor({ onEnd: (end) => ends.push(end) })],
  });
  server.addService(service, {
    // null is no HelloReply: protobufjs throws encoding it.
    SayHello: (
      call: grpc.ServerUnaryCall<{ name: string }, unknown>,
      done: grpc.sendUnaryData<unknown>,
    ) => done(null, call.request.name === "bad" ? null : { message: "ok" }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (error, port) => error ? reject(error) : resolve(port),
    )
  );
  const client = new Client(
    `127.0.0.1:${port}`,
    grpc.credentials.createInsecure(),
  );
  const sayHello = (name: string) =>
    new Promise<{ code?: number; reply?: unknown }>((resolve) =>
      client.SayHello(
        { name },
        { deadline: Date.now() + 5000 }, // a call left hanging fails the test
        (error: grpc.ServiceError | null, reply: unknown) =>
          resolve(error ? { code: error.code } : { reply }),
      )
    );
  try {
    assert.equal((await sayHello("bad")).code, grpc.status.INTERNAL);
    const good = await sayHello("good");
    assert.equal((good.reply as { message?: string })?.message, "ok");
    assert.deepEqual(ends.map(({ code }) => code), ["INTERNAL", "OK"]);
  } finally {
    client.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  }
});
