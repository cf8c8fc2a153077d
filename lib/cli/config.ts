/**
 * Settings of the two subcommands: flags win over `GREETER_*` environment
 * variables, which win over defaults. Validated and typed; no I/O.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ConfigError } from "../errors.ts";
import { MAX_SEQ, parseSeq } from "../bus/seq.ts";
import { LOG_LEVELS, type LogFormat, type LogLevel } from "../log.ts";
import {
  DEFAULT_BUFFER_SIZE,
  DEFAULT_GRACE_MS,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_KEEPALIVE_TIME_MS,
  DEFAULT_KEEPALIVE_TIMEOUT_MS,
  DEFAULT_MAX_CONCURRENT_STREAMS,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_PUBLISH_BYTES,
  DEFAULT_MAX_SUBSCRIBERS,
  DEFAULT_MAX_SUBSCRIBERS_PER_CONNECTION,
  DEFAULT_MAX_SUBSCRIBERS_PER_PEER,
  DEFAULT_RECONNECT_JITTER_MS,
  DEFAULT_REPLAY_AGE_MS,
  DEFAULT_REPLAY_BYTES,
  DEFAULT_REPLAY_SIZE,
  SLOW_CONSUMER_POLICIES,
  type SlowConsumerPolicy,
} from "../defaults.ts";

/** Environment variables by name. */
export type Env = Record<string, string | undefined>;

/** Every environment variable the greeter reads (for least-privilege reads). */
export const ENV_VARS: readonly string[] = [
  "GREETER_HOST",
  "GREETER_PORT",
  "GREETER_INTERVAL_MS",
  "GREETER_BUFFER_SIZE",
  "GREETER_POLICY",
  "GREETER_REPLAY_SIZE",
  "GREETER_REPLAY_AGE_MS",
  "GREETER_REPLAY_BYTES",
  "GREETER_HEARTBEAT_MS",
  "GREETER_MAX_PUBLISH_SIZE",
  "GREETER_RECONNECT_JITTER_MS",
  "GREETER_GRACE_MS",
  "GREETER_KEEPALIVE_TIME_MS",
  "GREETER_KEEPALIVE_TIMEOUT_MS",
  "GREETER_MAX_CONNECTION_IDLE_MS",
  "GREETER_MAX_CONNECTION_AGE_MS",
  "GREETER_MAX_CONNECTION_AGE_GRACE_MS",
  "GREETER_MAX_SUBSCRIBERS",
  "GREETER_MAX_SUBSCRIBERS_PER_CONNECTION",
  "GREETER_MAX_SUBSCRIBERS_PER_PEER",
  "GREETER_MAX_CONCURRENT_STREAMS",
  "GREETER_MAX_MESSAGE_SIZE",
  "GREETER_METRICS_PORT",
  "GREETER_TLS_CERT",
  "GREETER_TLS_KEY",
  "GREETER_TLS_CLIENT_CA",
  "GREETER_TLS_CA",
  "GREETER_CLIENT_TLS_CERT",
  "GREETER_CLIENT_TLS_KEY",
  "GREETER_LOG_LEVEL",
  "GREETER_LOG_FORMAT",
  "GREETER_TARGET",
  "GREETER_TOKEN_FILE",
  "GREETER_TOKEN",
];

