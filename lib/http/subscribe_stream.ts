/**
 * `Subscribe` over Connect and gRPC-Web, written by hand rather than by
 * connect-es: connect-es encodes every message once per stream (measured:
 * about a ninth of the events per CPU-second, and twice the memory per
 * stream), where here each event is encoded once for every subscriber of a
 * format ({@linkcode EncodedItems}: the binary envelope is also gRPC's
 * frame) and the hub's stream is the response body. The protocols' framing
 * is theirs: one request envelope in; a first message, the events, and an
 * end frame out (Connect's end-stream JSON, gRPC-Web's trailer frame),
 * built with connect-es's own protocol helpers.
 *
 * @module
 */

import {
  create,
  fromBinary,
  fromJsonString,
  toBinary,
  toJsonString,
} from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  createEndStreamSerialization,
  endStreamFlag,
  parseTimeout as parseConnectTimeout,
} from "@connectrpc/connect/protocol-connect";
import {
  parseTimeout as parseGrpcTimeout,
  setTrailerStatus,
  trailerFlag,
  trailerSerialize,
} from "@connectrpc/connect/protocol-grpc-web";
import type { Cursor, StreamEncoding } from "../bus/hub_items.ts";
import { MAX_SEQ, parseSeq } from "../bus/seq.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { Logger } from "../log.ts";
import {
  greeterDescriptors,
  type GreetingMessage,
  type SubscribeRequest,
} from "../wire/descriptors.ts";
import { authenticate, type CallerCheck, callerOf } from "./credentials.ts";
import {
  concat,
  EncodedItems,
  envelope,
  MESSAGE_FLAG,
} from "./encoded_items.ts";
import { CallRecord, textResponse, toConnectError } from "./status.ts";
import {
  countingItems,
  type HttpSubscriptions,
  type RpcProtocol,
} from "./subscriptions.ts";
import type { TransportRecorder } from "../observe/rpc_metrics.ts";

/** `Subscribe`'s path. */
export const SUBSCRIBE_PATH = "/helloworld.Greeter/Subscribe";

/**
 * The longest deadline a caller may ask of the HTTP port (ms), the longest a
 * timer takes: a longer one made `setTimeout` fire at once (Deno, as Node,
 * takes it for 1 ms), ending the call with DEADLINE_EXCEEDED. A caller asking
 * more is refused with INVALID_ARGUMENT, as connect-es refuses it.
 */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** A request's wire: its protocol, and whether its messages are JSON. */
interface Wire {
  protocol: RpcProtocol;
  json: boolean;
  /** The response's content type (the request's, normalised). */
  contentType: string;
}

/** The streaming content types served, and what each is. */
const WIRES: ReadonlyMap<string, Wire> = new Map([
  ["application/connect+proto", {
    protocol: "connect",
    json: false,
    contentType: "application/connect+proto",
  }],
  ["application/connect+json", {
    protocol: "connect",
    json: true,
    contentType: "application/connect+json",
  }],
  ["application/grpc-web", {
    protocol: "grpc-web",
    json: false,
    contentType: "application/grpc-web+proto",
  }],
  ["application/grpc-web+proto", {
    protocol: "grpc-web",
    json: false,
    contentType: "application/grpc-web+proto",
  }],
  ["application/grpc-web+json", {
    protocol: "grpc-web",
    json: true,
    contentType: "application/grpc-web+json",
  }],
]);

const utf8 = new TextEncoder();
const endStream = createEndStreamSerialization({});

/** Connect's end-stream frame: OK, or `error`. */
function connectEnd(error?: ConnectError): Uint8Array {
  return envelope(
    endStreamFlag,
    endStream.serialize({ metadata: new Headers(), error }),
  );
}

/** gRPC-Web's trailer frame: OK, or `error`. */
function grpcWebEnd(error?: ConnectError): Uint8Array {
  return envelope(
    trailerFlag,
    trailerSerialize(setTrailerStatus(new Headers(), error)),
  );
}

/**
 * The request's body, up to `maxBytes` (more is refused with
 * RESOURCE_EXHAUSTED, without reading further).
 */
