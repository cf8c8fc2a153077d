/**
 * `SayHelloStreamReply` replies, encoded without protobufjs on the hot path:
 * `helloworld.HelloReply{message, cursor, time_ms}` where the message is
 * `hello NAME, it's TIME`. What depends on the subscriber (the name) is
 * encoded once per subscription, what depends on the tick (its time, cursor
 * and time_ms) once per tick; a reply is then three copies into one framed
 * buffer. The bytes are
 * exactly protobufjs's (tested).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { formatLocalTime, tickPrefix } from "../greetings.ts";
import { FramedMessage, framePrefix } from "./workarounds/mod.ts";

const encoder = new TextEncoder();

/** Bytes of `value` as a protobuf varint. */
function varint(value: number): number[] {
  const bytes: number[] = [];
  while (value >= 0x80) {
    bytes.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  bytes.push(value);
  return bytes;
}

/** What one tick contributes to every reply: its time text, and the encoded cursor and time_ms fields. */
export interface TickPart {
  /** `YYYY-MM-DD HH:MM:SS`, UTF-8. */
  readonly time: Uint8Array;
  /** Fields 2 (cursor) and 3 (time_ms), encoded. */
  readonly tail: Uint8Array;
}

/** Encodes what a tick (`seq` of `epoch`, published at `timeMs`) adds to every reply. */
export function tickPart(epoch: string, seq: number, timeMs: number): TickPart {
  const epochBytes = encoder.encode(epoch);
  const cursor = [
    0x0a,
    ...varint(epochBytes.length),
    ...epochBytes,
    0x10,
    ...varint(seq),
  ];
  return {
    time: encoder.encode(formatLocalTime(timeMs)),
    tail: Uint8Array.from([
      0x12,
      ...varint(cursor.length),
      ...cursor,
      0x18,
      ...varint(timeMs),
    ]),
  };
}

/** The part of every reply to `name`: `hello NAME, it's `, UTF-8. */
export function namePart(name: string): Uint8Array {
  return encoder.encode(tickPrefix(name));
}

/**
 * The `HelloReply` for a subscriber (its {@linkcode namePart}) and a tick
 * (its {@linkcode tickPart}), encoded and framed for gRPC in one buffer (one
 * allocation per reply, the frame prefix included).
 *
 * @example
 * ```ts
 * import { namePart, tickPart, tickReply } from "./tick_reply.ts";
 * tickReply(namePart("you"), tickPart("e", 1, 0)).body.length > 0; // true
 * ```
 */
export function tickReply(name: Uint8Array, tick: TickPart): FramedMessage {
  const messageLength = name.length + tick.time.length;
  const length = varint(messageLength);
  const out = Buffer.allocUnsafe(
    5 + 1 + length.length + messageLength + tick.tail.length,
  );
  let at = 5;
  out[at++] = 0x0a;
  for (const byte of length) out[at++] = byte;
  out.set(name, at);
  at += name.length;
  out.set(tick.time, at);
  at += tick.time.length;
  out.set(tick.tail, at);
  return new FramedMessage(framePrefix(out), true);
}
