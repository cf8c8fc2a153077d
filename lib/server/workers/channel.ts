/**
 * Calls between the main thread and a worker over one message port: each
 * side asks the other by name and awaits the answer; a failure comes back
 * as the same typed error (`lib/errors.ts`), its class and message kept.
 * Notes (no answer) go the same way, in order with the calls.
 *
 * @module
 */

import {
  CapacityError,
  ConfigError,
  GreeterError,
  InvalidArgumentError,
  PermissionDeniedError,
  SlowConsumerError,
  UnauthenticatedError,
  UnavailableError,
} from "../../errors.ts";

/** One side of a port: a `Worker`, or a worker's `self`. */
export interface Port {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  addEventListener(
    type: "message",
    listener: (event: MessageEvent) => void,
  ): void;
  removeEventListener(
    type: "message",
    listener: (event: MessageEvent) => void,
  ): void;
}

/** What crosses the port. */
type Envelope =
  | { call: number; name: string; value: unknown }
  | {
    answer: number;
    value?: unknown;
    error?: { name: string; message: string };
  }
  | { note: string; value: unknown };

/** Handles calls by name: returns (or resolves to) the answer. */
export type Handlers = Record<string, (value: never) => unknown>;

/** Typed errors rebuilt by name on the other side. */
const ERRORS: Record<string, new (message: string) => GreeterError> = {
  CapacityError,
  ConfigError,
  InvalidArgumentError,
  PermissionDeniedError,
  SlowConsumerError,
  UnauthenticatedError,
  UnavailableError,
};

/** `error` as it crosses: its class name and message. */
function describe(error: unknown): { name: string; message: string } {
  return error instanceof Error
    ? { name: error.name, message: error.message }
    : { name: "Error", message: String(error) };
}

/** The error a description names. */
function rebuild(description: { name: string; message: string }): Error {
  const Type = ERRORS[description.name];
  return Type ? new Type(description.message) : new Error(description.message);
}

/**
 * Calls and notes over `port`, answered by `handlers`; a call that finds no
 * handler fails, a note without one is dropped.
 *
 * @example
 * ```ts ignore
 * const channel = new Channel(worker, { ping: () => "pong" });
 * await channel.call("stats", {});
 * channel.note("events", 42);
 * channel.close();
 * ```
 */
export class Channel {
  #port: Port;
  #handlers: Handlers;
  #notes: Record<string, (value: never) => void>;
  #next = 1;
  #pending = new Map<number, PromiseWithResolvers<unknown>>();
  #closed = false;
  #onMessage = (event: MessageEvent) => this.#receive(event.data as Envelope);

  /** Listens on `port`: calls go to `handlers`, notes to `notes`. */
  constructor(
    port: Port,
    handlers: Handlers,
    notes: Record<string, (value: never) => void> = {},
  ) {
    this.#port = port;
    this.#handlers = handlers;
    this.#notes = notes;
    port.addEventListener("message", this.#onMessage);
  }

  /** Calls `name` on the other side with `value`; resolves to its answer. */
  call<T>(name: string, value: unknown, transfer?: Transferable[]): Promise<T> {
    if (this.#closed) {
      return Promise.reject(
        new UnavailableError(`Cannot call ${name}: the worker is gone`),
      );
    }
    const call = this.#next++;
    const pending = Promise.withResolvers<unknown>();
    this.#pending.set(call, pending);
    this.#port.postMessage({ call, name, value } satisfies Envelope, transfer);
    return pending.promise as Promise<T>;
  }

  /** Tells the other side `name` with `value`, expecting no answer. */
  note(name: string, value: unknown, transfer?: Transferable[]): void {
    if (this.#closed) return;
    this.#port.postMessage({ note: name, value } satisfies Envelope, transfer);
  }

  /** Stops listening; calls waiting for an answer fail with {@linkcode UnavailableError}. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#port.removeEventListener("message", this.#onMessage);
    for (const pending of this.#pending.values()) {
      pending.reject(new UnavailableError("The worker is gone"));
    }
    this.#pending.clear();
  }

  #receive(envelope: Envelope): void {
    if ("note" in envelope) {
      this.#notes[envelope.note]?.(envelope.value as never);
    } else if ("call" in envelope) {
      void this.#answer(envelope);
    } else {
      const pending = this.#pending.get(envelope.answer);
      if (!pending) return;
      this.#pending.delete(envelope.answer);
      if (envelope.error) pending.reject(rebuild(envelope.error));
      else pending.resolve(envelope.value);
    }
  }

  async #answer(
    { call, name, value }: { call: number; name: string; value: unknown },
  ): Promise<void> {
    let answer: Envelope;
    try {
      const handler = this.#handlers[name];
      if (!handler) throw new Error(`Nothing answers "${name}" here`);
      answer = { answer: call, value: await handler(value as never) };
    } catch (error) {
      answer = { answer: call, error: describe(error) };
    }
    if (!this.#closed) this.#port.postMessage(answer);
  }
}
