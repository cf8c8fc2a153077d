/**
 * `greeter serve` instances on a NATS stream as an operator runs them (deno
 * task, each in its own process group), and what tests do with them: stop
 * them as systemd does, publish through them, read a CLI subscriber's
 * events.
 *
 * @module
 */

import assert from "node:assert/strict";
import { GreeterClient } from "../lib/client/client.ts";
import { type LineProcess, spawnServer } from "./process.ts";

/** A running instance; dispose of it to kill its process group. */
export interface Instance extends AsyncDisposable {
  /** The `deno task serve` process. */
  process: LineProcess;
  /** Its port on 127.0.0.1. */
  port: number;
  /** `127.0.0.1:PORT`. */
  target: string;
}

/**
 * `deno task serve --broker URL` on 127.0.0.1 (`port`, or a free one), with
 * a 2 s grace, `extra` flags and `env`, in its own process group.
 */
export async function startInstance(
  url: string,
  options: {
    port?: number;
    extra?: string[];
    env?: Record<string, string>;
  } = {},
): Promise<Instance> {
  const server = await spawnServer(
    [
      "--broker",
      url,
      "--port",
      String(options.port ?? 0),
      "--grace",
      "2000",
      ...options.extra ?? [],
    ],
    options.env,
    true,
  );
  return {
    ...server,
    [Symbol.asyncDispose]: () => server.process[Symbol.asyncDispose](),
  };
}

/** SIGTERM to the instance's process group, as systemd or `timeout` sends it; it must exit 0. */
export async function stopInstance(server: { process: LineProcess }) {
  server.process.signalGroup("SIGTERM");
  const status = await server.process.exit(10_000);
  assert.equal(status.code, 0, server.process.stderr.join("\n"));
}

/** Publishes `payloads` on `topic` through `target`, in order; their cursors as `EPOCH:SEQ`. */
export async function publishTexts(
  target: string,
  topic: string,
  ...payloads: string[]
): Promise<string[]> {
  using client = new GreeterClient(target);
  const cursors: string[] = [];
  for (const payload of payloads) {
    const { cursor } = await client.publish(
      topic,
      new TextEncoder().encode(payload),
    );
    cursors.push(`${cursor.epoch}:${cursor.seq}`);
  }
  return cursors;
}

/** The payloads of the event lines a CLI subscriber printed so far, in order. */
export function printedPayloads(subscriber: LineProcess): string[] {
  return subscriber.stdout.flatMap((line) => {
    const match = line.match(/^event: .* payload="(.*)"$/);
    return match ? [match[1]] : [];
  });
}
