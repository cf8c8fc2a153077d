/**
 * How `greeter client` shows what it received: one line per message, as text
 * for people or as one JSON object for scripts (`--output json`), never with
 * raw terminal controls from the server or its publishers.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type {
  ClientCursor,
  StreamInfo,
  SubscriberSummary,
} from "../client/client.ts";
import type { FollowMessage } from "../client/follow.ts";
import { escapeUnsafe } from "../escape.ts";
import { formatLocalTime } from "../greetings.ts";

/** `text` for people, `json` for scripts (one object per line). */
export type OutputFormat = "text" | "json";

/** Every {@linkcode OutputFormat}. */
export const OUTPUT_FORMATS: readonly OutputFormat[] = ["text", "json"];

/**
 * A time as `YYYY-MM-DD HH:MM:SS+HH:MM`: the local time, with its offset
 * from UTC so that it means the same anywhere.
 *
 * @example
 * ```ts ignore
 * formatZonedTime(Date.UTC(2026, 10, 24, 4, 6, 8)); // "2026-11-24 04:06:08+00:00" in UTC
 * ```
 */
export function formatZonedTime(ms: number): string {
  const offset = -new Date(ms).getTimezoneOffset();
  const abs = Math.abs(offset);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${formatLocalTime(ms)}${offset < 0 ? "-" : "+"}${
    p(Math.floor(abs / 60))
  }:${p(abs % 60)}`;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A cursor as `--after` takes it: `EPOCH:SEQ`. */
export function renderCursor(cursor: ClientCursor): string {
  return `${cursor.epoch}:${cursor.seq}`;
}

/**
 * A payload as a value: the JSON it holds on `$presence`, else its text,
 * else (not UTF-8) `{ base64 }`.
 */
function payloadValue(
  topic: string,
  payload: Uint8Array,
): unknown {
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    return { base64: Buffer.from(payload).toString("base64") };
  }
  if (topic.startsWith("$")) {
    try {
      return JSON.parse(text);
    } catch {
      // Not JSON after all: shown as text.
    }
  }
  return text;
}

function renderPayload(topic: string, payload: Uint8Array): string {
  const value = payloadValue(topic, payload);
  if (typeof value === "object" && value !== null && "base64" in value) {
    return `base64:${value.base64}`;
  }
  return JSON.stringify(value);
}

/** Options of {@linkcode renderFollow}. */
export interface RenderOptions {
  /** Default `text`. */
  format?: OutputFormat;
  /** Now, for the latency of events (ms since the Unix epoch). */
  now?: number;
}

/**
 * One line for a message of the `subscribe` mode (the caller decides which
 * are printed, and where): what a person needs to trust the stream, cursors
 * to resume from, whether a resume worked, every gap.
 *
 * @example
 * ```ts ignore
 * renderFollow({ kind: "heartbeat", cursor, timeMs }); // "heartbeat: cursor=…"
 * ```
 */
export function renderFollow(
  message: FollowMessage,
  options: RenderOptions = {},
): string {
  const { format = "text", now = Date.now() } = options;
  return format === "json"
    ? escapeUnsafe(JSON.stringify(followObject(message, now)))
    : escapeUnsafe(followText(message, now));
}

function followText(message: FollowMessage, now: number): string {
  switch (message.kind) {
    case "subscribed": {
      let resume = "";
      if (message.after) {
        resume = message.recovered
          ? " resumed"
          : ` not resumed (${message.reason || "no reason given"})`;
      }
      return `subscribed: id=${message.subscriptionId} cursor=${
        renderCursor(message.cursor)
      }${resume}`;
    }
    case "event":
      // A replayed event's age is no delivery latency.
      return `event: cursor=${
        renderCursor(message.cursor)
      } topic=${message.topic} time=${formatZonedTime(message.timeMs)} ${
        message.replayed
          ? "replayed"
          : `latency=${Math.max(0, now - message.timeMs)}ms`
      } payload=${renderPayload(message.topic, message.payload)}`;
    case "heartbeat":
      return `heartbeat: cursor=${renderCursor(message.cursor)} time=${
        formatZonedTime(message.timeMs)
      }`;
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
      return `reconnecting${
        message.target === undefined ? "" : ` to ${message.target}`
      } in ${message.delayMs} ms (attempt ${message.attempt}): ${message.reason}`;
  }
}

function followObject(message: FollowMessage, now: number): object {
  switch (message.kind) {
    case "subscribed":
      return {
        kind: message.kind,
        subscription_id: message.subscriptionId,
        cursor: renderCursor(message.cursor),
        ...(message.after
          ? {
            resume_after: renderCursor(message.after),
            resumed: message.recovered,
            ...(message.recovered ? {} : { reason: message.reason }),
          }
          : {}),
        heartbeat_interval_ms: message.heartbeatIntervalMs,
      };
    case "event":
      return {
        kind: message.kind,
        cursor: renderCursor(message.cursor),
        topic: message.topic,
        time: formatZonedTime(message.timeMs),
        time_ms: message.timeMs,
        ...(message.replayed
          ? { replayed: true }
          : { latency_ms: Math.max(0, now - message.timeMs) }),
        payload: payloadValue(message.topic, message.payload),
      };
    case "heartbeat":
      return {
        kind: message.kind,
        cursor: renderCursor(message.cursor),
        time_ms: message.timeMs,
      };
    case "gap":
      return {
        kind: message.kind,
        from_seq: message.fromSeq,
        to_seq: message.toSeq,
        missed: message.missed,
        reason: message.reason,
      };
    case "goodbye":
      return {
        kind: message.kind,
        code: message.code,
        reason: message.reason,
        reconnect: message.reconnect,
        reconnect_after_ms: message.reconnectAfterMs,
      };
    case "reconnecting":
      return {
        kind: message.kind,
        attempt: message.attempt,
        delay_ms: message.delayMs,
        reason: message.reason,
        target: message.target,
      };
  }
}

/**
 * One line per other message: `object` as JSON, or `text` for people; both
 * escaped for the terminal.
 */
export function renderLine(
  format: OutputFormat,
  text: string,
  object: object,
): string {
  return escapeUnsafe(format === "json" ? JSON.stringify(object) : text);
}

/** A `presence` line for one subscription: its first topics, and how many more it has. */
export function renderSubscriber(
  format: OutputFormat,
  s: SubscriberSummary,
): string {
  const more = s.topicCount - s.topics.length;
  return renderLine(
    format,
    `subscriber: id=${s.subscriptionId} name=${JSON.stringify(s.name)} topics=${
      s.topics.join(",")
    }${more > 0 ? `,…(${more} more)` : ""} since=${
      formatZonedTime(s.sinceMs)
    } delivered=${s.delivered} dropped=${s.dropped}`,
    {
      kind: "subscriber",
      subscription_id: s.subscriptionId,
      name: s.name,
      topics: s.topics,
      topic_count: s.topicCount,
      since: formatZonedTime(s.sinceMs),
      since_ms: s.sinceMs,
      delivered: s.delivered,
      dropped: s.dropped,
    },
  );
}

/**
 * The line `--mode publish` prints: the event's topic and cursor.
 *
 * @example
 * ```ts
 * import { renderPublished } from "./render.ts";
 * renderPublished("text", "news", { epoch: "609f41c9091a0682", seq: 5 });
 * // "published: topic=news cursor=609f41c9091a0682:5"
 * ```
 */
export function renderPublished(
  format: OutputFormat,
  topic: string,
  cursor: ClientCursor,
): string {
  return renderLine(
    format,
    `published: topic=${topic} cursor=${renderCursor(cursor)}`,
    { kind: "published", topic, cursor: renderCursor(cursor) },
  );
}

/**
 * The line `--mode stream-info` prints: what the event stream holds.
 *
 * @example
 * ```ts ignore
 * renderStreamInfo("text", await client.streamInfo());
 * // stream: epoch=609f41c9091a0682 store=memory first=1 last=18 events=18 bytes=2326 first_time="…" last_time="…"
 * ```
 */
export function renderStreamInfo(
  format: OutputFormat,
  info: StreamInfo,
): string {
  const time = (ms: number) => ms === 0 ? "none" : formatZonedTime(ms);
  return renderLine(
    format,
    `stream: epoch=${info.epoch} store=${info.store} first=${info.firstSeq} last=${info.lastSeq} events=${info.events} bytes=${info.bytes} first_time=${
      JSON.stringify(time(info.firstTimeMs))
    } last_time=${JSON.stringify(time(info.lastTimeMs))}`,
    {
      kind: "stream",
      epoch: info.epoch,
      store: info.store,
      first_seq: info.firstSeq,
      last_seq: info.lastSeq,
      events: info.events,
      bytes: info.bytes,
      first_time_ms: info.firstTimeMs,
      last_time_ms: info.lastTimeMs,
    },
  );
}
