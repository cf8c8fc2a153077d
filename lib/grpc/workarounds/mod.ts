/**
 * Folder `lib/grpc/workarounds/`: what grpc-js on Deno 2.9.3's `node:http2`
 * leaves to us, behind this one face (the rest of `lib/grpc/` imports this
 * module only), so that it can go together once Deno's `node:http2` (or
 * grpc-js) does the job:
 *
 * - `call_writer.ts`: writes with transport backpressure (Deno gives no
 *   `'drain'` for a stalled HTTP/2 stream), framed and corked per
 *   connection;
 * - `call_interceptor.ts`: charges what calls send outside a writer to that
 *   ledger, counts each call's start, messages (the writers count theirs)
 *   and end, and reports the end with the status really sent
 *   (`sent_status.ts`);
 * - `listener.ts`: the gRPC port's listener (a `node:net` listener stops
 *   for good on `EMFILE`);
 * - `metadata_limit.ts`: the header list bound grpc-js has no option for;
 * - `handshakes.ts`: failed TLS handshakes, which grpc-js does not report;
 * - `log_redaction.ts`: grpc-js's own log lines without credentials.
 *
 * May import `@grpc/grpc-js`, `node:*`, `lib/wire/`, `lib/access/` (the
 * peer guard) and the shared modules of `lib/`; nothing else of
 * `lib/grpc/`.
 *
 * @module
 */

export {
  CallWriter,
  type CallWriterOptions,
  connectionClosed,
  FramedMessage,
  framePrefix,
} from "./call_writer.ts";
export {
  type CallCounters,
  type CallEnd,
  callInterceptor,
  type CallInterceptorOptions,
  deadlinePassed,
} from "./call_interceptor.ts";
export { ConnectionListener } from "./listener.ts";
export {
  limitHeaderList,
  MAX_HEADER_LIST_BYTES,
  metadataLimitInterceptor,
} from "./metadata_limit.ts";
export { logHandshakeFailures } from "./handshakes.ts";
export { redactGrpcLogs } from "./log_redaction.ts";
