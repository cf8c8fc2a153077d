/**
 * Folder `lib/wire/`: what client and server share: the contract and its
 * loading (here, and as protobuf-es descriptors in `descriptors.ts`), TLS
 * material (`tls.ts`) and addresses (`address.ts`). May import
 * `@grpc/grpc-js`, `@grpc/proto-loader`, `protobufjs`, `@bufbuild/protobuf`,
 * `node:*` and the shared modules of `lib/` (`errors.ts`); nothing else of
 * `lib/`.
 *
 * The contract, loaded once: `protos/helloworld.proto` found from this
 * module's own location (so it works from any working directory and inside a
 * compiled executable), with the proto-loader options in one place.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Buffer } from "node:buffer";
import { join } from "node:path";

/** Directory holding the `.proto` files. */
export const PROTO_DIR: string = join(
  import.meta.dirname!,
  "..",
  "..",
  "protos",
);

/** The proto-loader options every part of the greeter uses. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** `helloworld.HelloRequest`. */
export interface HelloRequest {
  name: string;
}

/** `helloworld.Cursor`, as sent (seq a number) or received (seq a decimal string). */
export interface CursorMessage {
  epoch: string;
  seq: number | string;
}

/** `helloworld.HelloReply`. */
export interface HelloReply {
  message: string;
  /** Set on `SayHelloStreamReply` messages. */
  cursor?: CursorMessage | null;
  /** Set on `SayHelloStreamReply` messages; a decimal string when received. */
  time_ms?: number | string;
}

/** The kinds a `helloworld.GreetingMessage` can carry (its `shape_type`). */
export type GreetingKind =
  | "firstGreetingMessage"
  | "timerGreetingMessage"
  | "goodbyeGreetingMessage"
  | "event"
  | "heartbeat"
  | "gap";

/** `helloworld.FirstGreetingMessage`. */
export interface FirstMessage {
  subscription_id?: number | string;
  cursor?: CursorMessage | null;
  recovered?: boolean;
  reason?: string;
  heartbeat_interval_ms?: number;
  /** The last event published when the subscription started. */
  head?: CursorMessage | null;
}

/** `helloworld.GoodbyeGreetingMessage`. */
export interface GoodbyeMessage {
  code?: number;
  reason?: string;
  reconnect?: boolean;
  reconnect_after_ms?: number;
}

/** `helloworld.Event`. */
export interface EventMessage {
  seq: number | string;
  epoch: string;
  time_ms: number | string;
  topic: string;
  payload: Uint8Array;
}

/** `helloworld.Heartbeat`. */
export interface HeartbeatMessage {
  cursor: CursorMessage | null;
  time_ms: number | string;
}

/** `helloworld.Gap`. */
export interface GapMessage {
  from_seq: number | string;
  to_seq: number | string;
  missed: number | string;
  reason: string;
}

/** `helloworld.GreetingMessage`: exactly one kind is set. */
export interface GreetingMessage {
  firstGreetingMessage?: FirstMessage | null;
  timerGreetingMessage?: Record<string, never> | null;
  goodbyeGreetingMessage?: GoodbyeMessage | null;
  event?: EventMessage | null;
  heartbeat?: HeartbeatMessage | null;
  gap?: GapMessage | null;
  shape_type?: GreetingKind;
}

/** `helloworld.StartPosition`: one of its fields is set (`position` names which, when received). */
export interface StartPositionMessage {
  first?: boolean;
  last?: number;
  /** A decimal string when received. */
  time_ms?: number | string;
  position?: "first" | "last" | "time_ms";
}

/** `helloworld.SubscribeRequest`. */
export interface SubscribeRequest {
  name: string;
  topics?: string[];
  after?: CursorMessage | null;
  start?: StartPositionMessage | null;
}

/** `helloworld.StreamInfoReply`; the uint64 and int64 fields are decimal strings when received. */
export interface StreamInfoReply {
  epoch: string;
  store: string;
  first_seq: number | string;
  last_seq: number | string;
  events: number | string;
  bytes: number | string;
  first_time_ms: number | string;
  last_time_ms: number | string;
}

