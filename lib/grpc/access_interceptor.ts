/**
 * The access check on gRPC calls: a grpc-js interceptor that asks
 * {@linkcode AccessControl} about each call's `authorization` metadata and,
 * where the request decides, about its first message, and answers a
 * refusal with its status before any handler sees the call.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import type { AccessControl, Caller } from "../access/access.ts";
import type { Permissions } from "../access/permissions.ts";
import { toServiceError } from "./status.ts";

/**
 * A grpc-js server interceptor applying `access` to every call but those of
 * the open services (health, reflection).
 *
 * @example
 * ```ts
 * import * as grpc from "@grpc/grpc-js";
 * import { AccessControl } from "../access/access.ts";
 * import { Logger } from "../log.ts";
 * import { accessInterceptor } from "./access_interceptor.ts";
 * const access = new AccessControl(["s3cret"], { log: new Logger() });
 * new grpc.Server({ interceptors: [accessInterceptor(access)] });
 * ```
 */
export function accessInterceptor(
  access: AccessControl,
): grpc.ServerInterceptor {
  return (method, call) => {
    const path = method.path;
    if (access.isOpen(path)) {
      return new grpc.ServerInterceptingCall(call); // passes everything on
    }
    const checksRequest = access.checksRequest(path);
    let caller: Caller | undefined;
    let permissions: Permissions | undefined;
    let refused = false;
    const refuse = (error: unknown) => {
      refused = true;
      const { code, details } = toServiceError(error);
      call.sendStatus({ code, details });
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, forward) => {
            const [value] = metadata.get("authorization");
            caller = {
              peer: call.getPeer(),
              authorization: typeof value === "string" ? value : undefined,
            };
            try {
              permissions = access.authenticate(caller, path);
            } catch (error) {
              return refuse(error);
            }
            forward(metadata);
          },
          onReceiveMessage: (message, forward) => {
            if (refused) return;
            if (checksRequest && permissions && caller) {
              try {
                access.authorize(permissions, caller, path, message);
              } catch (error) {
                return refuse(error);
              }
            }
            forward(message);
          },
          onReceiveHalfClose: (forward) => {
            if (!refused) forward();
          },
        });
      },
    });
  };
}
