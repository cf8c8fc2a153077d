/**
 * The broker `greeter serve` runs on: the embedded memory broker, or a NATS
 * JetStream stream shared by every instance that names it.
 *
 * @module
 */

import { type Broker, MemoryBroker } from "../bus/broker.ts";
import { JetStreamBroker } from "../bus/nats/jetstream_broker.ts";
import { UnavailableError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { ServeConfig } from "./config.ts";
import { readConfigFile } from "./files.ts";

/** The broker the server runs on, and how to let go of it. */
export interface OpenBroker {
  /** Where events are sequenced. */
  broker: Broker<Uint8Array>;
  /** Closes the broker's connections. */
  close(): Promise<void>;
}

const decoder = new TextDecoder();

/** The first line of a secret file, its surrounding space trimmed. */
async function readSecret(path: string, what: string): Promise<string> {
  return decoder.decode(await readConfigFile(path, what)).split("\n")[0]
    .trim();
}

/**
 * Opens the broker of `config.brokerUrl`: a new memory broker (a new
 * epoch), or for NATS: connects, makes or adopts
 * the stream (its limits from the replay settings); the server reads the
 * window's worth of events back before it listens. Throws
 * `UnavailableError` when NATS cannot be used.
 *
 * @example
 * ```ts ignore
 * const { broker, close } = await openBroker(config, log);
 * ```
 */
export async function openBroker(
  config: ServeConfig,
  log: Logger,
): Promise<OpenBroker> {
  if (config.brokerUrl.kind === "memory") {
    return {
      broker: new MemoryBroker<Uint8Array>(),
      close: () => Promise.resolve(),
    };
  }
  const [password, token] = await Promise.all([
    config.natsPasswordFile === undefined
      ? undefined
      : readSecret(config.natsPasswordFile, "NATS password"),
    config.natsTokenFile === undefined
      ? undefined
      : readSecret(config.natsTokenFile, "NATS token"),
  ]);
  const broker = await JetStreamBroker.connect({
    servers: config.brokerUrl.servers,
    stream: config.natsStream,
    user: config.natsUser,
    password,
    token,
    tls: config.natsTlsCa === undefined && config.natsTlsCert === undefined
      ? undefined
      : {
        ca: config.natsTlsCa,
        cert: config.natsTlsCert,
        key: config.natsTlsKey,
      },
    replicas: config.natsReplicas,
    storage: config.natsStorage,
    maxEvents: config.replaySize,
    maxBytes: config.replayBytes,
    maxAgeMs: config.replayAgeMs,
    preload: config.replaySize,
    onNotice: (level, message, fields) => log[level](message, fields),
  }).catch((error) => {
    // nats-server drops a TLS client without the certificate its verify
    // wants, and nats.js then says only "timeout" (or, when its TLS alert
    // came at the wrong moment, that the connection closed).
    if (
      error instanceof UnavailableError && config.natsTlsCa !== undefined &&
      config.natsTlsCert === undefined &&
      !/certificate|tls/i.test(error.message)
    ) {
      throw new UnavailableError(
        `${error.message} (if nats-server verifies client certificates, give --nats-tls-cert and --nats-tls-key)`,
        { cause: error },
      );
    }
    throw error;
  });
  log.info("Event stream on NATS JetStream", {
    stream: config.natsStream,
    servers: config.brokerUrl.servers.join(","),
    epoch: broker.epoch,
    head: broker.head,
  });
  return { broker, close: () => broker.close() };
}
