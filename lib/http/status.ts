/**
 * Typed errors become HTTP answers here, and nowhere else: the status and
 * one-line reason of a refused request (server-sent events, the session,
 * static files), and the Connect code of a failed call (Connect and
 * gRPC-Web carry gRPC's codes).
 *
 * @module
 */

import { Code, ConnectError } from "@connectrpc/connect";
import {
  CapacityError,
  InvalidArgumentError,
  PermissionDeniedError,
  SlowConsumerError,
  UnauthenticatedError,
  UnavailableError,
} from "../errors.ts";
import type { Logger } from "../log.ts";

/** Seconds a refused client is told to wait before trying again (`retry-after`). */
export const RETRY_AFTER_SECONDS = 5;

/** What a caller gets for an error that is no typed one: the real one is logged. */
const INTERNAL_MESSAGE =
  "Internal error: the server could not complete the request";

/**
 * The Connect code of `error`: typed greeter errors to theirs, anything
 * else `Internal`.
 *
 * @example
 * ```ts
 * import { connectCodeOf } from "./status.ts";
 * import { PermissionDeniedError } from "../errors.ts";
 * connectCodeOf(new PermissionDeniedError("no")); // Code.PermissionDenied (7)
 * ```
 */
export function connectCodeOf(error: unknown): Code {
  if (error instanceof ConnectError) return error.code;
  return error instanceof InvalidArgumentError
    ? Code.InvalidArgument
    : error instanceof SlowConsumerError || error instanceof CapacityError
    ? Code.ResourceExhausted
    : error instanceof UnavailableError
    ? Code.Unavailable
    : error instanceof UnauthenticatedError
    ? Code.Unauthenticated
    : error instanceof PermissionDeniedError
    ? Code.PermissionDenied
    : Code.Internal;
}

/**
 * `error` as the `ConnectError` a Connect or gRPC-Web caller receives; an
 * `Internal` one says nothing of the cause, which is logged to `log`.
 *
 * @example
 * ```ts
 * import { toConnectError } from "./status.ts";
 * import { InvalidArgumentError } from "../errors.ts";
 * toConnectError(new InvalidArgumentError("Name must not be empty")).rawMessage;
 * // "Name must not be empty"
 * ```
 */
export function toConnectError(error: unknown, log?: Logger): ConnectError {
  if (error instanceof ConnectError) return error;
  const code = connectCodeOf(error);
  if (code === Code.Internal) {
    log?.error("Call failed", { error: String(error) });
    return new ConnectError(INTERNAL_MESSAGE, code);
  }
  return new ConnectError((error as Error).message, code);
}

/** The HTTP status of each Connect code, as the Connect protocol maps them. */
const HTTP_STATUS: Readonly<Partial<Record<Code, number>>> = {
  [Code.InvalidArgument]: 400,
  [Code.Unauthenticated]: 401,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.Unavailable]: 503,
};

/**
 * A plain-text refusal of `error`: 400, 401, 403, 429 or 503 with its
 * message on one line (429 and 503 say when to retry, 401 which scheme),
 * or 500 with a generic one (the real error logged to `log`).
 *
 * @example
 * ```ts
 * import { refusalResponse } from "./status.ts";
 * import { UnauthenticatedError } from "../errors.ts";
 * refusalResponse(new UnauthenticatedError("Missing token")).status; // 401
 * ```
 */
export function refusalResponse(error: unknown, log?: Logger): Response {
  const code = connectCodeOf(error);
  const status = HTTP_STATUS[code] ?? 500;
  const message = status === 500
    ? INTERNAL_MESSAGE
    : (error as Error).message.replace(/[\r\n]+/g, " ");
  if (status === 500) log?.error("Request failed", { error: String(error) });
  const headers: Record<string, string> = {};
  if (status === 429 || status === 503) {
    headers["retry-after"] = String(RETRY_AFTER_SECONDS);
  }
  if (status === 401) headers["www-authenticate"] = "Bearer";
  return textResponse(status, message, headers);
}

/**
 * A plain-text answer with `status` and a one-line `message`.
 *
 * @example
 * ```ts
 * import { textResponse } from "./status.ts";
 * textResponse(404, "Not found: /nowhere").status; // 404
 * ```
 */
export function textResponse(
  status: number,
  message: string,
  headers?: HeadersInit,
): Response {
  const all = new Headers(headers);
  all.set("content-type", "text/plain; charset=utf-8");
  all.set("cache-control", "no-store");
  return new Response(message + "\n", { status, headers: all });
}
