/**
 * `greeter client`: makes the calls of the chosen mode and prints, one line
 * per message, exactly what the seed's Python client prints (or, with
 * `--output json`, one JSON object per message).
 *
 * @module
 */

import { escapeUnsafe } from "../escape.ts";
import {
  type ClientCursor,
  GreeterClient,
  targetHost,
} from "../client/client.ts";
import type { ClientConfig, ClientMode } from "./config.ts";
import { follow, nextCursor } from "../client/follow.ts";
import { ConfigError } from "../errors.ts";
import { isLoopback } from "../wire/address.ts";
import { readOptionalFile, readTokenFile } from "./files.ts";
import {
  renderCursor,
  renderFollow,
  renderLine,
  renderSubscriber,
} from "./render.ts";
import { tokenOf } from "../access/tokens.ts";

const encoder = new TextEncoder();

/**
 * Throws {@linkcode ConfigError} when a token would cross a network in
 * plaintext without the user having said so.
 */
function checkTokenTransport(config: ClientConfig): void {
  const hasToken = config.tokenFile !== undefined ||
    config.token !== undefined;
  const remote = config.target.split(",").find((target) =>
    !isLoopback(targetHost(target))
  );
  if (
    !hasToken || config.tls || config.allowPlaintextToken ||
    remote === undefined
  ) return;
  throw new ConfigError(
    `Refusing to send the bearer token in plaintext to "${remote}": anyone on the network path could read and reuse it; connect with TLS (--tls or --tls-ca), or pass --allow-plaintext-token to send it anyway`,
  );
}

/**
 * Runs the client until its calls end, `config.count` stream messages were
 * printed, or `signal` aborts (all three return normally). Messages go to
 * `print`; what is about the client itself (reconnects, the last cursor when
 * interrupted) goes to `notify`, stderr by default. Throws
 * {@linkcode RpcError} when a call fails, {@linkcode ConfigError} when the
 * settings cannot be used.
 *
 * @example
 * ```ts ignore
 * await client({ target: "localhost:50051", mode: "hello", names: ["you"] }, console.log, signal);
 * ```
 */
export async function client(
  config: ClientConfig,
  print: (line: string) => void,
  signal: AbortSignal,
  notify: (line: string) => void = (line) => console.error(line),
): Promise<void> {
  checkTokenTransport(config);
  const token = config.tokenFile
    ? tokenOf((await readTokenFile(config.tokenFile))[0])
    : config.token;
  const [ca, cert, key] = await Promise.all([
    readOptionalFile(config.tlsCa, "TLS CA"),
    readOptionalFile(config.tlsCert, "client TLS certificate"),
    readOptionalFile(config.tlsKey, "client TLS key"),
  ]);
  // Several targets only in subscribe mode (checked with the settings).
  const greeters = config.target.split(",").map((target) =>
    new GreeterClient(target, {
      token,
      tls: config.tls ? { ca, cert, key } : undefined,
    })
  );
  try {
    await MODES[config.mode]({ config, greeters, print, notify, signal });
  } finally {
    for (const greeter of greeters) greeter.close();
  }
}

/** What each mode is handed: the settings, the clients, where lines go. */
interface Run {
  config: ClientConfig;
  /** One client per target (several only to subscribe). */
  greeters: GreeterClient[];
  /** Where what was received goes (stdout). */
  print: (line: string) => void;
  /** Where what is about the client itself goes (stderr). */
  notify: (line: string) => void;
  signal: AbortSignal;
}

