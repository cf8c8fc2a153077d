/**
 * Folder `lib/cli/`: the command line: one table of settings
 * (`settings.ts`), parsing and checks (here), usage, and the two subcommands
 * (`serve.ts`, `client.ts`) with what they print. The only folder that reads
 * files named by the user; it neither exits nor handles signals (`main.ts`
 * does). May import every folder of `lib/`.
 *
 * Settings of the two subcommands, read from the tables in `settings.ts`:
 * flags win over `GREETER_*` environment variables, which win over
 * defaults; then the checks that span several settings. Validated and
 * typed; no I/O.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import { splitArgs } from "./args.ts";
import {
  type Env,
  envNames,
  givenFlags,
  readSettings,
  type SettingValues,
} from "./setting.ts";
import { CLIENT_SETTINGS, NAMED_MODES, SERVE_SETTINGS } from "./settings.ts";
import { checkOrigin } from "../wire/address.ts";
import { renderUsage } from "./usage.ts";
import { natsAuth } from "./nats_auth.ts";

export type { Env } from "./setting.ts";
export {
  CLIENT_MODES,
  type ClientMode,
  type ClientOutput,
} from "./settings.ts";

/**
 * Every environment variable the greeter reads (for least-privilege reads):
 * the settings', and `INIT_CWD`, where `deno task` was started (relative
 * paths are read from there).
 */
export const ENV_VARS: readonly string[] = [
  ...new Set([
    ...envNames(SERVE_SETTINGS),
    ...envNames(CLIENT_SETTINGS),
    "INIT_CWD",
  ]),
];

/** Settings of `greeter serve` (see `SERVE_SETTINGS` for each). */
export type ServeConfig = SettingValues<typeof SERVE_SETTINGS>;

/** Settings of `greeter client` (see `CLIENT_SETTINGS` for each). */
export type ClientConfig = SettingValues<typeof CLIENT_SETTINGS> & {
  /** Names given; the first is the caller's name, all are sent in `bidi`. */
  names: string[];
};

/** Usage text of `greeter serve`. */
export const SERVE_USAGE: string = renderUsage(
  "Usage: greeter serve [options]",
  SERVE_SETTINGS,
);

/** Usage text of `greeter client`. */
export const CLIENT_USAGE: string = renderUsage(
  "Usage: greeter client [NAME…] [options]",
  CLIENT_SETTINGS,
);

/**
 * The result of parsing: settings, or a request to print something instead
 * of running (the usage, or with `version` the version).
 */
export type Parsed<T> =
  | { help: true; version?: true }
  | { help: false; config: T };

/** The NATS settings, which mean nothing to the memory broker. */
const NATS_SETTINGS = [
  "brokerWaitMs",
  "natsStream",
  "natsUser",
  "natsPasswordFile",
  "natsTokenFile",
  "natsNkeyFile",
  "natsCredsFile",
  "natsTlsCa",
  "natsTlsCert",
  "natsTlsKey",
  "natsReplicas",
  "natsStorage",
] as const;

