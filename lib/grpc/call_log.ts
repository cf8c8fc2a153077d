/**
 * `--log-level debug`: one line per call when it ends, with its method,
 * peer, the status the client got and how long it took.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../log.ts";
import { sentStatus } from "./sent_status.ts";

/**
 * A grpc-js server interceptor logging each call at debug once it ends:
 * `Call ended method="/helloworld.Greeter/SayHello" peer="…" code="OK"
 * ms=1.2`. Outermost but for access control's, so it sees refused calls
 * too. Install it only when debug is on: it costs a closure per call.
 *
 * @example
 * ```ts ignore
 * new grpc.Server({ interceptors: [callLogInterceptor(log)] });
 * ```
 */
export function callLogInterceptor(log: Logger): grpc.ServerInterceptor {
  return (method, call) => {
    const started = performance.now();
    const peer = call.getPeer(); // gone from the stream once it closed
    let logged = false;
    const ended = (code: string) => {
      if (logged) return;
      logged = true;
      log.debug("Call ended", {
        method: method.path,
        peer,
        code,
        ms: Math.round((performance.now() - started) * 10) / 10,
      });
    };
    return new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({ onCancel: () => ended(sentStatus(call) ?? "CANCELLED") });
      },
      sendStatus(status, next) {
        ended(sentStatus(call) ?? grpc.status[status.code] ?? `${status.code}`);
        next(status);
      },
    });
  };
}
