/**
 * One `AbortSignal` per call, the handler's context (connect-es's handler
 * context is the model): it aborts when the caller leaves (`'cancelled'`:
 * a cancel, a reset, a closed connection), when the call's deadline passes,
 * and when the server shuts down, with a reason that says which.
 *
 * A shutdown has two moments, and each call says which one it stops at: the
 * drain (`"drain"`: the server starts shutting down, and a call that can
 * finish early, like `SayHelloStream2`, says goodbye), or the end of the
 * grace period (`"grace"`: calls still open are cancelled). Subscriptions
 * stop at the grace: during the drain the hub ends their streams, and they
 * still deliver what they hold.
 *
 * With tokens, each call is registered with the access control while it is
 * open: a reload that revokes its token (or narrows its grants) aborts its
 * signal with an `UnauthenticatedError` (or a `PermissionDeniedError`),
 * which its handler turns into that status, after a goodbye where its stream
 * has one.
 *
 * @module
 */

import type { StreamingCall } from "./status.ts";
import type { Logger } from "../log.ts";
import {
  CallerLeftError,
  PermissionDeniedError,
  UnauthenticatedError,
  UnavailableError,
} from "../errors.ts";
import type { AccessControl } from "../access/access.ts";
import type { PeerLineBudget } from "../observe/peer_lines.ts";
import { connectionClosed, deadlinePassed } from "./workarounds/mod.ts";

/** When a server shutdown reaches a call: its drain, or the end of its grace. */
export type ShutdownStage = "drain" | "grace";

/** The reason a call's signal carries when the server's drain reached it. */
export class DrainingError extends UnavailableError {}

/**
 * Whether a call's signal aborted because a reload revoked its token or
 * narrowed its grants (its reason is then the error to end it with).
 *
 * @example
 * ```ts
 * import { revokedBy } from "./call_signal.ts";
 * revokedBy(AbortSignal.abort(new Error("gone"))); // undefined
 * ```
 */
export function revokedBy(
  signal: AbortSignal,
): UnauthenticatedError | PermissionDeniedError | undefined {
  const reason = signal.reason;
  return isRevocation(reason) ? reason : undefined;
}

/**
 * Whether `error` is a revocation's: a token no longer held, or grants that
 * no longer cover the call.
 *
 * @example
 * ```ts
 * import { isRevocation } from "./call_signal.ts";
 * isRevocation(new Error("gone")); // false
 * ```
 */
export function isRevocation(
  error: unknown,
): error is UnauthenticatedError | PermissionDeniedError {
  return error instanceof UnauthenticatedError ||
    error instanceof PermissionDeniedError;
}

/** Options of {@linkcode CallSignals.open}. */
export interface CallSignalOptions {
  /**
   * The caller's name: its leaving is logged (`client "NAME" disconnected.`
   * with the peer). Not for hub subscriptions: the hub logs their leave
   * once, with the subscription.
   */
  name?: string;
  /** When a shutdown aborts the signal. Default `"grace"`. */
  shutdown?: ShutdownStage;
}

/**
 * Aborts the controllers that follow `source` when it aborts, with one
 * listener on it for them all: an `AbortSignal` with thousands of listeners
 * makes each add and remove cost as much as their number (measured: 13% of
 * the server's CPU while 10,000 subscribed). `follow()` aborts a controller
 * at once if `source` already has; it returns the function that lets go.
 */
function fanOut(source: AbortSignal) {
  const followers = new Set<AbortController>();
  source.addEventListener("abort", () => {
    for (const controller of followers) controller.abort(source.reason);
    followers.clear();
  }, { once: true });
  return {
    follow(controller: AbortController): () => void {
      if (source.aborted) controller.abort(source.reason);
      else followers.add(controller);
      return () => followers.delete(controller);
    },
  };
}

/**
 * Why a call's signal aborted when grpc-js said it was cancelled: one of
 * three errors made once (their stacks say nothing: the call has no one
 * left to tell). An error made per call took 11 ms of the 150 that removing
 * 1,000 subscribers at once cost.
 */
const DEADLINE_PASSED = new CallerLeftError(
  "deadline",
  "The call's deadline passed",
);
const CLIENT_CANCELLED = new CallerLeftError(
  "client-cancelled",
  "The client cancelled the call",
);
const DISCONNECTED = new CallerLeftError(
  "disconnected",
  "The client's connection closed",
);

