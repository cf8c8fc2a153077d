/**
 * Every setting of `greeter serve` and `greeter client`, each declared once:
 * its flag, kind and bounds, default, environment variable (derived from the
 * flag unless stated), help line and, for the client, the modes it applies
 * to. Parsing, the environment read, validation, `--help` and the documentation's
 * settings tables (held to these by a test) all come from here; adding a
 * setting means adding one entry.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import type { StartPosition } from "../client/client.ts";
import { MAX_SEQ, parseSeq } from "../bus/seq.ts";
import { LOG_LEVELS, type LogFormat } from "../log.ts";
import {
  DEFAULT_BUFFER_SIZE,
  DEFAULT_GRACE_MS,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_KEEPALIVE_TIME_MS,
  DEFAULT_KEEPALIVE_TIMEOUT_MS,
  DEFAULT_MAX_CONCURRENT_STREAMS,
  DEFAULT_MAX_CONNECTION_IDLE_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_PATTERNS_PER_PEER,
  DEFAULT_MAX_PUBLISH_BYTES,
  DEFAULT_MAX_SUBSCRIBERS,
  DEFAULT_MAX_SUBSCRIBERS_PER_PEER,
  DEFAULT_RECONNECT_JITTER_MS,
  DEFAULT_REPLAY_AGE_MS,
  DEFAULT_REPLAY_BYTES,
  DEFAULT_REPLAY_SIZE,
  SLOW_CONSUMER_POLICIES,
} from "../defaults.ts";
import {
  boolean,
  choice,
  duration,
  integer,
  list,
  optionalDuration,
  optionalInteger,
  path,
  text,
} from "./setting.ts";

const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

/** Where `greeter serve` sequences events. */
export type BrokerSetting =
  | { kind: "memory" }
  | {
    kind: "nats";
    /** `HOST:PORT` each, without credentials. */
    servers: string[];
    /** The user named in the URL (`nats://USER[:PASSWORD]@…`). */
    user?: string;
    /** The password given in the URL. */
    password?: string;
  };

/** `url` with its password, if any, shown as `***` (for messages). */
export function redactBrokerUrl(url: string): string {
  return url.replace(/(\/\/[^:@/,]*:)[^@/,]*@/g, "$1***@");
}

/**
 * `memory`, or `nats://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT…]` (each may
 * repeat `nats://`, and the credentials, which must then be the same).
 */
function readBroker(value: string, label: string): BrokerSetting {
  if (value === "memory") return { kind: "memory" };
  const invalid = (why = "") =>
    new ConfigError(
      `Invalid ${label} "${
        redactBrokerUrl(value)
      }"${why}: expected memory or nats://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT…], e.g. nats://127.0.0.1:4222`,
    );
  const parts = value.startsWith("nats://")
    ? value.slice("nats://".length).split(",").map((s) =>
      s.replace(/^nats:\/\//, "")
    )
    : [];
  const address = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;
  const servers: string[] = [];
  let credentials: string | undefined;
  for (const part of parts) {
    const at = part.lastIndexOf("@");
    const server = part.slice(at + 1);
    if (!address.test(server)) throw invalid();
    servers.push(server);
    if (at < 0) continue;
    const given = part.slice(0, at);
    if (credentials !== undefined && credentials !== given) {
      throw invalid(" (its servers name different credentials)");
    }
    credentials = given;
  }
  if (servers.length === 0) throw invalid();
  if (credentials === undefined) return { kind: "nats", servers };
  const colon = credentials.indexOf(":");
  const [user, password] = colon < 0
    ? [credentials, undefined]
    : [credentials.slice(0, colon), credentials.slice(colon + 1)];
  try {
    const decoded = {
      user: decodeURIComponent(user),
      password: password === undefined
        ? undefined
        : decodeURIComponent(password),
    };
    if (decoded.user === "") throw invalid(" (its user is empty)");
    return { kind: "nats", servers, ...decoded };
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw invalid(" (its credentials are not percent-encoded)");
  }
}

/** How many workers serve: a count, or one per core (`auto`). */
export type Workers = number | "auto";

/** Most workers `--workers` takes. */
export const MAX_WORKERS = 256;

/** `auto`, or a count of workers from 1 to {@linkcode MAX_WORKERS}. */
function readWorkers(value: string, label: string): Workers {
  if (value === "auto") return "auto";
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > MAX_WORKERS) {
    throw new ConfigError(
      `Invalid ${label} "${value}": expected auto or an integer from 1 to ${MAX_WORKERS}`,
    );
  }
  return n;
}

