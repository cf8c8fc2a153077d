/**
 * The contract, loaded once: `protos/helloworld.proto` found from this
 * module's own location (so it works from any working directory and inside a
 * compiled executable), with the proto-loader options in one place.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { join } from "node:path";

/** Directory holding the `.proto` files. */
export const PROTO_DIR: string = join(import.meta.dirname!, "..", "protos");

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

/** `helloworld.HelloReply`. */
export interface HelloReply {
  message: string;
}

/** The kinds a `helloworld.GreetingMessage` can carry (its `shape_type`). */
export type GreetingKind =
  | "firstGreetingMessage"
  | "timerGreetingMessage"
  | "goodbyeGreetingMessage";

/** `helloworld.GreetingMessage`: exactly one kind is set. */
export type GreetingMessage =
  & { [K in GreetingKind]?: Record<string, never> }
  & { shape_type?: GreetingKind };

/** The loaded `helloworld.Greeter` service: its definition and client class. */
export interface GreeterProto {
  /** For `grpc.Server.addService`. */
  service: grpc.ServiceDefinition;
  /** The generic client constructor. */
  Client: grpc.ServiceClientConstructor;
}

let cached: GreeterProto | undefined;

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
  cached = { service: Client.Greeter.service, Client: Client.Greeter };
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