/** The calls of each mode. */
const MODES: Record<ClientMode, (run: Run) => Promise<void>> = {
  subscribe,
  publish,
  presence,
  bidi: (run) =>
    take(
      run,
      run.greeters[0].bidi(run.config.names, { signal: run.signal }),
      reply(run, "SayHelloBidiStream"),
    ),
  hello: async (run) => {
    await hello(run);
  },
  stream: async (run) => {
    if (!await hello(run)) return;
    const [name] = run.config.names;
    await take(
      run,
      run.greeters[0].streamReply(name, { signal: run.signal }),
      reply(run, "SayHelloStreamReply"),
    );
  },
  stream2: async (run) => {
    if (!await hello(run)) return;
    const [name] = run.config.names;
    await take(
      run,
      run.greeters[0].stream2(name, { signal: run.signal }),
      (kind) =>
        renderLine(
          run.config.output,
          kind === "unknown"
            ? "unknown message received."
            : `${kind} received:`,
          { kind: "greeting", shape: kind },
        ),
    );
  },
};

/** Prints each of `stream`, rendered, up to `--count`. */
async function take<T>(
  run: Run,
  stream: AsyncIterable<T>,
  render: (value: T) => string,
): Promise<void> {
  const limit = run.config.count ?? Infinity;
  let n = 0;
  for await (const value of stream) {
    run.print(render(value));
    if (++n >= limit) break;
  }
}

/** How a reply of `method` is printed: the seed's line, or JSON. */
function reply(run: Run, method: string): (message: string) => string {
  return (message) =>
    renderLine(run.config.output, `Greeter client received: ${message}`, {
      kind: "reply",
      method,
      message,
    });
}

/** `SayHello`, printed; false when interrupted (nothing more to do). */
async function hello(run: Run): Promise<boolean> {
  const [name] = run.config.names;
  try {
    const message = await run.greeters[0].sayHello(name, {
      signal: run.signal,
    });
    run.print(reply(run, "SayHello")(message));
    return true;
  } catch (error) {
    if (run.signal.aborted) return false;
    throw error;
  }
}

/**
 * Follows the subscription across reconnects, printing each message (and
 * heartbeats with `--verbose`) up to `--count` events; when interrupted,
 * says the last cursor, so that the next run can resume after it.
 */
async function subscribe(run: Run): Promise<void> {
  const { config, print, notify, signal } = run;
  const limit = config.count ?? Infinity;
  let events = 0;
  let last: ClientCursor | undefined = config.after;
  const messages = follow(run.greeters, config.names[0], {
    topics: config.topics,
    after: config.after,
    signal,
  });
  for await (const message of messages) {
    if (message.kind === "reconnecting") {
      notify(renderFollow(message));
      continue;
    }
    if (message.kind !== "heartbeat" || config.verbose) {
      print(renderFollow(message, { format: config.output }));
      if (signal.aborted) break; // that line may not have reached anyone
    }
    last = nextCursor(last, message);
    if (message.kind === "event" && ++events >= limit) break;
  }
  if (signal.aborted && last) {
    notify(`last cursor: ${escapeUnsafe(renderCursor(last))}`);
  }
}

/** Publishes `--payload` on the first `--topic`, and prints its cursor. */
async function publish(run: Run): Promise<void> {
  const { config, signal } = run;
  const [topic = ""] = config.topics;
  const { cursor } = await run.greeters[0].publish(
    topic,
    encoder.encode(config.payload),
    { signal, idempotencyKey: config.idempotencyKey },
  );
  run.print(renderLine(
    config.output,
    `published: topic=${topic} cursor=${renderCursor(cursor)}`,
    { kind: "published", topic, cursor: renderCursor(cursor) },
  ));
}

/** Lists the subscribers, page by page, then their total. */
async function presence(run: Run): Promise<void> {
  const { config, signal } = run;
  const format = config.output;
  // Bounded, since every page lists at least one.
  let pageToken = "";
  let total = 0;
  for (let page = 0; page < 100_000; page++) {
    const reply = await run.greeters[0].listSubscribers({
      topic: config.topics[0],
      pageToken,
      signal,
    });
    for (const s of reply.subscribers) run.print(renderSubscriber(format, s));
    total = reply.total;
    pageToken = reply.nextPageToken;
    if (!pageToken) break;
  }
  run.print(renderLine(
    format,
    `${total} ${total === 1 ? "subscriber" : "subscribers"}`,
    { kind: "total", total },
  ));
}