/** The settings of `greeter serve`, by `ServeConfig` field. */
export const SERVE_SETTINGS = {
  host: text({
    flag: "host",
    arg: "HOST",
    help: "interface to bind (:: for every interface)",
    default: "127.0.0.1",
    shownDefault: "127.0.0.1, loopback only",
    read: (value) => {
      if (value.trim() === "") {
        throw new ConfigError("Invalid host: it is empty");
      }
      return value;
    },
  }),
  port: integer({
    flag: "port",
    arg: "PORT",
    help: "port to bind, 0 for any free one",
    min: 0,
    max: 65535,
    default: 50051,
  }),
  intervalMs: duration({
    flag: "interval",
    arg: "MS",
    help: "milliseconds between the clock's ticks",
    min: 1,
    default: 1000,
  }),
  bufferSize: integer({
    flag: "buffer-size",
    arg: "N",
    help: "events a subscriber may hold unread",
    min: 1,
    max: 1_000_000,
    default: DEFAULT_BUFFER_SIZE,
  }),
  policy: choice({
    flag: "policy",
    arg: "P",
    help: "when that buffer is full",
    values: SLOW_CONSUMER_POLICIES,
    default: "drop-oldest",
  }),
  replaySize: integer({
    flag: "replay-size",
    arg: "N",
    help: "events kept for resume",
    min: 1,
    max: 10_000_000,
    default: DEFAULT_REPLAY_SIZE,
  }),
  replayAgeMs: duration({
    flag: "replay-age",
    arg: "MS",
    help: "oldest event replayed",
    min: 1,
    default: DEFAULT_REPLAY_AGE_MS,
  }),
  replayBytes: integer({
    flag: "replay-bytes",
    arg: "N",
    help: "most bytes of events kept for resume",
    min: 1024,
    default: DEFAULT_REPLAY_BYTES,
  }),
  heartbeatMs: duration({
    flag: "heartbeat",
    arg: "MS",
    help: "heartbeat to idle subscribers",
    min: 10,
    default: DEFAULT_HEARTBEAT_MS,
  }),
  maxPublishBytes: integer({
    flag: "max-publish-size",
    arg: "BYTES",
    help: "largest Publish payload",
    min: 0,
    max: 64 * 1024 * 1024,
    default: DEFAULT_MAX_PUBLISH_BYTES,
  }),
  reconnectJitterMs: duration({
    flag: "reconnect-jitter",
    arg: "MS",
    help: "goodbyes advise reconnecting after a random delay below this",
    min: 0,
    max: 3_600_000,
    default: DEFAULT_RECONNECT_JITTER_MS,
  }),
  graceMs: duration({
    flag: "grace",
    arg: "MS",
    help: "shutdown grace period",
    min: 0,
    max: 3_600_000,
    default: DEFAULT_GRACE_MS,
  }),
  keepaliveTimeMs: duration({
    flag: "keepalive-time",
    arg: "MS",
    help: "ping each peer this often",
    min: 1,
    default: DEFAULT_KEEPALIVE_TIME_MS,
  }),
  keepaliveTimeoutMs: duration({
    flag: "keepalive-timeout",
    arg: "MS",
    help: "drop a peer silent this long after a ping",
    min: 1,
    default: DEFAULT_KEEPALIVE_TIMEOUT_MS,
  }),
  maxConnectionIdleMs: duration({
    flag: "max-connection-idle",
    arg: "MS",
    help:
      "close connections with no call this long (a peer that only answers pings holds a descriptor)",
    min: 1,
    default: DEFAULT_MAX_CONNECTION_IDLE_MS,
  }),
  maxConnections: integer({
    flag: "max-connections",
    arg: "N",
    help:
      "most connections at once; beyond, new ones are closed; lowered at run time if open files run out first",
    min: 1,
    max: 10_000_000,
    default: DEFAULT_MAX_CONNECTIONS,
  }),
  maxConnectionsPerPeer: optionalInteger({
    flag: "max-connections-per-peer",
    arg: "N",
    help:
      "most connections one peer address holds at once; beyond, its new ones are closed",
    min: 1,
    max: 10_000_000,
    shownDefault: "a quarter of --max-connections",
  }),
  maxConnectionAgeMs: optionalDuration({
    flag: "max-connection-age",
    arg: "MS",
    help:
      "ask connections to reconnect after this long; with --max-connection-age-grace, cut their streams after that too",
    shownDefault: "off",
  }),
  maxConnectionAgeGraceMs: optionalDuration({
    flag: "max-connection-age-grace",
    arg: "MS",
    help: "time calls get after that",
    shownDefault: "off: unlimited",
  }),
  maxSubscribers: integer({
    flag: "max-subscribers",
    arg: "N",
    help: "most subscriptions at once",
    min: 1,
    max: 10_000_000,
    default: DEFAULT_MAX_SUBSCRIBERS,
  }),
  // Off by default: gRPC clients multiplex (grpc-go runs a ClientConn's
  // calls over one connection, grpc-js every client of a target), and a
  // connection already carries at most --max-concurrent-streams calls, the
  // rest waiting for a stream rather than failing.
  maxSubscribersPerConnection: optionalInteger({
    flag: "max-subscribers-per-connection",
    arg: "N",
    help: "most subscriptions per connection",
    min: 1,
    max: 10_000_000,
    shownDefault: "off",
  }),
  maxSubscribersPerPeer: integer({
    flag: "max-subscribers-per-peer",
    arg: "N",
    help: "most subscriptions per peer address, all its connections",
    min: 1,
    max: 10_000_000,
    default: DEFAULT_MAX_SUBSCRIBERS_PER_PEER,
  }),
  maxPatternsPerPeer: integer({
    flag: "max-patterns-per-peer",
    arg: "N",
    help:
      "most distinct wildcard topic patterns (news.*) per peer address, all its subscriptions",
    min: 1,
    max: 10_000_000,
    default: DEFAULT_MAX_PATTERNS_PER_PEER,
  }),
  maxConcurrentStreams: integer({
    flag: "max-concurrent-streams",
    arg: "N",
    help: "most calls at once per connection",
    min: 1,
    max: 2 ** 31 - 1,
    default: DEFAULT_MAX_CONCURRENT_STREAMS,
  }),
  maxMessageBytes: integer({
    flag: "max-message-size",
    arg: "BYTES",
    help: "largest message either way",
    min: 1024,
    max: 64 * 1024 * 1024,
    default: DEFAULT_MAX_MESSAGE_BYTES,
  }),
  tokenFile: path({
    flag: "token-file",
    arg: "PATH",
    help:
      "require a bearer token from this file (one per line, optionally with grants; SIGHUP reloads it)",
    shownDefault: "none",
  }),
  tlsCert: path({
    flag: "tls-cert",
    arg: "PATH",
    help: "serve TLS with this certificate chain (PEM)",
    shownDefault: "plaintext",
  }),
  tlsKey: path({
    flag: "tls-key",
    arg: "PATH",
    help: "and this private key (PEM)",
  }),
  tlsClientCa: path({
    flag: "tls-client-ca",
    arg: "PATH",
    help: "require client certificates signed by this CA (mTLS)",
  }),
  brokerUrl: text<BrokerSetting>({
    flag: "broker",
    arg: "URL",
    help:
      "where events are sequenced: memory (this process), or a NATS JetStream stream every instance shares",
    details: ["nats://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT…]"],
    default: { kind: "memory" },
    shownDefault: "memory",
    read: readBroker,
  }),
  brokerWaitMs: optionalDuration({
    flag: "broker-wait",
    arg: "MS",
    help:
      "if NATS is unreachable at start: serve, not ready, connecting this long before exit 1 (0: exit 1 at once)",
    shownDefault: "no end",
    min: 0,
  }),
  natsStream: text({
    flag: "nats-stream",
    arg: "NAME",
    help:
      "the JetStream stream (created if missing; its subject is NAME.events)",
    default: "greeter",
    read: (value, label) => {
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(value)) {
        throw new ConfigError(
          `Invalid ${label} "${value}": expected 1 to 64 letters, digits, _ or -`,
        );
      }
      return value;
    },
  }),
  natsUser: text<string | undefined>({
    flag: "nats-user",
    arg: "NAME",
    help:
      "NATS user (or in the URL), with GREETER_NATS_PASSWORD, --nats-password-file or the URL's password",
    default: undefined,
    shownDefault: "none",
  }),
  natsPassword: text<string | undefined>({
    env: "GREETER_NATS_PASSWORD",
    help:
      "the NATS user's password itself (never a flag, which ps would show; never logged)",
    default: undefined,
  }),
  natsPasswordFile: path({
    flag: "nats-password-file",
    arg: "PATH",
    help: "file holding the NATS user's password",
  }),
  natsTokenFile: path({
    flag: "nats-token-file",
    arg: "PATH",
    help: "file holding a NATS authentication token",
  }),
  natsNkeyFile: path({
    flag: "nats-nkey-file",
    arg: "PATH",
    help:
      "file holding a NATS user's nkey seed (SU…), for nats-server's nkey users",
  }),
  natsCredsFile: path({
    flag: "nats-creds-file",
    arg: "PATH",
    help:
      "NATS credentials file (.creds: a user JWT and its nkey seed), for nats-server in operator mode",
  }),
  natsTlsCa: path({
    flag: "nats-tls-ca",
    arg: "PATH",
    help:
      "connect to NATS over TLS only, trusting the CA certificate(s) in this PEM file",
  }),
  natsTlsCert: path({
    flag: "nats-tls-cert",
    arg: "PATH",
    help:
      "connect to NATS over TLS only, with this client certificate chain (PEM), for nats-server's verify",
  }),
  natsTlsKey: path({
    flag: "nats-tls-key",
    arg: "PATH",
    help: "the private key (PEM) of --nats-tls-cert",
  }),
  natsReplicas: integer({
    flag: "nats-replicas",
    arg: "N",
    help: "copies of a new stream in a NATS cluster",
    min: 1,
    max: 5,
    default: 1,
  }),
  natsStorage: choice({
    flag: "nats-storage",
    arg: "S",
    help: "a new stream's storage (file survives a nats-server restart)",
    values: ["file", "memory"] as const,
    default: "file",
  }),
  workers: text<Workers>({
    flag: "workers",
    arg: "N",
    help:
      "serve on N cores: N workers on one port, one sequence; auto: one per core this process may use",
    default: 1,
    read: readWorkers,
  }),
  reusePort: boolean({
    flag: "reuse-port",
    help:
      "share the port with other greeter processes on this machine (one per core), all on one --broker nats:// stream",
  }),
  metricsPort: optionalInteger({
    flag: "metrics-port",
    arg: "PORT",
    help: "serve Prometheus metrics on http://HOST:PORT/metrics",
    min: 0,
    max: 65535,
    shownDefault: "off",
  }),
  httpPort: optionalInteger({
    flag: "http-port",
    arg: "PORT",
    help:
      "serve browsers and HTTP tools on this port too: server-sent events, Connect, gRPC-Web, the console",
    min: 0,
    max: 65535,
    shownDefault: "off",
  }),
  httpCorsOrigins: list({
    flag: "http-cors-origin",
    env: "GREETER_HTTP_CORS_ORIGIN",
    arg: "ORIGIN",
    help:
      "let pages from this origin (scheme://host[:port]) call the HTTP port, repeatable (env: comma-separated)",
    shownDefault: "none: same origin only",
  }),
  logLevel: choice({
    flag: "log-level",
    arg: "L",
    help: "least severe level logged",
    values: LOG_LEVELS,
    default: "info",
  }),
  logFormat: choice({
    flag: "log-format",
    arg: "F",
    help: "log line format",
    values: LOG_FORMATS,
    default: "text",
  }),
};