/** The reason a call's signal aborts when grpc-js says it was cancelled. */
function cancelReason(call: StreamingCall, closed: () => boolean): Error {
  if (deadlinePassed(call)) return DEADLINE_PASSED;
  return closed() ? DISCONNECTED : CLIENT_CANCELLED;
}

/**
 * Makes each call's one signal. A server has one; its two shutdown signals
 * each have one listener, however many calls follow them.
 *
 * @example
 * ```ts ignore
 * const signals = new CallSignals({ draining, stopped, log });
 * const signal = signals.open(call, { name }); // aborts on leave, deadline, forced shutdown
 * ```
 */
export class CallSignals {
  #log: Logger;
  #peerLines?: PeerLineBudget;
  #access?: AccessControl;
  #drain: ReturnType<typeof fanOut>;
  #grace: ReturnType<typeof fanOut>;

  /**
   * `draining` aborts when the server starts shutting down (its reason is
   * replaced by a {@linkcode DrainingError}); `stopped` when it cancels
   * what is left, at the end of the grace period.
   */
  constructor(options: {
    draining: AbortSignal;
    stopped: AbortSignal;
    log: Logger;
    /** Budgets `disconnected.` lines per peer; every one is written when unset. */
    peerLines?: PeerLineBudget;
    /** With tokens: each open call is registered, and a reload may revoke it. */
    access?: AccessControl;
  }) {
    this.#log = options.log;
    this.#peerLines = options.peerLines;
    this.#access = options.access;
    const drain = new AbortController();
    const draining = options.draining;
    if (draining.aborted) {
      drain.abort(new DrainingError("The server is shutting down"));
    } else {
      draining.addEventListener("abort", () => {
        drain.abort(new DrainingError("The server is shutting down"));
      }, { once: true });
    }
    this.#drain = fanOut(drain.signal);
    this.#grace = fanOut(options.stopped);
  }

  /**
   * The signal of `call`: aborts when the caller leaves or its deadline
   * passes, or when the server's shutdown reaches the call's
   * {@linkcode ShutdownStage}. Its listeners go when the call finishes (a
   * late `RST_STREAM` then is no disconnect).
   */
  open(call: StreamingCall, options: CallSignalOptions = {}): AbortSignal {
    const { name } = options;
    const controller = new AbortController();
    const log = this.#log;
    const lines = this.#peerLines;
    // Read now: once the call is cancelled its peer may be gone ("unknown"),
    // and its stream no longer linked to its connection.
    const peer = name === undefined ? "" : call.getPeer();
    const closed = connectionClosed(call);
    const onCancel = () => {
      if (name !== undefined) {
        // Churn must not flood the log: a budget of lines per peer.
        const held = lines ? lines.take(peer) : 0;
        if (held !== undefined) {
          log.info("client {name} disconnected.", {
            name,
            peer,
            joinsAndLeavesNotLogged: held || undefined,
          });
        }
      }
      controller.abort(cancelReason(call, closed));
    };
    // A forced shutdown may leave a connection open on Deno 2.9.3, with no
    // 'cancelled': the grace's end stops the call all the same.
    const unfollow = (options.shutdown === "drain" ? this.#drain : this.#grace)
      .follow(controller);
    if (call.cancelled) onCancel();
    else call.once("cancelled", onCancel);
    const unregister = this.#register(call, controller);
    const release = () => {
      call.off("cancelled", onCancel);
      unfollow();
      unregister?.();
    };
    call.once("finish", release);
    call.once("close", release);
    return controller.signal;
  }

  /** Registers `call` with the access control (with tokens): a revocation aborts `controller`. */
  #register(
    call: StreamingCall,
    controller: AbortController,
  ): (() => void) | undefined {
    if (!this.#access || controller.signal.aborted) return undefined;
    const [authorization] = call.metadata.get("authorization");
    return this.#access.register({
      caller: {
        peer: call.getPeer(),
        authorization: typeof authorization === "string"
          ? authorization
          : undefined,
      },
      method: call.getPath(),
      request: "request" in call ? call.request : undefined,
      revoke: (error) => controller.abort(error),
    });
  }
}
