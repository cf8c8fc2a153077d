/**
 * The greeter server, as other code embeds it (`@greeter/greeter/server`):
 * {@linkcode startServer} runs what `deno task serve` runs, each option
 * defaulting as the command line's does (see {@linkcode ServerOptions}), and
 * returns a {@linkcode GreeterServer} that drains and stops with
 * `shutdown()` or `await using`.
 *
 * @example A server for a test, on a free loopback port
 * ```ts
 * import { startServer } from "@greeter/greeter/server";
 *
 * await using server = await startServer({ port: 0 });
 * console.log(server.address); // e.g. "127.0.0.1:40123"
 * ```
 *
 * @module
 */

export {
  type GreeterServer,
  type ShutdownOptions,
  startServer,
} from "./server.ts";
export {
  DEFAULT_HOST,
  DEFAULT_INTERVAL_MS,
  DEFAULT_PORT,
  type ServerOptions,
} from "./options.ts";
