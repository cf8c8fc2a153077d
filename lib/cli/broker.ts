/**
 * The broker `greeter serve` runs on: the embedded memory broker, or a NATS
 * JetStream stream shared by every instance that names it.
 *
 * @module
 */

import { type Broker, MemoryBroker } from "../bus/broker.ts";
import { DeferredBroker } from "../bus/deferred_broker.ts";
import { fromSeed } from "@nats-io/nkeys";
import {
  JetStreamBroker,
  type JetStreamBrokerOptions,
} from "../bus/nats/jetstream_broker.ts";
import { ConfigError, UnavailableError } from "../errors.ts";
import { type NatsAuth, natsAuth } from "./nats_auth.ts";
import { engineEventCheck, refusalLog } from "../server/engine_input.ts";
import type { Logger } from "../log.ts";
import type { ServeConfig } from "./config.ts";
import { readConfigFile } from "./files.ts";

/** The broker the server runs on, and how to let go of it. */
export interface OpenBroker {
  /** Where events are sequenced. */
  broker: Broker<Uint8Array>;
  /** Closes the broker's connections (and stops connecting). */
  close(): Promise<void>;
  /**
   * Rejects, with why, when an engine not reached at start could not be
   * reached within `--broker-wait` (or then refused this instance): the
   * server must stop. Never settles otherwise.
   */
  failed: Promise<never>;
}

const decoder = new TextDecoder();

/** The first line of a secret file, its surrounding space trimmed. */
async function readSecret(path: string, what: string): Promise<string> {
  const line = decoder.decode(await readConfigFile(path, what)).split("\n")[0]
    .trim();
  if (line === "") {
    throw new ConfigError(`The ${what} file "${path}" is empty`);
  }
  return line;
}

/** How each way of authenticating is named in logs and messages. */
const AUTH_NAMES: Record<NatsAuth["kind"], string> = {
  none: "none",
  user: "user and password",
  token: "token",
  nkey: "nkey",
  creds: "credentials file",
};

/** The secrets `auth` names, read from their files; checked for shape. */
async function readCredentials(
  auth: NatsAuth,
): Promise<
  Pick<
    JetStreamBrokerOptions,
    "user" | "password" | "token" | "nkeySeed" | "creds"
  >
> {
  switch (auth.kind) {
    case "none":
      return {};
    case "user":
      return {
        user: auth.user,
        password: auth.password ??
          await readSecret(auth.passwordFile!, "NATS password"),
      };
    case "token":
      return { token: await readSecret(auth.file, "NATS token") };
    case "nkey": {
      const seed = await readSecret(auth.file, "NATS nkey seed");
      if (!isUserSeed(seed)) {
        throw new ConfigError(
          `The NATS nkey seed file "${auth.file}" holds no user seed: it must start with SU (made by "nk -gen user" or nsc), not be a public key (U…)`,
        );
      }
      return { nkeySeed: new TextEncoder().encode(seed) };
    }
    case "creds": {
      const creds = await readConfigFile(auth.file, "NATS credentials");
      const text = decoder.decode(creds);
      const seed = text.match(/-{3,}BEGIN USER NKEY SEED-{3,}\s+(\S+)/)?.[1];
      if (
        !/-{3,}BEGIN NATS USER JWT-{3,}\s+\S+/.test(text) || !isUserSeed(seed)
      ) {
        throw new ConfigError(
          `The NATS credentials file "${auth.file}" is not one: it must hold a user JWT and its nkey seed (as "nsc generate creds" writes them)`,
        );
      }
      return { creds };
    }
  }
}

/** Whether `seed` is a valid user nkey seed. */
function isUserSeed(seed: string | undefined): boolean {
  if (!seed?.startsWith("SU")) return false;
  try {
    fromSeed(new TextEncoder().encode(seed));
    return true;
  } catch {
    return false;
  }
}

/**
 * This instance's name on its NATS connection, so that nats-server's
 * monitoring tells instances apart: `greeter HOST PID`.
 */
function connectionName(): string {
  let host = "";
  try {
    host = Deno.hostname();
  } catch {
    // No permission to read it: the pid still tells instances apart.
  }
  return ["greeter", host, String(Deno.pid)].filter(Boolean).join(" ");
}

/** What a failed attempt at NATS means: the error to show, and whether waiting may mend it. */
interface Refusal {
  error: unknown;
  /** NATS not reachable (yet): nothing answered, or too late. */
  unreachable: boolean;
}

/**
 * A failed attempt at NATS, explained: what to give or check when nats-server
 * refused this instance, and whether it was rather not reachable (then serve
 * waits for it, `--broker-wait`).
 */
