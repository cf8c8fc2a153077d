/**
 * A bound on the metadata a call may send, checked by grpc-js: what the
 * HTTP/2 layer's own limit misses (a peer that never acknowledges the
 * server's SETTINGS is not bound by the header list size they announce).
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { CapacityError } from "../../errors.ts";

/**
 * Most bytes of headers (metadata) a call may send: 16 KiB, grpc core's
 * absolute default. Without it, Deno's `node:http2` took header lists up to
 * what nghttp2's CONTINUATION guard allows (~144 KiB, 8 CONTINUATION frames:
 * held per stream, a connection's 1,000 streams ~144 MB).
 */
export const MAX_HEADER_LIST_BYTES = 16 * 1024;

/**
 * HTTP/2 frames the server takes (SETTINGS_MAX_FRAME_SIZE): 1 MiB, not the
 * default 16 KiB. nghttp2 ends the whole connection when a header block
 * comes in more than 9 frames (its guard against CONTINUATION floods), and
 * a client that splits its headers by this size (gRPC C-core: Python, C++,
 * Ruby…) sent 200 KB of metadata in 13 frames of 16 KiB, so the oversized
 * call took its sibling streams down with it. In frames of 1 MiB, up to 9
 * MiB is one or a few frames, and the call is refused on its own stream as
 * any other over {@linkcode MAX_HEADER_LIST_BYTES}. Bodies are no larger
 * for it: flow-control windows bound what a peer sends, and nghttp2 reads a
 * frame as it comes.
 */
export const MAX_FRAME_BYTES = 1 << 20;

/**
 * Advertises {@linkcode MAX_HEADER_LIST_BYTES} (SETTINGS_MAX_HEADER_LIST_SIZE):
 * Deno's `node:http2` then refuses a longer header list on its stream alone
 * (RST_STREAM ENHANCE_YOUR_CALM, which a grpc-js client reports as
 * RESOURCE_EXHAUSTED), and compliant clients learn the limit; a peer that
 * never acknowledges the SETTINGS is not bound by it, and meets
 * {@linkcode metadataLimitInterceptor} instead. And advertises
 * {@linkcode MAX_FRAME_BYTES}, so that a long header list does not end its
 * connection first. grpc-js 1.14 has no option for either: its HTTP/2
 * server options are a private field, read when it binds.
 *
 * What stays beyond reach, inside nghttp2: a header block in more than 9
 * frames (a peer that splits into 16 KiB frames whatever the server
 * allows, past ~144 KiB) and one header over 64 KiB (HPACK cannot decode
 * it) still end the connection; `node:http2` has no option for nghttp2's
 * CONTINUATION limit (`nghttp2_option_set_max_continuations`).
 */
export function limitHeaderList(server: grpc.Server): void {
  const internals = server as unknown as {
    commonServerOptions?: { settings?: Record<string, unknown> };
  };
  const common = internals.commonServerOptions;
  if (!common) {
    throw new Error(
      "Cannot limit header lists: grpc-js no longer has commonServerOptions",
    );
  }
  common.settings = {
    ...common.settings,
    maxHeaderListSize: MAX_HEADER_LIST_BYTES,
    maxFrameSize: MAX_FRAME_BYTES,
  };
}

/** Bytes HTTP/2 counts per header besides its name and value (RFC 9113 6.5.2). */
const HEADER_OVERHEAD = 32;

/** The size of `metadata` as HTTP/2 counts a header list. */
function metadataBytes(metadata: grpc.Metadata): number {
  let bytes = 0;
  for (const [key, values] of Object.entries(metadata.toJSON())) {
    for (const value of values) {
      bytes += key.length + value.length + HEADER_OVERHEAD;
    }
  }
  return bytes;
}

/**
 * A grpc-js server interceptor that answers `RESOURCE_EXHAUSTED` to a call
 * whose metadata is over `maxBytes`, before any handler sees it.
 *
 * @example
 * ```ts
 * import * as grpc from "@grpc/grpc-js";
 * import { metadataLimitInterceptor } from "./metadata_limit.ts";
 * const refuse = (error: unknown) => ({
 *   code: grpc.status.RESOURCE_EXHAUSTED,
 *   details: (error as Error).message,
 * });
 * new grpc.Server({ interceptors: [metadataLimitInterceptor(16 * 1024, refuse)] });
 * ```
 */
export function metadataLimitInterceptor(
  maxBytes: number,
  toStatus: (error: unknown) => { code: grpc.status; details: string },
): grpc.ServerInterceptor {
  return (_method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, forward) {
            const bytes = metadataBytes(metadata);
            if (bytes <= maxBytes) return forward(metadata);
            const { code, details } = toStatus(
              new CapacityError(
                `Request metadata of ${bytes} bytes is over the server's limit of ${maxBytes}: send less metadata`,
              ),
            );
            call.sendStatus({ code, details });
          },
        });
      },
    });
}
