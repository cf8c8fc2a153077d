/**
 * Typed errors become gRPC statuses here, and nowhere else: what a caller
 * receives when a handler fails.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import {
  CallerLeftError,
  CapacityError,
  InvalidArgumentError,
  PermissionDeniedError,
  SlowConsumerError,
  UnauthenticatedError,
  UnavailableError,
} from "../errors.ts";
import type { Logger } from "../log.ts";

/**
 * Maps any error to the status a caller receives: typed greeter errors to
 * their code and message; anything else to `INTERNAL` with a generic message
 * (the real one is logged, not sent).
 *
 * @example
 * ```ts
 * import { toServiceError } from "./status.ts";
 * import { InvalidArgumentError } from "../errors.ts";
 * toServiceError(new InvalidArgumentError("Name must not be empty")).code; // 3
 * ```
 */
export function toServiceError(error: unknown): grpc.ServiceError {
  const code = error instanceof InvalidArgumentError
    ? grpc.status.INVALID_ARGUMENT
    : error instanceof SlowConsumerError || error instanceof CapacityError
    ? grpc.status.RESOURCE_EXHAUSTED
    : error instanceof UnavailableError
    ? grpc.status.UNAVAILABLE
    : error instanceof UnauthenticatedError
    ? grpc.status.UNAUTHENTICATED
    : error instanceof PermissionDeniedError
    ? grpc.status.PERMISSION_DENIED
    : error instanceof CallerLeftError
    ? (error.how === "deadline"
      ? grpc.status.DEADLINE_EXCEEDED
      : grpc.status.CANCELLED)
    : grpc.status.INTERNAL;
  const details = code === grpc.status.INTERNAL
    ? "Internal error: the server could not complete the call"
    : (error as Error).message;
  return Object.assign(new Error(details), {
    code,
    details,
    metadata: new grpc.Metadata(),
  });
}

/** Any streaming call a handler can fail. */
export type StreamingCall =
  | grpc.ServerWritableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>;

/**
 * Ends a streaming call with `error`'s status, unless the caller is already
 * gone; an `INTERNAL` one is logged with the real error.
 *
 * @example
 * ```ts ignore
 * try { await serve(call); } catch (error) { failCall(call, error, log); }
 * ```
 */
export function failCall(
  call: StreamingCall,
  error: unknown,
  log: Logger,
): void {
  if (call.cancelled) return;
  const status = toServiceError(error);
  if (status.code === grpc.status.INTERNAL) {
    log.error("Call failed", { error: String(error) });
  }
  call.emit("error", status);
}