function refusal(error: unknown, config: ServeConfig, auth: NatsAuth): Refusal {
  if (!(error instanceof UnavailableError)) {
    return { error, unreachable: false };
  }
  const message = error.message;
  // A stream that does not fit (RangeError) or credentials refused: no wait
  // mends them.
  let cause: unknown = error.cause;
  for (let depth = 0; cause instanceof Error && depth < 5; depth++) {
    if (cause instanceof RangeError) return { error, unreachable: false };
    cause = cause.cause;
  }
  if (
    /authori[sz]ation|authentication|permissions? violation/i.test(message)
  ) {
    return {
      error: new UnavailableError(
        `${message} (${
          auth.kind === "none"
            ? "nats-server wants credentials: give --nats-creds-file, --nats-nkey-file, a user and password, or --nats-token-file"
            : `nats-server refused the ${
              AUTH_NAMES[auth.kind]
            } given, or what it may do: check them against its authorization`
        })`,
        { cause: error },
      ),
      unreachable: false,
    };
  }
  // A nats-server without JetStream (often another one on that port):
  // reached, and wrong.
  if (/jetstream (is )?not enabled/i.test(message)) {
    return {
      error: new UnavailableError(
        `${message} (the nats-server at ${
          config.brokerUrl.kind === "nats"
            ? config.brokerUrl.servers.join(",")
            : ""
        } runs without JetStream: start it with -js, or jetstream {} in its configuration; on Debian, the package's own nats-server.service listens on 127.0.0.1:4222 without it: see docs/instances.md)`,
        { cause: error },
      ),
      unreachable: false,
    };
  }
  // TLS nats-server will not do: reached, and wrong.
  if (/certificate|tls|ssl/i.test(message)) {
    return { error, unreachable: false };
  }
  // nats-server drops a TLS client without the certificate its verify
  // wants, and nats.js then says only "timeout" (or, when its TLS alert
  // came at the wrong moment, that the connection closed).
  if (
    config.natsTlsCa !== undefined && config.natsTlsCert === undefined &&
    /timeout|closed/i.test(message)
  ) {
    return {
      error: new UnavailableError(
        `${message} (if nats-server verifies client certificates, give --nats-tls-cert and --nats-tls-key)`,
        { cause: error },
      ),
      unreachable: false,
    };
  }
  return { error, unreachable: true };
}

/** Never settles: the broker of a server that does not wait for its engine. */
const NEVER_FAILS: Promise<never> = new Promise<never>(() => {});

/**
 * Opens the broker of `config.brokerUrl`: a new memory broker (a new
 * epoch), or for NATS: connects, makes or adopts the stream (its limits
 * from the replay settings); the server reads the window's worth of events
 * back before it listens. When NATS cannot be reached at start, the server
 * starts without it (`--broker-wait`, no end by default): the broker keeps
 * connecting with backoff and becomes the stream's once reached, and
 * `failed` rejects if it gives up. Throws `UnavailableError` when NATS
 * refuses this instance (credentials, TLS, a stream that does not fit), or
 * cannot be reached and `--broker-wait` is 0.
 *
 * @example
 * ```ts ignore
 * const { broker, close, failed } = await openBroker(config, log);
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
      failed: NEVER_FAILS,
    };
  }
  const auth = natsAuth(config);
  const rejected = refusalLog(
    log,
    "An event from the stream refused: its subscribers get a gap (rejected)",
  );
  const servers = config.brokerUrl.servers;
  const options: JetStreamBrokerOptions = {
    servers,
    stream: config.natsStream,
    ...await readCredentials(auth),
    name: connectionName(),
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
    maxEventBytes: config.maxPublishBytes,
    // What the stream holds is untrusted: held to this instance's rules.
    check: engineEventCheck({
      maxPublishBytes: config.maxPublishBytes,
      maxMessageBytes: config.maxMessageBytes,
    }),
    onRejected: (event, refusal) =>
      rejected(refusal.reason, refusal.detail, { seq: event.seq }),
    preload: config.replaySize,
    onNotice: (level, message, fields) => log[level](message, fields),
  };
  const unreachable = new WeakSet<object>();
  const connect = () =>
    JetStreamBroker.connect(options).catch((error) => {
      const explained = refusal(error, config, auth);
      if (explained.unreachable && explained.error instanceof Error) {
        unreachable.add(explained.error);
      }
      throw explained.error;
    });
  const reached = (broker: Broker<Uint8Array>) =>
    log.info("Event stream on NATS JetStream", {
      stream: config.natsStream,
      servers: servers.join(","),
      auth: AUTH_NAMES[auth.kind],
      epoch: broker.epoch,
      head: broker.head,
    });
  try {
    const broker = await connect();
    reached(broker);
    return { broker, close: () => broker.close(), failed: NEVER_FAILS };
  } catch (error) {
    if (config.brokerWaitMs === 0 || !unreachable.has(error as object)) {
      throw error;
    }
    log.warn(
      "Event stream not reached: serving without it (readiness NOT_SERVING, its calls UNAVAILABLE) and connecting until it is",
      {
        servers: servers.join(","),
        waitMs: config.brokerWaitMs ?? "no end",
        error: (error as Error).message,
      },
    );
  }
  const broker = new DeferredBroker<Uint8Array>({
    connect,
    retryable: (error) => unreachable.has(error as object),
    name: `the event stream (NATS at ${servers.join(",")})`,
    shared: true,
    waitMs: config.brokerWaitMs,
    onRetry: (attempts, error) =>
      log.warn("Event stream still not reached: connecting", {
        attempts,
        error: (error as Error).message,
      }),
    onReached: (inner) => {
      reached(inner);
      log.info("Event stream reached: ready");
    },
  });
  return { broker, close: () => broker.close(), failed: broker.failed };
}