/** `helloworld.PublishRequest`. */
export interface PublishRequest {
  topic: string;
  payload: Uint8Array;
  /** Names the publish: a retry with it within the duplicate window is not a second event. Empty: none. */
  idempotency_key?: string;
}

/** `helloworld.PublishReply`. */
export interface PublishReply {
  cursor: CursorMessage | null;
  time_ms: number | string;
}

/** `helloworld.SubscriberInfo`. */
export interface SubscriberMessage {
  subscription_id: number | string;
  name: string;
  since_ms: number | string;
  topics: string[];
  delivered: number | string;
  dropped: number | string;
  topic_count: number;
}

/** `helloworld.ListSubscribersRequest`. */
export interface ListSubscribersRequest {
  topic: string;
  limit: number;
  page_token: string;
}

/** `helloworld.ListSubscribersReply`. */
export interface ListSubscribersReply {
  subscribers: SubscriberMessage[];
  total: number;
  next_page_token: string;
}

/** The loaded `helloworld.Greeter` service: its definition and client class. */
export interface GreeterProto {
  /** For `grpc.Server.addService`. */
  service: grpc.ServiceDefinition;
  /** The generic client constructor. */
  Client: grpc.ServiceClientConstructor;
}

let cached: GreeterProto | undefined;

/** The Greeter's response serializers: each passes a `Buffer` through. */
const buffersPass = new WeakSet<object>();

/**
 * Whether `serialize` (a method's `responseSerialize`) passes a `Buffer`
 * through as already encoded: the Greeter's do, other services' (health,
 * reflection) encode whatever they get.
 *
 * @example
 * ```ts ignore
 * passesBuffers(loadGreeterProto().service.SayHello.responseSerialize); // true
 * ```
 */
export function passesBuffers(serialize: object): boolean {
  return buffersPass.has(serialize);
}

/**
 * Encodes a `helloworld.GreetingMessage` once, to be written as is to many
 * `Subscribe` calls.
 *
 * @example
 * ```ts
 * import { encodeGreeting } from "./proto.ts";
 * encodeGreeting({ timerGreetingMessage: {} }).length; // 2
 * ```
 */
export function encodeGreeting(message: GreetingMessage): Buffer {
  return loadGreeterProto().service.SayHelloStream2.responseSerialize(message);
}

/**
 * Loads `helloworld.Greeter` (once per process).
 *
 * @example
 * ```ts
 * import { loadGreeterProto } from "./proto.ts";
 * const { service } = loadGreeterProto();
 * Object.keys(service); // ["SayHello", "SayHelloStreamReply", …]
 * ```
 */
export function loadGreeterProto(): GreeterProto {
  if (cached) return cached;
  const definition = protoLoader.loadSync(
    join(PROTO_DIR, "helloworld.proto"),
    LOADER_OPTIONS,
  );
  const Client = grpc.loadPackageDefinition(definition).helloworld as Record<
    string,
    grpc.ServiceClientConstructor
  >;
  // The server may hand any method a Buffer it encoded itself (once per
  // event for every subscriber, or to know a message's size): those pass
  // through as they are.
  const service: grpc.ServiceDefinition = Object.fromEntries(
    Object.entries(Client.Greeter.service).map(([name, method]) => {
      const serialize = method.responseSerialize;
      const passing = (value: unknown) =>
        Buffer.isBuffer(value) ? value : serialize(value);
      buffersPass.add(passing);
      return [name, { ...method, responseSerialize: passing }];
    }),
  );
  cached = { service, Client: Client.Greeter };
  return cached;
}

/**
 * Every contract the server serves but reflection itself: the Greeter and
 * `grpc.health.v1.Health`, as one definition for the reflection service to
 * describe (health included: a known pitfall is to leave it out). Health is
 * described from the canonical copy in `protos/` (see its header).
 *
 * @example
 * ```ts ignore
 * new ReflectionService(loadServedDefinition()).addToServer(server);
 * ```
 */
export function loadServedDefinition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync(
    ["helloworld.proto", "grpc/health/v1/health.proto"],
    { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] },
  );
}
