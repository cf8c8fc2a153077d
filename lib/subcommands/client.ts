/**
 * `greeter client`: makes the calls of the chosen mode and prints, one line
 * per message, exactly what the seed's Python client prints.
 *
 * @module
 */

import { GreeterClient } from "../client.ts";
import type { ClientConfig } from "../config.ts";
import { readTokenFile } from "./token_file.ts";

/**
 * Runs the client until its calls end, `config.count` stream messages were
 * printed, or `signal` aborts (all three return normally). Throws
 * {@linkcode RpcError} when a call fails.
 *
 * @example
 * ```ts ignore
 * await client({ target: "localhost:50051", mode: "hello", names: ["you"] }, console.log, signal);
 * ```
 */
export async function client(
  config: ClientConfig,
  print: (line: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const token = config.tokenFile
    ? (await readTokenFile(config.tokenFile))[0]
    : config.token;
  using greeter = new GreeterClient(config.target, { token });
  const [name] = config.names;
  const limit = config.count ?? Infinity;
  const take = async <T>(
    stream: AsyncIterable<T>,
    render: (value: T) => string,
  ) => {
    let n = 0;
    for await (const value of stream) {
      print(render(value));
      if (++n >= limit) break;
    }
  };

  if (config.mode === "bidi") {
    await take(
      greeter.bidi(config.names, { signal }),
      (reply) => `Greeter client received: ${reply}`,
    );
    return;
  }
  try {
    const reply = await greeter.sayHello(name, { signal });
    print(`Greeter client received: ${reply}`);
  } catch (error) {
    if (signal.aborted) return;
    throw error;
  }
  if (config.mode === "stream") {
    await take(
      greeter.streamReply(name, { signal }),
      (message) => `Greeter client received: ${message}`,
    );
  } else if (config.mode === "stream2") {
    await take(
      greeter.stream2(name, { signal }),
      (kind) =>
        kind === "unknown" ? "unknown message received." : `${kind} received:`,
    );
  }
}
