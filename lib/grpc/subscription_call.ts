/**
 * A subscription's life on a call: admitted against its connection, a hub
 * subscription whose stream goes to a {@linkcode CallWriter}, left when the
 * caller goes, a status when it fails.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import { CallWriter, type CallWriterOptions } from "./workarounds/mod.ts";
import type { Admission } from "../access/admission.ts";
import type { CallSignals } from "./call_signal.ts";
import { failCall, type StreamingCall } from "./status.ts";
import type { Hub, SubscribeOptions, Subscription } from "../bus/hub.ts";
import { validateName } from "../greetings.ts";
import type { Logger } from "../log.ts";

/** What one subscription call does, for {@linkcode SubscriptionCalls.serve}. */
export interface SubscriptionCallOptions<M> {
  /** The name the caller sent (validated here). */
  name: string;
  /** The topics and resume cursor of the hub subscription (read from the request here: a bad one fails the call). */
  subscribe: () =>
    | Pick<SubscribeOptions, "topics" | "after" | "started">
    | Promise<Pick<SubscribeOptions, "topics" | "after" | "started">>;
  /** Encodes the method's replies. */
  serialize: (message: M) => Buffer;
  /** Writes the subscription to the call (the signal aborts when the call must stop). */
  body: (
    subscription: Subscription<Uint8Array>,
    writer: CallWriter<M>,
    signal: AbortSignal,
  ) => Promise<void>;
  /** Called with the error before a failure ends the call (unless the caller is gone). */
  lastWord?: (error: unknown) => void;
}

/**
 * Reads `readable` to its end, handing each item to `write` (which returns a
 * promise when the next must wait); cancels it when leaving early (unless
 * `signal`, which already removed it, aborted). The stream stays locked.
 *
 * @example
 * ```ts ignore
 * await readAll(subscription.readable, signal, (item) => writer.write(item, signal));
 * ```
 */
export async function readAll<T>(
  readable: ReadableStream<T>,
  signal: AbortSignal,
  write: (item: T) => Promise<void> | undefined,
): Promise<void> {
  const reader = readable.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      const pending = write(value); // undefined: room for the next at once
      if (pending) await pending;
    }
  } finally {
    // The lock is kept: nothing reads the stream after this, and releasing
    // it makes a TypeError (stack and all) per stream; 1,000 subscribers
    // removed at once spent 16 ms of 150 there.
    if (!signal.aborted) await reader.cancel();
  }
}

/**
 * Serves hub subscriptions on calls (`Subscribe`, `SayHelloStreamReply`).
 *
 * @example
 * ```ts ignore
 * await subscriptions.serve(call, { name, subscribe: { topics }, serialize, body });
 * ```
 */
export class SubscriptionCalls {
  #hub: Hub<Uint8Array>;
  #admission: Admission;
  #signals: CallSignals;
  #log: Logger;
  #writer: CallWriterOptions | undefined;

  /** Subscribes on `hub`, admitted by `admission`, each call with its signal from `signals`. */
  constructor(options: {
    hub: Hub<Uint8Array>;
    admission: Admission;
    signals: CallSignals;
    log: Logger;
    writer?: CallWriterOptions;
  }) {
    this.#hub = options.hub;
    this.#admission = options.admission;
    this.#signals = options.signals;
    this.#log = options.log;
    this.#writer = options.writer;
  }

  /**
   * Serves one hub subscription on `call`: validates the name, counts it
   * against its connection's limit, subscribes (the call's signal removes
   * it), and hands `body` the subscription and a writer. The subscription's
   * stream is cancelled if `body` leaves it unread; a failure ends the call
   * with its status, after `lastWord` (unless the caller is gone); the
   * connection's count is always released.
   */
  async serve<M>(
    call: StreamingCall,
    options: SubscriptionCallOptions<M>,
  ): Promise<void> {
    let release: (() => void) | undefined;
    try {
      const name = validateName(options.name);
      const subscribe = await options.subscribe();
      const peer = call.getPeer();
      release = this.#admission.admit(peer, { name, topics: subscribe.topics });
      const signal = this.#signals.open(call); // the hub logs the leave
      const subscription = this.#hub.subscribe(name, {
        ...subscribe,
        signal,
        labels: { peer, transport: "grpc" },
        holder: peer,
      });
      const writer = new CallWriter<M>(call, options.serialize, this.#writer);
      try {
        await options.body(subscription, writer, signal);
      } finally {
        // Unread (the body failed early): leave the hub now. Read to its
        // end or errored: cancelling is a no-op.
        if (!signal.aborted && !subscription.readable.locked) {
          await subscription.readable.cancel().catch(() => {});
        }
      }
    } catch (error) {
      if (!call.cancelled) options.lastWord?.(error);
      failCall(call, error, this.#log);
    } finally {
      release?.();
    }
  }
}
