/**
 * `SayHelloStream2`: `firstGreetingMessage`, five `timerGreetingMessage` one
 * interval apart, `goodbyeGreetingMessage`, OK; on a server shutdown, the
 * goodbye comes early.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import type { GreeterContext } from "../service_context.ts";
import { DrainingError, revokedBy } from "../call_signal.ts";
import { CallWriter } from "../workarounds/mod.ts";
import { goodbye } from "../goodbye.ts";
import { STREAM2_TIMERS, validateName } from "../../greetings.ts";
import type { GreetingMessage, HelloRequest } from "../../wire/proto.ts";
import { failCall, toServiceError } from "../status.ts";

/**
 * The `SayHelloStream2` handler.
 *
 * @example
 * ```ts ignore
 * const implementation = { SayHelloStream2: sayHelloStream2(context) };
 * ```
 */
export function sayHelloStream2(
  context: GreeterContext,
): grpc.handleServerStreamingCall<HelloRequest, GreetingMessage> {
  const { signals, clock, intervalMs, log, reconnectJitterMs } = context;
  const serialize = context.methods.SayHelloStream2.responseSerialize;
  return async (call) => {
    try {
      const name = validateName(call.request.name);
      // Stops at the drain: a shutdown cuts the timers short.
      const signal = signals.open(call, { name, shutdown: "drain" });
      const writer = new CallWriter<GreetingMessage>(
        call,
        serialize,
        context.writer,
      );
      let draining = false;
      try {
        await writer.write({ firstGreetingMessage: {} }, signal);
        for (let i = 0; i < STREAM2_TIMERS; i++) {
          await clock.sleep(intervalMs, signal);
          await writer.write({ timerGreetingMessage: {} }, signal);
        }
      } catch (error) {
        const revoked = revokedBy(signal);
        if (revoked) {
          // A reload revoked the token: goodbye, then that status.
          call.write(goodbye(toServiceError(revoked).code, revoked.message));
          throw revoked;
        }
        if (!(signal.reason instanceof DrainingError)) throw error;
        draining = true; // the caller still gets its goodbye, then OK
      }
      writer.end(
        draining
          ? goodbye(grpc.status.UNAVAILABLE, "The server is shutting down", {
            reconnectJitterMs,
          })
          : goodbye(grpc.status.OK, "The stream is complete"),
      );
    } catch (error) {
      failCall(call, error, log);
    }
  };
}