async function readBody(request: Request, maxBytes: number) {
  const declared = Number(request.headers.get("content-length") ?? NaN);
  const tooLarge = () =>
    new ConnectError(
      `The request is over ${maxBytes} bytes (--max-message-size)`,
      Code.ResourceExhausted,
    );
  if (declared > maxBytes) throw tooLarge();
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of request.body ?? []) {
    length += chunk.length;
    if (length > maxBytes) throw tooLarge();
    chunks.push(chunk);
  }
  return concat(chunks);
}

/** The one message of a request body: one uncompressed envelope. */
function oneEnvelope(body: Uint8Array): Uint8Array {
  if (body.length < 5) {
    throw new InvalidArgumentError(
      `The request holds ${body.length} bytes: send one enveloped SubscribeRequest`,
    );
  }
  if (body[0] !== MESSAGE_FLAG) {
    throw new InvalidArgumentError(
      `The request's envelope has flags ${
        body[0]
      }: send one uncompressed SubscribeRequest (this server compresses nothing)`,
    );
  }
  const length = new DataView(body.buffer, body.byteOffset).getUint32(1);
  if (length !== body.length - 5) {
    throw new InvalidArgumentError(
      `The request's envelope says ${length} bytes and holds ${
        body.length - 5
      }: send exactly one SubscribeRequest`,
    );
  }
  return body.subarray(5);
}

/** The `after` cursor of a request, if one was sent. */
function cursorOf(request: SubscribeRequest): Cursor | undefined {
  const after = request.after;
  if (!after || (after.epoch === "" && after.seq === 0n)) return undefined;
  const seq = parseSeq(String(after.seq));
  if (seq === undefined) {
    throw new InvalidArgumentError(
      `Cursor seq ${after.seq} is out of range: a seq is at most ${MAX_SEQ}; resume from a cursor the server sent`,
    );
  }
  return { epoch: after.epoch, seq };
}

/** Options of {@linkcode SubscribeStreams}. */
export interface SubscribeStreamsOptions extends CallerCheck {
  /** The HTTP transport's subscriptions. */
  subscriptions: HttpSubscriptions;
  /** The shared encodings of events and heartbeats. */
  items: EncodedItems;
  /** Largest request accepted (bytes). */
  maxMessageBytes: number;
  /** Where each protocol's calls are counted. */
  recorders: Readonly<Record<RpcProtocol, TransportRecorder>>;
  /** Where failures are logged. */
  log: Logger;
}

/**
 * Answers `POST /helloworld.Greeter/Subscribe` in Connect (`+proto`,
 * `+json`) and gRPC-Web (`+proto`, `+json`).
 *
 * @example
 * ```ts ignore
 * const subscribe = new SubscribeStreams({ subscriptions, items, access, cors, maxMessageBytes, log });
 * if (url.pathname === SUBSCRIBE_PATH) return await subscribe.answer(request, peer);
 * ```
 */
export class SubscribeStreams {
  #options: SubscribeStreamsOptions;
  #descriptors = greeterDescriptors();
  /** One encoding per wire. */
  #encodings: Map<Wire, StreamEncoding<Uint8Array, Uint8Array>>;

