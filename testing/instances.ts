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
import {
  type LineProcess,
  runClient,
  spawnServer,
  spawnTask,
} from "./process.ts";

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

/**
 * `deno task client NAME --mode subscribe --topic TOPIC` on `target`, once
 * it printed that it subscribed; dispose of it to kill it.
 */
export async function startSubscriber(
  name: string,
  target: string,
  topic: string,
): Promise<LineProcess> {
  const subscriber = spawnTask("client", [
    name,
    "--target",
    target,
    "--mode",
    "subscribe",
    "--topic",
    topic,
  ]);
  try {
    await subscriber.waitForLine("stdout", /^subscribed: /);
  } catch (error) {
    await subscriber[Symbol.asyncDispose]();
    throw error;
  }
  return subscriber;
}

/**
 * What `--mode presence --topic TOPIC` through `target` prints (it must
 * exit 0), and the names it lists, in its order.
 */
export async function listPresence(
  target: string,
  topic: string,
): Promise<{ stdout: string; names: string[] }> {
  const listed = await runClient([
    "--target",
    target,
    "--mode",
    "presence",
    "--topic",
    topic,
  ]);
  assert.equal(listed.code, 0, listed.stderr);
  const names = [...listed.stdout.matchAll(/name="(\w+)"/g)].map((m) => m[1]);
  return { stdout: listed.stdout, names };
}

/**
 * `--mode subscribe --topic TOPIC --after CURSOR --count N` through
 * `target`: it must exit 0, resumed; the payloads it printed, in order.
 */
export async function resumeOn(
  target: string,
  topic: string,
  after: string,
  count: number,
): Promise<string[]> {
  const resumed = await runClient([
    "mover",
    "--target",
    target,
    "--mode",
    "subscribe",
    "--topic",
    topic,
    "--after",
    after,
    "--count",
    String(count),
  ]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, /^subscribed: .* resumed$/m);
  return [...resumed.stdout.matchAll(/^event: .* payload="(.*)"$/gm)].map((
    m,
  ) => m[1]);
}

/**
 * `deno task serve --broker BROKER FLAGS…` (with `env`) run until it exits,
 * as one refused at start does: its exit code and stderr.
 */
export async function serveRefused(
  broker: string,
  flags: string[] = [],
  env?: Record<string, string>,
): Promise<{ code: number; stderr: string }> {
  await using serve = spawnTask("serve", [
    "--port",
    "0",
    "--broker",
    broker,
    ...flags,
  ], env);
  const { code } = await serve.exit(20_000);
  return { code, stderr: serve.stderr.join("\n") };
}
