/**
 * The encoded-event caches: what the hub shares among subscribers (events,
 * heartbeats, ticks) is encoded once for all of them, not once each.
 *
 * @module
 */

import { FramedMessage } from "./workarounds/mod.ts";
import { encodeGreeting, type GreetingMessage } from "../wire/proto.ts";
import { type TickPart, tickPart } from "./tick_reply.ts";
import type { Hub } from "../bus/hub.ts";
import type { Heartbeat, HubItem } from "../bus/hub_items.ts";
import type { BusEvent } from "../bus/broker.ts";

/** Encoded events and heartbeats kept for the subscribers still to write them. */
const ENCODED_CACHE_SIZE = 256;

/**
 * `cache`'s value for `key`, made by `make(key)` on a miss; only the last
 * {@linkcode ENCODED_CACHE_SIZE} are kept. (`make` is passed the key so that
 * callers in the fan-out loop hand over one function, not a new closure per
 * subscriber.)
 */
function recent<K, V>(cache: Map<K, V>, key: K, make: (key: K) => V): V {
  let value = cache.get(key);
  if (value === undefined) {
    value = make(key);
    cache.set(key, value);
    if (cache.size > ENCODED_CACHE_SIZE) {
      cache.delete(cache.keys().next().value!);
    }
  }
  return value;
}

/**
 * The hub's shared items as the Greeter sends them, each encoded once. Only
 * the most recent are kept (readers far behind encode again), so the caches
 * do not double what the replay window holds.
 *
 * @example
 * ```ts ignore
 * const encoded = new EncodedEvents(hub);
 * await writer.write(encoded.greeting(item), signal); // Subscribe
 * tickReply(prefix, encoded.tick(event)); // SayHelloStreamReply
 * ```
 */
export class EncodedEvents {
  #hub: Hub<Uint8Array>;
  #greetings = new Map<BusEvent<Uint8Array> | Heartbeat, FramedMessage>();
  #ticks = new Map<BusEvent<Uint8Array>, TickPart>();

  /** Encodes the events and heartbeats of `hub` (its epoch goes into cursors). */
  constructor(hub: Hub<Uint8Array>) {
    this.#hub = hub;
  }

  /** The `Subscribe` message for `item`: events and heartbeats encoded once. */
  greeting(item: HubItem<Uint8Array>): FramedMessage | GreetingMessage {
    if (item.kind === "gap") {
      return {
        gap: {
          from_seq: item.from,
          to_seq: item.to,
          missed: item.missed,
          reason: item.reason,
        },
      };
    }
    return recent(this.#greetings, item, this.#encodeShared);
  }

  /** What tick `event` adds to every `SayHelloStreamReply` reply, encoded once. */
  tick(event: BusEvent<Uint8Array>): TickPart {
    return recent(this.#ticks, event, this.#encodeTick);
  }

  // Fields, not methods: one function each for the caches, made once.
  #encodeShared = (item: BusEvent<Uint8Array> | Heartbeat): FramedMessage => {
    const epoch = this.#hub.epoch;
    return new FramedMessage(encodeGreeting(
      item.kind === "event"
        ? {
          event: {
            seq: item.seq,
            epoch,
            time_ms: item.time,
            topic: item.topic,
            payload: item.data,
          },
        }
        : {
          heartbeat: {
            cursor: { epoch, seq: item.seq },
            time_ms: item.time,
          },
        },
    ));
  };

  #encodeTick = (event: BusEvent<Uint8Array>): TickPart =>
    tickPart(this.#hub.epoch, event.seq, event.time);
}
