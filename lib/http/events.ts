/**
 * Server-sent events: `GET /v1/events?topic=T&topic=U`, the event bus for
 * pages (`EventSource`) and `curl -N`. Every event carries its cursor as
 * its `id:`, so that a browser resumes by itself after a cut (it sends the
 * last one back as `Last-Event-ID`); the stream opens with `event: first`
 * (where it starts, whether the resume was complete), reports gaps as
 * `event: gap`, sends heartbeats as a comment with an id (a safe resume
 * point that wakes no page), and ends with `event: goodbye` and a jittered
 * `retry:`. Each event is encoded once for every subscriber
 * ({@linkcode EncodedItems}), and the hub's stream is the response body.
 *
 * @module
 */

import { toJsonString } from "@bufbuild/protobuf";
import type { AccessControl } from "../access/access.ts";
import type { Cursor, StreamEncoding } from "../bus/hub_items.ts";
import { MAX_SEQ, parseSeq } from "../bus/seq.ts";
import { InvalidArgumentError, UnavailableError } from "../errors.ts";
import { quote } from "../escape.ts";
import type { Logger } from "../log.ts";
import {
  type GoodbyeGreetingMessage,
  greeterDescriptors,
} from "../wire/descriptors.ts";
import type { Cors } from "./cors.ts";
import { authenticate, callerOf } from "./credentials.ts";
import { concat, type EncodedItems, sseBlock } from "./encoded_items.ts";
import {
  CallRecord,
  connectCodeOf,
  refusalResponse,
  textResponse,
} from "./status.ts";
import { countingItems, type HttpSubscriptions } from "./subscriptions.ts";
import type {
  MethodRecorder,
  TransportRecorder,
} from "../observe/rpc_metrics.ts";

/** The event stream's path. */
export const EVENTS_PATH = "/v1/events";

/** The name of a subscription that gives none (`name=`). */
export const DEFAULT_SUBSCRIBER_NAME = "browser";

/** Whose grants an event stream needs: `Subscribe`'s. */
const SUBSCRIBE = "/helloworld.Greeter/Subscribe";

/** The least a browser waits before reconnecting after a cut (ms); jitter is added. */
const MIN_RETRY_MS = 1000;

/** The event stream's response headers (proxies must not buffer it). */
const HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-store",
  "x-accel-buffering": "no",
};

const utf8 = new TextEncoder();

/**
 * A cursor as the stream's ids write it (`EPOCH:SEQ`), from where it was
 * given (for the error); throws `InvalidArgumentError` when it is not one.
 *
 * @example
 * ```ts
 * import { parseEventId } from "./events.ts";
 * parseEventId("3f2a9c0d11e4b7a6:42", "Last-Event-ID"); // { epoch: "3f2a9c0d11e4b7a6", seq: 42 }
 * ```
 */
export function parseEventId(text: string, from: string): Cursor {
  const match = text.match(/^([^:\s]{1,128}):(\d{1,20})$/);
  const seq = match ? parseSeq(match[2]) : undefined;
  if (!match || seq === undefined) {
    throw new InvalidArgumentError(
      `Invalid cursor ${
        quote(text.slice(0, 160))
      } in ${from}: expected EPOCH:SEQ as the stream's ids give it (seq at most ${MAX_SEQ})`,
    );
  }
  return { epoch: match[1], seq };
}

/**
 * Where a stream resumes: the `Last-Event-ID` header (a browser's own
 * reconnect) wins over `last_event_id` (a page's first request cannot set
 * headers), which wins over `after`; none: live.
 */
function resumeCursor(request: Request, url: URL): Cursor | undefined {
  const header = request.headers.get("last-event-id");
  if (header) return parseEventId(header.trim(), "Last-Event-ID");
  for (const name of ["last_event_id", "after"]) {
    const value = url.searchParams.get(name);
    if (value) return parseEventId(value, name);
  }
  return undefined;
}

/** Options of {@linkcode EventStreams}. */
export interface EventStreamsOptions {
  /** The HTTP transport's subscriptions. */
  subscriptions: HttpSubscriptions;
  /** The shared encodings of events and heartbeats. */
  items: EncodedItems;
  /** Who may subscribe to what; undefined: anyone, to anything. */
  access: AccessControl | undefined;
  /** The listed origins (a session cookie from elsewhere is refused). */
  cors: Cors;
  /** Goodbyes and `retry:` add a random delay below this (ms). */
  reconnectJitterMs: number;
  /** Where its calls are counted (transport `sse`). */
  recorder: TransportRecorder;
  /** Where failures are logged. */
  log: Logger;
}

