/**
 * A publisher that counts: "1", "2", "3"… on one topic through gRPC, one
 * after another, until stopped. What a reader must then have received is
 * exactly its `published` list, each once, in order.
 *
 * @module
 */

import type { GreeterClient } from "../lib/client/client.ts";
import { waitFor } from "./server.ts";

/** Options of {@linkcode CountingPublisher}. */
export interface CountingPublisherOptions {
  /** Most events to publish (the console keeps its last 500). Default 400. */
  max?: number;
  /** Pause after each publish (ms). Default 5. */
  pauseMs?: number;
}

/** Publishes 1, 2, 3… on `topic` until stopped or `max`; dispose of it to stop it. */
export class CountingPublisher implements AsyncDisposable {
  /** The payloads published so far, in order. */
  readonly published: string[] = [];
  #stop = new AbortController();
  #running: Promise<void>;
  #done = false;

  /** Starts publishing on `topic` through `client`. */
  constructor(
    client: GreeterClient,
    topic: string,
    options: CountingPublisherOptions = {},
  ) {
    const { max = 400, pauseMs = 5 } = options;
    const signal = this.#stop.signal;
    this.#running = (async () => {
      try {
        for (let n = 1; n <= max && !signal.aborted; n++) {
          await client.publish(topic, new TextEncoder().encode(String(n)));
          this.published.push(String(n));
          await new Promise((resolve) => setTimeout(resolve, pauseMs));
        }
      } finally {
        this.#done = true;
      }
    })();
  }

  /** Resolves once `count` more are published (or it stopped at its `max`). */
  async more(count: number): Promise<void> {
    const target = this.published.length + count;
    await waitFor(
      `${count} more events published`,
      () => this.published.length >= target || this.#done,
    );
  }

  /** Stops; resolves with every payload published (rejects if a publish failed). */
  async stop(): Promise<string[]> {
    this.#stop.abort();
    await this.#running;
    return this.published;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#stop.abort();
    await this.#running.catch(() => {});
  }
}
