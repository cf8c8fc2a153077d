/**
 * Test helpers: a real greeter server on 127.0.0.1:0 with its log captured,
 * and a bounded wait for a condition.
 *
 * @module
 */

import { setTimeout as delay } from "node:timers/promises";
import { Logger } from "../../lib/log.ts";
import {
  type GreeterServer,
  type ServerOptions,
  startServer,
} from "../../lib/server.ts";

/** A running test server; dispose of it to shut it down. */
export interface TestServer extends AsyncDisposable {
  server: GreeterServer;
  /** `127.0.0.1:PORT`. */
  target: string;
  /** Every log line the server wrote. */
  logs: string[];
}

/** Starts a server on 127.0.0.1:0 with its log captured. */
export async function startTestServer(
  options: ServerOptions = {},
): Promise<TestServer> {
  const logs: string[] = [];
  const log = new Logger({ level: "debug", write: (line) => logs.push(line) });
  const server = await startServer({
    host: "127.0.0.1",
    port: 0,
    log,
    ...options,
  });
  return {
    server,
    target: `127.0.0.1:${server.port}`,
    logs,
    [Symbol.asyncDispose]: () => server.shutdown({ graceMs: 2000 }),
  };
}

/**
 * Polls `condition` every 10 ms until it holds; throws naming `what` after
 * `timeoutMs` (a bound on a wait, not a timed assertion).
 */
export async function waitFor(
  what: string,
  condition: () => boolean,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await delay(10);
  }
}

/** Wraps a protobuf body in a gRPC length-prefixed message frame. */
export function grpcFrame(body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(5 + body.length);
  new DataView(frame.buffer).setUint32(1, body.length);
  frame.set(body, 5);
  return frame;
}
