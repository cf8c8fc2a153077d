/**
 * What a {@linkcode CuttableProxy} saw of a browser's event streams, in the
 * order it happened: each `GET /v1/events` (its request line and
 * `Last-Event-ID`) and each `retry:` the server told (and whether in a
 * goodbye). What a test reads to know that the browser came back by itself,
 * when, and with which cursor.
 *
 * @module
 */

import type { ProxiedChunk, ProxiedConnection } from "./proxy.ts";

/** A request for an event stream, as the browser sent it. */
export interface StreamRequest {
  readonly kind: "request";
  /** When its first bytes reached the proxy (`performance.now()`). */
  readonly at: number;
  /** Which connection carried it (an index into the proxy's `connections`). */
  readonly connection: number;
  /** `GET /v1/events?… HTTP/1.1`. */
  readonly line: string;
  /** Its `Last-Event-ID` header, or undefined when it had none. */
  readonly lastEventId?: string;
}

/** A `retry:` field the server sent. */
export interface StreamRetry {
  readonly kind: "retry";
  /** When it reached the proxy (`performance.now()`). */
  readonly at: number;
  /** Which connection carried it. */
  readonly connection: number;
  /** The delay told, in ms. */
  readonly ms: number;
  /** Whether it came in an `event: goodbye` block (else on its own, as the stream opened). */
  readonly goodbye: boolean;
}

/** Every event stream request and `retry:` the proxy saw, by time. */
export type EventStreamTimeline = (StreamRequest | StreamRetry)[];

/** The text of `chunks` and, for an offset into it, when its chunk came. */
function joined(chunks: readonly ProxiedChunk[]) {
  const starts: number[] = [];
  let text = "";
  for (const chunk of chunks) {
    starts.push(text.length);
    text += chunk.text;
  }
  const at = (offset: number) => {
    let i = starts.length - 1;
    while (i > 0 && starts[i] > offset) i--;
    return chunks[i].at;
  };
  return { text, at };
}

/**
 * The event stream requests and `retry:` fields in `connections`, by time.
 *
 * @example
 * ```ts ignore
 * const timeline = eventStreamTimeline(proxy.connections);
 * const again = timeline.find((e) => e.kind === "request" && e.at > cutAt);
 * ```
 */
export function eventStreamTimeline(
  connections: readonly ProxiedConnection[],
): EventStreamTimeline {
  const timeline: EventStreamTimeline = [];
  connections.forEach((connection, index) => {
    const sent = joined(connection.fromClient);
    for (const match of sent.text.matchAll(/^GET \/v1\/events[^\r\n]*/gm)) {
      const end = sent.text.indexOf("\r\n\r\n", match.index);
      const head = sent.text.slice(match.index, end < 0 ? undefined : end);
      const [, lastEventId] = head.match(/^last-event-id: *(.*?)\r?$/im) ??
        [];
      timeline.push({
        kind: "request",
        at: sent.at(match.index),
        connection: index,
        line: match[0],
        lastEventId,
      });
    }
    const told = joined(connection.fromServer);
    for (const match of told.text.matchAll(/^retry: *(\d+)\r?$/gm)) {
      // A goodbye's block is `event: goodbye`, then `retry:`.
      const before = told.text.slice(
        Math.max(0, match.index - 32),
        match.index,
      );
      timeline.push({
        kind: "retry",
        at: told.at(match.index),
        connection: index,
        ms: Number(match[1]),
        goodbye: /(^|\n)event: *goodbye\r?\n$/.test(before),
      });
    }
  });
  return timeline.sort((a, b) => a.at - b.at);
}
