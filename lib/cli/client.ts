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
import type { ClientConfig } from "./config.ts";
import { follow, type FollowMessage } from "../client/follow.ts";
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
 * The cursor to resume from after `message`: where the stream has got to,
 * as far as what was printed goes.
 */
function advance(
  last: ClientCursor | undefined,
  message: FollowMessage,
): ClientCursor | undefined {
  switch (message.kind) {
    case "subscribed":
    case "event":
    case "heartbeat":
      return message.cursor;
    case "gap":
      return last && message.toSeq > last.seq
        ? { epoch: last.epoch, seq: message.toSeq }
        : last;
    default:
      return last;
  }
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
    await run(config, greeters, print, signal, notify);
  } finally {
    for (const greeter of greeters) greeter.close();
  }
}

/** The calls of `config.mode`, on `greeters` (one, except to subscribe). */
async function run(
  config: ClientConfig,
  greeters: GreeterClient[],
  print: (line: string) => void,
  signal: AbortSignal,
  notify: (line: string) => void,
): Promise<void> {
  const [greeter] = greeters;
  const format = config.output;
  const [name] = config.names;
  const limit = config.count ?? Infinity;
  const take = async <T>(
    stream: AsyncIterable<T>,
    render: (value: T) => string,
  ) => {
    let n = 0;
    for await (const value of stream) {
      print(render(value));
      if (++n >= limit) break;
    }
  };
  const reply = (method: string) => (message: string) =>
    renderLine(format, `Greeter client received: ${message}`, {
      kind: "reply",
      method,
      message,
    });

  if (config.mode === "subscribe") {
    let events = 0;
    let last: ClientCursor | undefined = config.after;
    const messages = follow(greeters, name, {
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
        print(renderFollow(message, { format }));
        if (signal.aborted) break; // that line may not have reached anyone
      }
      last = advance(last, message);
      if (message.kind === "event" && ++events >= limit) break;
    }
    if (signal.aborted && last) {
      notify(`last cursor: ${escapeUnsafe(renderCursor(last))}`);
    }
    return;
  }
  if (config.mode === "publish") {
    const [topic = ""] = config.topics;
    const { cursor } = await greeter.publish(
      topic,
      encoder.encode(config.payload),
      { signal },
    );
    print(renderLine(
      format,
      `published: topic=${topic} cursor=${renderCursor(cursor)}`,
      { kind: "published", topic, cursor: renderCursor(cursor) },
    ));
    return;
  }
  if (config.mode === "presence") {
    // Page by page; bounded, since every page lists at least one.
    let pageToken = "";
    let total = 0;
    for (let page = 0; page < 100_000; page++) {
      const reply = await greeter.listSubscribers({
        topic: config.topics[0],
        pageToken,
        signal,
      });
      for (const s of reply.subscribers) print(renderSubscriber(format, s));
      total = reply.total;
      pageToken = reply.nextPageToken;
      if (!pageToken) break;
    }
    print(renderLine(
      format,
      `${total} ${total === 1 ? "subscriber" : "subscribers"}`,
      { kind: "total", total },
    ));
    return;
  }
  if (config.mode === "bidi") {
    await take(
      greeter.bidi(config.names, { signal }),
      reply("SayHelloBidiStream"),
    );
    return;
  }
  try {
    print(reply("SayHello")(await greeter.sayHello(name, { signal })));
  } catch (error) {
    if (signal.aborted) return;
    throw error;
  }
  if (config.mode === "stream") {
    await take(
      greeter.streamReply(name, { signal }),
      reply("SayHelloStreamReply"),
    );
  } else if (config.mode === "stream2") {
    await take(
      greeter.stream2(name, { signal }),
      (kind) =>
        renderLine(
          format,
          kind === "unknown"
            ? "unknown message received."
            : `${kind} received:`,
          { kind: "greeting", shape: kind },
        ),
    );
  }
}
