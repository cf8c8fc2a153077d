/**
 * Bearer tokens applied to calls: a grpc-js server interceptor that refuses
 * every call (health excepted) without an accepted token.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import type { BearerTokens } from "./auth.ts";
import { UnauthenticatedError } from "../errors.ts";
import { toServiceError } from "./status.ts";

/** Calls to these services need no token: probes must work unauthenticated. */
const OPEN_SERVICE_PREFIXES = ["/grpc.health.v1.Health/"];

/**
 * A grpc-js server interceptor that answers `UNAUTHENTICATED` to any call
 * (health excepted) whose `authorization` metadata carries no accepted
 * bearer token. The token itself is never logged nor echoed.
 *
 * @example
 * ```ts ignore
 * new grpc.Server({ interceptors: [createAuthInterceptor(new BearerTokens(tokens))] });
 * ```
 */
export function createAuthInterceptor(
  tokens: BearerTokens,
): grpc.ServerInterceptor {
  return (method, call) => {
    if (
      OPEN_SERVICE_PREFIXES.some((prefix) => method.path.startsWith(prefix))
    ) {
      return new grpc.ServerInterceptingCall(call); // passes everything on
    }
    return new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, forward) {
            const [value] = metadata.get("authorization");
            if (tokens.accepts(typeof value === "string" ? value : undefined)) {
              forward(metadata);
              return;
            }
            const { code, details } = toServiceError(
              new UnauthenticatedError(
                `Missing or invalid bearer token for ${method.path}: send metadata "authorization: Bearer <token>"`,
              ),
            );
            call.sendStatus({ code, details });
          },
        });
      },
    });
  };
}
