/**
 * The server's own grpc-js interceptor, the innermost: it charges what each
 * call sends outside a `CallWriter` to its connection (`call_writer.ts`),
 * corking the connection's socket while headers and trailers go; it tells
 * a call's counters (the metrics) when it starts, each message it receives
 * and sends (a `CallWriter` counts its own, which bypass grpc-js), and its
 * end; and it reports each call's end once, with the status the client got,
 * which `--log-level debug` logs. One interceptor for all of that: each
 * grpc-js interceptor costs every call its own intercepting call and
 * listener, and every message a closure per interceptor.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import {
  chargeHeaders,
  chargeMessage,
  countSentMessages,
  http2StreamOf,
} from "./call_writer.ts";
import { passesBuffers } from "../../wire/proto.ts";
import { sentStatus } from "./sent_status.ts";

/**
 * How long before the server's deadline a cancel still counts as the
 * deadline's. A client cancels at its own deadline, which it set before the
 * request left; the server sets its copy when it reads the request's
 * headers, a network delay (and, on a busy server, a wait in its event loop)
 * later. So the client's cancel at its deadline reaches the server a little
 * before the server's copy expires, as often as not: measured, 1 test run in
 * 6 on a loaded 2-core machine counted a 300 ms deadline as CANCELLED.
 */
export const DEADLINE_SLACK_MS = 100;

/**
 * Whether `call`'s deadline has passed, or nearly ({@linkcode DEADLINE_SLACK_MS}):
 * when grpc-js cancels a call, the difference between its deadline and the
 * client leaving (grpc-js ends a call past its deadline itself, then
 * cancels it).
 */
export function deadlinePassed(
  call: { getDeadline(): grpc.Deadline },
): boolean {
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return ms - DEADLINE_SLACK_MS <= Date.now();
}

/** A call that ended, as {@linkcode callInterceptor} reports it. */
export interface CallEnd {
  /** Its method's path: `/helloworld.Greeter/SayHello`. */
  method: string;
  /**
   * The status the client got, by name: `CANCELLED` when it went away first,
   * `DEADLINE_EXCEEDED` when its deadline passed, and the status grpc-js
   * sent itself when it ended the call below the interceptors (a message
   * over a size limit; {@linkcode sentStatus}).
   */
  code: string;
  /** The same status's number (`grpc.status`). */
  status: number;
  /** Milliseconds from the call's start to its end. */
  ms: number;
  /** The caller's address, when asked for (`peers`). */
  peer?: string;
}

/** What one call's progress is told to (the metrics' recorder of its method). */
export interface CallCounters {
  /** The call started. */
  started(): void;
  /** A request message was read. */
  received(): void;
  /** A reply message went out (called by the call's writers too). */
  sent(): void;
  /** The call ended with the status `code` after `seconds`. */
  handled(code: number, seconds: number): void;
}

/** Options of {@linkcode callInterceptor}. */
export interface CallInterceptorOptions {
  /** Called once per call, when it ends. */
  onEnd?(end: CallEnd): void;
  /**
   * The counters of the method at `path`, looked up once per call;
   * `undefined`: its calls are not counted.
   */
  counters?(path: string): CallCounters | undefined;
  /**
   * Report each call's peer (taken at its start: grpc-js forgets it once
   * the stream closes). Default false: it costs a string per call.
   */
  peers?: boolean;
}

/**
 * The interceptor: install it innermost, so that it sees what access
 * control and the metadata limit refuse.
 *
 * @example
 * ```ts
 * import * as grpc from "@grpc/grpc-js";
 * import { callInterceptor } from "./call_interceptor.ts";
 * new grpc.Server({
 *   interceptors: [callInterceptor({
 *     counters: () => undefined, // or the metrics' recorder of each method path
 *     onEnd: ({ method, code, ms }) => console.log(method, code, ms),
 *   })],
 * });
 * ```
 */
export function callInterceptor(
  options: CallInterceptorOptions,
): grpc.ServerInterceptor {
  const { onEnd, peers = false } = options;
  return (method, call) => {
    const started = performance.now();
    const peer = peers ? call.getPeer() : undefined;
    const stream = http2StreamOf(call);
    const connection = stream?.session;
    const encodedPasses = passesBuffers(method.responseSerialize);
    const counters = options.counters?.(method.path);
    if (counters) {
      counters.started();
      if (stream) countSentMessages(stream, counters);
    }
    let ended = false;
    const end = (status: number) => {
      if (ended) return;
      ended = true;
      // A status grpc-js sent itself is what the client got.
      const sent = sentStatus(stream) ?? status;
      const ms = performance.now() - started;
      counters?.handled(sent, ms / 1000);
      onEnd?.({
        method: method.path,
        code: grpc.status[sent] ?? "UNKNOWN",
        status: sent,
        ms,
        peer,
      });
    };
    return new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMessage: counters
            ? (message, next) => {
              counters.received();
              next(message);
            }
            : undefined,
          onCancel: () =>
            end(
              deadlinePassed(call)
                ? grpc.status.DEADLINE_EXCEEDED
                : grpc.status.CANCELLED,
            ),
        });
      },
      sendMetadata(metadata, next) {
        chargeHeaders(connection);
        next(metadata);
      },
      sendMessage(message, next) {
        if (Buffer.isBuffer(message)) return next(message); // a CallWriter's: counted there
        let encoded: Buffer;
        try {
          encoded = method.responseSerialize(message);
        } catch {
          // grpc-js fails the call itself (INTERNAL, "Error serializing
          // response") when it encodes it: a throw here would skip that.
          return next(message);
        }
        chargeMessage(connection, encoded.length);
        counters?.sent();
        // Encoded once: grpc-js passes it on as it is where it can.
        next(encodedPasses ? encoded : message);
      },
      sendStatus(status, next) {
        chargeHeaders(connection);
        // grpc-js may have ended the call already (an over-size request,
        // after which the handler answers UNIMPLEMENTED to no one).
        end(status.code);
        next(status);
      },
    });
  };
}
