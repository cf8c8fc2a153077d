/**
 * The contract as protobuf-es descriptors, for the HTTP transport's Connect,
 * gRPC-Web and JSON encodings: read at run time from
 * `protos/helloworld.proto` (the file grpc-js serves from), so that there is
 * no second copy of the contract to keep in step. protobufjs (which
 * proto-loader parses with) turns the file into a `FileDescriptorProto`,
 * with two fix-ups that protoc would have made: fully qualified type names,
 * and each field's `json_name`. A test holds the result to what `buf build`
 * compiles from the same file.
 *
 * Messages keep protobuf-es shapes: lowerCamelCase fields, `bigint` for
 * 64-bit integers.
 *
 * @module
 */

import protobuf from "protobufjs";
import "protobufjs/ext/descriptor/index.js"; // adds Root#toDescriptor
import {
  createFileRegistry,
  type DescMessage,
  type FileRegistry,
  fromBinary,
  type Message,
} from "@bufbuild/protobuf";
import type { GenMessage, GenService } from "@bufbuild/protobuf/codegenv2";
import {
  type DescriptorProto,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import { join } from "node:path";
import { PROTO_DIR } from "./proto.ts";

/** protoc's default `json_name`: each `_` dropped and the letter after it upper-cased. */
function jsonNameOf(name: string): string {
  return name.replace(
    /_(\w)?/g,
    (_match, letter: string | undefined) => letter?.toUpperCase() ?? "",
  );
}

/** protobufjs's descriptor extension, which its own types do not declare. */
interface DescriptorSet {
  constructor: { encode(set: DescriptorSet): { finish(): Uint8Array } };
}

/**
 * The descriptors of `file` (under `protos/`) and what it imports, as
 * protoc would write them.
 *
 * @example
 * ```ts
 * import { loadRegistry } from "./descriptors.ts";
 * loadRegistry().getService("helloworld.Greeter")?.methods.length; // 8
 * ```
 */
export function loadRegistry(file = "helloworld.proto"): FileRegistry {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => join(PROTO_DIR, target);
  root.loadSync(file, { keepCase: true });
  root.resolveAll();
  const toDescriptor = (root as unknown as {
    toDescriptor(syntax: string): DescriptorSet;
  }).toDescriptor;
  const set = toDescriptor.call(root, "proto3");
  const files = fromBinary(
    FileDescriptorSetSchema,
    set.constructor.encode(set).finish(),
  );
  for (const described of files.file) {
    const fix = (scope: string, message: DescriptorProto) => {
      const fullName = `${scope}.${message.name}`;
      const type = root.lookupType(fullName);
      for (const field of message.field) {
        // protobufjs writes names relative to the message ("Cursor");
        // protoc writes them fully qualified (".helloworld.Cursor").
        if (field.typeName && !field.typeName.startsWith(".")) {
          const resolved = type.fields[field.name].resolvedType;
          if (!resolved) {
            throw new Error(
              `Cannot resolve type "${field.typeName}" of ${fullName}.${field.name} in ${file}`,
            );
          }
          field.typeName = resolved.fullName;
        }
        // Left unset by protobufjs: protobuf-es would then name every JSON field "".
        if (!field.jsonName) field.jsonName = jsonNameOf(field.name);
      }
      for (const nested of message.nestedType) fix(fullName, nested);
    };
    for (const message of described.messageType) {
      fix(described.package ? `.${described.package}` : "", message);
    }
  }
  return createFileRegistry(files);
}

/** `helloworld.Cursor`. */
export type Cursor = Message<"helloworld.Cursor"> & {
  epoch: string;
  seq: bigint;
};

/** `helloworld.HelloRequest`. */
export type HelloRequest = Message<"helloworld.HelloRequest"> & {
  name: string;
};

/** `helloworld.HelloReply`. */
export type HelloReply = Message<"helloworld.HelloReply"> & {
  message: string;
  cursor?: Cursor;
  timeMs: bigint;
};

/** `helloworld.FirstGreetingMessage`. */
export type FirstGreetingMessage =
  & Message<"helloworld.FirstGreetingMessage">
  & {
    subscriptionId: bigint;
    cursor?: Cursor;
    recovered: boolean;
    reason: string;
    heartbeatIntervalMs: number;
    head?: Cursor;
  };

/** `helloworld.GoodbyeGreetingMessage`. */
export type GoodbyeGreetingMessage =
  & Message<"helloworld.GoodbyeGreetingMessage">
  & {
    code: number;
    reason: string;
    reconnect: boolean;
    reconnectAfterMs: number;
  };

/** `helloworld.Event`. */
export type EventMessage = Message<"helloworld.Event"> & {
  seq: bigint;
  epoch: string;
  timeMs: bigint;
  topic: string;
  payload: Uint8Array;
};

/** `helloworld.Heartbeat`. */
export type HeartbeatMessage = Message<"helloworld.Heartbeat"> & {
  cursor?: Cursor;
  timeMs: bigint;
};

/** `helloworld.Gap`. */
export type GapMessage = Message<"helloworld.Gap"> & {
  fromSeq: bigint;
  toSeq: bigint;
  missed: bigint;
  reason: string;
};

/** `helloworld.GreetingMessage`: one of its kinds. */
export type GreetingMessage = Message<"helloworld.GreetingMessage"> & {
  shapeType:
    | { case: "firstGreetingMessage"; value: FirstGreetingMessage }
    | {
      case: "timerGreetingMessage";
      value: Message<"helloworld.TimerGreetingMessage">;
    }
    | { case: "goodbyeGreetingMessage"; value: GoodbyeGreetingMessage }
    | { case: "event"; value: EventMessage }
    | { case: "heartbeat"; value: HeartbeatMessage }
    | { case: "gap"; value: GapMessage }
    | { case: undefined; value?: undefined };
};

/** `helloworld.SubscribeRequest`. */
export type SubscribeRequest = Message<"helloworld.SubscribeRequest"> & {
  name: string;
  topics: string[];
  after?: Cursor;
};

/** `helloworld.PublishRequest`. */
export type PublishRequest = Message<"helloworld.PublishRequest"> & {
  topic: string;
  payload: Uint8Array;
  /** Names the publish: a retry with it within the duplicate window is not a second event. Empty: none. */
  idempotencyKey: string;
};

/** `helloworld.PublishReply`. */
export type PublishReply = Message<"helloworld.PublishReply"> & {
  cursor?: Cursor;
  timeMs: bigint;
};

/** `helloworld.ListSubscribersRequest`. */
export type ListSubscribersRequest =
  & Message<"helloworld.ListSubscribersRequest">
  & { topic: string; limit: number; pageToken: string };

/** `helloworld.SubscriberInfo`. */
export type SubscriberInfo = Message<"helloworld.SubscriberInfo"> & {
  subscriptionId: bigint;
  name: string;
  sinceMs: bigint;
  topics: string[];
  delivered: bigint;
  dropped: bigint;
  topicCount: number;
};

/** `helloworld.ListSubscribersReply`. */
export type ListSubscribersReply =
  & Message<"helloworld.ListSubscribersReply">
  & { subscribers: SubscriberInfo[]; total: number; nextPageToken: string };

/** The `helloworld.Greeter` service's descriptors, typed. */
export interface GreeterDescriptors {
  /** The registry they come from. */
  registry: FileRegistry;
  /** The service, for connect-es. */
  Greeter: GenService<{
    sayHello: {
      methodKind: "unary";
      input: GenMessage<HelloRequest>;
      output: GenMessage<HelloReply>;
    };
    sayHelloStreamReply: {
      methodKind: "server_streaming";
      input: GenMessage<HelloRequest>;
      output: GenMessage<HelloReply>;
    };
    sayHelloBidiStream: {
      methodKind: "bidi_streaming";
      input: GenMessage<HelloRequest>;
      output: GenMessage<HelloReply>;
    };
    sayHelloStream2: {
      methodKind: "server_streaming";
      input: GenMessage<HelloRequest>;
      output: GenMessage<GreetingMessage>;
    };
    subscribe: {
      methodKind: "server_streaming";
      input: GenMessage<SubscribeRequest>;
      output: GenMessage<GreetingMessage>;
    };
    publish: {
      methodKind: "unary";
      input: GenMessage<PublishRequest>;
      output: GenMessage<PublishReply>;
    };
    listSubscribers: {
      methodKind: "unary";
      input: GenMessage<ListSubscribersRequest>;
      output: GenMessage<ListSubscribersReply>;
    };
  }>;
  HelloReply: GenMessage<HelloReply>;
  GreetingMessage: GenMessage<GreetingMessage>;
  FirstGreetingMessage: GenMessage<FirstGreetingMessage>;
  GoodbyeGreetingMessage: GenMessage<GoodbyeGreetingMessage>;
  Event: GenMessage<EventMessage>;
  Gap: GenMessage<GapMessage>;
  SubscribeRequest: GenMessage<SubscribeRequest>;
}

let cached: GreeterDescriptors | undefined;

/**
 * The Greeter's descriptors, loaded once. Throws when the contract lacks a
 * message or the service this module types (the proto and these types
 * changed apart).
 *
 * @example
 * ```ts
 * import { create, toJsonString } from "@bufbuild/protobuf";
 * import { greeterDescriptors } from "./descriptors.ts";
 * const { Gap } = greeterDescriptors();
 * toJsonString(Gap, create(Gap, { fromSeq: 3n, toSeq: 5n, reason: "expired" }));
 * // '{"fromSeq":"3","toSeq":"5","reason":"expired"}'
 * ```
 */
export function greeterDescriptors(): GreeterDescriptors {
  if (cached) return cached;
  const registry = loadRegistry();
  const message = <T extends Message>(name: string) => {
    const found: DescMessage | undefined = registry.getMessage(
      `helloworld.${name}`,
    );
    if (!found) throw new Error(`helloworld.proto has no message ${name}`);
    return found as GenMessage<T>;
  };
  const service = registry.getService("helloworld.Greeter");
  if (!service) throw new Error("helloworld.proto has no service Greeter");
  return cached = {
    registry,
    Greeter: service as GreeterDescriptors["Greeter"],
    HelloReply: message("HelloReply"),
    GreetingMessage: message("GreetingMessage"),
    FirstGreetingMessage: message("FirstGreetingMessage"),
    GoodbyeGreetingMessage: message("GoodbyeGreetingMessage"),
    Event: message("Event"),
    Gap: message("Gap"),
    SubscribeRequest: message("SubscribeRequest"),
  };
}