/** What `greeter client` does. */
export type ClientMode =
  | "stream2"
  | "stream"
  | "hello"
  | "bidi"
  | "subscribe"
  | "publish"
  | "presence"
  | "stream-info";

/** Every {@linkcode ClientMode}. */
export const CLIENT_MODES: readonly ClientMode[] = [
  "stream2",
  "stream",
  "hello",
  "bidi",
  "subscribe",
  "publish",
  "presence",
  "stream-info",
];

/** The modes that send a NAME (all but `publish` and `presence`). */
export const NAMED_MODES: readonly ClientMode[] = [
  "stream2",
  "stream",
  "hello",
  "bidi",
  "subscribe",
];

/** How the client prints what it receives. */
export type ClientOutput = "text" | "json";

/** A cursor as the subscribe mode prints it: `EPOCH:SEQ`. */
function readCursor(value: string): { epoch: string; seq: number } {
  const match = value.match(/^([^:\s]+):(\d+)$/);
  if (!match) {
    throw new ConfigError(
      `Invalid cursor "${value}": expected EPOCH:SEQ as printed by the subscribe mode, e.g. 3f2a9c0d11e4b7a6:42`,
    );
  }
  const seq = parseSeq(match[2]);
  if (seq === undefined) {
    throw new ConfigError(
      `Invalid cursor "${value}": seq ${
        match[2]
      } is out of range, at most ${MAX_SEQ}`,
    );
  }
  return { epoch: match[1], seq };
}

