/**
 * The hub's shared items (events, heartbeats) as the HTTP transport writes
 * them, each encoded once for every subscriber of a format: a server-sent
 * event, a binary envelope (Connect `+proto` and gRPC-Web carry the same
 * bytes, which are also gRPC's frame), or a JSON envelope (Connect `+json`,
 * gRPC-Web `+json`). Gaps are a subscriber's own and are encoded for it.
 *
 * @module
 */

import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import type { BusEvent } from "../bus/broker.ts";
import type { Heartbeat, HubItem } from "../bus/hub_items.ts";
import {
  type EventMessage,
  type GapMessage,
  greeterDescriptors,
  type GreetingMessage,
} from "../wire/descriptors.ts";

/** Items whose encodings are kept for subscribers still to write them. */
const ENCODED_CACHE_SIZE = 256;

const utf8 = new TextEncoder();

/** Envelope flags: a message (0); the end of a Connect stream (2); a gRPC-Web trailer (128). */
export const MESSAGE_FLAG = 0;

/**
 * `body` in a Connect / gRPC-Web envelope: a flags byte, the length as a
 * big-endian 32-bit integer, then the bytes (one allocation).
 *
 * @example
 * ```ts
 * import { envelope } from "./encoded_items.ts";
 * envelope(0, new Uint8Array([8, 1])); // Uint8Array [0, 0, 0, 0, 2, 8, 1]
 * ```
 */
export function envelope(flags: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 5);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, body.length);
  out.set(body, 5);
  return out;
}

/**
 * `parts` in one buffer: several events' blocks or envelopes as one chunk,
 * written as one (one HTTP/2 frame where each would be one).
 *
 * @example
 * ```ts
 * import { concat } from "./encoded_items.ts";
 * concat([new Uint8Array([1]), new Uint8Array([2, 3])]); // Uint8Array [1, 2, 3]
 * ```
 */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * One server-sent event's block: optional `event:`, `id:` and `retry:`
 * lines, then `data:` (one line: canonical JSON has no raw line break),
 * and the blank line that ends it.
 *
 * @example
 * ```ts
 * import { sseBlock } from "./encoded_items.ts";
 * sseBlock({ event: "gap", id: "e:9", data: "{}" }); // "event: gap\nid: e:9\ndata: {}\n\n"
 * ```
 */
export function sseBlock(
  fields: { event?: string; id?: string; retry?: number; data?: string },
): string {
  let block = "";
  if (fields.event !== undefined) block += `event: ${fields.event}\n`;
  if (fields.id !== undefined) block += `id: ${fields.id}\n`;
  if (fields.retry !== undefined) block += `retry: ${fields.retry}\n`;
  if (fields.data !== undefined) block += `data: ${fields.data}\n`;
  return block + "\n";
}

/** One item's message and, once asked, each of its encodings. */
interface Encoded {
  message: GreetingMessage;
  sse?: Uint8Array;
  binary?: Uint8Array;
  json?: Uint8Array;
}

/**
 * The hub's items as the HTTP transport writes them. Shared items are
 * encoded once per format, and only the most recent are kept (a reader far
 * behind has its item encoded again), so the caches do not double what the
 * replay window holds.
 *
 * @example
 * ```ts
 * import { EncodedItems } from "./encoded_items.ts";
 * const items = new EncodedItems(() => "e");
 * const event = { kind: "event", seq: 7, topic: "news", time: 0, data: new Uint8Array() } as const;
 * new TextDecoder().decode(items.sse(event));
 * // 'id: e:7\ndata: {"seq":"7","epoch":"e","timeMs":"0","topic":"news"}\n\n'
 * items.binary(event) === items.binary(event); // true: encoded once
 * ```
 */
export class EncodedItems {
  #epoch: () => string;
  #cache = new Map<BusEvent<Uint8Array> | Heartbeat, Encoded>();
  #descriptors = greeterDescriptors();