/** Settings of `greeter serve`. */
export interface ServeConfig {
  /** Interface to bind. */
  host: string;
  /** Port to bind; 0 picks a free one. */
  port: number;
  /** Milliseconds between hub ticks. */
  intervalMs: number;
  /** Events each subscription may hold unread. */
  bufferSize: number;
  /** What the hub does when a subscription's buffer is full. */
  policy: SlowConsumerPolicy;
  /** Events kept for resume. */
  replaySize: number;
  /** Age beyond which events are not replayed (ms). */
  replayAgeMs: number;
  /** Most bytes of events kept for resume. */
  replayBytes: number;
  /** Milliseconds between heartbeats to idle subscribers. */
  heartbeatMs: number;
  /** Largest payload `Publish` accepts, in bytes. */
  maxPublishBytes: number;
  /** Goodbyes advise reconnecting after a random delay below this (ms). */
  reconnectJitterMs: number;
  /** Milliseconds a shutdown waits for calls before cancelling them. */
  graceMs: number;
  /** Milliseconds between keepalive pings to each peer. */
  keepaliveTimeMs: number;
  /** Milliseconds a peer has to answer a ping before it is dropped. */
  keepaliveTimeoutMs: number;
  /** Close connections idle this long (ms); off when undefined. */
  maxConnectionIdleMs?: number;
  /** Ask connections to go away after this long (ms); off when undefined. */
  maxConnectionAgeMs?: number;
  /** Calls' time after that request (ms); off when undefined. */
  maxConnectionAgeGraceMs?: number;
  /** Most hub subscriptions at once. */
  maxSubscribers: number;
  /** Most hub subscriptions per connection. */
  maxSubscribersPerConnection: number;
  /** Most hub subscriptions per peer (remote address). */
  maxSubscribersPerPeer: number;
  /** Most concurrent calls per connection. */
  maxConcurrentStreams: number;
  /** Largest message accepted or sent, in bytes. */
  maxMessageBytes: number;
  /** File of accepted bearer tokens; unset: no authentication. */
  tokenFile?: string;
  /** Port of the Prometheus metrics endpoint; off when undefined. */
  metricsPort?: number;
  /** TLS certificate chain file (PEM); TLS is off when undefined. */
  tlsCert?: string;
  /** TLS private key file (PEM). */
  tlsKey?: string;
  /** CA file (PEM) client certificates must chain to; mTLS when set. */
  tlsClientCa?: string;
  /** Least severe log level written. */
  logLevel: LogLevel;
  /** Log line format. */
  logFormat: LogFormat;
}

/** What `greeter client` does. */
export type ClientMode =
  | "stream2"
  | "stream"
  | "hello"
  | "bidi"
  | "subscribe"
  | "publish"
  | "presence";

/** Every {@linkcode ClientMode}. */
export const CLIENT_MODES: readonly ClientMode[] = [
  "stream2",
  "stream",
  "hello",
  "bidi",
  "subscribe",
  "publish",
  "presence",
];

/** Settings of `greeter client`. */
export interface ClientConfig {
  /** Server address, `host:port`. */
  target: string;
  /** Which calls to make. */
  mode: ClientMode;
  /** Names given; the first is the caller's name, all are sent in `bidi`. */
  names: string[];
  /** Stop after this many stream messages (`undefined`: until the end). */
  count?: number;
  /** File holding the bearer token to send. */
  tokenFile?: string;
  /** The bearer token itself (from `GREETER_TOKEN`; never a flag). */
  token?: string;
  /** `subscribe`: topics to receive (empty: all ordinary ones); `publish`, `presence`: the topic. */
  topics: string[];
  /** `subscribe`: resume after this cursor. */
  after?: { epoch: string; seq: number };
  /** `publish`: the payload, as text. */
  payload: string;
  /** Connect with TLS (also implied by the other TLS settings). */
  tls: boolean;
  /** CA file (PEM) to trust for the server; system roots when undefined. */
  tlsCa?: string;
  /** Client certificate file (PEM), for mTLS. */
  tlsCert?: string;
  /** Its key file (PEM). */
  tlsKey?: string;
}