/** The checks that span several serve settings. */
function checkServe(
  config: ServeConfig,
  given: Set<keyof typeof SERVE_SETTINGS>,
): void {
  const nats = NATS_SETTINGS.find((key) => given.has(key));
  if (config.brokerUrl.kind === "memory" && nats) {
    throw new ConfigError(
      `--${
        SERVE_SETTINGS[nats].flag
      } applies to --broker nats://HOST:PORT, not the memory broker`,
    );
  }
  if (config.reusePort && config.brokerUrl.kind === "memory") {
    throw new ConfigError(
      "--reuse-port needs --broker nats://HOST:PORT: processes sharing a port must share one event stream, and the memory broker is one process's",
    );
  }
  if (config.brokerUrl.kind === "nats") natsAuth(config);
  if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) {
    throw new ConfigError(
      "TLS needs both --tls-cert and --tls-key (or neither, for plaintext)",
    );
  }
  if (
    (config.natsTlsCert === undefined) !== (config.natsTlsKey === undefined)
  ) {
    throw new ConfigError(
      "A NATS client certificate needs both --nats-tls-cert and --nats-tls-key",
    );
  }
  if (config.tlsClientCa !== undefined && config.tlsCert === undefined) {
    throw new ConfigError(
      "--tls-client-ca needs TLS: give --tls-cert and --tls-key too",
    );
  }
  if (
    config.metricsPort !== undefined && config.metricsPort !== 0 &&
    config.metricsPort === config.port
  ) {
    throw new ConfigError(
      `Invalid metrics port ${config.metricsPort}: it is the gRPC port too; pick another`,
    );
  }
  const ports = [
    ["gRPC", config.port],
    ["metrics", config.metricsPort],
  ] as const;
  for (const [name, port] of ports) {
    if (
      config.httpPort !== undefined && config.httpPort !== 0 &&
      config.httpPort === port
    ) {
      throw new ConfigError(
        `Invalid HTTP port ${config.httpPort}: it is the ${name} port too; pick another`,
      );
    }
  }
  if (config.httpCorsOrigins.length > 0 && config.httpPort === undefined) {
    throw new ConfigError(
      "--http-cors-origin applies to the HTTP port: give --http-port too",
    );
  }
  if (config.httpPort !== undefined && config.tlsClientCa !== undefined) {
    throw new ConfigError(
      "--http-port cannot require client certificates (--tls-client-ca): Deno.serve does not verify them; serve HTTP from an instance without --tls-client-ca",
    );
  }
  for (const origin of config.httpCorsOrigins) checkOrigin(origin);
  // A publish carries its payload plus a few bytes of framing in one message.
  if (config.maxPublishBytes > config.maxMessageBytes - 512) {
    throw new ConfigError(
      `Invalid max publish size ${config.maxPublishBytes}: it must stay 512 bytes below the max message size (${config.maxMessageBytes}); raise --max-message-size or lower --max-publish-size`,
    );
  }
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
  const { values, positionals, help, version } = splitArgs(
    args,
    SERVE_SETTINGS,
    { command: "client", table: CLIENT_SETTINGS },
  );
  if (help) return { help: true };
  if (version) return { help: true, version: true };
  if (positionals.length > 0) {
    throw new ConfigError(
      `Unexpected argument "${positionals[0]}": serve takes options only`,
    );
  }
  const config = readSettings(SERVE_SETTINGS, values, env);
  checkServe(config, givenFlags(SERVE_SETTINGS, values));
  return { help: false, config };
}

/** Refuses what the chosen mode would ignore: one rule for every flag. */
function checkModes(
  config: ClientConfig,
  given: Set<keyof typeof CLIENT_SETTINGS>,
): void {
  const { mode, names, topics } = config;
  for (const key of given) {
    const { flag, modes } = CLIENT_SETTINGS[key];
    if (modes && !(modes as readonly string[]).includes(mode)) {
      throw new ConfigError(
        `--${flag} applies to --mode ${modes.join(" or ")}, not ${mode}`,
      );
    }
  }
  if (names.length > 0 && !NAMED_MODES.includes(mode)) {
    throw new ConfigError(
      `A NAME ("${names[0]}") applies to --mode ${
        NAMED_MODES.join(" or ")
      }, not ${mode}`,
    );
  }
  if (names.length > 1 && mode !== "bidi") {
    throw new ConfigError(
      `--mode ${mode} takes one NAME, got ${names.length}; --mode bidi sends several`,
    );
  }
  if (mode !== "subscribe" && topics.length > 1) {
    throw new ConfigError(
      `--mode ${mode} takes one --topic, got ${topics.length}`,
    );
  }
  // Two answers to one question: which one was meant is not a guess to make.
  for (
    const [one, other] of [["after", "from"], [
      "payload",
      "payloadFile",
    ]] as const
  ) {
    if (given.has(one) && given.has(other)) {
      throw new ConfigError(
        `--${CLIENT_SETTINGS[one].flag} and --${
          CLIENT_SETTINGS[other].flag
        } say the same thing twice: give one`,
      );
    }
  }
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
  const { values, positionals, help, version } = splitArgs(
    args,
    CLIENT_SETTINGS,
    { command: "serve", table: SERVE_SETTINGS },
  );
  if (help) return { help: true };
  if (version) return { help: true, version: true };
  const settings = readSettings(CLIENT_SETTINGS, values, env);
  const given = givenFlags(CLIENT_SETTINGS, values);
  checkModes({ ...settings, names: positionals }, given);
  if (
    !given.has("tokenFile") && settings.tokenFile !== undefined &&
    settings.token !== undefined
  ) {
    throw new ConfigError(
      "GREETER_TOKEN and GREETER_TOKEN_FILE are both set: unset one (GREETER_TOKEN holds the token itself, GREETER_TOKEN_FILE names a file that holds it)",
    );
  }
  if ((settings.tlsCert === undefined) !== (settings.tlsKey === undefined)) {
    throw new ConfigError(
      "A client certificate needs both --tls-cert and --tls-key",
    );
  }
  return {
    help: false,
    config: {
      ...settings,
      names: positionals.length > 0 ? positionals : ["world"],
      // --token-file wins over GREETER_TOKEN as every flag wins over the environment.
      token: given.has("tokenFile") ? undefined : settings.token,
      tls: settings.tls || settings.tlsCa !== undefined ||
        settings.tlsCert !== undefined,
    },
  };
}