  /** Encodes items of the sequence `epoch()` names (the hub's epoch, read when an item is first encoded). */
  constructor(epoch: () => string) {
    this.#epoch = epoch;
  }

  /** `item` as a server-sent event: an event, a gap or a heartbeat's block. */
  sse = (item: HubItem<Uint8Array>): Uint8Array => {
    if (item.kind === "gap") return utf8.encode(this.#sseBlock(item));
    const encoded = this.#encoded(item);
    return encoded.sse ??= utf8.encode(this.#sseBlock(item, encoded.message));
  };

  /** `item` as a `GreetingMessage` in a binary envelope. */
  binary = (item: HubItem<Uint8Array>): Uint8Array => {
    if (item.kind === "gap") return this.#binary(this.#message(item));
    const encoded = this.#encoded(item);
    return encoded.binary ??= this.#binary(encoded.message);
  };

  /** `item` as a `GreetingMessage` in canonical JSON, in an envelope. */
  json = (item: HubItem<Uint8Array>): Uint8Array => {
    if (item.kind === "gap") return this.#json(this.#message(item));
    const encoded = this.#encoded(item);
    return encoded.json ??= this.#json(encoded.message);
  };

  #encoded(item: BusEvent<Uint8Array> | Heartbeat): Encoded {
    let encoded = this.#cache.get(item);
    if (encoded === undefined) {
      encoded = { message: this.#message(item) };
      this.#cache.set(item, encoded);
      if (this.#cache.size > ENCODED_CACHE_SIZE) {
        this.#cache.delete(this.#cache.keys().next().value!);
      }
    }
    return encoded;
  }

  #binary(message: GreetingMessage): Uint8Array {
    const { GreetingMessage } = this.#descriptors;
    return envelope(MESSAGE_FLAG, toBinary(GreetingMessage, message));
  }

  #json(message: GreetingMessage): Uint8Array {
    const { GreetingMessage } = this.#descriptors;
    return envelope(
      MESSAGE_FLAG,
      utf8.encode(toJsonString(GreetingMessage, message)),
    );
  }

  #sseBlock(item: HubItem<Uint8Array>, message = this.#message(item)): string {
    const { Event, Gap } = this.#descriptors;
    const epoch = this.#epoch();
    const shape = message.shapeType;
    switch (item.kind) {
      case "event":
        return sseBlock({
          id: `${epoch}:${item.seq}`,
          data: toJsonString(Event, shape.value as EventMessage),
        });
      case "gap":
        // The id moves past the gap: a resume goes on after it.
        return sseBlock({
          event: "gap",
          id: `${epoch}:${item.to}`,
          data: toJsonString(Gap, shape.value as GapMessage),
        });
      case "heartbeat":
        // A safe resume point: moves the page's Last-Event-ID, wakes nothing.
        return `: heartbeat\nid: ${epoch}:${item.seq}\n\n`;
    }
  }

  #message(item: HubItem<Uint8Array>): GreetingMessage {
    const { GreetingMessage } = this.#descriptors;
    const epoch = this.#epoch();
    switch (item.kind) {
      case "event":
        return create(GreetingMessage, {
          shapeType: {
            case: "event",
            value: {
              seq: BigInt(item.seq),
              epoch,
              timeMs: BigInt(item.time),
              topic: item.topic,
              payload: item.data,
            },
          },
        });
      case "heartbeat":
        return create(GreetingMessage, {
          shapeType: {
            case: "heartbeat",
            value: {
              cursor: { epoch, seq: BigInt(item.seq) },
              timeMs: BigInt(item.time),
            },
          },
        });
      case "gap":
        return create(GreetingMessage, {
          shapeType: {
            case: "gap",
            value: {
              fromSeq: BigInt(item.from),
              toSeq: BigInt(item.to),
              missed: BigInt(item.missed),
              reason: item.reason,
            },
          },
        });
    }
  }
}