/** Usage text of `greeter serve`. */
export const SERVE_USAGE = `Usage: greeter serve [options]

Options (environment variable in brackets):
  --host HOST          interface to bind [GREETER_HOST] (default ::, all)
  --port PORT          port to bind, 0 for any free one [GREETER_PORT] (default 50051)
  --interval MS        milliseconds between hub ticks [GREETER_INTERVAL_MS] (default 1000)
  --buffer-size N      events a subscriber may hold unread [GREETER_BUFFER_SIZE] (default ${DEFAULT_BUFFER_SIZE})
  --policy P           when that buffer is full: ${
  SLOW_CONSUMER_POLICIES.join(" | ")
} [GREETER_POLICY] (default drop-oldest)
  --replay-size N      events kept for resume [GREETER_REPLAY_SIZE] (default ${DEFAULT_REPLAY_SIZE})
  --replay-age MS      oldest event replayed [GREETER_REPLAY_AGE_MS] (default ${DEFAULT_REPLAY_AGE_MS})
  --replay-bytes N     most bytes of events kept for resume [GREETER_REPLAY_BYTES] (default ${DEFAULT_REPLAY_BYTES})
  --heartbeat MS       heartbeat to idle subscribers [GREETER_HEARTBEAT_MS] (default ${DEFAULT_HEARTBEAT_MS})
  --max-publish-size BYTES
                       largest Publish payload [GREETER_MAX_PUBLISH_SIZE] (default ${DEFAULT_MAX_PUBLISH_BYTES})
  --grace MS           shutdown grace period [GREETER_GRACE_MS] (default ${DEFAULT_GRACE_MS})
  --reconnect-jitter MS
                       Goodbyes advise reconnecting within this [GREETER_RECONNECT_JITTER_MS] (default ${DEFAULT_RECONNECT_JITTER_MS})
  --keepalive-time MS  ping each peer this often [GREETER_KEEPALIVE_TIME_MS] (default ${DEFAULT_KEEPALIVE_TIME_MS})
  --keepalive-timeout MS
                       drop a peer silent this long after a ping [GREETER_KEEPALIVE_TIMEOUT_MS] (default ${DEFAULT_KEEPALIVE_TIMEOUT_MS})
  --max-connection-idle MS
                       close connections with no call this long [GREETER_MAX_CONNECTION_IDLE_MS] (default off)
  --max-connection-age MS
                       ask connections to reconnect after this long; with
                       --max-connection-age-grace, cut their streams after
                       that too [GREETER_MAX_CONNECTION_AGE_MS] (default off)
  --max-connection-age-grace MS
                       time calls get after that [GREETER_MAX_CONNECTION_AGE_GRACE_MS] (default off: unlimited)
  --max-subscribers N  most subscriptions at once [GREETER_MAX_SUBSCRIBERS] (default ${DEFAULT_MAX_SUBSCRIBERS})
  --max-subscribers-per-connection N
                       most subscriptions per connection [GREETER_MAX_SUBSCRIBERS_PER_CONNECTION] (default ${DEFAULT_MAX_SUBSCRIBERS_PER_CONNECTION})
  --max-subscribers-per-peer N
                       most subscriptions per peer address, all its
                       connections [GREETER_MAX_SUBSCRIBERS_PER_PEER] (default ${DEFAULT_MAX_SUBSCRIBERS_PER_PEER})
  --max-concurrent-streams N
                       most calls at once per connection [GREETER_MAX_CONCURRENT_STREAMS] (default ${DEFAULT_MAX_CONCURRENT_STREAMS})
  --max-message-size BYTES
                       largest message either way [GREETER_MAX_MESSAGE_SIZE] (default ${DEFAULT_MAX_MESSAGE_BYTES})
  --token-file PATH    require a bearer token from this file (one per line) [GREETER_TOKEN_FILE] (default: none)
  --tls-cert PATH      serve TLS with this certificate chain (PEM) [GREETER_TLS_CERT]
  --tls-key PATH       and this private key (PEM) [GREETER_TLS_KEY] (default: plaintext)
  --tls-client-ca PATH require client certificates signed by this CA (mTLS) [GREETER_TLS_CLIENT_CA]
  --metrics-port PORT  serve Prometheus metrics on http://HOST:PORT/metrics [GREETER_METRICS_PORT] (default off)
  --log-level L        ${
  LOG_LEVELS.join(" | ")
} [GREETER_LOG_LEVEL] (default info)
  --log-format F       text | json [GREETER_LOG_FORMAT] (default text)
  -h, --help           show this help
`;