/**
 * Answers `GET /v1/events`.
 *
 * @example
 * ```ts ignore
 * const events = new EventStreams({ subscriptions, items, access, cors, reconnectJitterMs, log });
 * if (url.pathname === EVENTS_PATH) return events.answer(request, url, peer);
 * ```
 */
export class EventStreams {
  #subscriptions: HttpSubscriptions;
  #access: AccessControl | undefined;
  #cors: Cors;
  #jitterMs: number;
  #log: Logger;
  #calls: MethodRecorder | undefined;
  #encoding: StreamEncoding<Uint8Array, Uint8Array>;
  #descriptors = greeterDescriptors();

  /** Serves event streams over `options.subscriptions`. */
  constructor(options: EventStreamsOptions) {
    this.#subscriptions = options.subscriptions;
    this.#access = options.access;
    this.#cors = options.cors;
    this.#jitterMs = options.reconnectJitterMs;
    this.#log = options.log;
    const calls = this.#calls = options.recorder.method(SUBSCRIBE);
    const { FirstGreetingMessage } = this.#descriptors;
    const subscriptions = this.#subscriptions;
    // One for every stream: what opens and ends it is made per stream, each
    // item is looked up encoded once for all.
    this.#encoding = {
      first: (start) => {
        calls?.sent();
        return utf8.encode(
          sseBlock({ retry: this.#retryMs() }) + sseBlock({
            event: "first",
            id: `${start.cursor.epoch}:${start.cursor.seq}`,
            data: toJsonString(
              FirstGreetingMessage,
              subscriptions.first(start),
            ),
          }),
        );
      },
      item: countingItems(options.items.sse, calls, options.recorder),
      join: concat, // events' blocks one after another
      last: (start, error) => {
        const goodbye = subscriptions.ended(start, error);
        if (goodbye) calls?.sent();
        return goodbye && utf8.encode(this.#goodbye(goodbye));
      },
    };
  }

  /** The answer to `request` (to {@linkcode EVENTS_PATH}) from `peer`. */
  answer(request: Request, url: URL, peer: string): Response {
    if (request.method !== "GET") {
      return textResponse(
        405,
        `${request.method} is not allowed on ${EVENTS_PATH}: use GET`,
        { allow: "GET" },
      );
    }
    const call = new CallRecord(this.#calls);
    try {
      const caller = callerOf(request.headers, peer, url);
      const access = this.#access;
      const permissions = authenticate(
        { access, cors: this.#cors },
        request.headers,
        request.url,
        caller,
        SUBSCRIBE,
      );
      const topics = url.searchParams.getAll("topic");
      call.received();
      if (permissions) {
        access!.authorize(permissions, caller, SUBSCRIBE, { topics });
      }
      const subscription = this.#subscriptions.open(
        {
          name: url.searchParams.get("name") ?? DEFAULT_SUBSCRIBER_NAME,
          topics,
          after: resumeCursor(request, url),
          peer,
          transport: "sse",
        },
        this.#encoding,
        {
          call,
          register: permissions && ((revoke) =>
            access!.register({
              caller,
              method: SUBSCRIBE,
              request: { topics },
              revoke,
            })),
        },
      );
      return new Response(subscription.readable, { headers: HEADERS });
    } catch (error) {
      call.handled(connectCodeOf(error));
      if (error instanceof UnavailableError) return this.#comeBack(error);
      return refusalResponse(error, this.#log);
    }
  }

  /**
   * A stream that says goodbye at once (the server drains): a 200, so that
   * the browser's `EventSource` comes back after `retry:` (it gives up for
   * good on any other status).
   */
  #comeBack(error: UnavailableError): Response {
    const goodbye = this.#goodbye(this.#subscriptions.unavailable(error));
    return new Response(goodbye, { headers: HEADERS });
  }

  /** A goodbye's block: its data, and its delay as the browser's `retry:` (when it advises coming back). */
  #goodbye(goodbye: GoodbyeGreetingMessage): string {
    return sseBlock({
      event: "goodbye",
      retry: goodbye.reconnect ? goodbye.reconnectAfterMs : undefined,
      data: toJsonString(this.#descriptors.GoodbyeGreetingMessage, goodbye),
    });
  }

  /** The first `retry:`: how long a browser waits after a cut, jittered. */
  #retryMs(): number {
    return MIN_RETRY_MS + Math.floor(Math.random() * this.#jitterMs);
  }
}
