/**
 * What the console shows, as plain functions of what the server sends:
 * no DOM, so Deno tests import this module as the page does.
 *
 * @module
 */

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const utf8 = new TextEncoder();

/**
 * Standard base64 (with padding) of `bytes`, as proto JSON writes bytes.
 *
 * @param {Uint8Array} bytes
 * @returns {string}
 * @example
 * ```ts
 * import { toBase64 } from "./format.js";
 * toBase64(new Uint8Array([104, 105])); // "aGk="
 * ```
 */
export function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * The bytes of `base64` (standard or URL-safe, padded or not, as proto JSON
 * readers accept). Throws `SyntaxError` naming the input when it is not
 * base64.
 *
 * @param {string} base64
 * @returns {Uint8Array}
 * @example
 * ```ts
 * import { fromBase64 } from "./format.js";
 * fromBase64("aGk"); // Uint8Array [104, 105]
 * ```
 */
export function fromBase64(base64) {
  const standard = base64.replace(/\s+/g, "").replace(/-/g, "+").replace(
    /_/g,
    "/",
  );
  let binary;
  try {
    binary = atob(standard.padEnd(Math.ceil(standard.length / 4) * 4, "="));
  } catch {
    throw new SyntaxError(
      `Not base64: "${base64.slice(0, 40)}"; use A-Z, a-z, 0-9, + and /`,
    );
  }
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/**
 * The UTF-8 bytes of `text`, or of the base64 it holds when `isBase64`.
 *
 * @param {string} text
 * @param {boolean} [isBase64]
 * @returns {Uint8Array}
 * @example
 * ```ts
 * import { payloadBytes } from "./format.js";
 * payloadBytes("é"); // Uint8Array [195, 169]
 * ```
 */
export function payloadBytes(text, isBase64 = false) {
  return isBase64 ? fromBase64(text) : utf8.encode(text);
}

/** Characters of a payload the console shows; the rest is cut, and said so. */
export const SHOWN_CHARACTERS = 2000;

/**
 * How to show an event's payload (proto JSON's base64): as text when it is
 * valid UTF-8, else as the base64 itself; at most `limit` characters of
 * either (`cut` says some were left out); `bytes` is its length.
 *
 * @param {string | undefined} base64 absent when the payload is empty
 * @param {number} [limit]
 * @returns {{ kind: "text" | "base64" | "empty", text: string, bytes: number, cut: boolean }}
 * @example
 * ```ts
 * import { showPayload } from "./format.js";
 * showPayload("aGk="); // { kind: "text", text: "hi", bytes: 2, cut: false }
 * showPayload("/w=="); // { kind: "base64", text: "/w==", bytes: 1, cut: false }
 * ```
 */
export function showPayload(base64, limit = SHOWN_CHARACTERS) {
  if (!base64) return { kind: "empty", text: "", bytes: 0, cut: false };
  const bytes = fromBase64(base64);
  let kind = /** @type {"text" | "base64"} */ ("text");
  let text;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    kind = "base64";
    text = base64;
  }
  const cut = text.length > limit;
  return {
    kind,
    text: cut ? text.slice(0, limit) : text,
    bytes: bytes.length,
    cut,
  };
}

/**
 * `EPOCH:SEQ`, the cursor as SSE ids and `--after` write it.
 *
 * @param {{ epoch?: string, seq?: string | number } | undefined} cursor
 * @returns {string}
 * @example
 * ```ts
 * import { cursorText } from "./format.js";
 * cursorText({ epoch: "9f2c", seq: "42" }); // "9f2c:42"
 * ```
 */
export function cursorText(cursor) {
  return `${cursor?.epoch ?? ""}:${cursor?.seq ?? "0"}`;
}

/**
 * The epoch and sequence number of `EPOCH:SEQ`, or undefined when `text`
 * is not one.
 *
 * @param {string} text
 * @returns {{ epoch: string, seq: bigint } | undefined}
 * @example
 * ```ts
 * import { parseCursor } from "./format.js";
 * parseCursor("9f2c:42"); // { epoch: "9f2c", seq: 42n }
 * ```
 */
export function parseCursor(text) {
  const match = /^([^:\s]*):(\d+)$/.exec(text.trim());
  return match ? { epoch: match[1], seq: BigInt(match[2]) } : undefined;
}

/**
 * Topics typed by a person: split on spaces and commas, blanks and repeats
 * dropped, in order.
 *
 * @param {string} text
 * @returns {string[]}
 * @example
 * ```ts
 * import { parseTopics } from "./format.js";
 * parseTopics(" tick, news  news"); // ["tick", "news"]
 * ```
 */
export function parseTopics(text) {
  return [...new Set(text.split(/[\s,]+/).filter((topic) => topic !== ""))];
}

/**
 * The events URL (relative to `base`): one `topic` parameter per topic,
 * the subscriber's `name`, and `last_event_id` when resuming.
 *
 * @param {string | URL} base
 * @param {{ topics: string[], name?: string, after?: string }} subscription
 * @returns {URL}
 * @example
 * ```ts
 * import { eventsUrl } from "./format.js";
 * eventsUrl("http://h/", { topics: ["tick", "news"], name: "ann" }).href;
 * // "http://h/v1/events?topic=tick&topic=news&name=ann"
 * ```
 */
export function eventsUrl(base, { topics, name, after }) {
  const url = new URL("v1/events", base);
  for (const topic of topics) url.searchParams.append("topic", topic);
  if (name) url.searchParams.set("name", name);
  if (after) url.searchParams.set("last_event_id", after);
  return url;
}

/**
 * Local wall-clock time of `ms` (since the Unix epoch), to the
 * millisecond: `HH:MM:SS.mmm`; "" when `ms` is not a time.
 *
 * @param {string | number | undefined} ms
 * @returns {string}
 * @example
 * ```ts
 * import { clockTime } from "./format.js";
 * clockTime(Date.UTC(2024, 0, 1, 12, 30, 5, 7)).length; // 12
 * ```
 */
export function clockTime(ms) {
  const date = new Date(Number(ms ?? 0));
  if (Number.isNaN(date.getTime())) return "";
  const two = (n) => String(n).padStart(2, "0");
  return `${two(date.getHours())}:${two(date.getMinutes())}:${
    two(date.getSeconds())
  }.${String(date.getMilliseconds()).padStart(3, "0")}`;
}

/**
 * A one-line reason from an error reply: Connect's JSON `{code, message}`,
 * or the body's first line, or the status.
 *
 * @param {number} status
 * @param {string} body
 * @returns {string}
 * @example
 * ```ts
 * import { refusal } from "./format.js";
 * refusal(403, '{"code":"permission_denied","message":"No grant"}');
 * // "403 permission_denied: No grant"
 * ```
 */
export function refusal(status, body) {
  let reason = body.trim().split("\n", 1)[0] ?? "";
  try {
    const parsed = JSON.parse(body);
    if (parsed && typeof parsed.message === "string") {
      reason = parsed.code
        ? `${parsed.code}: ${parsed.message}`
        : parsed.message;
    }
  } catch {
    // Not JSON: the first line as it is.
  }
  reason = reason.length > 300 ? `${reason.slice(0, 300)}…` : reason;
  return reason ? `${status} ${reason}` : `HTTP ${status}`;
}