/** Units of a `--from` duration, in milliseconds. */
const DURATION_UNITS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * A `--from` value: `first`, `last:N`, an ISO 8601 time with its zone, or
 * a duration ago (`90s`, `10m`, `2h`, `1d`), read against `now`.
 *
 * @example
 * ```ts
 * import { readStart } from "./settings.ts";
 * readStart("last:5"); // { last: 5 }
 * readStart("10m", 600_000); // { timeMs: 0 }
 * ```
 */
export function readStart(
  value: string,
  now: number = Date.now(),
): StartPosition {
  if (value === "first") return { first: true };
  const last = value.match(/^last:(\d{1,9})$/);
  if (last && Number(last[1]) >= 1) return { last: Number(last[1]) };
  const ago = value.match(/^(\d{1,9})([smhd])$/);
  if (ago) return { timeMs: now - Number(ago[1]) * DURATION_UNITS[ago[2]] };
  // A time must say its zone: "10:00" alone means another instant elsewhere.
  const zoned = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/
    .test(value);
  const timeMs = Date.parse(value);
  if (zoned && Number.isFinite(timeMs)) return { timeMs };
  throw new ConfigError(
    `Invalid --from "${value}": expected first, last:N (N from 1), a time with its zone (2026-11-24T10:00:00Z) or how long ago (90s, 10m, 2h, 1d)`,
  );
}