/** Usage text of `greeter client`. */
export const CLIENT_USAGE = `Usage: greeter client [NAME…] [options]

Options (environment variable in brackets):
  --target HOST:PORT   server address [GREETER_TARGET] (default localhost:50051)
  --mode M             ${CLIENT_MODES.join(" | ")} (default stream2)
                         stream2: SayHello, then SayHelloStream2
                         stream:  SayHello, then SayHelloStreamReply (until --count or Ctrl-C)
                         hello:   SayHello only
                         bidi:    SayHelloBidiStream with every NAME given
                         subscribe: Subscribe to the event bus, reconnecting
                                  and resuming (until --count or Ctrl-C)
                         publish: Publish --payload on --topic
                         presence: list subscribers (of --topic, if given)
  --topic T            subscribe: a topic to receive (repeatable; default
                       all but "$" ones; "$presence" for joins and leaves);
                       publish, presence: the topic
  --after EPOCH:SEQ    subscribe: resume after this cursor
  --payload TEXT       publish: what to publish (default empty)
  --tls                connect with TLS, trusting the system's CAs
  --tls-ca PATH        connect with TLS, trusting this CA (PEM) [GREETER_TLS_CA]
  --tls-cert PATH      present this client certificate (PEM, mTLS) [GREETER_CLIENT_TLS_CERT]
  --tls-key PATH       and its key (PEM) [GREETER_CLIENT_TLS_KEY]
  --count N            stop after N stream messages
  --token-file PATH    bearer token to send [GREETER_TOKEN_FILE]; or the token
                       itself in GREETER_TOKEN
  -h, --help           show this help
`;

/** The result of parsing: settings, or a request for help. */
export type Parsed<T> = { help: true } | { help: false; config: T };

type Flags = Record<
  string,
  { type: "string" | "boolean"; short?: string; multiple?: boolean }
>;

function parse(
  args: string[],
  options: Flags,
): {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
} {
  try {
    return parseArgs({ options, args, strict: true, allowPositionals: true });
  } catch (error) {
    throw new ConfigError((error as Error).message, { cause: error });
  }
}

function integer(
  name: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < min || n > max) {
    throw new ConfigError(
      `Invalid ${name} "${value}": expected an integer from ${min} to ${max}`,
    );
  }
  return n;
}

/** Longest duration accepted (a day), in milliseconds. */
const MAX_DURATION_MS = 86_400_000;

function optionalInteger(
  name: string,
  value: string | undefined,
  min: number,
  max: number,
) {
  return value === undefined ? undefined : integer(name, value, 0, min, max);
}

function optionalMs(name: string, value: string | undefined) {
  return optionalInteger(name, value, 1, MAX_DURATION_MS);
}

function oneOf<T extends string>(
  name: string,
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) {
    throw new ConfigError(
      `Invalid ${name} "${value}": expected one of ${allowed.join(", ")}`,
    );
  }
  return value as T;
}

/**
 * Parses `greeter serve` arguments.
 *
 * @example
 * ```ts
 * import { parseServeArgs } from "./config.ts";
 * const parsed = parseServeArgs(["--port", "0"], {});
 * if (!parsed.help) parsed.config.port; // 0
 * ```
 */
