/**
 * A bound on the metadata a call may send, checked by grpc-js: what the
 * HTTP/2 layer's own limit misses (a peer that never acknowledges the
 * server's SETTINGS is not bound by the header list size they announce).
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { CapacityError } from "../errors.ts";
import { toServiceError } from "./status.ts";

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
 * ```ts ignore
 * new grpc.Server({ interceptors: [metadataLimitInterceptor(16 * 1024)] });
 * ```
 */
export function metadataLimitInterceptor(
  maxBytes: number,
): grpc.ServerInterceptor {
  return (_method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, forward) {
            const bytes = metadataBytes(metadata);
            if (bytes <= maxBytes) return forward(metadata);
            const { code, details } = toServiceError(
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