/** One `HOST:PORT`, or several separated by commas (as given). */
function readTarget(value: string): string {
  for (const one of value.split(",")) {
    const port = one.match(/^(?:\[[0-9a-fA-F:.]+\]|[^\s:/]+):(\d{1,5})$/)
      ?.[1];
    if (port === undefined || Number(port) < 1 || Number(port) > 65535) {
      throw new ConfigError(
        `Invalid target "${one}": expected HOST:PORT with a port from 1 to 65535, e.g. localhost:50051`,
      );
    }
  }
  return value;
}

/** The settings of `greeter client` (NAME… aside), by `ClientConfig` field. */
export const CLIENT_SETTINGS = {
  target: text({
    flag: "target",
    arg: "HOST:PORT[,…]",
    help:
      "server address, or several, comma-separated, tried in order (subscribe moves to the next whenever it must subscribe again)",
    default: "localhost:50051",
    read: readTarget,
  }),
  mode: choice({
    flag: "mode",
    env: false,
    arg: "M",
    help: "what to do",
    values: CLIENT_MODES,
    default: "stream2",
    details: [
      "stream2: SayHello, then SayHelloStream2",
      "stream: SayHello, then SayHelloStreamReply (until --count or Ctrl-C)",
      "hello: SayHello only",
      "bidi: SayHelloBidiStream with every NAME given",
      "subscribe: Subscribe to the event bus, reconnecting and resuming",
      "  (until --count or Ctrl-C)",
      "publish: Publish --payload (or --payload-file) on --topic",
      "presence: list subscribers (of --topic, if given)",
      "stream-info: the event stream's state: epoch, first and last seq,",
      "  events and bytes held (StreamInfo)",
    ],
  }),
  count: optionalInteger({
    flag: "count",
    env: false,
    arg: "N",
    help: "stop after N stream messages (events, in subscribe)",
    min: 1,
    modes: ["stream2", "stream", "bidi", "subscribe"],
  }),
  topics: list({
    flag: "topic",
    env: false,
    arg: "T",
    help:
      'subscribe: a topic to receive, repeatable (none: all but "$" ones); publish, presence: the one topic',
    modes: ["subscribe", "publish", "presence"],
  }),
  after: text<{ epoch: string; seq: number } | undefined>({
    flag: "after",
    env: false,
    arg: "EPOCH:SEQ",
    help: "resume after this cursor",
    default: undefined,
    read: readCursor,
    modes: ["subscribe"],
  }),
  from: text<StartPosition | undefined>({
    flag: "from",
    env: false,
    arg: "WHERE",
    help:
      "start with events still held instead of live: first (all of them), last:N (the last N of the topics), a time (2026-11-24T10:00:00Z) or how long ago (90s, 10m, 2h, 1d); not with --after",
    default: undefined,
    read: (value) => readStart(value),
    modes: ["subscribe"],
  }),
  payload: text({
    flag: "payload",
    env: false,
    arg: "TEXT",
    help: "what to publish",
    default: "",
    shownDefault: "empty",
    modes: ["publish"],
  }),
  idempotencyKey: text<string | undefined>({
    flag: "idempotency-key",
    env: false,
    arg: "KEY",
    help:
      "name this publish: run again with the same KEY within 2 minutes (after an error), it is one event",
    default: undefined,
    shownDefault: "none",
    modes: ["publish"],
  }),
  payloadFile: path({
    flag: "payload-file",
    env: false,
    arg: "PATH",
    help:
      "publish this file's bytes as they are (binary too); - reads stdin; not with --payload",
    modes: ["publish"],
  }),
  verbose: boolean({
    flag: "verbose",
    env: false,
    help: "print heartbeats too",
    modes: ["subscribe"],
  }),
  allowPlaintextToken: boolean({
    flag: "allow-plaintext-token",
    env: false,
    help:
      "send the token without TLS to a target that is not loopback (refused otherwise: anyone on the path reads it)",
  }),
  output: choice<ClientOutput>({
    flag: "output",
    env: false,
    arg: "FORMAT",
    help: "print each message as a line of text, or as one JSON object",
    values: ["text", "json"],
    default: "text",
  }),
  tokenFile: path({
    flag: "token-file",
    arg: "PATH",
    help: "send the bearer token in this file",
  }),
  token: text<string | undefined>({
    env: "GREETER_TOKEN",
    help:
      "the bearer token itself (never a flag, which ps would show); not with GREETER_TOKEN_FILE",
    default: undefined,
  }),
  tls: boolean({
    flag: "tls",
    env: false,
    help: "connect with TLS, trusting the system's CAs",
  }),
  tlsCa: path({
    flag: "tls-ca",
    arg: "PATH",
    help: "connect with TLS, trusting this CA (PEM)",
  }),
  tlsCert: path({
    flag: "tls-cert",
    env: "GREETER_CLIENT_TLS_CERT",
    arg: "PATH",
    help: "present this client certificate (PEM, mTLS)",
  }),
  tlsKey: path({
    flag: "tls-key",
    env: "GREETER_CLIENT_TLS_KEY",
    arg: "PATH",
    help: "and its key (PEM)",
  }),
};