export function parseServeArgs(args: string[], env: Env): Parsed<ServeConfig> {
  const { values, positionals } = parse(args, {
    host: { type: "string" },
    port: { type: "string" },
    interval: { type: "string" },
    "buffer-size": { type: "string" },
    policy: { type: "string" },
    "replay-size": { type: "string" },
    "replay-age": { type: "string" },
    "replay-bytes": { type: "string" },
    heartbeat: { type: "string" },
    "max-publish-size": { type: "string" },
    "reconnect-jitter": { type: "string" },
    grace: { type: "string" },
    "keepalive-time": { type: "string" },
    "keepalive-timeout": { type: "string" },
    "max-connection-idle": { type: "string" },
    "max-connection-age": { type: "string" },
    "max-connection-age-grace": { type: "string" },
    "max-subscribers": { type: "string" },
    "max-subscribers-per-connection": { type: "string" },
    "max-subscribers-per-peer": { type: "string" },
    "max-concurrent-streams": { type: "string" },
    "max-message-size": { type: "string" },
    "token-file": { type: "string" },
    "metrics-port": { type: "string" },
    "tls-cert": { type: "string" },
    "tls-key": { type: "string" },
    "tls-client-ca": { type: "string" },
    "log-level": { type: "string" },
    "log-format": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return { help: true };
  if (positionals.length > 0) {
    throw new ConfigError(
      `Unexpected argument "${positionals[0]}": serve takes options only`,
    );
  }
  const v = values as Record<string, string | undefined>;
  const host = v.host ?? env.GREETER_HOST ?? "::";
  const tlsCert = v["tls-cert"] ?? env.GREETER_TLS_CERT;
  const tlsKey = v["tls-key"] ?? env.GREETER_TLS_KEY;
  const tlsClientCa = v["tls-client-ca"] ?? env.GREETER_TLS_CLIENT_CA;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw new ConfigError(
      "TLS needs both --tls-cert and --tls-key (or neither, for plaintext)",
    );
  }
  if (tlsClientCa !== undefined && tlsCert === undefined) {
    throw new ConfigError(
      "--tls-client-ca needs TLS: give --tls-cert and --tls-key too",
    );
  }
  if (host.trim() === "") throw new ConfigError("Invalid host: it is empty");
  const config: ServeConfig = {
    host,
    port: integer("port", v.port ?? env.GREETER_PORT, 50051, 0, 65535),
    intervalMs: integer(
      "interval",
      v.interval ?? env.GREETER_INTERVAL_MS,
      1000,
      1,
      86_400_000,
    ),
    bufferSize: integer(
      "buffer size",
      v["buffer-size"] ?? env.GREETER_BUFFER_SIZE,
      DEFAULT_BUFFER_SIZE,
      1,
      1_000_000,
    ),
    policy: oneOf(
      "policy",
      v.policy ?? env.GREETER_POLICY,
      SLOW_CONSUMER_POLICIES,
      "drop-oldest",
    ),
    replaySize: integer(
      "replay size",
      v["replay-size"] ?? env.GREETER_REPLAY_SIZE,
      DEFAULT_REPLAY_SIZE,
      1,
      10_000_000,
    ),
    replayAgeMs: integer(
      "replay age",
      v["replay-age"] ?? env.GREETER_REPLAY_AGE_MS,
      DEFAULT_REPLAY_AGE_MS,
      1,
      MAX_DURATION_MS,
    ),
    replayBytes: integer(
      "replay bytes",
      v["replay-bytes"] ?? env.GREETER_REPLAY_BYTES,
      DEFAULT_REPLAY_BYTES,
      1024,
      Number.MAX_SAFE_INTEGER,
    ),
    heartbeatMs: integer(
      "heartbeat",
      v.heartbeat ?? env.GREETER_HEARTBEAT_MS,
      DEFAULT_HEARTBEAT_MS,
      10,
      MAX_DURATION_MS,
    ),
    maxPublishBytes: integer(
      "max publish size",
      v["max-publish-size"] ?? env.GREETER_MAX_PUBLISH_SIZE,
      DEFAULT_MAX_PUBLISH_BYTES,
      0,
      64 * 1024 * 1024,
    ),
    reconnectJitterMs: integer(
      "reconnect jitter",
      v["reconnect-jitter"] ?? env.GREETER_RECONNECT_JITTER_MS,
      DEFAULT_RECONNECT_JITTER_MS,
      0,
      3_600_000,
    ),
    graceMs: integer(
      "grace",
      v.grace ?? env.GREETER_GRACE_MS,
      DEFAULT_GRACE_MS,
      0,
      3_600_000,
    ),
    keepaliveTimeMs: integer(
      "keepalive time",
      v["keepalive-time"] ?? env.GREETER_KEEPALIVE_TIME_MS,
      DEFAULT_KEEPALIVE_TIME_MS,
      1,
      MAX_DURATION_MS,
    ),
    keepaliveTimeoutMs: integer(
      "keepalive timeout",
      v["keepalive-timeout"] ?? env.GREETER_KEEPALIVE_TIMEOUT_MS,
      DEFAULT_KEEPALIVE_TIMEOUT_MS,
      1,
      MAX_DURATION_MS,
    ),
    maxConnectionIdleMs: optionalMs(
      "max connection idle",
      v["max-connection-idle"] ?? env.GREETER_MAX_CONNECTION_IDLE_MS,
    ),
    maxConnectionAgeMs: optionalMs(
      "max connection age",
      v["max-connection-age"] ?? env.GREETER_MAX_CONNECTION_AGE_MS,
    ),
    maxConnectionAgeGraceMs: optionalMs(
      "max connection age grace",
      v["max-connection-age-grace"] ??
        env.GREETER_MAX_CONNECTION_AGE_GRACE_MS,
    ),
    maxSubscribers: integer(
      "max subscribers",
      v["max-subscribers"] ?? env.GREETER_MAX_SUBSCRIBERS,
      DEFAULT_MAX_SUBSCRIBERS,
      1,
      10_000_000,
    ),
    maxSubscribersPerConnection: integer(
      "max subscribers per connection",
      v["max-subscribers-per-connection"] ??
        env.GREETER_MAX_SUBSCRIBERS_PER_CONNECTION,
      DEFAULT_MAX_SUBSCRIBERS_PER_CONNECTION,
      1,
      10_000_000,
    ),
    maxSubscribersPerPeer: integer(
      "max subscribers per peer",
      v["max-subscribers-per-peer"] ?? env.GREETER_MAX_SUBSCRIBERS_PER_PEER,
      DEFAULT_MAX_SUBSCRIBERS_PER_PEER,
      1,
      10_000_000,
    ),
    maxConcurrentStreams: integer(
      "max concurrent streams",
      v["max-concurrent-streams"] ?? env.GREETER_MAX_CONCURRENT_STREAMS,
      DEFAULT_MAX_CONCURRENT_STREAMS,
      1,
      2 ** 31 - 1,
    ),
    maxMessageBytes: integer(
      "max message size",
      v["max-message-size"] ?? env.GREETER_MAX_MESSAGE_SIZE,
      DEFAULT_MAX_MESSAGE_BYTES,
      1024,
      64 * 1024 * 1024,
    ),
    tokenFile: v["token-file"] ?? env.GREETER_TOKEN_FILE,
    tlsCert,
    tlsKey,
    tlsClientCa,
    metricsPort: optionalInteger(
      "metrics port",
      v["metrics-port"] ?? env.GREETER_METRICS_PORT,
      0,
      65535,
    ),
    logLevel: oneOf(
      "log level",
      v["log-level"] ?? env.GREETER_LOG_LEVEL,
      LOG_LEVELS,
      "info",
    ),
    logFormat: oneOf(
      "log format",
      v["log-format"] ?? env.GREETER_LOG_FORMAT,
      ["text", "json"] as const,
      "text",
    ),
  };
  if (
    config.metricsPort !== undefined && config.metricsPort !== 0 &&
    config.metricsPort === config.port
  ) {
    throw new ConfigError(
      `Invalid metrics port ${config.metricsPort}: it is the gRPC port too; pick another`,
    );
  }
  // A publish carries its payload plus a few bytes of framing in one message.
  if (config.maxPublishBytes > config.maxMessageBytes - 512) {
    throw new ConfigError(
      `Invalid max publish size ${config.maxPublishBytes}: it must stay 512 bytes below the max message size (${config.maxMessageBytes}); raise --max-message-size or lower --max-publish-size`,
    );
  }
  return { help: false, config };
}

/**
 * Parses `greeter client` arguments.
 *
 * @example
 * ```ts
 * import { parseClientArgs } from "./config.ts";
 * const parsed = parseClientArgs(["you", "--mode", "hello"], {});
 * if (!parsed.help) parsed.config.names; // ["you"]
 * ```
 */
export function parseClientArgs(
  args: string[],
  env: Env,
): Parsed<ClientConfig> {
  const { values, positionals } = parse(args, {
    target: { type: "string" },
    mode: { type: "string" },
    count: { type: "string" },
    "token-file": { type: "string" },
    topic: { type: "string", multiple: true },
    after: { type: "string" },
    payload: { type: "string" },
    tls: { type: "boolean" },
    "tls-ca": { type: "string" },
    "tls-cert": { type: "string" },
    "tls-key": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return { help: true };
  const v = values as Record<string, string | undefined>;
  const topics = (values.topic ?? []) as string[];
  let after: ClientConfig["after"];
  if (v.after !== undefined) {
    const match = v.after.match(/^([^:\s]+):(\d+)$/);
    if (!match) {
      throw new ConfigError(
        `Invalid cursor "${v.after}": expected EPOCH:SEQ as printed by the subscribe mode, e.g. 3f2a9c0d11e4b7a6:42`,
      );
    }
    const seq = parseSeq(match[2]);
    if (seq === undefined) {
      throw new ConfigError(
        `Invalid cursor "${v.after}": seq ${
          match[2]
        } is out of range, at most ${MAX_SEQ}`,
      );
    }
    after = { epoch: match[1], seq };
  }
  const mode = oneOf("mode", v.mode, CLIENT_MODES, "stream2");
  const only = (flag: string, given: boolean, modes: ClientMode[]) => {
    if (given && !modes.includes(mode)) {
      throw new ConfigError(
        `--${flag} applies to --mode ${modes.join(" or ")}, not ${mode}`,
      );
    }
  };
  only("topic", topics.length > 0, ["subscribe", "publish", "presence"]);
  only("after", v.after !== undefined, ["subscribe"]);
  only("payload", v.payload !== undefined, ["publish"]);
  if (mode !== "subscribe" && topics.length > 1) {
    throw new ConfigError(
      `--mode ${mode} takes one --topic, got ${topics.length}`,
    );
  }
  const tlsCa = v["tls-ca"] ?? env.GREETER_TLS_CA;
  const tlsCert = v["tls-cert"] ?? env.GREETER_CLIENT_TLS_CERT;
  const tlsKey = v["tls-key"] ?? env.GREETER_CLIENT_TLS_KEY;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw new ConfigError(
      "A client certificate needs both --tls-cert and --tls-key",
    );
  }
  const target = v.target ?? env.GREETER_TARGET ?? "localhost:50051";
  const port = target.match(/^(?:\[[0-9a-fA-F:.]+\]|[^\s:/]+):(\d{1,5})$/)?.[1];
  if (port === undefined || Number(port) < 1 || Number(port) > 65535) {
    throw new ConfigError(
      `Invalid target "${target}": expected HOST:PORT with a port from 1 to 65535, e.g. localhost:50051`,
    );
  }
  const count = v.count === undefined
    ? undefined
    : integer("count", v.count, 0, 1);
  return {
    help: false,
    config: {
      target,
      mode,
      names: positionals.length > 0 ? positionals : ["world"],
      count,
      tokenFile: v["token-file"] ?? env.GREETER_TOKEN_FILE,
      token: env.GREETER_TOKEN,
      topics,
      after,
      payload: v.payload ?? "",
      tls: values.tls === true || tlsCa !== undefined || tlsCert !== undefined,
      tlsCa,
      tlsCert,
      tlsKey,
    },
  };
}