  /** Serves `Subscribe` over `options.subscriptions`. */
  constructor(options: SubscribeStreamsOptions) {
    this.#options = options;
    this.#encodings = new Map(
      [...new Set(WIRES.values())].map((wire) => [wire, this.#encoding(wire)]),
    );
  }

  /** The answer to `request` from `peer`. */
  async answer(request: Request, peer: string): Promise<Response> {
    const type = request.headers.get("content-type")?.split(";")[0].trim()
      .toLowerCase() ?? "";
    const wire = WIRES.get(type);
    if (request.method !== "POST") {
      return textResponse(
        405,
        `${request.method} is not allowed on ${SUBSCRIBE_PATH}: use POST`,
        { allow: "POST" },
      );
    }
    if (!wire) {
      return textResponse(
        415,
        `Content type "${type}" is not served on ${SUBSCRIBE_PATH}: use one of ${
          [...WIRES.keys()].join(", ")
        }`,
      );
    }
    const call = new CallRecord(
      this.#options.recorders[wire.protocol].method(SUBSCRIBE_PATH),
    );
    try {
      const { access, subscriptions, maxMessageBytes } = this.#options;
      const caller = callerOf(request.headers, peer);
      const permissions = authenticate(
        this.#options,
        request.headers,
        request.url,
        caller,
        SUBSCRIBE_PATH,
      );
      const timeout = wire.protocol === "connect"
        ? parseConnectTimeout(
          request.headers.get("connect-timeout-ms"),
          MAX_TIMEOUT_MS,
        )
        : parseGrpcTimeout(
          request.headers.get("grpc-timeout"),
          MAX_TIMEOUT_MS,
        );
      if (timeout.error) throw timeout.error;
      const message = this.#decode(
        wire,
        oneEnvelope(await readBody(request, maxMessageBytes + 5)),
      );
      call.received();
      if (permissions) {
        access!.authorize(permissions, caller, SUBSCRIBE_PATH, message);
      }
      const subscription = subscriptions.open(
        {
          name: message.name,
          topics: message.topics,
          after: cursorOf(message),
          peer,
          transport: wire.protocol,
        },
        this.#encodings.get(wire)!,
        {
          timeoutMs: timeout.timeoutMs,
          call,
          register: permissions && ((revoke) =>
            access!.register({
              caller,
              method: SUBSCRIBE_PATH,
              request: message,
              revoke,
            })),
        },
      );
      return new Response(
        subscription.readable as ReadableStream<Uint8Array<ArrayBuffer>>,
        { headers: { "content-type": wire.contentType } },
      );
    } catch (error) {
      const refusal = toConnectError(error, this.#options.log);
      call.handled(refusal.code);
      return this.#refused(wire, refusal);
    }
  }

  #decode(wire: Wire, body: Uint8Array): SubscribeRequest {
    const { SubscribeRequest } = this.#descriptors;
    try {
      return wire.json
        ? fromJsonString(SubscribeRequest, new TextDecoder().decode(body), {
          ignoreUnknownFields: true,
        })
        : fromBinary(SubscribeRequest, body);
    } catch (error) {
      throw new InvalidArgumentError(
        `Cannot read the SubscribeRequest: ${(error as Error).message}`,
      );
    }
  }

  /**
   * A call refused before its stream starts: Connect's is a stream of its
   * end frame alone; gRPC-Web's a trailers-only answer (the status in the
   * headers).
   */
  #refused(wire: Wire, error: ConnectError): Response {
    if (wire.protocol === "connect") {
      return new Response(connectEnd(error) as Uint8Array<ArrayBuffer>, {
        headers: { "content-type": wire.contentType },
      });
    }
    const headers = setTrailerStatus(
      new Headers({ "content-type": wire.contentType }),
      error,
    );
    return new Response(null, { headers });
  }

  /** The first message, the items and the end of a stream on `wire`. */
  #encoding(wire: Wire): StreamEncoding<Uint8Array, Uint8Array> {
    const { subscriptions, items } = this.#options;
    const recorder = this.#options.recorders[wire.protocol];
    const calls = recorder.method(SUBSCRIBE_PATH);
    const { GreetingMessage } = this.#descriptors;
    const encode = (message: GreetingMessage) => {
      calls?.sent();
      return envelope(
        MESSAGE_FLAG,
        wire.json
          ? utf8.encode(toJsonString(GreetingMessage, message))
          : toBinary(GreetingMessage, message),
      );
    };
    const end = wire.protocol === "connect" ? connectEnd : grpcWebEnd;
    return {
      first: (start) =>
        encode(create(GreetingMessage, {
          shapeType: {
            case: "firstGreetingMessage",
            value: subscriptions.first(start),
          },
        })),
      item: countingItems(
        wire.json ? items.json : items.binary,
        calls,
        recorder,
      ),
      join: concat, // envelopes one after another
      last: (start, error) => {
        if (error instanceof ConnectError) return end(error); // its deadline
        const goodbye = subscriptions.ended(start, error);
        if (!goodbye) return undefined; // cut
        const message = encode(create(GreetingMessage, {
          shapeType: { case: "goodbyeGreetingMessage", value: goodbye },
        }));
        // The hub closed: OK after the goodbye; else the call fails with
        // the goodbye's reason, as on gRPC.
        return concat([
          message,
          end(error === undefined ? undefined : toConnectError(error)),
        ]);
      },
    };
  }
}
