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
  GreeterError,
  InvalidArgumentError,
  PermissionDeniedError,
  SlowConsumerError,
  UnauthenticatedError,
  UnavailableError,
} from "../errors.ts";
import type { LeaveReason } from "../bus/hub_items.ts";
import type { Logger } from "../log.ts";
import type { MethodRecorder } from "../observe/rpc_metrics.ts";

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

/**
 * Why an HTTP stream was cut when the shutdown's grace ran out: no goodbye
 * (the stream errors), counted as CANCELLED.
 */
export class CutError extends GreeterError {}

/**
 * The gRPC status code a subscription ended with, as its caller saw it:
 * OK after the hub closed it, CANCELLED when the caller went (or the
 * grace's end cut it), RESOURCE_EXHAUSTED for a slow consumer, and the
 * error's own code for an abort (a deadline, the hub unable to go on).
 *
 * @example
 * ```ts
 * import { leaveCode } from "./status.ts";
 * leaveCode("cancelled"); // 1
 * ```
 */
export function leaveCode(reason: LeaveReason, error?: unknown): number {
  switch (reason) {
    case "closed":
      return 0; // OK: connect-es has no name for it
    case "cancelled":
    case "client-cancelled":
    case "disconnected":
      return Code.Canceled;
    case "deadline":
      return Code.DeadlineExceeded;
    case "slow-consumer":
      return Code.ResourceExhausted;
    case "aborted":
      return error instanceof CutError ? Code.Canceled : connectCodeOf(error);
  }
}

/**
 * One HTTP call as the metrics count it: started when made, each request
 * message received, handled once with its code and how long it took.
 *
 * @example
 * ```ts ignore
 * const call = new CallRecord(recorder.method("/helloworld.Greeter/Subscribe"));
 * call.received();
 * call.handled(0);
 * ```
 */
export class CallRecord {
  #calls: MethodRecorder | undefined;
  #start = performance.now();
  #handled = false;
  /** Whoever will say how it ends has taken it (connect-es's interceptor). */
  claimed = false;

  /** A call of the method `calls` records (none: counted nowhere). */
  constructor(calls: MethodRecorder | undefined) {
    this.#calls = calls;
    calls?.started();
  }

  /** A request message was read. */
  received(): void {
    this.#calls?.received();
  }

  /** A reply message went to the transport. */
  sent(): void {
    this.#calls?.sent();
  }

  /** The call ended with the gRPC status `code` (later calls are ignored). */
  handled(code: number): void {
    if (this.#handled) return;
    this.#handled = true;
    this.#calls?.handled(code, (performance.now() - this.#start) / 1000);
  }
}
