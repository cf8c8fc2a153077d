/**
 * `greeter client`: makes the calls of the chosen mode and prints, one line
 * per message, exactly what the seed's Python client prints.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { type ClientCursor, GreeterClient } from "../client/client.ts";
import type { ClientConfig } from "./config.ts";
import { follow, type FollowMessage } from "../client/follow.ts";
import { formatLocalTime } from "../greetings.ts";
import { readOptionalFile, readTokenFile } from "./files.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/** A payload as one safe token: quoted text, or base64 when not UTF-8. */
function renderPayload(payload: Uint8Array): string {
  try {
    return JSON.stringify(utf8.decode(payload));
  } catch {
    return `base64:${Buffer.from(payload).toString("base64")}`;
  }
}

function renderCursor(cursor: ClientCursor): string {
  return `${cursor.epoch}:${cursor.seq}`;
}

/**
 * One line for each message of the `subscribe` mode; what a person needs to
 * trust the stream: cursors to resume from, recovered or not, every gap.
 */
export function renderFollow(message: FollowMessage, now = Date.now()): string {
  switch (message.kind) {
    case "subscribed":
      return `subscribed: id=${message.subscriptionId} cursor=${
        renderCursor(message.cursor)
      } recovered=${message.recovered}${
        message.reason ? `: ${message.reason}` : ""
      }`;
    case "event":
      return `event: seq=${message.cursor.seq} topic=${message.topic} time=${
        formatLocalTime(message.timeMs)
      } latency=${Math.max(0, now - message.timeMs)}ms payload=${
        renderPayload(message.payload)
      }`;
    case "heartbeat":
      return `heartbeat: cursor=${renderCursor(message.cursor)}`;
    case "gap":
      return `gap: missed ${
        message.missed || "some"
      } events in seq ${message.fromSeq}-${message.toSeq} (${message.reason})`;
    case "goodbye":
      return `goodbye: code=${message.code} ${JSON.stringify(message.reason)}${
        message.reconnect
          ? `, reconnect after ${message.reconnectAfterMs} ms`
          : ""
      }`;
    case "reconnecting":
      return `reconnecting in ${message.delayMs} ms (attempt ${message.attempt}): ${message.reason}`;
  }
}

/**
 * Runs the client until its calls end, `config.count` stream messages were
 * printed, or `signal` aborts (all three return normally). Throws
 * {@linkcode RpcError} when a call fails.
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
): Promise<void> {
  const token = config.tokenFile
    ? (await readTokenFile(config.tokenFile))[0]
    : config.token;
  const [ca, cert, key] = await Promise.all([
    readOptionalFile(config.tlsCa, "TLS CA"),
    readOptionalFile(config.tlsCert, "client TLS certificate"),
    readOptionalFile(config.tlsKey, "client TLS key"),
  ]);
  using greeter = new GreeterClient(config.target, {
    token,
    tls: config.tls ? { ca, cert, key } : undefined,
  });
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

  if (config.mode === "subscribe") {
    let events = 0;
    const messages = follow(greeter, name, {
      topics: config.topics,
      after: config.after,
      signal,
    });
    for await (const message of messages) {
      print(renderFollow(message));
      if (message.kind === "event" && ++events >= limit) break;
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
    print(`published: topic=${topic} cursor=${renderCursor(cursor)}`);
    return;
  }
  if (config.mode === "presence") {
    const { subscribers, total } = await greeter.listSubscribers({
      topic: config.topics[0],
      signal,
    });
    for (const s of subscribers) {
      print(
        `subscriber: id=${s.subscriptionId} name=${
          JSON.stringify(s.name)
        } topics=${s.topics.join(",")} since=${
          formatLocalTime(s.sinceMs)
        } delivered=${s.delivered} dropped=${s.dropped}`,
      );
    }
    print(`${total} subscribers`);
    return;
  }
  if (config.mode === "bidi") {
    await take(
      greeter.bidi(config.names, { signal }),
      (reply) => `Greeter client received: ${reply}`,
    );
    return;
  }
  try {
    const reply = await greeter.sayHello(name, { signal });
    print(`Greeter client received: ${reply}`);
  } catch (error) {
    if (signal.aborted) return;
    throw error;
  }
  if (config.mode === "stream") {
    await take(
      greeter.streamReply(name, { signal }),
      (message) => `Greeter client received: ${message}`,
    );
  } else if (config.mode === "stream2") {
    await take(
      greeter.stream2(name, { signal }),
      (kind) =>
        kind === "unknown" ? "unknown message received." : `${kind} received:`,
    );
  }
}
