/**
 * Test helpers: a real greeter server on 127.0.0.1:0 with its log captured,
 * and a bounded wait for a condition.
 *
 * @module
 */

import http2 from "node:http2";
import { setTimeout as delay } from "node:timers/promises";
import { Logger } from "../lib/log.ts";
import {
  type GreeterServer,
  type RunningServer,
  startServer,
} from "../lib/server/server.ts";
import type { ServerOptions } from "../lib/server/options.ts";
import {
  startWorkers,
  type WorkersServer,
} from "../lib/server/workers/workers.ts";

/** A running test server; dispose of it to shut it down. */
export interface TestServer<S extends RunningServer = GreeterServer>
  extends AsyncDisposable {
  server: S;
  /** `127.0.0.1:PORT`. */
  target: string;
  /** Every log line the server wrote. */
  logs: string[];
}

/** Starts a server on 127.0.0.1:0 with its log captured. */
export function startTestServer(
  options: ServerOptions = {},
): Promise<TestServer> {
  return started(startServer, options);
}

/**
 * Starts a server over `workers` workers (alone when 1) on 127.0.0.1:0 with
 * its log captured: the tests of the bus run both ways.
 */
export function startBusServer(
  options: ServerOptions,
  workers: number,
): Promise<TestServer<RunningServer>> {
  return workers === 1
    ? startTestServer(options)
    : startWorkersServer(options, workers);
}

/**
 * Starts a server over `workers` workers on 127.0.0.1:0 with its log
 * captured; `unresponsiveMs` as {@linkcode startWorkers} takes it.
 */
export function startWorkersServer(
  options: ServerOptions,
  workers: number,
  { unresponsiveMs }: { unresponsiveMs?: number } = {},
): Promise<TestServer<WorkersServer>> {
  return started((o) => startWorkers(o, { workers, unresponsiveMs }), options);
}

async function started<S extends RunningServer>(
  start: (options: ServerOptions) => Promise<S>,
  options: ServerOptions,
): Promise<TestServer<S>> {
  const logs: string[] = [];
  const log = new Logger({ level: "debug", write: (line) => logs.push(line) });
  const server = await start({
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
 * Polls `condition` (which may be async) every 10 ms until it holds; throws
 * naming `what`, and what `detail` then says, after `timeoutMs` (a bound on
 * a wait, not a timed assertion).
 */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  detail?: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(
        `Timed out after ${timeoutMs} ms waiting for ${what}${
          detail ? `. ${detail()}` : ""
        }`,
      );
    }
    await delay(10);
  }
}

/** Resolves or rejects as `promise` does, or rejects naming `what` after `timeoutMs`. */
export async function settles<T>(
  what: string,
  promise: Promise<T>,
  timeoutMs = 5000,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`),
        ),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A gRPC frame holding `helloworld.HelloRequest{name}` (names up to 127
 * bytes: the length is one varint byte).
 */
export function helloRequestFrame(name: string): Uint8Array {
  const body = new TextEncoder().encode(name);
  if (body.length > 127) {
    throw new RangeError(`Name of ${body.length} bytes: at most 127 here`);
  }
  return grpcFrame(new Uint8Array([0x0a, body.length, ...body]));
}

/** Wraps a protobuf body in a gRPC length-prefixed message frame. */
export function grpcFrame(body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(5 + body.length);
  new DataView(frame.buffer).setUint32(1, body.length);
  frame.set(body, 5);
  return frame;
}

/**
 * A subscriber that stops reading while its connection stays up: its HTTP/2
 * flow-control window shuts, its transport still answers pings. Call
 * `close()` when done.
 */
export function stalledSubscriber(
  target: string,
  name: string,
  session = http2.connect(`http://${target}`),
) {
  return stalledCall(
    session,
    "/helloworld.Greeter/SayHelloStreamReply",
    helloRequestFrame(name),
  );
}

/**
 * Calls `path` with the request `frame` on `session`, and does not read the
 * reply until `resume()`. What came is kept: `bytes`, the gRPC `messages`
 * (bodies, in order) and the `trailers`.
 */
export function stalledCall(
  session: http2.ClientHttp2Session,
  path: string,
  frame: Uint8Array,
) {
  const stream = session.request({
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
  });
  stream.end(frame);
  stream.pause();
  let bytes = 0;
  const chunks: Uint8Array[] = [];
  let trailers: Record<string, unknown> | undefined;
  stream.on("data", (chunk: Uint8Array) => {
    bytes += chunk.length;
    chunks.push(chunk);
  });
  stream.on("trailers", (t) => trailers = t);
  stream.on("error", () => {});
  let ended = false;
  stream.on("close", () => ended = true);
  return {
    /** The stream closed: everything it carried was received. */
    get ended() {
      return ended;
    },
    get bytes() {
      return bytes;
    },
    get trailers() {
      return trailers;
    },
    /** The gRPC message bodies received so far. */
    messages(): Uint8Array[] {
      const all = new Uint8Array(bytes);
      let at = 0;
      for (const chunk of chunks) {
        all.set(chunk, (at += chunk.length) - chunk.length);
      }
      const bodies: Uint8Array[] = [];
      for (let i = 0; i + 5 <= all.length;) {
        const length = new DataView(all.buffer, i + 1, 4).getUint32(0);
        bodies.push(all.subarray(i + 5, i + 5 + length));
        i += 5 + length;
      }
      return bodies;
    },
    resume: () => stream.resume(),
    close: () => session.destroy(),
  };
}

/**
 * `SayHelloStreamReply` calls held open (each a hub subscription) until
 * ended one by one or all at once by disposal.
 */
export class HeldStreams implements AsyncDisposable {
  #controllers: AbortController[] = [];
  #pending: Promise<unknown>[] = [];

  /**
   * Opens one on `client` named `name`: resolves with its first message,
   * rejects with its refusal. The `n`th opened is ended by `end(n)`.
   */
  open(
    client: {
      streamReply(
        name: string,
        options: { signal: AbortSignal },
      ): AsyncGenerator;
    },
    name: string,
  ): Promise<unknown> {
    const controller = new AbortController();
    this.#controllers.push(controller);
    const first = client.streamReply(name, { signal: controller.signal })
      .next();
    this.#pending.push(first.catch(() => {}));
    return first;
  }

  /** Ends the `n`th call opened. */
  end(n: number): void {
    this.#controllers[n].abort();
  }

  /** Ends every call, and waits for them to settle. */
  async [Symbol.asyncDispose](): Promise<void> {
    for (const controller of this.#controllers) controller.abort();
    await Promise.allSettled(this.#pending);
  }
}
