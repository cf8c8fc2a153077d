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
import { ConfigError, RpcError } from "../errors.ts";
import { isLoopback } from "../wire/address.ts";
import { readOptionalFile, readPayloadFile, readTokenFile } from "./files.ts";
import {
  renderCursor,
  renderFollow,
  renderLine,
  renderPublished,
  renderStreamInfo,
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
  // Several targets: tried in order (subscribe goes round them).
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
  /** One client per target, in the order given. */
  greeters: GreeterClient[];
  /** Where what was received goes (stdout). */
  print: (line: string) => void;
  /** Where what is about the client itself goes (stderr). */
  notify: (line: string) => void;
  signal: AbortSignal;
}

/** A failure before anything reached a server: no connection was made. */
const NOT_SENT = /No connection established/;

/**
 * `call` on the first target that answers: a target that is `UNAVAILABLE`
 * (not there, or going away) is said on stderr and the next one is tried,
 * as Kafka's `bootstrap.servers` and `nats -s a,b` do; the last one's
 * failure is thrown. Any other failure is the server's answer, thrown as it
 * is, and so is one `mayMoveOn` says must not be tried elsewhere.
 */
async function firstAnswering<T>(
  run: Run,
  call: (greeter: GreeterClient) => Promise<T>,
  mayMoveOn: (error: RpcError) => boolean = () => true,
): Promise<{ greeter: GreeterClient; value: T }> {
  const { greeters } = run;
  for (let i = 0;; i++) {
    try {
      return { greeter: greeters[i], value: await call(greeters[i]) };
    } catch (error) {
      const next = greeters[i + 1];
      if (
        !next || run.signal.aborted || !(error instanceof RpcError) ||
        error.code !== "UNAVAILABLE" || !mayMoveOn(error)
      ) throw error;
      run.notify(
        `trying ${next.target}: ${escapeUnsafe(error.message)}`,
      );
    }
  }
}

/**
 * A stream from the first target that answers (see
 * {@linkcode firstAnswering}): its first message decides; once one came, the
 * stream stays on that target.
 */
async function* firstAnsweringStream<T>(
  run: Run,
  open: (greeter: GreeterClient) => AsyncIterable<T>,
): AsyncGenerator<T> {
  const { value: [iterator, first] } = await firstAnswering(
    run,
    async (greeter) => {
      const iterator = open(greeter)[Symbol.asyncIterator]();
      return [iterator, await iterator.next()] as const;
    },
  );
  try {
    for (let result = first; !result.done; result = await iterator.next()) {
      yield result.value;
    }
  } finally {
    await iterator.return?.();
  }
}

/** The calls of each mode. */
const MODES: Record<ClientMode, (run: Run) => Promise<void>> = {
  subscribe,
  publish,
  presence,
  "stream-info": streamInfo,
  bidi: (run) =>
    take(
      run,
      firstAnsweringStream(
        run,
        (greeter) => greeter.bidi(run.config.names, { signal: run.signal }),
      ),
      reply(run, "SayHelloBidiStream"),
    ),
  hello: async (run) => {
    await hello(run);
  },
  stream: async (run) => {
    const greeter = await hello(run);
    if (!greeter) return;
    const [name] = run.config.names;
    await take(
      run,
      greeter.streamReply(name, { signal: run.signal }),
      reply(run, "SayHelloStreamReply"),
    );
  },
  stream2: async (run) => {
    const greeter = await hello(run);
    if (!greeter) return;
    const [name] = run.config.names;
    await take(
      run,
      greeter.stream2(name, { signal: run.signal }),
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

/**
 * `SayHello` on the first target that answers, printed; that target, or
 * undefined when interrupted (nothing more to do).
 */
async function hello(run: Run): Promise<GreeterClient | undefined> {
  const [name] = run.config.names;
  try {
    const { greeter, value } = await firstAnswering(
      run,
      (greeter) => greeter.sayHello(name, { signal: run.signal }),
    );
    run.print(reply(run, "SayHello")(value));
    return greeter;
  } catch (error) {
    if (run.signal.aborted) return undefined;
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
    start: config.from,
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

/**
 * Publishes `--payload` (or the bytes of `--payload-file`, stdin for `-`)
 * on the first `--topic`, and prints its cursor.
 */
async function publish(run: Run): Promise<void> {
  const { config, signal } = run;
  const [topic = ""] = config.topics;
  const payload = config.payloadFile === undefined
    ? encoder.encode(config.payload)
    : await readPayloadFile(config.payloadFile, signal);
  const { value: { cursor } } = await firstAnswering(
    run,
    (greeter) =>
      greeter.publish(topic, payload, {
        signal,
        idempotencyKey: config.idempotencyKey,
      }),
    // A publish that reached a server may be stored though it failed:
    // another target may take it only with a key that makes it one event.
    (error) =>
      config.idempotencyKey !== undefined ||
      NOT_SENT.test(error.message),
  );
  run.print(renderPublished(config.output, topic, cursor));
}

/** The event stream's state, on one line. */
async function streamInfo(run: Run): Promise<void> {
  const { value: info } = await firstAnswering(
    run,
    (greeter) => greeter.streamInfo({ signal: run.signal }),
  );
  run.print(renderStreamInfo(run.config.output, info));
}

/** Lists the subscribers, page by page, then their total. */
async function presence(run: Run): Promise<void> {
  const { config, signal } = run;
  const format = config.output;
  // Bounded, since every page lists at least one.
  let pageToken = "";
  let total = 0;
  // The target that answers the first page answers the next ones.
  let greeters = run.greeters;
  for (let page = 0; page < 100_000; page++) {
    const { greeter, value: reply } = await firstAnswering(
      { ...run, greeters },
      (greeter) =>
        greeter.listSubscribers({ topic: config.topics[0], pageToken, signal }),
    );
    greeters = [greeter];
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
