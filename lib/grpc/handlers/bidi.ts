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
import { revokedBy } from "../call_signal.ts";

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
    // A reload that revokes the token ends the call at once, even while it
    // waits for the caller's next request.
    const onAbort = () => {
      const revoked = revokedBy(signal);
      if (revoked) failCall(call, revoked, log);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      // The default iterator destroys the duplex on exit, losing queued replies.
      const requests = call.iterator({ destroyOnReturn: false });
      for await (const request of requests as AsyncIterable<HelloRequest>) {
        const name = validateName(request.name);
        await writer.write({ message: helloMessage(name) }, signal);
      }
      if (!call.cancelled && !revokedBy(signal)) call.end();
    } catch (error) {
      // A revocation has ended the call already.
      if (!revokedBy(signal)) failCall(call, error, log);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  };
}
