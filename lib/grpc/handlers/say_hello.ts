/**
 * `SayHello`: replies `Hello, NAME!`.
 *
 * @module
 */

import type * as grpc from "@grpc/grpc-js";
import { helloMessage, validateName } from "../../greetings.ts";
import type { HelloReply, HelloRequest } from "../../wire/proto.ts";
import { toServiceError } from "../status.ts";

/**
 * The `SayHello` handler.
 *
 * @example
 * ```ts ignore
 * const implementation = { SayHello: sayHello() };
 * ```
 */
export function sayHello(): grpc.handleUnaryCall<HelloRequest, HelloReply> {
  return (call, callback) => {
    try {
      const name = validateName(call.request.name);
      callback(null, { message: helloMessage(name) });
    } catch (error) {
      callback(toServiceError(error));
    }
  };
}
