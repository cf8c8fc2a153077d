/**
 * Typed errors of the greeter domain. Library code throws these; the service
 * adapter maps them to gRPC statuses in one place (`lib/grpc/status.ts`), and the
 * CLI edge prints them (`main.ts`).
 *
 * @module
 */

/** Base class of every error the greeter raises on purpose. */
export class GreeterError extends Error {
  /** Creates the error; `cause` is kept for the CLI to print. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A request or a setting carries a value that can never be accepted.
 *
 * @example
 * ```ts
 * import { InvalidArgumentError } from "./errors.ts";
 * const error = new InvalidArgumentError("Name must not be empty");
 * error.message; // "Name must not be empty": a gRPC caller gets INVALID_ARGUMENT
 * ```
 */
export class InvalidArgumentError extends GreeterError {}

/**
 * A subscriber did not keep up with its events and its buffer overflowed under
 * the `disconnect` policy.
 */
export class SlowConsumerError extends GreeterError {}

/** The caller did not present an accepted bearer token. */
export class UnauthenticatedError extends GreeterError {}

/** The caller's token does not grant what the call needs. */
export class PermissionDeniedError extends GreeterError {}

/** A configured limit (subscribers, per connection…) is reached. */
export class CapacityError extends GreeterError {}

/** The hub or server is closing and accepts no new work. */
export class UnavailableError extends GreeterError {}

/**
 * How a caller left its call before the call was done: it cancelled it
 * (Ctrl-C, a count reached, a closed pipe), its connection closed under the
 * call (the process was killed, the network went), or its deadline passed.
 */
export type CallerLeaving = "client-cancelled" | "disconnected" | "deadline";

/**
 * The caller left its call ({@linkcode CallerLeaving} says how). A
 * transport aborts a call's signal with one; the hub reports a
 * subscription's leave by it.
 *
 * @example
 * ```ts
 * import { CallerLeftError } from "./errors.ts";
 * const left = new CallerLeftError("disconnected", "The client's connection closed");
 * left.how; // "disconnected"
 * ```
 */
export class CallerLeftError extends GreeterError {
  /** How the caller left. */
  readonly how: CallerLeaving;
  /** Creates the error. */
  constructor(how: CallerLeaving, message: string) {
    super(message);
    this.how = how;
  }
}

/** The command line or environment holds a setting that cannot be used. */
export class ConfigError extends GreeterError {}

/**
 * A call made by the client library failed. `code` is the gRPC status name
 * (e.g. `UNAVAILABLE`), `target` the server address it was made to.
 */
export class RpcError extends GreeterError {
  /** The gRPC status name, e.g. `"UNAVAILABLE"`. */
  readonly code: string;
  /** The `host:port` the call was made to. */
  readonly target: string;
  /** Creates the error from a status name, its details and the target. */
  constructor(
    code: string,
    details: string,
    target: string,
    options?: ErrorOptions,
  ) {
    super(`${target}: ${code}: ${details}`, options);
    this.code = code;
    this.target = target;
  }
}
