/**
 * `SayHelloBidiStream`: one `Hello, NAME!` per request, in order; OK when
 * the caller half-closes.
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";
import type { GreeterContext } from "../service_context.ts";
import { CallWriter } from "../workarounds/mod.ts";
import { helloMessage, validateName } from "../../greetings.ts";
import type { HelloReply, HelloRequest } from "../../wire/proto.ts";
import { failCall } from "../status.ts";

/**
 * The `SayHelloBidiStream` handler.
 *
 * @example
 * ```ts ignore
 * const implementation = { SayHelloBidiStream: sayHelloBidiStream(context) };
 * ```
 */
export function sayHelloBidiStream(
  context: GreeterContext,
): grpc.handleBidiStreamingCall<HelloRequest, HelloReply> {
  const { signals, log } = context;
  const serialize = context.methods.SayHelloBidiStream.responseSerialize;
  return async (call) => {
    const signal = signals.open(call);
    const writer = new CallWriter<HelloReply>(call, serialize, context.writer);
    try {
      // The default iterator destroys the duplex on exit, losing queued replies.
      const requests = call.iterator({ destroyOnReturn: false });
      for await (const request of requests as AsyncIterable<HelloRequest>) {
        const name = validateName(request.name);
        await writer.write({ message: helloMessage(name) }, signal);
      }
      if (!call.cancelled) call.end();
    } catch (error) {
      failCall(call, error, log);
    }
  };
}
